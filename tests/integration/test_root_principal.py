"""The account root is decided only when asked for (principal_type "root"), through every door.

A service that forwards a free-form user name (an `X-User` header) must never hand out root to a
caller who names himself `arn:aws:iam::<account>:root`: sent as a user, the root ARN is a Deny.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from flask import Flask

from pdp import Authorizer
from pdp_client import GrpcClient, HttpClient, PdpRequestError
from pdp_client.flask import PdpFlask, require
from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc
from tests.integration.servers import EXAMPLE, Server, start_server

ROOT = "arn:aws:iam::123456789012:root"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("root"))
    yield srv
    srv.stop()


def _is_root_refusal(decision: object) -> bool:
    errors = getattr(decision, "errors", None) or decision["errors"]  # type: ignore[index]
    return 'principal_type "root"' in errors[0]


@pytest.mark.parametrize("cache_size", [0, 1000])
def test_python_api_root_only_when_asked(cache_size: int) -> None:
    with Authorizer.from_store(EXAMPLE, cache_size=cache_size, watch=False) as authz:
        asked = authz.is_authorized(ROOT, "iam:CreateUser", "*", principal_type="root")
        assert (asked.decision, asked.root) == ("Allow", True)
        # Asked after a root Allow was decided: the cache must not hand it to a "user".
        for _ in range(2):
            as_user = authz.is_authorized(ROOT, "iam:CreateUser", "*")
            assert (as_user.decision, as_user.reason, as_user.root) == (
                "Deny",
                "implicitDeny",
                False,
            )
            assert _is_root_refusal(as_user)
        bob_as_root = authz.is_authorized("bob", "s3:GetObject", "*", principal_type="root")
        assert bob_as_root.decision == "Deny" and "root ARN" in bob_as_root.errors[0]
        odd = authz.is_authorized(ROOT, "iam:CreateUser", "*", principal_type="Root")
        assert odd.decision == "Deny" and "principal_type" in odd.errors[0]
        batch = authz.batch_is_authorized(
            [
                {"principal": ROOT, "action": "iam:CreateUser", "resource": "*"},
                {
                    "principal": ROOT,
                    "principal_type": "root",
                    "action": "iam:CreateUser",
                    "resource": "*",
                },
            ]
        )
        assert [d.decision for d in batch] == ["Deny", "Allow"]


def test_http_root_only_when_asked(server: Server) -> None:
    as_user = server.decide(ROOT, "iam:CreateUser", "*")
    assert as_user["decision"] == "Deny" and _is_root_refusal(as_user)
    body = {
        "principal": ROOT,
        "principal_type": "root",
        "action": "iam:CreateUser",
        "resource": "*",
    }
    assert server.call("/v1/is-authorized", body)[1]["decision"] == "Allow"
    status, answer = server.call("/v1/is-authorized", {**body, "principal_type": "admin"})
    assert status == 400 and answer["error"]["code"] == "invalid_request", answer
    assert answer["error"]["message"].startswith("principal_type: must be one of"), answer


def test_grpc_root_only_when_asked(server: Server) -> None:
    with grpc.insecure_channel(server.grpc) as channel:
        stub = pb_grpc.AuthorizerStub(channel)
        message = pb.IsAuthorizedRequest(principal=ROOT, action="iam:CreateUser", resource="*")
        as_user = stub.IsAuthorized(message, timeout=10)
        assert as_user.decision == "Deny" and _is_root_refusal(as_user)
        message.principal_type = "root"
        assert stub.IsAuthorized(message, timeout=10).decision == "Allow"
        message.principal_type = "superuser"
        with pytest.raises(grpc.RpcError) as info:
            stub.IsAuthorized(message, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_clients_root_only_when_asked(server: Server) -> None:
    with GrpcClient(server.grpc, timeout=5) as g, HttpClient(f"http://{server.http}") as h:
        for client in (g, h):
            assert not client.is_authorized(ROOT, "iam:CreateUser", "*").allowed
            assert client.is_authorized(ROOT, "iam:CreateUser", "*", principal_type="root").root
            with pytest.raises(PdpRequestError, match="principal_type"):
                client.is_authorized(ROOT, "iam:CreateUser", "*", principal_type="admin")


def test_flask_helper_never_passes_a_header_as_root(server: Server, tmp_path: Path) -> None:
    from flask import request

    app = Flask("orders")
    PdpFlask(app, HttpClient(f"http://{server.http}"), principal=lambda: request.headers["X-User"])

    @app.post("/users")
    @require("iam:CreateUser")
    def create_user() -> str:
        return "created"

    web = app.test_client()
    forged = web.post("/users", headers={"X-User": ROOT})
    assert forged.status_code == 403 and _is_root_refusal(forged.get_json())
