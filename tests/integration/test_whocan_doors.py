"""Who-can and what-can through the admin HTTP API and gRPC pdp.v1.Queries on real servers:
the answers, the bearer token, the result limit and the page token."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from pdp_client.v1 import queries_pb2 as pb
from pdp_client.v1 import queries_pb2_grpc as pb_grpc
from tests.integration.servers import TOKEN, Server, start_server

BEARER = (("authorization", f"Bearer {TOKEN}"),)
OBJECT = "arn:aws:s3:::example-bucket/report.csv"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("whocan"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def stub(server: Server) -> Iterator[pb_grpc.QueriesStub]:
    with grpc.insecure_channel(server.grpc) as channel:
        yield pb_grpc.QueriesStub(channel)


def _who(server: Server, **params: str) -> tuple[int, dict[str, object]]:
    status, body = server.call("/admin/who-can?" + urllib.parse.urlencode(params), admin=True)
    return status, body


def test_who_can_over_http_lists_only_users_the_decision_allows(server: Server) -> None:
    status, body = _who(server, action="s3:GetObject", resource=OBJECT)
    assert status == 200
    names = [item["principal"] for item in body["allowed"]]  # type: ignore[union-attr,index]
    assert names
    for name in names:
        assert server.decide(name, "s3:GetObject", OBJECT)["decision"] == "Allow"


def test_who_can_pages_with_an_opaque_token(server: Server) -> None:
    _, whole = _who(server, action="s3:GetObject", resource=OBJECT)
    seen: list[str] = []
    token = ""
    for _ in range(10):
        params = {"action": "s3:GetObject", "resource": OBJECT, "limit": "1"}
        if token:
            params["page_token"] = token
        status, page = _who(server, **params)
        assert status == 200
        seen += [item["principal"] for item in page["allowed"]]  # type: ignore[union-attr,index]
        assert len(page["allowed"]) + len(page["allowed_if"]) <= 1  # type: ignore[arg-type]
        token = str(page["next_page_token"] or "")
        if not token:
            break
    assert seen == [item["principal"] for item in whole["allowed"]]  # type: ignore[union-attr,index]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"resource": OBJECT}, "action"),
        ({"action": "s3:GetObject", "resource": OBJECT, "limit": "1001"}, "limit"),
        ({"action": "s3:GetObject", "resource": OBJECT, "limit": "0"}, "limit"),
        ({"action": "s3:GetObject", "resource": OBJECT, "page_token": "garbage"}, "page_token"),
        ({"action": "s3:GetObject", "resource": OBJECT, "context": "[1]"}, "context"),
        ({"action": "s3:GetObject", "resource": OBJECT, "context": '{"k": {"a": 1}}'}, "context"),
    ],
)
def test_who_can_bad_parameters_are_400_naming_the_field(
    server: Server, params: dict[str, str], field: str
) -> None:
    status, body = _who(server, **params)
    assert status == 400
    assert field in json.dumps(body)


def test_who_can_context_decides_conditions(server: Server) -> None:
    resource = "arn:aws:s3:::home-bucket/home/bob/x"
    _, without = _who(server, action="s3:DeleteObject", resource=resource)
    assert "bob" in [i["principal"] for i in without["allowed_if"]]  # type: ignore[union-attr,index]
    assert "bob" not in [i["principal"] for i in without["allowed"]]  # type: ignore[union-attr,index]
    context = json.dumps({"aws:MultiFactorAuthPresent": True})
    _, mfa = _who(server, action="s3:DeleteObject", resource=resource, context=context)
    assert "bob" in [i["principal"] for i in mfa["allowed"]]  # type: ignore[union-attr,index]


def test_what_can_over_http(server: Server) -> None:
    status, body = server.call("/admin/what-can/bob?service=s3", admin=True)
    assert status == 200
    actions = {item["action"] for item in body["allowed"]}
    assert "s3:GetObject" in actions and all(a.startswith("s3:") for a in actions)
    status, _ = server.call("/admin/what-can/nobody-here", admin=True)
    assert status == 404


def test_http_queries_need_the_token(server: Server) -> None:
    status, _ = server.call(f"/admin/who-can?action=s3:GetObject&resource={OBJECT}",
                            admin=True, token="wrong")  # fmt: skip
    assert status == 401
    status, _ = server.call("/admin/what-can/bob", admin=True, token=None)
    assert status == 401


def test_grpc_who_can_and_what_can_answer_as_http(
    server: Server, stub: pb_grpc.QueriesStub
) -> None:
    answer = stub.WhoCan(pb.WhoCanRequest(action="s3:GetObject", resource=OBJECT),
                         metadata=BEARER, timeout=30)  # fmt: skip
    over_grpc = json_format.MessageToDict(answer.result)
    _, over_http = _who(server, action="s3:GetObject", resource=OBJECT)
    assert over_grpc["allowed"] == over_http["allowed"]
    first = stub.WhoCan(pb.WhoCanRequest(action="s3:GetObject", resource=OBJECT, limit=1),
                        metadata=BEARER, timeout=30)  # fmt: skip
    page = json_format.MessageToDict(first.result)
    assert len(page["allowed"]) == 1 and page["next_page_token"]
    what = stub.WhatCan(pb.WhatCanRequest(principal="bob", service="s3"), metadata=BEARER,
                        timeout=30)  # fmt: skip
    assert "s3:GetObject" in {
        i["action"] for i in json_format.MessageToDict(what.result)["allowed"]
    }


def test_grpc_limits_and_token(stub: pb_grpc.QueriesStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.WhoCan(pb.WhoCanRequest(action="s3:GetObject", resource=OBJECT, limit=1001),
                    metadata=BEARER, timeout=30)  # fmt: skip
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "limit" in (caught.value.details() or "")
    with pytest.raises(grpc.RpcError) as caught:
        stub.WhatCan(pb.WhatCanRequest(principal="bob"), timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_queries_refused_without_an_admin_token(tmp_path: Path) -> None:
    server = start_server(tmp_path, token=None)
    try:
        with grpc.insecure_channel(server.grpc) as channel:
            with pytest.raises(grpc.RpcError) as caught:
                pb_grpc.QueriesStub(channel).WhoCan(
                    pb.WhoCanRequest(action="s3:GetObject", resource=OBJECT),
                    metadata=BEARER,
                    timeout=10,
                )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        server.stop()


def test_what_can_of_a_role_through_the_admin_door(tmp_path: Path) -> None:
    """The Python API answers what-can for a role ARN of a multi-account store: so must the
    door (it once refused any principal that was not a user of the main account: 404)."""
    import shutil

    store = tmp_path / "org"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "organization", store,
                    symlinks=True)  # fmt: skip
    server = start_server(tmp_path, store=store)
    try:
        role = "arn:aws:iam::222222222222:role/Deploy"
        status, body = server.call(f"/admin/what-can/{urllib.parse.quote(role)}", admin=True)
        assert status == 200 and body["principal"] == role and body["allowed"], body
        status, body = server.call("/admin/what-can/arn:aws:iam::222222222222:role/None",
                                   admin=True)  # fmt: skip
        assert status == 404, body
    finally:
        server.stop()


def test_who_can_contexts_are_held_to_the_decision_apis_limits(
    server: Server, stub: pb_grpc.QueriesStub
) -> None:
    many = {f"k{i}": "" for i in range(130)}
    for context, field in ((many, "more than"), ({"aws:SourceIp": {"nested": 1}}, "aws:SourceIp")):
        status, body = _who(
            server, action="s3:GetObject", resource=OBJECT, context=json.dumps(context)
        )
        assert status == 400 and field in json.dumps(body), body
        request = pb.WhoCanRequest(action="s3:GetObject", resource=OBJECT)
        request.context.update(context)
        with pytest.raises(grpc.RpcError) as refused:
            stub.WhoCan(request, metadata=BEARER, timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (refused.value.details() or "")
