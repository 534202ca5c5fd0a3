"""`pdp serve`: granian runs the HTTP sidecar in N worker processes; each worker also serves gRPC
(SO_REUSEPORT on one port) and one of them the admin listener (server/worker.py).

Process notes, all known gRPC/WSGI pitfalls:
- granian forks the workers before any gRPC object exists: this process creates none.
- gRPC on a shared port is balanced per connection, not per call: open several channels.
- granian forwards SIGTERM/SIGINT to the workers and waits for them (drain, exit 0); SIGHUP
  restarts the workers one by one, and each new worker loads the store afresh: that is a reload.
- an admin request reaches one worker; the others follow through the run directory's control
  file (server/control.py) before the admin answers.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

from server.control import Control
from server.service import Config

__all__ = ["serve"]


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def serve(config: Config) -> int:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    own_run_dir = config.run_dir is None
    run_dir = config.run_dir or tempfile.mkdtemp(prefix="pdp-run-")
    Control(run_dir)
    os.environ.update(
        {
            "PDP_STORE": config.store,
            "PDP_GRPC": config.grpc,
            "PDP_HTTP": config.http,
            "PDP_ADMIN": config.admin,
            "PDP_WORKERS": str(config.workers),
            "PDP_CACHE_SIZE": str(config.cache_size),
            "PDP_WATCH_INTERVAL": str(config.watch_interval),
            "PDP_MAX_BATCH": str(config.max_batch),
            "PDP_MAX_BODY": str(config.max_body),
            "PDP_RUN_DIR": run_dir,
        }
    )
    if config.admin_token:
        os.environ["PDP_ADMIN_TOKEN"] = config.admin_token
    if config.decision_log:
        os.environ["PDP_DECISION_LOG"] = config.decision_log
    host, port = _split(config.http)
    logging.getLogger("pdp.server").info(
        "pdp serve: store %s, gRPC %s, HTTP %s, admin %s, %d worker(s)",
        config.store,
        config.grpc,
        config.http,
        config.admin,
        config.workers,
    )
    try:
        Granian(
            "server.worker:app",
            address=host,
            port=port,
            # RSGI, not WSGI: WSGI lends a thread to every request whose headers are in, and a
            # body that never finishes kept it (server/http_sidecar.py Sidecar)
            interface=Interfaces.RSGI,
            websockets=False,
            workers=config.workers,
            backpressure=config.max_connections,  # per worker; each open connection holds one
            http1_settings=HTTP1Settings(header_read_timeout=int(config.header_timeout * 1000)),
            log_level="warning",
            workers_kill_timeout=15,
            respawn_failed_workers=True,
        ).serve()
    finally:
        if own_run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
    return 0
