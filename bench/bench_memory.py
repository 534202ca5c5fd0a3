"""Worker memory after a flood of maximal requests, at the default settings.

    python bench/bench_memory.py [--seconds 30] [--workers 1]

Starts `pdp serve` on the bundled store with a decision log whose writer is stalled (a FIFO
nobody reads, so the log queue fills to its bound), then floods it with the largest requests the
defaults accept: HTTP bodies near the 1 MiB limit with 128 distinct context values each (every
one a new cache entry and a queued log event), and 4 MiB gRPC batches at the work limit. Prints
each worker's RSS (VmRSS) and peak (VmHWM) before and after, with what was sent. The target is
under 500 MiB per worker. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pdp_client.v1 import authorizer_pb2 as pb  # noqa: E402
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc  # noqa: E402
from tests.integration.servers import Server, start_server  # noqa: E402

MIB = 1 << 20


def workers(server: Server) -> list[int]:
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def http_flood(address: str, stop: float, counter: itertools.count[int], sent: list[int]) -> None:
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    while time.monotonic() < stop:
        n = next(counter)
        context = {f"app:k{i}": f"{n}-{i}-" + "v" * 3900 for i in range(128)}
        body = json.dumps(
            {"principal": "bob", "action": "s3:GetObject", "resource": "*", "context": context}
        ).encode()
        try:
            connection.request(
                "POST", "/v1/is-authorized", body, {"Content-Type": "application/json"}
            )
            connection.getresponse().read()
            sent[0] += 1
            sent[1] += len(body)
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection(host, int(port), timeout=30)


def grpc_flood(address: str, stop: float, sent: list[int]) -> None:
    value = pb.Value(string_value="v" * 4000)
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 8 * MIB)]) as ch:
        stub = pb_grpc.AuthorizerStub(ch)
        n = 0
        while time.monotonic() < stop:
            n += 1
            items = [
                pb.IsAuthorizedRequest(
                    principal="bob",
                    action="s3:GetObject",
                    resource=f"arn:aws:s3:::b/{n}/{i}",
                    context={f"app:k{j}": value for j in range(64)},
                )
                for i in range(4)
            ]
            message = pb.BatchIsAuthorizedRequest(requests=items)
            try:
                stub.BatchIsAuthorized(message, timeout=0.5)
            except grpc.RpcError:
                pass
            sent[0] += 1
            sent[1] += message.ByteSize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pdp-bench-memory-") as tmp:
        fifo = Path(tmp) / "decisions.jsonl"
        os.mkfifo(fifo)  # nobody reads it: the log writer stalls and the queue fills
        server = start_server(
            Path(tmp), workers=args.workers, PDP_DECISION_LOG=str(fifo), PDP_WATCH_INTERVAL="1"
        )
        try:
            pids = workers(server)
            before = {pid: memory(pid) for pid in pids}
            stop = time.monotonic() + args.seconds
            http_sent, grpc_sent = [0, 0], [0, 0]
            counter = itertools.count()
            threads = [
                threading.Thread(target=http_flood, args=(server.http, stop, counter, http_sent))
                for _ in range(args.threads)
            ]
            threads.append(threading.Thread(target=grpc_flood, args=(server.grpc, stop, grpc_sent)))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            status, info = server.call("/admin/status", admin=True)
            print(f"bench_memory: {args.workers} worker(s), default settings, {args.seconds:.0f} s")
            print(
                f"  sent: {http_sent[0]} HTTP requests ({http_sent[1] / MIB:.0f} MiB),"
                f" {grpc_sent[0]} gRPC batches ({grpc_sent[1] / MIB:.0f} MiB)"
            )
            if status == 200:
                print(f"  cache: {info.get('cache')}; decision log: {info.get('decision_log')}")
            for pid in pids:
                rss, peak = memory(pid)
                print(
                    f"  worker {pid}: RSS {before[pid][0]:.0f} -> {rss:.0f} MiB,"
                    f" peak {peak:.0f} MiB (target: under 500 MiB)"
                )
        finally:
            for pid in workers(server):  # the stalled log writer would hold a clean stop
                os.kill(pid, signal.SIGKILL)
            server.process.kill()
            server.process.wait()


if __name__ == "__main__":
    main()
