"""Bytes that are no request message are INVALID_ARGUMENT on every gRPC service (health and
reflection too, not only pdp.v1.Authorizer), without a traceback in the server log."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from tests.integration.servers import Server, start_server

GARBAGE = b"\xff\xff"
LIST_SERVICES = b"\x3a\x00"  # a ServerReflectionRequest with list_services ""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("grpc-garbage"))
    yield srv
    srv.stop()


def _clean_log(server: Server) -> None:
    log = server.log.read_text()
    assert "Traceback" not in log and "Exception deserializing" not in log, log[-2000:]


def test_garbage_to_health_check_is_invalid_argument(server: Server) -> None:
    with grpc.insecure_channel(server.grpc) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        with pytest.raises(grpc.RpcError) as caught:
            check(GARBAGE, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    assert caught.value.details() == (
        "request: not a valid grpc.health.v1.HealthCheckRequest message (wire format was corrupt)"
    )
    _clean_log(server)


def test_garbage_to_health_watch_is_invalid_argument(server: Server) -> None:
    with grpc.insecure_channel(server.grpc) as channel:
        watch = channel.unary_stream("/grpc.health.v1.Health/Watch")
        with pytest.raises(grpc.RpcError) as caught:
            list(watch(GARBAGE, timeout=5))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    assert "grpc.health.v1.HealthCheckRequest" in caught.value.details()
    _clean_log(server)


def test_garbage_to_reflection_ends_the_stream_invalid_argument(server: Server) -> None:
    method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    with grpc.insecure_channel(server.grpc) as channel:
        answers = channel.stream_stream(method)(iter([LIST_SERVICES, GARBAGE]), timeout=5)
        assert b"pdp.v1.Authorizer" in next(answers)  # the good request before is answered
        with pytest.raises(grpc.RpcError) as caught:
            list(answers)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    assert "grpc.reflection.v1alpha.ServerReflectionRequest" in caught.value.details()
    _clean_log(server)


def test_good_health_and_reflection_calls_still_work(server: Server) -> None:
    with grpc.insecure_channel(server.grpc) as channel:
        assert channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5) == b"\x08\x01"
        info = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        )
        answers = list(info(iter([LIST_SERVICES, LIST_SERVICES]), timeout=5))
    assert len(answers) == 2 and all(b"grpc.health.v1.Health" in a for a in answers)
    _clean_log(server)
