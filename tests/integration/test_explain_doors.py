"""Explain through both doors of a real `pdp serve`: refused unless PDP_EXPLAIN (HTTP 400 /
gRPC FAILED_PRECONDITION, code explain_disabled, naming PDP_EXPLAIN); with it, the explanation
object, the same on HTTP and gRPC; without "explain" the answer has no explanation at all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from pdp_client import GrpcClient, HttpClient, PdpRequestError
from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc
from tests.integration.servers import Server, start_server

BOB_START = {
    "principal": "bob",
    "action": "ec2:StartInstances",
    "resource": "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
    "context": {"aws:SourceIp": "203.0.113.9", "aws:ResourceTag/team": "red"},
}


@pytest.fixture(scope="module")
def enabled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("explain-on"), PDP_EXPLAIN="on")
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def disabled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("explain-off"))
    yield srv
    assert srv.stop() == 0


def _message(body: dict[str, Any], explain: bool) -> pb.IsAuthorizedRequest:
    message = pb.IsAuthorizedRequest(
        principal=body["principal"], action=body["action"], resource=body["resource"],
        explain=explain,
    )  # fmt: skip
    for key, value in body["context"].items():
        message.context[key].string_value = value
    return message


def _grpc(server: Server, message: pb.IsAuthorizedRequest) -> pb.IsAuthorizedResponse:
    with grpc.insecure_channel(server.grpc) as channel:
        return pb_grpc.AuthorizerStub(channel).IsAuthorized(message, timeout=10)


def test_off_by_default_refused_on_both_doors(disabled: Server) -> None:
    status, answer = disabled.call("/v1/is-authorized", {**BOB_START, "explain": True})
    assert status == 400
    assert answer["error"]["code"] == "explain_disabled"
    assert "PDP_EXPLAIN" in answer["error"]["message"]
    batch = {"requests": [BOB_START, {**BOB_START, "explain": True}]}
    status, answer = disabled.call("/v1/batch-is-authorized", batch)
    assert (status, answer["error"]["code"]) == (400, "explain_disabled")
    with pytest.raises(grpc.RpcError) as caught:
        _grpc(disabled, _message(BOB_START, True))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "PDP_EXPLAIN" in (caught.value.details() or "")
    # "explain": false, or none, is the plain answer
    status, plain = disabled.call("/v1/is-authorized", {**BOB_START, "explain": False})
    assert status == 200 and "explanation" not in plain


def test_explained_on_both_doors(enabled: Server) -> None:
    status, answer = enabled.call("/v1/is-authorized", {**BOB_START, "explain": True})
    assert status == 200
    explanation = answer["explanation"]
    (miss,) = explanation["nearest_misses"]
    assert (miss["sid"], miss["needed"]) == (
        "ManageTeamInstances",
        ["aws:ResourceTag/team must be blue"],
    )
    reply = _grpc(enabled, _message(BOB_START, True))
    assert reply.HasField("explanation")
    over_grpc = MessageToDict(reply.explanation)
    # a Struct holds numbers as doubles: compare what is not a number
    assert over_grpc["nearest_misses"][0]["needed"] == miss["needed"]
    assert over_grpc["layers"] == explanation["layers"]
    assert reply.decision == answer["decision"] == "Deny"


def test_without_explain_the_answer_is_unchanged(enabled: Server) -> None:
    status, plain = enabled.call("/v1/is-authorized", BOB_START)
    assert status == 200 and "explanation" not in plain
    status, explained = enabled.call("/v1/is-authorized", {**BOB_START, "explain": True})
    assert {k: v for k, v in explained.items() if k != "explanation"} == plain
    reply = _grpc(enabled, _message(BOB_START, False))
    assert not reply.HasField("explanation")


def test_batch_explains_only_the_items_that_ask(enabled: Server) -> None:
    batch = {"requests": [BOB_START, {**BOB_START, "explain": True}]}
    status, answer = enabled.call("/v1/batch-is-authorized", batch)
    assert status == 200
    first, second = answer["results"]
    assert "explanation" not in first and "explanation" in second
    status, plain = enabled.call("/v1/batch-is-authorized", {"requests": [BOB_START]})
    assert status == 200 and "explanation" not in plain["results"][0]
    with grpc.insecure_channel(enabled.grpc) as channel:
        stub = pb_grpc.AuthorizerStub(channel)
        reply = stub.BatchIsAuthorized(
            pb.BatchIsAuthorizedRequest(
                requests=[_message(BOB_START, False), _message(BOB_START, True)]
            ),
            timeout=10,
        )
    assert [r.HasField("explanation") for r in reply.results] == [False, True]


def test_bad_explain_values_and_too_many(enabled: Server) -> None:
    status, answer = enabled.call("/v1/is-authorized", {**BOB_START, "explain": "yes"})
    assert (status, answer["error"]["code"]) == (400, "invalid_request")
    assert answer["error"]["message"].startswith("explain:")
    many = {"requests": [{**BOB_START, "explain": True}] * 21}
    status, answer = enabled.call("/v1/batch-is-authorized", many)
    assert status == 400 and "explain" in answer["error"]["message"]


def test_the_python_clients_ask_for_explain(enabled: Server, disabled: Server) -> None:
    args = (BOB_START["principal"], BOB_START["action"], BOB_START["resource"])
    for client in (HttpClient(f"http://{enabled.http}"), GrpcClient(enabled.grpc)):
        explained = client.is_authorized(*args, BOB_START["context"], explain=True)
        assert explained.explanation is not None, client
        assert explained.explanation["nearest_misses"][0]["sid"] == "ManageTeamInstances"
        plain = client.is_authorized(*args, BOB_START["context"])
        assert plain.explanation is None and plain == explained
    for client in (HttpClient(f"http://{disabled.http}"), GrpcClient(disabled.grpc)):
        with pytest.raises(PdpRequestError) as caught:
            client.is_authorized(*args, BOB_START["context"], explain=True)
        assert caught.value.code == "explain_disabled", client
