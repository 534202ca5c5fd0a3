"""`pdp serve`: granian runs the HTTP sidecar in N worker processes; each worker also serves gRPC
(SO_REUSEPORT on one port) and one of them the admin listener (server/pdp_server/worker.py).

`main(argv)` is `pdp serve`: its flags come from `pdp_server.config`, over the PDP_* variables.
This process resolves the configuration once, writes it to the run directory and hands its path
to the workers (`WORKER_CONFIG`); granian then calls `pdp_server.worker:create_app` in each.

Process notes, all known gRPC/WSGI pitfalls:
- granian forks the workers before any gRPC object exists: this process creates none.
- gRPC on a shared port is balanced per connection, not per call: open several channels.
- granian forwards SIGTERM/SIGINT to the workers and waits for them (drain, exit 0); SIGHUP
  restarts the workers one by one, and each new worker loads the store afresh: that is a reload.
- an admin request reaches one worker; the others follow through the run directory's control
  file (server/pdp_server/control.py) before the admin answers.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import fcntl
import importlib
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pdp import printable
from pdp_server.config import Config, ConfigError, add_arguments
from pdp_server.control import Control
from pdp_server.tls import TlsError, TlsFiles, TlsWatcher, stage

__all__ = ["REQUIRES", "WORKER_CONFIG", "check_installed", "main", "serve"]

WORKER_CONFIG = "PDP_WORKER_CONFIG"  # set by `pdp serve` for its workers: not a setting
# with PDP_TLS_CLIENT_SUBJECTS: granian's unix socket, behind each worker's TLS front
HTTP_SOCKET = "PDP_WORKER_HTTP_SOCKET"

log = logging.getLogger("pdp.server")


class StartupError(Exception):
    """`pdp serve` cannot start; the message is the one line it prints."""


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _check_store(store: str) -> None:
    """A store is a directory with versions/ in it: anything else stops `pdp serve` at once
    (an empty versions/ is a store that has no version yet: it waits for one)."""
    where = f"--store {printable(store)}"
    if not os.path.exists(store):
        raise StartupError(f"{where}: does not exist")
    if not os.path.isdir(store):
        raise StartupError(f"{where}: not a directory")
    if not os.path.isdir(os.path.join(store, "versions")):
        raise StartupError(f"{where}: no versions/ directory")


def _lock_dir() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return runtime if runtime and os.path.isdir(runtime) else tempfile.gettempdir()


def _claim(address: str, listener: str, locks: list[IO[bytes]]) -> None:
    """Make sure no one else listens on `address`, before any worker starts.

    The workers of one `pdp serve` share their ports with SO_REUSEPORT (granian does too), and
    so would a second `pdp serve` of the same user: requests would split between two stores.
    So this process takes an advisory lock per port, held while it lives (and by the workers,
    which inherit it through fork), and then binds the port once without SO_REUSEPORT, which
    fails while any other socket holds it: another program, or a server without the lock."""
    try:
        host, port = _split(address)
        if not 0 <= port <= 65535:
            raise ValueError(port)
    except ValueError:
        raise StartupError(f"--{listener.lower()} {printable(address)}: not HOST:PORT") from None
    if port == 0:
        return  # a port of the system's choosing: nothing to share
    where = f"cannot listen on {printable(address)} ({listener})"
    in_use = StartupError(f"{where}: address already in use")
    path = os.path.join(_lock_dir(), f"pdp-port-{port}.lock")
    try:
        handle = open(path, "ab")  # held for the life of the process
    except OSError:
        handle = None  # another user's lock file: SO_REUSEPORT does not cross users anyway
    if handle is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StartupError(f"{in_use} (by another pdp serve)") from None
        locks.append(handle)
    try:
        resolved = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"{where}: {exc.strerror}") from None
    failures = []
    for family, kind, proto, _, sockaddr in resolved:
        with socket.socket(family, kind, proto) as probe:
            # SO_REUSEADDR as the real listeners have it: connections of an earlier server
            # still in TIME_WAIT do not count as "in use".
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise in_use from None
                failures.append(exc.strerror or str(exc))
    if failures and len(failures) == len(resolved):
        raise StartupError(f"{where}: {failures[0].lower()}")


# What the workers import: the "serve" extra (pyproject.toml), checked before any worker starts.
REQUIRES = (
    "granian",
    "grpc",
    "grpc_health.v1.health",
    "grpc_reflection.v1alpha.reflection",
    "flask",
    "waitress",
    "pdp_client.v1.authorizer_pb2_grpc",
    "envoy.service.auth.v3.external_auth_pb2",
    "cryptography.x509",
)


def check_installed() -> None:
    """ModuleNotFoundError naming the first of the service's modules that cannot be imported."""
    for name in REQUIRES:
        importlib.import_module(name)


