"""HTTP transport (Flask): the sidecar API, health, readiness, metrics and the OpenAPI file.

`create_app(service)` builds the app; there is no global one. Every error is JSON: bad input is
a 400 naming the problem (never a 500), an unready store is a 503.

`Sidecar(app, ...)` is how granian runs it (RSGI, not WSGI): granian's WSGI interface calls the
app as soon as the headers are in and the app's body read then blocks its thread, so four
clients that never finish a body held all four threads. Here the body arrives on granian's event
loop within a deadline (408 after it), and only a request whose body is in hand takes a thread.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

from flask import Flask, Response
from granian.rsgi import HTTPProtocol, ProtocolClosed, Scope
from werkzeug.exceptions import RequestEntityTooLarge

from pdp_server.authzen import register_authzen
from pdp_server.authzen_search import register_search
from pdp_server.errors import (
    BadRequest,
    BodyTimeout,
    Busy,
    NotReady,
    ServiceError,
    http_error,
)
from pdp_server.forward_auth import register_forward_auth
from pdp_server.http_json import error_response, json_errors, json_response, read_json, too_large
from pdp_server.requests import parse_request
from pdp_server.service import Service

__all__ = [
    "Sidecar",
    "create_app",
    "error_response",
    "json_errors",
    "json_response",
    "read_json",
]

log = logging.getLogger("pdp.server.http")


def create_app(service: Service) -> Flask:
    app = Flask("pdp")
    app.config["MAX_CONTENT_LENGTH"] = service.config.max_body
    openapi = resources.files("pdp_server").joinpath("openapi.json").read_bytes()
    max_body = service.config.max_body
    json_errors(app, log, service.metrics.bad_request)

    @app.errorhandler(RequestEntityTooLarge)
    def body_too_large(exc: RequestEntityTooLarge) -> Response:
        service.metrics.bad_request()
        return error_response(too_large(max_body))

    @app.post("/v1/is-authorized")
    def is_authorized() -> Response:
        body = read_json(max_body)
        if isinstance(body, dict) and "explain" in body:
            if _explain_flag(body):
                decision, explanation = service.explain(parse_request(body))
                return json_response({**decision.to_dict(), "explanation": explanation})
        decision = service.decide(parse_request(body))
        return json_response(decision.to_dict())

    @app.post("/v1/batch-is-authorized")
    def batch_is_authorized() -> Response:
        body = read_json(max_body)
        if not isinstance(body, dict) or set(body) != {"requests"}:
            raise BadRequest('body: must be {"requests": [...]}')
        items = body["requests"]
        if not isinstance(items, list):
            raise BadRequest("requests: must be a list")
        budget = service.batch_budget()
        budget.check_count(len(items))
        parsed = []
        explain: list[bool] = []
        for i, item in enumerate(items):
            try:
                wanted = isinstance(item, dict) and "explain" in item and _explain_flag(item)
                request = parse_request(item)
            except BadRequest as exc:
                raise BadRequest(f"requests[{i}].{exc}") from None
            explain.append(wanted)
            parsed.append(budget.add(request))
        if any(explain):
            service.check_explain(sum(explain))
            answers, version = service.batch_explained(parsed, explain)
            results = [
                d.to_dict() if e is None else {**d.to_dict(), "explanation": e} for d, e in answers
            ]
            return json_response({"results": results, "policy_version": version})
        decisions, version = service.batch(parsed)
        return json_response(
            {"results": [d.to_dict() for d in decisions], "policy_version": version}
        )

    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        status = service.status()
        if status is None:
            return error_response(NotReady(service.load_error), status="loading")
        return json_response({"status": "ready", "policy_version": status["version"]})

    @app.get("/metrics")
    def metrics() -> Response:
        text = service.metrics.render(service.status)
        return Response(text, mimetype="text/plain; version=0.0.4")

    @app.get("/openapi.json")
    def openapi_json() -> Response:
        return Response(openapi, mimetype="application/json")

    register_search(app, register_authzen(app, service))
    register_forward_auth(app, service)
    return app


def _explain_flag(body: dict[str, Any]) -> bool:
    """Take "explain" out of a request object (parse_request knows only the decision fields):
    true or false; anything else is refused, naming the field."""
    value = body.pop("explain")
    if not isinstance(value, bool):
        raise BadRequest("explain: must be true or false")
    return value


class _Busy(Exception):
    """The large-body budget is spent: answer 503 (busy) without reading the body."""


_Headers = list[tuple[str, str]]
_JSON = [("content-type", "application/json")]


def _prebuilt(exc: ServiceError) -> tuple[int, _Headers, bytes]:
    """An RSGI answer to `exc`: status, headers, body."""
    status, body, headers = http_error(exc)
    return status, [*_JSON, *((k.lower(), v) for k, v in headers.items())], body


# Invariant: the app never waits on I/O (the decision log is a queue). So a request with a small
# body runs on the event loop: the hop to a pool thread and back cost more than the decision
# (a sequential decision took 0.6-0.7 ms inline, 0.9-1.0 ms through the pool, 0.5-0.6 ms on
# granian's WSGI threads). A larger body (a batch) runs in the pool, not to hold up the loop.
_INLINE_BODY = 16 << 10


class Sidecar:
    """The WSGI `app` served over granian's RSGI: the whole body is read on the event loop,
    within `body_timeout` seconds (else a 408) and `max_body` bytes, and only then does the app
    run, on the loop for a small body and in one of `threads` pool threads for a large one.

    A body declared (or sent chunked) over `max_body` is not read: the app sees its length and
    answers the 400. A client that drops the connection mid-body gets nothing.

    Bodies over `_INLINE_BODY` share `body_budget` bytes per worker, from the moment their
    length is known until their answer is sent: past it a request is answered 503 (with
    Retry-After) unread, so a flood of large bodies, fast or slow, cannot queue gigabytes in
    front of the pool. Smaller bodies need no budget: they are decided as soon as they are in,
    on the loop, so at most `PDP_MAX_CONNECTIONS` x 16 KiB of them are ever held."""

    def __init__(
        self,
        app: Flask,
        *,
        max_body: int,
        body_timeout: float,
        threads: int,
        body_budget: int = 64 << 20,
        scheme: str | None = None,
    ) -> None:
        """`scheme`: what the app is told (`https` behind pdp's own TLS front, where granian
        serves plain HTTP on a unix socket); None: granian's."""
        self.app = app
        self.scheme = scheme
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.threads = threads
        self.body_budget = body_budget
        self.large_bodies = 0  # bytes of large bodies held now (loop thread only)
        self._pool: ThreadPoolExecutor | None = None
        self._base: dict[str, Any] = {
            "SCRIPT_NAME": "",
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
        # Answered on the loop without the app, so built once (from the same table).
        timeout = BodyTimeout(f"body: not received within {body_timeout:g} seconds")
        self._timeout = _prebuilt(timeout)
        self._busy = _prebuilt(Busy("busy: too many large request bodies in flight; retry shortly"))

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="pdp-http")

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        if scope.proto != "http":
            return
        held = [0]  # large-body bytes this request holds of the budget
        try:
            try:
                async with asyncio.timeout(self.body_timeout):
                    body, length = await self._body(scope, proto, held)
            except TimeoutError:
                proto.response_bytes(*self._timeout)  # hyper then closes the connection
                return
            except _Busy:
                proto.response_bytes(*self._busy)
                return
            except ProtocolClosed:
                return
            environ = self._environ(scope, body, length)
            if len(body) <= _INLINE_BODY:
                status, headers, payload = self._call(environ)
            else:
                loop = asyncio.get_running_loop()
                call = loop.run_in_executor(self._pool, self._call, environ)
                status, headers, payload = await call
            proto.response_bytes(status, headers, payload)
        finally:
            self.large_bodies -= held[0]

    def _hold(self, held: list[int], size: int) -> None:
        """Take `size` more bytes of the large-body budget, or raise _Busy."""
        if self.large_bodies + size > self.body_budget:
            raise _Busy
        self.large_bodies += size
        held[0] += size

    async def _body(self, scope: Scope, proto: HTTPProtocol, held: list[int]) -> tuple[bytes, int]:
        """The body and its length; (b"", length) when the length is over the limit."""
        declared = scope.headers.get("content-length")
        if declared is not None:
            length = int(declared)  # hyper refused the request unless it is a valid length
            if length > self.max_body:
                return b"", length
            if length > _INLINE_BODY:
                self._hold(held, length)
            return await proto(), length
        if scope.http_version.startswith("1") and "transfer-encoding" not in scope.headers:
            return b"", 0  # HTTP/1 with neither header has no body (RFC 9112 6.3)
        chunks, length = [], 0
        async for chunk in proto:  # chunked: count as it comes, stop past the limit
            length += len(chunk)
            if length > self.max_body:
                return b"", length
            if length > _INLINE_BODY:
                self._hold(held, length - held[0])
            chunks.append(chunk)
        return b"".join(chunks), length

    def _environ(self, scope: Scope, body: bytes, length: int) -> dict[str, Any]:
        host, _, port = scope.server.rpartition(":")
        environ = self._base | {
            "REQUEST_METHOD": scope.method,
            "PATH_INFO": scope.path.encode().decode("latin-1"),
            "QUERY_STRING": scope.query_string,
            "SERVER_NAME": host,
            "SERVER_PORT": port,
            "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
            "REMOTE_ADDR": scope.client.rpartition(":")[0],
            "wsgi.url_scheme": self.scheme or scope.scheme,
            "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": str(length),
        }
        for name, value in scope.headers.items():
            if name == "content-type":
                key = "CONTENT_TYPE"
            elif name == "content-length" or name == "transfer-encoding":
                continue  # the body is whole and de-chunked: CONTENT_LENGTH says its length
            elif "_" in name:
                # WSGI spells X-Forwarded-For and X_Forwarded_For the same (HTTP_X_FORWARDED_FOR):
                # a client's X_Forwarded_For, which proxies pass on untouched, would join the one
                # the proxy set. Dropped, as nginx and Apache drop them by default.
                continue
            else:
                key = "HTTP_" + name.upper().replace("-", "_")
            environ[key] = f"{environ[key]}, {value}" if key in environ else value
        return environ

    def _call(self, environ: dict[str, Any]) -> tuple[int, _Headers, bytes]:
        """Run the app; the whole answer comes back at once (the sidecar streams nothing)."""
        started: list[Any] = []

        def start_response(
            status: str, headers: _Headers, exc_info: Any = None
        ) -> Callable[[bytes], object]:
            started[:] = [status, headers]
            return lambda data: None

        result: Iterable[bytes] = self.app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(started[0][:3]), started[1], payload
