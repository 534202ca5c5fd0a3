"""pdp.v1.Queries on a real gRPC port: the admin HTTP answers (diff, what-if) as Structs, behind
the same bearer token (metadata `authorization`), refused outright without a configured token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from pdp_client.v1 import queries_pb2 as pb
from pdp_client.v1 import queries_pb2_grpc as pb_grpc
from tests.integration.servers import TOKEN, Server, start_server

BEARER = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("grpc-queries")
    srv = start_server(tmp, PDP_DECISION_LOG=str(tmp / "decisions.jsonl"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def stub(server: Server) -> Iterator[pb_grpc.QueriesStub]:
    with grpc.insecure_channel(server.grpc) as channel:
        yield pb_grpc.QueriesStub(channel)


def test_diff_answers_as_the_admin_api_does(server: Server, stub: pb_grpc.QueriesStub) -> None:
    answer = stub.Diff(pb.DiffRequest(old="0001", new="0002"), metadata=BEARER, timeout=60)
    over_grpc = json_format.MessageToDict(answer.result)
    status, over_http = server.call("/admin/diff?old=0001&new=0002", admin=True)
    assert status == 200
    assert over_grpc["changed"] is True and over_grpc["old"] == "0001"
    assert over_grpc["statements"] == over_http["statements"]
    assert int(over_grpc["principals_evaluated"]) == over_http["principals_evaluated"]


def test_impact_replays_the_servers_log(server: Server, stub: pb_grpc.QueriesStub) -> None:
    server.decide("bob", "s3:GetObject", "arn:aws:s3:::reports/q1.csv")
    answer = stub.Impact(pb.ImpactRequest(candidate="0001"), metadata=BEARER, timeout=60)
    result = json_format.MessageToDict(answer.result)
    assert result["candidate"] == "0001" and result["baseline"] == "logged"


@pytest.mark.parametrize(
    ("request_message", "call", "message"),
    [
        (pb.DiffRequest(new="0002"), "Diff", "old: required"),
        (pb.DiffRequest(old="0001", new="../etc"), "Diff", "new: ../etc"),
        (pb.ImpactRequest(candidate="0001", baseline="yesterday"), "Impact", "baseline: "),
    ],
)
def test_bad_requests_are_invalid_argument_naming_the_field(
    stub: pb_grpc.QueriesStub, request_message: object, call: str, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub, call)(request_message, metadata=BEARER, timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (caught.value.details() or "")


def test_a_wrong_or_missing_token_is_unauthenticated(stub: pb_grpc.QueriesStub) -> None:
    for metadata in ((("authorization", "Bearer nope"),), ()):
        with pytest.raises(grpc.RpcError) as caught:
            stub.Diff(pb.DiffRequest(old="0001", new="0002"), metadata=metadata, timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_without_an_admin_token_every_query_is_refused(tmp_path: Path) -> None:
    server = start_server(tmp_path, token=None)
    try:
        with grpc.insecure_channel(server.grpc) as channel:
            with pytest.raises(grpc.RpcError) as caught:
                pb_grpc.QueriesStub(channel).Diff(
                    pb.DiffRequest(old="0001", new="0002"), metadata=BEARER, timeout=10
                )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        server.stop()
