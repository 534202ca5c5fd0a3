"""Serving figures, each against a floor measured in the same run on the same server stack.

    python bench/bench_serving.py [--workers 2] [--seconds 8] [--cache-size 0]

Starts `pdp serve` on free loopback ports with the bundled store, then drives it with load
generators faster than the server: wrk for HTTP, h2load (nghttp2-client) for gRPC. The floors are
the cheapest endpoints of the same servers: GET /healthz (Flask on granian) and grpc.health.v1
Check. Latency percentiles for gRPC come from a single-connection Python client (h2load does
not report percentiles). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pdp_client.v1 import authorizer_pb2 as pb  # noqa: E402
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc  # noqa: E402
from tests.integration.servers import free_port  # noqa: E402

REQUEST = {
    "principal": "bob",
    "action": "s3:GetObject",
    "resource": "arn:aws:s3:::example-bucket/report.csv",
    "context": {"aws:SourceIp": "203.0.113.9"},
}


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"bench_serving: {tool} is missing (apt-get install wrk nghttp2-client)")
    return path


def wrk(url: str, seconds: int, body: bytes | None, tmp: Path) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) with 2 threads and 32 connections."""
    args = [need("wrk"), "-t2", "-c32", f"-d{seconds}s", "--latency", url]
    if body is not None:
        script = tmp / "post.lua"
        (tmp / "body.json").write_bytes(body)
        script.write_text(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'local f = io.open("{tmp / "body.json"}", "rb")\n'
            "wrk.body = f:read('*a')\nf:close()\n"
        )
        args[1:1] = ["-s", str(script)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        print(f"  (wrk saw {errors.group(1)} non-2xx responses on {url})")
    return rps, pct("50"), pct("99")


def grpc_frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


def h2load(address: str, path: str, message: bytes, seconds: int, tmp: Path) -> float:
    """gRPC calls/s: 8 connections x 8 streams, 2 threads (connections spread over workers)."""
    body = tmp / "grpc.bin"
    body.write_bytes(grpc_frame(message))
    out = subprocess.run(
        [
            need("h2load"),
            "-t2",
            "-c8",
            "-m8",
            f"-D{seconds}",
            "-d",
            str(body),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            f"http://{address}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    failed = re.search(r"(\d+) failed", out)
    if failed and int(failed.group(1)):
        print(f"  (h2load: {failed.group(1)} failed on {path})")
    return float(match.group(1)) if match else float("nan")


def grpc_latency(address: str, calls: int) -> tuple[float, float, float, float]:
    """Sequential calls on one channel: (p50, p99 ms) for IsAuthorized and for health Check."""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.AuthorizerStub(channel)
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        message = decision_message()
        out = []
        for call in (
            lambda: stub.IsAuthorized(message),
            lambda: check(health_pb2.HealthCheckRequest()),
        ):
            for _ in range(200):
                call()
            samples = []
            for _ in range(calls):
                started = time.perf_counter()
                call()
                samples.append((time.perf_counter() - started) * 1000)
            samples.sort()
            out += [statistics.median(samples), samples[int(len(samples) * 0.99)]]
    return out[0], out[1], out[2], out[3]


def decision_message() -> pb.IsAuthorizedRequest:
    return pb.IsAuthorizedRequest(
        principal=REQUEST["principal"],
        action=REQUEST["action"],
        resource=REQUEST["resource"],
        context={k: pb.Value(string_value=v) for k, v in REQUEST["context"].items()},
    )


@contextlib.contextmanager
def running_pdp(settings: dict[str, str], tmp: Path) -> Iterator[tuple[str, str]]:
    """`pdp serve` with `settings` (PDP_* variables) on free loopback ports, once it is ready
    (its log in `tmp`): the HTTP base URL and the gRPC address. Stopped, and `tmp` removed,
    when the block ends."""
    http, grpc_port, admin = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PDP_HTTP": f"127.0.0.1:{http}",
        "PDP_GRPC": f"127.0.0.1:{grpc_port}",
        "PDP_ADMIN": f"127.0.0.1:{admin}",
        **settings,
    }
    with (tmp / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "pdp.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 60
    while subprocess.run(["curl", "-sf", f"{base}/readyz"], capture_output=True).returncode:
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            sys.exit(f"pdp serve did not start: {(tmp / 'serve.log').read_text()}")
        time.sleep(0.2)
    time.sleep(1)
    try:
        yield base, f"127.0.0.1:{grpc_port}"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--cache-size", type=int, default=0, help="0: measure uncached decisions")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pdp-bench-"))
    with running_pdp(
        {
            "PDP_STORE": str(ROOT / "examples" / "store"),
            "PDP_WORKERS": str(args.workers),
            "PDP_CACHE_SIZE": str(args.cache_size),
            "PDP_MAX_BATCH": str(max(1000, args.batch)),
        },
        tmp,
    ) as (base, address):
        s = args.seconds
        print(
            f"pdp serving benchmark: {args.workers} worker(s), cache_size={args.cache_size}, "
            f"{s} s per row, wrk -t2 -c32 / h2load -t2 -c8 -m8, same machine (2 cores)"
        )
        floor_http = wrk(f"{base}/healthz", s, None, tmp)
        single_http = wrk(f"{base}/v1/is-authorized", s, json.dumps(REQUEST).encode(), tmp)
        batch_body = json.dumps({"requests": [REQUEST] * args.batch}).encode()
        batch_http = wrk(f"{base}/v1/batch-is-authorized", s, batch_body, tmp)
        floor_grpc = h2load(
            address,
            "/grpc.health.v1.Health/Check",
            health_pb2.HealthCheckRequest().SerializeToString(),
            s,
            tmp,
        )
        single_grpc = h2load(
            address,
            "/pdp.v1.Authorizer/IsAuthorized",
            decision_message().SerializeToString(),
            s,
            tmp,
        )
        batch_msg = pb.BatchIsAuthorizedRequest(requests=[decision_message()] * args.batch)
        batch_grpc = h2load(
            address, "/pdp.v1.Authorizer/BatchIsAuthorized", batch_msg.SerializeToString(), s, tmp
        )
        p50, p99, f50, f99 = grpc_latency(address, 3000)
        print(f"{'row':44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'x floor':>8}")
        print(
            f"{'HTTP GET /healthz (floor)':44} {floor_http[0]:9.0f} {floor_http[1]:8.2f} "
            f"{floor_http[2]:8.2f} {1.0:8.2f}"
        )
        print(
            f"{'HTTP POST /v1/is-authorized':44} {single_http[0]:9.0f} {single_http[1]:8.2f} "
            f"{single_http[2]:8.2f} {single_http[0] / floor_http[0]:8.2f}"
        )
        print(
            f"{'gRPC Health/Check (floor)':44} {floor_grpc:9.0f} {f50:8.2f} {f99:8.2f} {1.0:8.2f}"
        )
        print(
            f"{'gRPC IsAuthorized':44} {single_grpc:9.0f} {p50:8.2f} {p99:8.2f} "
            f"{single_grpc / floor_grpc:8.2f}"
        )
        print(
            f"batch of {args.batch}: HTTP {batch_http[0] * args.batch:,.0f} decisions/s "
            f"(p50 {batch_http[1]:.2f} ms per batch); gRPC {batch_grpc * args.batch:,.0f} "
            "decisions/s"
        )
        print("(gRPC p50/p99: one channel, sequential calls from Python; HTTP: wrk --latency)")


if __name__ == "__main__":
    main()
