"""HTTPS on the HTTP port when client certificates must carry a listed name
(PDP_TLS_CLIENT_SUBJECTS): granian verifies client certificates but does not show the
application which one a client presented, so with an allow-list pdp terminates TLS itself.

Each worker runs a `TlsFront` (an asyncio server in a thread of its own, on PDP_HTTP with
SO_REUSEPORT, as gRPC shares its port): it completes the handshake (the client CA verifies the
certificate), checks the certificate's subject CN and subject alternative names against the
allow-list, and relays the connection's bytes to granian, which then listens on a unix socket
in the run directory. A certificate that names none of them gets a 403 and the connection is
closed before a byte reaches the application. docs/serving.md, TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Iterable

import orjson

from pdp_server.tls import certificate_names, names_allowed

__all__ = ["TlsFront"]

log = logging.getLogger("pdp.server.tls")
_CHUNK = 65536
_FORBIDDEN = orjson.dumps(
    {
        "error": {
            "code": "unauthenticated",
            "message": "client certificate: not one of PDP_TLS_CLIENT_SUBJECTS",
        }
    }
)


class TlsFront:
    """The TLS listener of one worker: handshake, name check, then a byte relay to granian's
    unix socket `upstream`. At most `max_connections` at once, handshakes included (more are
    closed unanswered); a handshake must finish within `handshake_timeout` seconds."""

    def __init__(
        self,
        address: str,
        upstream: str,
        cert: str,
        key: str,
        client_ca: str,
        subjects: Iterable[str],
        max_connections: int,
        handshake_timeout: float,
    ) -> None:
        host, _, port = address.rpartition(":")
        # an empty host is loopback, as everywhere in pdp (never every interface)
        self._host, self._port = host.strip("[]") or "127.0.0.1", int(port)
        self._upstream = upstream
        self._subjects = tuple(subjects)
        self._limit = max_connections
        self._handshake_timeout = handshake_timeout
        self._open = 0
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
        context.set_alpn_protocols(["http/1.1"])
        self._context = context
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Listen (OSError when the port cannot be bound), then serve in a daemon thread."""
        threading.Thread(target=self._run, name="pdp-tls-front", daemon=True).start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(
                    self._handle, self._host, self._port, reuse_port=True, family=socket.AF_UNSPEC
                )
            )
        except BaseException as exc:  # handed to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self._limit:
            writer.close()
            return
        self._open += 1  # counted from the accept: a handshake holds a connection too
        try:
            await writer.start_tls(self._context, ssl_handshake_timeout=self._handshake_timeout)
            tls = writer.get_extra_info("ssl_object")
            der = tls.getpeercert(binary_form=True) if tls is not None else None
            if not der or not names_allowed(certificate_names(der), self._subjects):
                writer.write(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                    % len(_FORBIDDEN)
                    + _FORBIDDEN
                )
                with contextlib.suppress(OSError, ssl.SSLError):
                    await asyncio.wait_for(writer.drain(), self._handshake_timeout)
                return
            try:
                up_reader, up_writer = await asyncio.open_unix_connection(self._upstream)
            except OSError:
                log.error("pdp serve: the HTTP server's socket %s is not there", self._upstream)
                return
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        except (TimeoutError, OSError, ssl.SSLError):
            pass  # the client went away or broke TLS: nothing to answer
        finally:
            self._open -= 1
            writer.close()


async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    """Copy until `source` ends, then end `target`'s writing side (a half-close passes on)."""
    try:
        while True:
            chunk = await source.read(_CHUNK)
            if not chunk:
                break
            target.write(chunk)
            await target.drain()  # backpressure: a slow reader slows its writer, never a buffer
    except (OSError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError, ssl.SSLError):
            if target.can_write_eof():
                target.write_eof()
            else:
                target.close()
