"""One worker process of `pdp serve`: granian calls `create_app()` in every worker it starts.

Importing this module starts nothing. `create_app` (granian's factory mode, in the worker after
granian started it) reads the configuration `pdp serve` resolved and handed over
(`pdp_server.main.WORKER_CONFIG`), then starts the worker's own pieces: the store loading in the
background, the gRPC server on the shared port (SO_REUSEPORT), and, in whichever worker binds it
first, the admin listener; it returns the HTTP sidecar for granian to serve.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

from pdp_server.config import Config

if TYPE_CHECKING:
    from pdp_server.http_sidecar import Sidecar

log = logging.getLogger("pdp.server.worker")

_EARLY: list[int] = []  # SIGTERM/SIGINT received before granian's handlers were in place


def _remember(signum: int, frame: FrameType | None) -> None:
    _EARLY.append(signum)


def _redeliver() -> None:
    """Send an early stop signal again once granian handles signals (or give up after 120 s).

    granian calls the factory in the started worker before it installs the worker's signal
    handlers; until then the worker runs the parent's handler, which only sets a flag in the
    parent's (copied) state, so a SIGTERM sent to a starting worker was lost and the worker ran
    on until granian's kill timeout."""
    deadline = time.monotonic() + 120
    while signal.getsignal(signal.SIGTERM) is _remember and time.monotonic() < deadline:
        time.sleep(0.05)
    if _EARLY:
        os.kill(os.getpid(), _EARLY[0])


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def create_app() -> Sidecar:
    """Build this worker from the handed-over configuration; the RSGI app granian serves."""
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, _remember)  # before the slow imports below
    threading.Thread(target=_redeliver, name="pdp-early-signals", daemon=True).start()

    from pdp_server.main import WORKER_CONFIG

    handoff = os.environ.get(WORKER_CONFIG)
    if not handoff:
        raise SystemExit(f"pdp worker: no {WORKER_CONFIG}: workers are started by `pdp serve`")
    return build_worker(Config.load(handoff))


def build_worker(config: Config) -> Sidecar:
    """Start a worker's service, gRPC server and admin loop for `config`; return its sidecar."""
    from pdp_server.admin import create_admin_app, create_admin_server
    from pdp_server.control import Control
    from pdp_server.grpc_service import create_server
    from pdp_server.http_sidecar import Sidecar
    from pdp_server.http_sidecar import create_app as create_http_app
    from pdp_server.main import HTTP_SOCKET
    from pdp_server.service import Service
    from pdp_server.tls import parse_subjects
    from pdp_server.tls_front import TlsFront

    service = Service(config, Control(config.run_dir) if config.run_dir else None)
    service.start()
    try:
        grpc_server = create_server(service, config.grpc, threads=config.grpc_threads)
    except (OSError, RuntimeError):
        # `pdp serve` checked the port before starting workers: another program took it since.
        # One line, no traceback; granian sees the worker exit and stops after a retry.
        message = f"pdp serve: cannot listen on {config.grpc} (gRPC): address already in use"
        raise SystemExit(message) from None
    front = None
    socket_path = os.environ.get(HTTP_SOCKET)
    if socket_path and config.tls_cert and config.tls_key and config.tls_client_ca:
        front = TlsFront(
            config.http,
            socket_path,
            config.tls_cert,
            config.tls_key,
            config.tls_client_ca,
            parse_subjects(config.tls_client_subjects or ""),
            config.max_connections,
            config.header_timeout,
        )
        try:
            front.start()
        except OSError:
            message = f"pdp serve: cannot listen on {config.http} (HTTPS): address already in use"
            raise SystemExit(message) from None
    stop = threading.Event()

    def admin_loop() -> None:
        """Bind the admin listener if no other worker holds it; keep trying so that a
        respawned worker takes over when the holder exits."""
        host, port = _split(config.admin)
        app = create_admin_app(service)
        while not stop.is_set():
            try:
                server = create_admin_server(app, host, port, config.admin_timeout)
            except OSError:
                stop.wait(0.5)
                continue
            atexit.register(server.close)
            log.info("admin listening on %s", config.admin)
            try:
                server.run()
            except Exception:  # closed at exit
                return
            return

    threading.Thread(target=admin_loop, name="pdp-admin", daemon=True).start()

    def shutdown() -> None:
        """Drain in-flight gRPC calls (HTTP is drained by granian), then stop the watchers and
        write what the decision log and the Access Advisor still hold."""
        stop.set()
        grpc_server.stop(grace=5)  # waits at most 6 s
        if front is not None:
            front.stop()
        service.stop()

    # granian runs each worker as a multiprocessing.Process, which ends in os._exit() after
    # multiprocessing's own exit hooks: atexit handlers never run there. A multiprocessing
    # finalizer does, and in any other process it runs from multiprocessing's atexit hook.
    multiprocessing.util.Finalize(None, shutdown, exitpriority=100)
    # RSGI: granian reads each body before the Flask app runs (threads: for batches)
    return Sidecar(
        create_http_app(service),
        max_body=config.max_body,
        body_timeout=config.body_timeout,
        threads=4,
        body_budget=config.body_budget,
        scheme="https" if front is not None else None,
    )
