"""Gateway doors against the plain decision call, on one server in one run.

    python bench/gateway.py [--workers 2] [--seconds 6]

Starts `pdp serve` on a store with an API Gateway policy and measures, with h2load for all four
(HTTP/1.1 with --h1, gRPC over h2c):
- capacity: closed-loop requests/s of Envoy ext_authz Check against gRPC IsAuthorized, and of
  GET /v1/forward-auth against POST /v1/is-authorized, each pair deciding the same request;
- latency at half of each door's own capacity: a run at that rate (--rps, 2 connections, one
  request in flight on each), p50 and p99 from h2load's per-request log, and the rate achieved
  (a late answer delays the next request, so a rate below the target means pdp fell behind).
Targets (issue 16): each door >= 0.7x its plain call's throughput, p99 <= 2 ms at half capacity.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_serving import grpc_frame, need, running_pdp  # noqa: E402
from envoy.service.auth.v3 import external_auth_pb2 as ext  # noqa: E402

from pdp_client.v1 import authorizer_pb2 as pb  # noqa: E402
from tests.integration.test_forward_auth import write_store  # noqa: E402

RESOURCE = "arn:aws:execute-api:us-east-1:123456789012:orders-api/$default/GET/public/menu"
CONTEXT = {"aws:SecureTransport": False, "aws:MultiFactorAuthPresent": False}
FORWARD_AUTH_HEADERS = {
    "X-Original-URI": "/public/menu?lang=en",
    "X-Original-Method": "GET",
    "X-Forwarded-User": "alice",
}


@dataclass
class Door:
    name: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    h1: bool


def is_authorized_message() -> bytes:
    message = pb.IsAuthorizedRequest(
        principal="alice",
        action="execute-api:Invoke",
        resource=RESOURCE,
        context={k: pb.Value(bool_value=v) for k, v in CONTEXT.items()},
    )
    return grpc_frame(message.SerializeToString())


def check_message() -> bytes:
    """A CheckRequest as Envoy sends it, with a verified token's claims."""
    message = ext.CheckRequest()
    http = message.attributes.request.http
    http.method, http.path, http.host, http.scheme = "GET", "/public/menu?lang=en", "api", "http"
    http.protocol = "HTTP/1.1"
    http.headers.update({":authority": "api", ":method": "GET", ":path": http.path})
    message.attributes.source.address.socket_address.address = "203.0.113.7"
    jwt = message.attributes.metadata_context.filter_metadata["envoy.filters.http.jwt_authn"]
    jwt.update({"jwt_payload": {"sub": "alice", "iss": "https://idp", "amr": ["pwd"]}})
    return grpc_frame(message.SerializeToString())


def h2load(door: Door, seconds: int, tmp: Path, rps: float | None = None) -> list[float] | float:
    """Closed loop: requests/s. With `rps` (total): the latencies (ms) of an open-loop run."""
    args = [need("h2load"), "-t2" if rps is None else "-t1", f"-D{seconds}"]
    if rps is None:
        args += ["-c32", "-m1"] if door.h1 else ["-c8", "-m8"]
    else:
        clients = 2  # one h2load thread: more clients queue in the generator, not in pdp
        args += [f"-c{clients}", "-m1", f"--rps={max(1.0, rps / clients):.1f}"]
        log = tmp / f"{door.name.replace(' ', '_').replace('/', '_')}.log"
        log.unlink(missing_ok=True)
        args.append(f"--log-file={log}")
    if door.h1:
        args.append("--h1")
    if door.body is not None:
        body = tmp / "body.bin"
        body.write_bytes(door.body)
        args += ["-d", str(body)]
    for name, value in door.headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, door.url], capture_output=True, text=True, check=True).stdout
    failed = re.search(r"(\d+) failed, (\d+) errored", out)
    if failed and (int(failed.group(1)) or int(failed.group(2))):
        print(f"  (h2load: {failed.group(0)} on {door.name})")
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if status and int(status.group(1)) == 0:
        print(f"  (h2load: no 2xx answer on {door.name}: {status.group(0)})")
    if rps is None:
        match = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
        return float(match.group(1)) if match else float("nan")
    rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    return sorted(int(row[2]) / 1000 for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pdp-bench-gateway-"))
    settings = {
        "PDP_STORE": str(write_store(tmp / "store")),
        "PDP_WORKERS": str(args.workers),
        "PDP_CACHE_SIZE": "0",
        "PDP_GATEWAY_API": "orders-api",
    }
    with running_pdp(settings, tmp) as (base, grpc_address):
        address = f"http://{grpc_address}"
        grpc_headers = {"content-type": "application/grpc", "te": "trailers"}
        decision = json.dumps(
            {
                "principal": "alice",
                "action": "execute-api:Invoke",
                "resource": RESOURCE,
                "context": CONTEXT,
            }
        ).encode()
        pairs = [
            (
                Door(
                    "gRPC IsAuthorized",
                    f"{address}/pdp.v1.Authorizer/IsAuthorized",
                    grpc_headers,
                    is_authorized_message(),
                    False,
                ),
                Door(
                    "gRPC ext_authz Check",
                    f"{address}/envoy.service.auth.v3.Authorization/Check",
                    grpc_headers,
                    check_message(),
                    False,
                ),
            ),
            (
                Door(
                    "HTTP POST /v1/is-authorized",
                    f"{base}/v1/is-authorized",
                    {"content-type": "application/json"},
                    decision,
                    True,
                ),
                Door(
                    "HTTP GET /v1/forward-auth",
                    f"{base}/v1/forward-auth",
                    FORWARD_AUTH_HEADERS,
                    None,
                    True,
                ),
            ),
        ]
        s = args.seconds
        print(
            f"pdp gateway doors: {args.workers} worker(s), uncached, {s} s per run, h2load "
            "(gRPC -c8 -m8, HTTP/1.1 -c32; half capacity: -t1 -c2 -m1 --rps), 2 shared cores"
        )
        print(
            f"{'door':30} {'req/s':>9} {'x plain':>8} {'half rate':>10} {'achieved':>9} "
            f"{'p50 ms':>8} {'p99 ms':>8}"
        )
        for plain, door in pairs:
            capacity = {d.name: h2load(d, s, tmp) for d in (plain, door)}
            for d in (plain, door):
                rate = float(capacity[d.name]) / 2
                latencies = h2load(d, s, tmp, rps=rate)
                assert isinstance(latencies, list)
                achieved = len(latencies) / s  # -m1: a late answer delays the next request
                p50 = statistics.median(latencies) if latencies else float("nan")
                p99 = latencies[int(len(latencies) * 0.99)] if latencies else float("nan")
                ratio = float(capacity[d.name]) / float(capacity[plain.name])
                print(
                    f"{d.name:30} {float(capacity[d.name]):9.0f} {ratio:8.2f} {rate:10.0f} "
                    f"{achieved:9.0f} {p50:8.2f} {p99:8.2f}"
                )
        print("targets: door >= 0.70x its plain call; p99 <= 2 ms at half capacity")


if __name__ == "__main__":
    main()