EXAMPLES = """examples:
  pdp serve --store examples/store
  pdp serve --store /srv/pdp/store --workers 2 --admin-token-file /run/secrets/pdp-admin
  PDP_STORE=/srv/pdp/store PDP_DECISION_LOG=/var/log/pdp/decisions.jsonl pdp serve"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of `pdp serve`: every flag of Config, with help and examples."""
    parser = argparse.ArgumentParser(
        prog="pdp serve",
        description="Serve decisions over gRPC and HTTP, plus the admin listener. Every flag\n"
        "has a PDP_* variable (docs/serving.md, Configuration); a flag wins over it.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`pdp serve [flags]`: the PDP_* variables, the flags over them, then serve."""
    parser = build_parser()
    flags = parser.parse_args(argv)
    try:
        config = Config.from_sources(os.environ, flags)
        config.check()
    except ConfigError as exc:
        print(f"pdp serve: {exc}", file=sys.stderr)
        return 2
    return serve(config)


def _prepare(config: Config) -> list[IO[bytes]]:
    """Every check that can stop `pdp serve` before a worker starts; returns the port locks."""
    _check_store(config.store)
    listeners = {"HTTP": config.http, "gRPC": config.grpc, "admin": config.admin}
    if config.grpc.startswith("unix:"):
        del listeners["gRPC"]  # a Unix socket: gRPC reports a clash itself
    ports: dict[str, str] = {}
    for listener, address in listeners.items():
        port = address.rpartition(":")[2]
        if port in ports and port != "0":
            raise StartupError(f"{ports[port]} and {listener} cannot share port {port}")
        ports[port] = listener
    locks: list[IO[bytes]] = []
    try:
        for listener, address in listeners.items():
            _claim(address, listener, locks)
    except StartupError:
        for handle in locks:
            handle.close()
        raise
    return locks


def serve(config: Config) -> int:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, SSLProtocols
    from granian.http import HTTP1Settings

    try:
        locks = _prepare(config)
    except StartupError as exc:
        print(f"pdp serve: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not config.admin_token:
        log.warning(
            "pdp serve: no admin token (PDP_ADMIN_TOKEN, PDP_ADMIN_TOKEN_FILE or"
            " --admin-token-file): the admin listener refuses every request"
        )
    own_run_dir = config.run_dir is None
    run_dir = config.run_dir or tempfile.mkdtemp(prefix="pdp-run-")
    config = dataclasses.replace(config, run_dir=run_dir)
    # One file per `pdp serve` (two may share a run directory), removed when it stops: it
    # holds the admin token.
    handoff = os.path.join(run_dir, f"config-{os.getpid()}.json")
    tls_dir = os.path.join(run_dir, f"tls-{os.getpid()}")  # the key's copy: removed at the end
    watcher = None
    try:
        Control(run_dir)
        if config.tls_cert and config.tls_key:
            configured = (config.tls_cert, config.tls_key, config.tls_client_ca)
            files = TlsFiles.read(*configured)
            staged = stage(files, tls_dir)
            watcher = TlsWatcher(configured, files, tls_dir, config.watch_interval)
            # the workers serve the staged copies, which a rotation replaces before a restart
            config = dataclasses.replace(
                config, tls_cert=staged.cert, tls_key=staged.key, tls_client_ca=staged.ca
            )
        config.save(handoff)
    except (OSError, TlsError) as exc:
        if isinstance(exc, TlsError):
            print(f"pdp serve: {exc}", file=sys.stderr)
        else:
            where = printable(run_dir)
            print(f"pdp serve: --run-dir {where}: {exc.strerror or exc}", file=sys.stderr)
        shutil.rmtree(run_dir if own_run_dir else tls_dir, ignore_errors=True)
        for handle in locks:
            handle.close()
        return 1
    os.environ[WORKER_CONFIG] = handoff  # granian's workers inherit it, forked or spawned
    host, port = _split(config.http)
    log.info(
        "pdp serve: store %s, gRPC %s, HTTP %s, admin %s, %d worker(s)",
        printable(config.store),
        printable(config.grpc),
        printable(config.http),
        printable(config.admin),
        config.workers,
    )
    listen: dict[str, Any] = {"address": host, "port": port}
    if config.tls_cert and config.tls_key and config.tls_client_subjects:
        # granian cannot show pdp the client certificate: each worker terminates TLS itself
        # (pdp_server.tls_front) and relays to granian on a unix socket of the run directory
        listen = {"uds": Path(run_dir) / f"http-{os.getpid()}.sock", "uds_permissions": 0o600}
        os.environ[HTTP_SOCKET] = str(listen["uds"])
    elif config.tls_cert and config.tls_key:
        listen |= {
            "ssl_cert": Path(config.tls_cert),
            "ssl_key": Path(config.tls_key),
            "ssl_ca": Path(config.tls_client_ca) if config.tls_client_ca else None,
            "ssl_client_verify": bool(config.tls_client_ca),
            "ssl_protocol_min": SSLProtocols.tls12,
        }
    if watcher is not None:
        watcher.start()
    try:
        Granian(
            "pdp_server.worker:create_app",
            factory=True,
            # RSGI, not WSGI: WSGI lends a thread to every request whose headers are in, and a
            # body that never finishes kept it (server/pdp_server/http_sidecar.py Sidecar)
            interface=Interfaces.RSGI,
            websockets=False,
            workers=config.workers,
            backpressure=config.max_connections,  # per worker; each open connection holds one
            # HTTP/1.1 only: granian's HTTP/2 (h2c) allows 200 streams a connection and 16 MiB
            # of headers, and its idle connections never time out; every client speaks 1.1
            http=HTTPModes.http1,
            http1_settings=HTTP1Settings(header_read_timeout=int(config.header_timeout * 1000)),
            log_level="warning",
            workers_kill_timeout=40,  # > worst clean stop: 6 s gRPC, 5, 12 s log, 10 s sqlite
            respawn_failed_workers=True,
            **listen,
        ).serve()
    except RuntimeError as exc:  # granian's bind, if another program took the port meanwhile
        if "Address already in use" not in str(exc):
            raise
        print(
            f"pdp serve: cannot listen on {config.http} (HTTP): address already in use",
            file=sys.stderr,
        )
        return 1
    finally:
        if watcher is not None:
            watcher.stop()
        if own_run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(handoff)
            shutil.rmtree(tls_dir, ignore_errors=True)
        for handle in locks:
            handle.close()
    return 0
