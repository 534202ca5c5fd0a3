"""Start a real `pdp serve` on free loopback ports, for the integration tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "store"
TOKEN = "test-admin-token"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, never one this process handed out before: the kernel can
    give the same ephemeral port to two binds in a row, and `pdp serve` refuses HTTP and gRPC
    on one port."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def copy_store(target: Path) -> Path:
    shutil.copytree(EXAMPLE, target, symlinks=True)
    return target


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    http: str
    grpc: str
    admin: str
    store: Path
    log: Path
    ssl_context: ssl.SSLContext | None = None  # HTTPS to the HTTP port (PDP_TLS_CERT)

    def call(
        self,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        admin: bool = False,
        token: str | None = TOKEN,
        method: str | None = None,
    ) -> tuple[int, Any]:
        base = self.admin if admin else self.http
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        scheme = "https" if self.ssl_context is not None and not admin else "http"
        request = urllib.request.Request(f"{scheme}://{base}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if admin and token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            context = None if admin else self.ssl_context
            with urllib.request.urlopen(request, timeout=30, context=context) as response:
                payload = response.read()
                status = response.status
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            payload, status, kind = exc.read(), exc.code, exc.headers.get("Content-Type", "")
        return status, json.loads(payload) if "json" in kind else payload.decode()

    def decide(self, principal: str, action: str, resource: str, **context: Any) -> Any:
        body = {"principal": principal, "action": action, "resource": resource}
        if context:
            body["context"] = context
        return self.call("/v1/is-authorized", body)[1]

    def admin_status(self, seconds: float = 30) -> tuple[int, Any]:
        """`/admin/status` once the worker holding the admin port has loaded: with several
        workers, /readyz may be answered by one while the admin holder is still loading (503)."""
        deadline = time.monotonic() + seconds
        while True:
            status, body = self.call("/admin/status", admin=True)
            if status != 503 or time.monotonic() > deadline:
                return status, body
            time.sleep(0.1)

    def grpc_status(self, timeout: float = 5) -> grpc.StatusCode:
        """The status of one IsAuthorized call on a fresh channel: OK, or the code it failed
        with (how the gRPC limit tests see whether the server takes calls)."""
        with grpc.insecure_channel(self.grpc) as channel:
            message = pb.IsAuthorizedRequest(principal="bob", action="s3:GetObject", resource="*")
            try:
                pb_grpc.AuthorizerStub(channel).IsAuthorized(message, timeout=timeout)
            except grpc.RpcError as exc:
                return exc.code()  # type: ignore[no-any-return]
        return grpc.StatusCode.OK

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_server(
    tmp: Path,
    *,
    store: Path | None = None,
    workers: int = 1,
    token: str | None = TOKEN,
    wait_ready: bool = True,
    flags: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    **env: str,
) -> Server:
    """`pdp serve` configured by PDP_* variables (`env` adds more), or with `flags` by its
    command line alone: then no PDP_* variable reaches it, the token comes from a file."""
    store = store or copy_store(tmp / "store")
    http, grpc_port, admin = free_port(), free_port(), free_port()
    settings = {
        "PDP_STORE": str(store),
        "PDP_HTTP": f"127.0.0.1:{http}",
        "PDP_GRPC": f"127.0.0.1:{grpc_port}",
        "PDP_ADMIN": f"127.0.0.1:{admin}",
        "PDP_WORKERS": str(workers),
        "PDP_WATCH_INTERVAL": "0.2",
        **env,
    }
    environment = {k: v for k, v in os.environ.items() if k != "PDP_ADMIN_TOKEN"}
    argv = [sys.executable, "-m", "pdp.cli", "serve"]
    if flags:
        environment = {k: v for k, v in environment.items() if not k.startswith("PDP_")}
        for name, value in settings.items():
            argv += ["--" + name.removeprefix("PDP_").lower().replace("_", "-"), value]
        if token:
            token_file = tmp / f"token-{http}"
            token_file.write_text(token)
            argv += ["--admin-token-file", str(token_file)]
    else:
        environment.update(settings)
        if token:
            environment["PDP_ADMIN_TOKEN"] = token
    log = tmp / f"serve-{http}.log"
    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            argv,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Server(
        process,
        f"127.0.0.1:{http}",
        f"127.0.0.1:{grpc_port}",
        f"127.0.0.1:{admin}",
        store,
        log,
        ssl_context,
    )
    deadline = time.monotonic() + 60
    # With several workers one may answer while another still loads: ask until 20 fresh
    # connections in a row are ready (the kernel spreads them over the workers).
    wanted, streak = (20 if workers > 1 and wait_ready else 1), 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pdp serve exited: {log.read_text()}")
        try:
            status, _ = server.call("/readyz" if wait_ready else "/healthz")
            streak = streak + 1 if status == 200 else 0
            if streak >= wanted:
                return server
        except OSError:
            streak = 0
        if not streak:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"pdp serve did not get ready: {log.read_text()}")
