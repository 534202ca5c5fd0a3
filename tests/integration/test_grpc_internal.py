"""A failure inside the gRPC service is INTERNAL with a fixed message, as the error table says:
never grpc's UNKNOWN carrying the exception's text (which could hold anything)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grpc
import pytest

from pdp import Decision
from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc
from pdp_server.config import Config
from pdp_server.grpc_service import GrpcServer, create_server
from pdp_server.requests import DecisionRequest
from pdp_server.service import Service
from tests.integration.servers import EXAMPLE

SECRET = "secret-cause-do-not-echo"


class Broken(Service):
    """A service whose deciding fails in a way no real request should reach."""

    def decide(self, request: DecisionRequest) -> Decision:
        raise RuntimeError(SECRET)

    def batch(
        self, requests: Sequence[DecisionRequest], deadline: float | None = None
    ) -> tuple[list[Decision], str]:
        raise KeyError(SECRET)


@pytest.fixture
def server() -> Iterator[GrpcServer]:
    service = Broken(Config(store=str(EXAMPLE)))
    assert service.load()
    srv = create_server(service, "127.0.0.1:0", reuse_port=False)
    yield srv
    srv.stop(grace=0)


def test_a_failure_inside_is_internal_and_does_not_echo_its_cause(server: GrpcServer) -> None:
    item = pb.IsAuthorizedRequest(principal="bob", action="s3:GetObject", resource="*")
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.AuthorizerStub(channel)
        for call, message in (
            (stub.IsAuthorized, item),
            (stub.BatchIsAuthorized, pb.BatchIsAuthorizedRequest(requests=[item])),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                call(message, timeout=10)
            error = caught.value
            assert error.code() == grpc.StatusCode.INTERNAL
            assert error.details() == "internal error" and SECRET not in error.details()
            assert ("pdp-error-code", "internal") in tuple(error.trailing_metadata())
