"""What one caller may make a worker do: batch work is capped (items and characters), a gRPC
batch stops once its deadline has passed, and context keys have a length limit."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc
from tests.integration.servers import Server, start_server

MAX_CHARS = 2_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("batch"),
        PDP_MAX_BATCH_CHARS=str(MAX_CHARS),
        PDP_CACHE_SIZE="0",
        PDP_MAX_BODY=str(4 << 20),
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def stub(server: Server) -> Iterator[pb_grpc.AuthorizerStub]:
    with grpc.insecure_channel(
        server.grpc, options=[("grpc.max_send_message_length", 8 << 20)]
    ) as channel:
        yield pb_grpc.AuthorizerStub(channel)


def _heavy(count: int) -> pb.BatchIsAuthorizedRequest:
    """`count` requests of 2 keys x 256 numbers: 8,256 budget characters each."""
    numbers = pb.Value(list_value=pb.ValueList(values=[pb.Value(int_value=i) for i in range(256)]))
    context = {"app:a": numbers, "app:b": numbers}
    return pb.BatchIsAuthorizedRequest(
        requests=[
            pb.IsAuthorizedRequest(
                principal="bob",
                action="s3:GetObject",
                resource=f"arn:aws:s3:::b/{i}",
                context=context,
            )
            for i in range(count)
        ]
    )


def _cpu_seconds(server: Server) -> float:
    """CPU time the worker process has used so far (from /proc; the pid is in /metrics)."""
    pid = re.search(r'worker="(\d+)"', server.call("/metrics")[1])[1]  # type: ignore[index]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_grpc_batch_over_the_work_limit_is_invalid(stub: pb_grpc.AuthorizerStub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.BatchIsAuthorized(_heavy(300), timeout=30)  # 2.5M budget characters
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"over the limit of {MAX_CHARS} characters" in info.value.details()


def test_grpc_batch_stops_once_its_deadline_passed(
    server: Server, stub: pb_grpc.AuthorizerStub
) -> None:
    """A batch costs the worker about its deadline, not the whole batch (read and decided).

    CPU time is counted in 10 ms ticks and a batch costs a few of them, so each side is the sum
    of three batches (one tick of noise moved a single pair past the bound)."""
    batch = _heavy(240)  # within the limit: reading it is most of the work
    before, started = _cpu_seconds(server), time.monotonic()
    for _ in range(3):
        assert len(stub.BatchIsAuthorized(batch, timeout=60).results) == 240
    full = (time.monotonic() - started) / 3
    costs = [_cpu_seconds(server) - before]
    before = _cpu_seconds(server)
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as info:
            stub.BatchIsAuthorized(batch, timeout=full * 0.2)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(max(1.0, full * 2))  # whatever the server still does, it has done by now
    costs.append(_cpu_seconds(server) - before)
    assert costs[1] < costs[0] * 0.6, f"full batches {costs[0]:.3f}s CPU, cut short {costs[1]:.3f}s"
    assert server.decide("bob", "s3:GetObject", "*")["decision"] in ("Allow", "Deny")


def test_http_batch_over_the_work_limit_is_400(server: Server) -> None:
    item = {"principal": "bob", "action": "s3:GetObject", "resource": "*"}
    item["context"] = {f"app:k{i}": "v" * 4000 for i in range(100)}  # ~400k characters
    status, body = server.call("/v1/batch-is-authorized", {"requests": [item] * 6})
    assert status == 400 and body["error"]["code"] == "invalid_request", body
    assert "characters for one batch" in body["error"]["message"], body
    status, body = server.call("/v1/batch-is-authorized", {"requests": [item] * 4})
    assert status == 200 and len(body["results"]) == 4


def test_context_keys_have_a_length_limit(server: Server, stub: pb_grpc.AuthorizerStub) -> None:
    key = "app:" + "k" * 300
    status, body = server.call(
        "/v1/is-authorized",
        {"principal": "bob", "action": "s3:GetObject", "resource": "*", "context": {key: "v"}},
    )
    assert status == 400 and body["error"]["code"] == "invalid_request", body
    assert "key longer than 256 characters" in body["error"]["message"], body
    message = pb.IsAuthorizedRequest(
        principal="bob",
        action="s3:GetObject",
        resource="*",
        context={key: pb.Value(string_value="v")},
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.IsAuthorized(message, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "key longer than 256" in info.value.details()
    tag = "aws:RequestTag/" + "t" * 128  # IAM's longest keys still pass
    ok = server.call(
        "/v1/is-authorized",
        {"principal": "bob", "action": "s3:GetObject", "resource": "*", "context": {tag: "v"}},
    )
    assert ok[0] == 200
