"""The evaluation chain through both doors of a real `pdp serve`: a role session with a session
policy, an SCP that blocks, a refused session field, and the decision shape of a plain user
request. HTTP and gRPC (and the Python clients on each) must answer the same."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from pdp_client import GrpcClient, HttpClient, PdpRequestError
from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc
from tests.chain_store import FILES, MEMBER, write_store
from tests.integration.servers import Server, start_server

ALICE = f"arn:aws:iam::{MEMBER}:user/alice"
SESSION_ARN = f"arn:aws:sts::{MEMBER}:assumed-role/App/s1"
READ_DATA = {  # the session policy: reads of data only
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"}],
}
SESSION = {"policies": [READ_DATA], "tags": {"team": "blue"}, "mfa_present": True, "mfa_age": 60}


def _write_store(root: Path) -> Path:
    return write_store(root, FILES)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("chain-doors")
    srv = start_server(
        tmp, store=_write_store(tmp / "store"), PDP_DECISION_LOG=str(tmp / "decisions.jsonl")
    )
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def stub(server: Server) -> Iterator[pb_grpc.AuthorizerStub]:
    with grpc.insecure_channel(server.grpc) as channel:
        yield pb_grpc.AuthorizerStub(channel)


def _session_message(session: dict[str, Any]) -> pb.Session:
    message = pb.Session(
        policies_json=[json.dumps(p) for p in session.get("policies", ())],
        tags=session.get("tags", {}),
    )
    for name in ("mfa_present", "mfa_age"):
        if name in session:
            setattr(message, name, session[name])
    return message


def _http(server: Server, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = server.call("/v1/is-authorized", body)
    assert status == 200, answer
    assert isinstance(answer, dict)
    return answer


def _grpc(
    stub: pb_grpc.AuthorizerStub, body: dict[str, Any]
) -> tuple[str, str, list[str], list[str]]:
    message = pb.IsAuthorizedRequest(
        principal=body["principal"],
        action=body["action"],
        resource=body["resource"],
        principal_type=body.get("principal_type", ""),
    )
    if "session" in body:
        message.session.CopyFrom(_session_message(body["session"]))
    answer = stub.IsAuthorized(message, timeout=10)
    return answer.decision, answer.reason, list(answer.layers), list(answer.blocked_by)


def _shape(answer: dict[str, Any]) -> tuple[str, str, list[str], list[str]]:
    return answer["decision"], answer["reason"], answer["layers"], answer["blocked_by"]


@pytest.mark.parametrize(
    ("action", "resource", "decision", "blocked_by"),
    [
        ("s3:GetObject", "arn:aws:s3:::data/x", "Allow", []),
        ("s3:PutObject", "arn:aws:s3:::data/x", "Deny", ["session"]),
    ],
)
def test_a_role_session_with_a_session_policy_is_decided_alike_on_both_doors(
    server: Server,
    stub: pb_grpc.AuthorizerStub,
    action: str,
    resource: str,
    decision: str,
    blocked_by: list[str],
) -> None:
    body = {
        "principal": SESSION_ARN,
        "principal_type": "role_session",
        "action": action,
        "resource": resource,
        "session": SESSION,
    }
    http = _http(server, body)
    assert not http.get("errors"), http
    assert _shape(http) == _grpc(stub, body)
    assert (http["decision"], http["blocked_by"]) == (decision, blocked_by)
    assert "session" in http["layers"] and "identity" in http["layers"]


def test_an_scp_blocked_user_request_names_the_scp_on_both_doors(
    server: Server, stub: pb_grpc.AuthorizerStub
) -> None:
    body = {"principal": ALICE, "action": "s3:GetObject", "resource": "arn:aws:s3:::elsewhere/x"}
    http = _http(server, body)
    assert http["matched"][0]["policy"] == "organization/scps/Perimeter.json"
    assert _shape(http) == _grpc(stub, body)
    assert (http["reason"], http["blocked_by"]) == ("explicitDeny", ["scp"])


def test_a_bad_session_field_is_refused_naming_it_on_both_doors(
    server: Server, stub: pb_grpc.AuthorizerStub
) -> None:
    body = {
        "principal": SESSION_ARN,
        "principal_type": "role_session",
        "action": "s3:GetObject",
        "resource": "arn:aws:s3:::data/x",
        "session": {"mfa_age": -5},
    }
    status, answer = server.call("/v1/is-authorized", body)
    assert status == 400 and "session.mfa_age" in answer["error"]["message"], answer
    with pytest.raises(grpc.RpcError) as caught:
        _grpc(stub, body)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "session.mfa_age" in caught.value.details()


def test_session_policy_json_that_does_not_parse_is_invalid_argument(
    stub: pb_grpc.AuthorizerStub,
) -> None:
    message = pb.IsAuthorizedRequest(
        principal=SESSION_ARN,
        principal_type="role_session",
        action="s3:GetObject",
        resource="arn:aws:s3:::data/x",
        session=pb.Session(policies_json=["{not json"]),
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.IsAuthorized(message, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("session.policies_json[0]: invalid JSON")


def test_an_old_style_user_request_keeps_its_shape(tmp_path: Path) -> None:
    """A store without accounts or an organization: identity policies only, and the answer
    has exactly today's keys, no "layers" or "blocked_by"."""
    srv = start_server(tmp_path)
    try:
        status, answer = srv.call(
            "/v1/is-authorized",
            {"principal": "bob", "action": "s3:GetObject", "resource": "arn:aws:s3:::x/y"},
        )
        assert status == 200 and "decision" in answer
        assert "layers" not in answer and "blocked_by" not in answer
    finally:
        assert srv.stop() == 0


