"""What gRPC callers can make a worker hold: calls past PDP_GRPC_MAX_CONCURRENT and messages
past the size limit are RESOURCE_EXHAUSTED at once, and the clients retry "busy"."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2

from pdp_client import AsyncGrpcClient, GrpcClient
from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc
from tests.integration.servers import Server, start_server

LIMIT = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("grpc-limits"),
        PDP_GRPC_MAX_CONCURRENT=str(LIMIT),
        PDP_CACHE_SIZE="0",
        PDP_MAX_BATCH="100000",
        PDP_MAX_BATCH_CHARS=str(1 << 20),
    )
    yield srv
    srv.stop()


def _clean_log(server: Server) -> None:
    log = server.log.read_text()
    assert "Traceback" not in log and "Exception deserializing" not in log, log[-2000:]


def _watch(channel: grpc.Channel) -> grpc.Future:
    watch = channel.unary_stream(
        "/grpc.health.v1.Health/Watch",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    return watch(health_pb2.HealthCheckRequest(service=""), timeout=30)


def test_health_watchers_hold_no_thread_or_call_slot(server: Server) -> None:
    """The wrapped Watch keeps grpc_health's non-blocking mode: open watchers, more than the
    concurrency limit, do not keep decisions out."""
    with grpc.insecure_channel(server.grpc) as channel:
        watchers = []
        for _ in range(LIMIT + 2):
            deadline = time.monotonic() + 2
            while True:  # a watcher's slot is given back just after its first answer
                watcher = _watch(channel)
                try:
                    assert next(watcher).status == health_pb2.HealthCheckResponse.SERVING
                    break
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
                    assert time.monotonic() < deadline, "watchers hold their call slots"
                    time.sleep(0.01)
            watchers.append(watcher)
        assert server.grpc_status() == grpc.StatusCode.OK
        for watcher in watchers:
            watcher.cancel()


class _Pinned:
    """`count` open reflection streams, each waiting for its next request: each holds a
    server thread and a concurrent-call slot until released."""

    def __init__(self, channel: grpc.Channel, count: int) -> None:
        self._release = threading.Event()
        info = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        )
        self.streams = [info(self._requests(), timeout=30) for _ in range(count)]
        for stream in self.streams:
            next(stream)  # answered: the call runs on the server, waiting for more

    def _requests(self) -> Iterator[bytes]:
        yield b"\x3a\x00"  # list_services
        self._release.wait(30)

    def release(self, after: float = 0) -> None:
        """End the streams, `after` seconds from now; `wait()` for them to have ended."""

        def release() -> None:
            time.sleep(after)
            self._release.set()
            for stream in self.streams:
                try:
                    list(stream)  # the stream ends once its requests do
                except grpc.RpcError:
                    pass  # or the channel closed first

        self._releasing = threading.Thread(target=release, daemon=True)
        self._releasing.start()

    def wait(self) -> None:
        self._releasing.join(30)


def _free(server: Server) -> None:
    """Wait until the server has given back the slots of calls that ended."""
    deadline = time.monotonic() + 5
    while server.grpc_status() != grpc.StatusCode.OK:
        assert time.monotonic() < deadline, "the slots were not given back"
        time.sleep(0.05)


def test_calls_past_the_concurrency_limit_are_resource_exhausted(server: Server) -> None:
    with grpc.insecure_channel(server.grpc) as channel:
        pinned = _Pinned(channel, LIMIT)
        started = time.monotonic()
        assert server.grpc_status() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert time.monotonic() - started < 2
        pinned.release()
        pinned.wait()
    _free(server)


def _slow_batch() -> pb.BatchIsAuthorizedRequest:
    numbers = pb.Value(list_value=pb.ValueList(values=[pb.Value(int_value=i) for i in range(256)]))
    item = pb.IsAuthorizedRequest(
        principal="bob", action="s3:GetObject", resource="*", context={"app:n": numbers}
    )
    return pb.BatchIsAuthorizedRequest(requests=[item] * 250)  # ~1M budget characters


def test_concurrent_batches_past_the_limit_are_refused_quickly(server: Server) -> None:
    batch = _slow_batch()
    channels = [grpc.insecure_channel(server.grpc) for _ in range(8)]
    for channel in channels:
        grpc.channel_ready_future(channel).result(timeout=10)
    start = threading.Barrier(len(channels))

    def send(channel: grpc.Channel) -> tuple[grpc.StatusCode, float]:
        stub = pb_grpc.AuthorizerStub(channel)
        start.wait(timeout=10)
        started = time.monotonic()
        try:
            stub.BatchIsAuthorized(batch, timeout=30)
            code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()
        return code, time.monotonic() - started

    try:
        with ThreadPoolExecutor(len(channels)) as pool:
            answers = list(pool.map(send, channels))
    finally:
        for channel in channels:
            channel.close()
    codes = [code for code, _ in answers]
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
    assert grpc.StatusCode.OK in codes and grpc.StatusCode.RESOURCE_EXHAUSTED in codes, codes
    refused = [t for code, t in answers if code == grpc.StatusCode.RESOURCE_EXHAUSTED]
    served = [t for code, t in answers if code == grpc.StatusCode.OK]
    assert max(refused) < min(served), answers  # refused without waiting for a thread


def _ids_batch(id_length: int) -> pb.BatchIsAuthorizedRequest:
    """1,000 requests with long request ids (outside the work limit: only bytes count)."""
    item = pb.IsAuthorizedRequest(
        principal="bob", action="s3:GetObject", resource="*", request_id="r" * id_length
    )
    return pb.BatchIsAuthorizedRequest(requests=[item] * 1000)


def test_an_over_size_message_is_resource_exhausted_unread(server: Server) -> None:
    """A 3 MiB batch is refused by its size, before it is read, not by the batch checks; 2 MB
    is still read (and then refused by the work limit: request ids count too)."""
    with grpc.insecure_channel(server.grpc) as channel:
        stub = pb_grpc.AuthorizerStub(channel)
        large, over = _ids_batch(2050), _ids_batch(3200)
        assert large.ByteSize() < 2 << 20 < 3 << 20 < over.ByteSize()
        with pytest.raises(grpc.RpcError) as read:
            stub.BatchIsAuthorized(large, timeout=30)
        assert read.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "characters for one batch" in read.value.details()
        with pytest.raises(grpc.RpcError) as caught:
            stub.BatchIsAuthorized(over, timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value
    assert "larger than max" in caught.value.details()
    _clean_log(server)


def test_a_request_id_has_the_length_limit_http_has(server: Server) -> None:
    item = pb.IsAuthorizedRequest(
        principal="bob", action="s3:GetObject", resource="*", request_id="r" * 4097
    )
    with grpc.insecure_channel(server.grpc) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            pb_grpc.AuthorizerStub(channel).IsAuthorized(item, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "request_id: longer than 4096 characters"


def test_grpc_client_retries_while_pdp_is_busy(server: Server) -> None:
    """RESOURCE_EXHAUSTED is "busy": retried with backoff, then a fail-closed Deny."""
    with grpc.insecure_channel(server.grpc) as channel:
        pinned = _Pinned(channel, LIMIT)
        with GrpcClient(server.grpc, retries=2, timeout=5) as client:
            busy = client.is_authorized("bob", "s3:GetObject", "*")
            assert busy.decision == "Deny", busy
            assert "RESOURCE_EXHAUSTED" in busy.errors[0], busy
            # 12 retries cannot all be over within 0.1 s (their delays grow to 1 s each)
            pinned.release(after=0.1)
            client.retries = 12
            answer = client.is_authorized("bob", "s3:GetObject", "*")
        pinned.wait()
    assert not answer.errors, answer


def test_async_grpc_client_retries_while_pdp_is_busy(server: Server) -> None:
    with grpc.insecure_channel(server.grpc) as channel:
        pinned = _Pinned(channel, LIMIT)

        async def decide(retries: int) -> list[str]:
            async with AsyncGrpcClient(server.grpc, retries=retries, timeout=5) as client:
                return list((await client.is_authorized("bob", "s3:GetObject", "*")).errors)

        busy = asyncio.run(decide(2))
        assert len(busy) == 1 and "RESOURCE_EXHAUSTED" in busy[0], busy
        pinned.release(after=0.1)
        assert asyncio.run(decide(12)) == []
        pinned.wait()


def test_the_server_log_stays_clean(server: Server) -> None:
    assert server.grpc_status() == grpc.StatusCode.OK
    _clean_log(server)
