"""One worker process of `pdp serve`: granian imports `app` from here in every worker.

Importing this module (in the worker, after granian forked it) starts the worker's own pieces:
the store loading in the background, the gRPC server on the shared port (SO_REUSEPORT), and, in
whichever worker binds it first, the admin listener. Configuration comes from PDP_* variables
that `pdp serve` sets before the workers start.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

_EARLY: list[int] = []  # SIGTERM/SIGINT received before granian's handlers were in place


def _remember(signum: int, frame: FrameType | None) -> None:
    _EARLY.append(signum)


def _redeliver() -> None:
    """Send an early stop signal again once granian handles signals (or give up after 120 s).

    granian imports this module in the forked worker before it installs the worker's signal
    handlers; until then the worker runs the parent's handler, which only sets a flag in the
    parent's (copied) state, so a SIGTERM sent to a starting worker was lost and the worker ran
    on until granian's kill timeout."""
    deadline = time.monotonic() + 120
    while signal.getsignal(signal.SIGTERM) is _remember and time.monotonic() < deadline:
        time.sleep(0.05)
    if _EARLY:
        os.kill(os.getpid(), _EARLY[0])


for _signal in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_signal, _remember)
threading.Thread(target=_redeliver, name="pdp-early-signals", daemon=True).start()

# ruff: noqa: E402 (the handlers above must be in place before the slow imports below)
import atexit
import logging
import multiprocessing.util
import os

from pdp_server.admin import create_admin_app, create_admin_server
from pdp_server.control import Control
from pdp_server.grpc_service import create_server
from pdp_server.http_sidecar import Sidecar, create_app
from pdp_server.service import Config, Service

log = logging.getLogger("pdp.server.worker")


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _admin_loop(service: Service, address: str, stop: threading.Event) -> None:
    """Bind the admin listener if no other worker holds it; keep trying so that a respawned
    worker takes over when the holder exits."""
    host, port = _split(address)
    app = create_admin_app(service)
    while not stop.is_set():
        try:
            server = create_admin_server(app, host, port, service.config.admin_timeout)
        except OSError:
            stop.wait(0.5)
            continue
        atexit.register(server.close)
        log.info("admin listening on %s", address)
        try:
            server.run()
        except Exception:  # closed at exit
            return
        return


config = Config.from_env()
service = Service(config, Control(config.run_dir) if config.run_dir else None)
service.start()
try:
    grpc_server = create_server(
        service, config.grpc, threads=int(os.environ.get("PDP_GRPC_THREADS", "4"))
    )
except (OSError, RuntimeError):
    # `pdp serve` checked the port before starting workers: another program took it since.
    # One line, no traceback; granian sees the worker exit and stops after a retry.
    message = f"pdp serve: cannot listen on {config.grpc} (gRPC): address already in use"
    raise SystemExit(message) from None
_stop = threading.Event()
threading.Thread(
    target=_admin_loop, args=(service, config.admin, _stop), name="pdp-admin", daemon=True
).start()


def _shutdown() -> None:
    """Drain in-flight gRPC calls (HTTP is drained by granian), then stop the watchers and write
    what the decision log and the Access Advisor still hold."""
    _stop.set()
    grpc_server.stop(grace=5)  # waits at most 6 s
    service.stop()


# granian runs each worker as a forked multiprocessing.Process, which ends in os._exit() after
# multiprocessing's own exit hooks: atexit handlers never run there. A multiprocessing finalizer
# does, and in any other process it runs from multiprocessing's atexit hook.
multiprocessing.util.Finalize(None, _shutdown, exitpriority=100)


app = Sidecar(  # RSGI: granian reads each body before the Flask app runs (threads: for batches)
    create_app(service),
    max_body=config.max_body,
    body_timeout=config.body_timeout,
    threads=4,
    body_budget=config.body_budget,
)
_started = time.time()