def test_the_python_clients_send_a_session_and_read_blocked_by(server: Server) -> None:
    clients = [HttpClient(f"http://{server.http}", timeout=10), GrpcClient(server.grpc, timeout=10)]
    for client in clients:
        with client:
            denied = client.is_authorized(
                SESSION_ARN, "s3:PutObject", "arn:aws:s3:::data/x",
                principal_type="role_session", session=SESSION,
            )  # fmt: skip
            assert (denied.decision, denied.blocked_by) == ("Deny", ("session",)), client
            assert "session" in denied.layers
            allowed = client.is_authorized(
                SESSION_ARN, "s3:GetObject", "arn:aws:s3:::data/x",
                principal_type="role_session", session=SESSION,
            )  # fmt: skip
            assert allowed.allowed and allowed.blocked_by == (), client
            scp = client.is_authorized(ALICE, "s3:GetObject", "arn:aws:s3:::elsewhere/x")
            assert scp.blocked_by == ("scp",), client
            with pytest.raises(PdpRequestError, match=r"session\.mfa_age"):
                client.is_authorized(
                    SESSION_ARN, "s3:GetObject", "arn:aws:s3:::data/x",
                    principal_type="role_session", session={"mfa_age": -5},
                )  # fmt: skip


CLAIMS = {  # everything the decision log keeps of a session, and what it must not
    **SESSION,
    "policy_arns": [f"arn:aws:iam::{MEMBER}:policy/Nothing"],  # not in the store
    "transitive_tag_keys": ["team"],
    "source_identity": "alice",
    "role_chain": [f"arn:aws:iam::{MEMBER}:role/Hop"],
}


def _logged(server: Server, request_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The decision-log lines of these requests, once the writer has written them all."""
    path = server.store.parent / "decisions.jsonl"
    deadline = time.monotonic() + 20
    while True:
        found: dict[str, dict[str, Any]] = {}
        if path.exists():
            for text in path.read_text().splitlines():
                line = json.loads(text)
                if line.get("request_id") in request_ids:
                    found[line["request_id"]] = line
        if found.keys() == request_ids or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_the_decision_log_keeps_what_a_session_claimed_from_both_doors(
    server: Server, stub: pb_grpc.AuthorizerStub
) -> None:
    body = {
        "principal": SESSION_ARN,
        "principal_type": "role_session",
        "action": "s3:PutObject",
        "resource": "arn:aws:s3:::data/x",
        "session": CLAIMS,
        "request_id": "log-http",
    }
    assert _http(server, body)["decision"] == "Deny"
    message = pb.IsAuthorizedRequest(
        principal=SESSION_ARN,
        principal_type="role_session",
        action="s3:PutObject",
        resource="arn:aws:s3:::data/x",
        request_id="log-grpc",
        session=pb.Session(
            policies_json=[json.dumps(READ_DATA)],
            policy_arns=CLAIMS["policy_arns"],
            tags=CLAIMS["tags"],
            transitive_tag_keys=CLAIMS["transitive_tag_keys"],
            mfa_present=True,
            mfa_age=60,
            source_identity="alice",
            role_chain=CLAIMS["role_chain"],
        ),
    )
    assert stub.IsAuthorized(message, timeout=10).decision == "Deny"
    user = {"principal": ALICE, "action": "s3:GetObject", "resource": "arn:aws:s3:::elsewhere/x"}
    assert _http(server, {**user, "request_id": "log-user"})["blocked_by"] == ["scp"]
    lines = _logged(server, {"log-http", "log-grpc", "log-user"})
    expected = {
        "tags": {"team": "blue"},
        "policies": 1,  # the count: the document is the caller's
        "policy_arns": CLAIMS["policy_arns"],
        "role_chain": CLAIMS["role_chain"],
        "source_identity": "alice",
        "mfa_present": True,
        "mfa_age": 60,
    }
    for door in ("log-http", "log-grpc"):
        line = lines[door]
        assert line["principal_type"] == "role_session", line
        # the store has no such managed policy: Deny, and the log shows what was claimed
        assert "session.policy_arns[0]" in line["errors"][0], line
        assert line["session"] == expected, door
        assert "s3:GetObject" not in json.dumps(line), door  # no session policy document
    assert "session" not in lines["log-user"] and "principal_type" not in lines["log-user"]
