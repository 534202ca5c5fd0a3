"""`pdp serve` for real: HTTP and gRPC on loopback, admin, reloads, workers, signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc
from tests.integration.servers import TOKEN, Server, copy_store, start_server

OBJECT = "arn:aws:s3:::example-bucket/report.csv"
ROOT = "arn:aws:iam::123456789012:root"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("serve")
    srv = start_server(tmp, PDP_MAX_BATCH="5", PDP_MAX_BODY="4096")
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def stub(server: Server) -> Iterator[pb_grpc.AuthorizerStub]:
    with grpc.insecure_channel(server.grpc) as channel:
        yield pb_grpc.AuthorizerStub(channel)


# --- HTTP -----------------------------------------------------------------------------------


def test_http_allow_explicit_and_implicit_deny(server: Server) -> None:
    allow = server.decide("bob", "s3:GetObject", OBJECT)
    assert allow == {
        "decision": "Allow",
        "reason": "allowed",
        "errors": [],
        "policy_version": "0002",
        "root": False,
        "matched": [
            {
                "policy": "policies/S3BucketSpecificAccess.json",
                "statement": 1,
                "sid": "ReadWriteObjects",
                "effect": "Allow",
            }
        ],
    }
    deny = server.decide("bob", "s3:DeleteObject", OBJECT)
    assert (deny["decision"], deny["reason"]) == ("Deny", "explicitDeny")
    assert deny["matched"][0]["sid"] == "DenyDeletesWithoutMFA"
    with_mfa = server.decide(
        "bob",
        "s3:DeleteObject",
        "arn:aws:s3:::home-bucket/home/bob/x",
        **{"aws:MultiFactorAuthPresent": True},
    )
    assert with_mfa["decision"] == "Allow"
    implicit = server.decide("bob", "iam:CreateUser", "*")
    assert (implicit["decision"], implicit["reason"], implicit["matched"]) == (
        "Deny",
        "implicitDeny",
        [],
    )
    body = {
        "principal": ROOT,
        "principal_type": "root",
        "action": "iam:CreateUser",
        "resource": "*",
    }
    root = server.call("/v1/is-authorized", body)[1]
    assert (root["decision"], root["root"]) == ("Allow", True)


def test_http_engine_errors_are_denies_not_400s(server: Server) -> None:
    unknown = server.decide("mallory", "s3:GetObject", OBJECT)
    assert unknown["decision"] == "Deny" and "unknown principal" in unknown["errors"][0]
    forged = server.decide("bob", "s3:GetObject", OBJECT, **{"aws:username": "alice"})
    assert forged["decision"] == "Deny" and "derived from the principal" in forged["errors"][0]


def test_http_batch(server: Server) -> None:
    status, body = server.call(
        "/v1/batch-is-authorized",
        {
            "requests": [
                {"principal": "bob", "action": "s3:GetObject", "resource": OBJECT},
                {"principal": "carol", "action": "secretsmanager:GetSecretValue", "resource": "*"},
            ]
        },
    )
    assert status == 200 and body["policy_version"] == "0002"
    assert [r["reason"] for r in body["results"]] == ["allowed", "explicitDeny"]


BAD_HTTP = [
    (b"{not json", "body: invalid JSON"),
    (b"[1, 2]", "body: must be a JSON object"),
    (
        json.dumps({"principal": "bob", "action": 5, "resource": "*"}).encode(),
        "action: must be a string",
    ),
    (json.dumps({"principal": "bob", "resource": "*"}).encode(), "action: required"),
    (
        json.dumps(
            {"principal": "bob", "action": "s3:GetObject", "resource": "*", "colour": "red"}
        ).encode(),
        "colour: unknown field",
    ),
    (
        json.dumps(
            {
                "principal": "bob",
                "action": "s3:GetObject",
                "resource": "*",
                "context": {"k:v": {"deep": 1}},
            }
        ).encode(),
        'context["k:v"]: must be a string, number or boolean',
    ),
    (
        json.dumps(
            {"principal": "bob", "action": "s3:GetObject", "resource": "*", "context": ["a"]}
        ).encode(),
        "context: must be an object",
    ),
    (b'{"principal": "' + b"x" * 5000 + b'"}', "body: larger than 4096 bytes"),
]


@pytest.mark.parametrize(("raw", "message"), BAD_HTTP)
def test_http_bad_input_is_a_400_naming_the_problem(
    server: Server, raw: bytes, message: str
) -> None:
    status, body = server.call("/v1/is-authorized", raw=raw)
    code = "body_too_large" if message.startswith("body: larger than") else "invalid_request"
    assert status == 400 and body["error"]["code"] == code, body
    assert body["error"]["message"].startswith(message), body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"requests": "all"}, "requests: must be a list"),
        ({"requests": [], "extra": 1}, 'body: must be {"requests": [...]}'),
        (
            {"requests": [{"principal": "bob", "action": "s3:GetObject", "resource": "*"}] * 6},
            "requests: 6 requests, over the limit of 5",
        ),
        (
            {"requests": [{"principal": "bob", "action": "s3:GetObject"}]},
            "requests[0].resource: required",
        ),
    ],
)
def test_http_bad_batches(server: Server, body: Any, message: str) -> None:
    status, answer = server.call("/v1/batch-is-authorized", body)
    assert status == 400 and answer["error"]["code"] == "invalid_request", answer
    assert answer["error"]["message"].startswith(message), answer


def test_health_readiness_metrics_and_openapi(server: Server) -> None:
    assert server.call("/healthz") == (200, {"status": "ok"})
    assert server.call("/readyz") == (200, {"status": "ready", "policy_version": "0002"})
    server.decide("bob", "s3:GetObject", OBJECT)
    status, text = server.call("/metrics")
    assert status == 200
    assert 'decision="Allow",reason="allowed"}' in text
    assert "pdp_decision_latency_seconds_bucket" in text and 'le="5e-06"' in text
    assert "pdp_cache_hits_total" in text and 'version="0002"} 1' in text
    assert "pdp_reloads_total" in text
    status, spec = server.call("/openapi.json")
    repo = Path(__file__).resolve().parents[2] / "server" / "pdp_server" / "openapi.json"
    assert status == 200 and spec == json.loads(repo.read_text())
    assert set(spec["paths"]) >= {"/v1/is-authorized", "/v1/batch-is-authorized"}
    assert server.call("/nope")[0] == 404


# --- gRPC -----------------------------------------------------------------------------------


def request(
    principal: str = "bob",
    action: str = "s3:GetObject",
    resource: str = OBJECT,
    **context: pb.Value,
) -> pb.IsAuthorizedRequest:
    return pb.IsAuthorizedRequest(
        principal=principal, action=action, resource=resource, context=context
    )


def test_grpc_decisions(stub: pb_grpc.AuthorizerStub) -> None:
    allow = stub.IsAuthorized(request(), timeout=10)
    assert (allow.decision, allow.reason, allow.policy_version) == ("Allow", "allowed", "0002")
    assert allow.matched[0].sid == "ReadWriteObjects"
    deny = stub.IsAuthorized(request(action="s3:DeleteObject"), timeout=10)
    assert (deny.decision, deny.reason) == ("Deny", "explicitDeny")
    mfa = stub.IsAuthorized(
        request(
            action="s3:DeleteObject",
            resource="arn:aws:s3:::home-bucket/home/bob/x",
            **{"aws:MultiFactorAuthPresent": pb.Value(bool_value=True)},
        ),
        timeout=10,
    )
    assert mfa.decision == "Allow"
    tags = stub.IsAuthorized(
        request(
            principal="bob",
            action="ec2:StopInstances",
            resource="arn:aws:ec2:us-east-1:123456789012:instance/i-1",
            **{
                "aws:ResourceTag/team": pb.Value(string_value="blue"),
                "aws:SourceIp": pb.Value(string_value="203.0.113.5"),
            },
        ),
        timeout=10,
    )
    assert tags.reason == "allowed"
    batch = stub.BatchIsAuthorized(
        pb.BatchIsAuthorizedRequest(
            requests=[request(), request(action="iam:CreateUser", resource="*")]
        ),
        timeout=10,
    )
    assert [r.reason for r in batch.results] == ["allowed", "implicitDeny"]
    assert batch.policy_version == "0002"


@pytest.mark.parametrize(
    ("message", "detail"),
    [
        (request(action=""), "action: required"),
        (request(principal=""), "principal: required"),
        (
            pb.IsAuthorizedRequest(
                principal="bob", action="s3:GetObject", resource=OBJECT, context={"k:v": pb.Value()}
            ),
            'context["k:v"]: a Value needs',
        ),
        (
            pb.IsAuthorizedRequest(
                principal="bob",
                action="s3:GetObject",
                resource=OBJECT,
                context={
                    "k:v": pb.Value(
                        list_value=pb.ValueList(values=[pb.Value(list_value=pb.ValueList())])
                    )
                },
            ),
            'context["k:v"][0]: lists hold strings',
        ),
        (
            pb.IsAuthorizedRequest(
                principal="bob",
                action="s3:GetObject",
                resource=OBJECT,
                context={f"k:{i}": pb.Value(string_value="v") for i in range(200)},
            ),
            "context: more than 128",
        ),
    ],
)
def test_grpc_bad_input_is_invalid_argument(
    stub: pb_grpc.AuthorizerStub, message: pb.IsAuthorizedRequest, detail: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.IsAuthorized(message, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(detail)


def test_grpc_batch_limit_and_deadline(stub: pb_grpc.AuthorizerStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchIsAuthorized(pb.BatchIsAuthorizedRequest(requests=[request()] * 6), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "requests: 6 requests, over the limit of 5"
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchIsAuthorized(pb.BatchIsAuthorizedRequest(requests=[request()]), timeout=-1)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.parametrize("method", ["IsAuthorized", "BatchIsAuthorized"])
@pytest.mark.parametrize("garbage", [b"\xff\xff\xff", b"\x0a\x01\xff", b"\x0a\x05ab"])
def test_grpc_bytes_that_are_no_message_are_invalid_argument(
    server: Server, method: str, garbage: bytes
) -> None:
    with grpc.insecure_channel(server.grpc) as channel:
        call = channel.unary_unary(
            f"/pdp.v1.Authorizer/{method}",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.RpcError) as caught:
            call(garbage, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("request: not a valid pdp.v1."), caught.value
    log = server.log.read_text()
    assert "Traceback" not in log and "Exception deserializing" not in log


def test_grpc_health_and_reflection(server: Server) -> None:
    with grpc.insecure_channel(server.grpc) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "pdp.v1.Authorizer"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {s.name for r in responses for s in r.list_services_response.service}
        assert {"pdp.v1.Authorizer", "grpc.health.v1.Health"} <= names


# --- admin ----------------------------------------------------------------------------------


def test_admin_requires_the_right_token(server: Server) -> None:
    for token in (None, "wrong", TOKEN[:-1]):
        status, body = server.call("/admin/status", admin=True, token=token)
        assert status == 401 and body == {
            "error": {"code": "unauthenticated", "message": "missing or wrong bearer token"}
        }
    status, body = server.call("/admin/status", admin=True)
    assert status == 200 and body["version"] == "0002" and body["users"] == 3


def test_admin_reload_rollback_and_broken_version(server: Server) -> None:
    versions = server.store / "versions"
    shutil.copytree(versions / "0002", versions / "0003")
    (server.store / "current.tmp").symlink_to("versions/0003")
    os.replace(server.store / "current.tmp", server.store / "current")
    status, body = server.call("/admin/reload", {}, admin=True)
    assert status == 200 and body["version"] == "0003" and body["previous"] in ("0002", "0003")
    assert server.decide("bob", "s3:GetObject", OBJECT)["policy_version"] == "0003"
    status, body = server.call("/admin/reload", {"version": "0001"}, admin=True)
    assert status == 200 and (body["version"], body["previous"]) == ("0001", "0003")
    assert server.decide("bob", "s3:GetObject", OBJECT)["policy_version"] == "0001"
    shutil.copytree(versions / "0002", versions / "0004")
    (versions / "0004" / "users" / "bob.json").write_text('{"groups": ["nope"]}')
    status, body = server.call("/admin/reload", {"version": "0004"}, admin=True)
    assert status == 422 and body["version"] == "0001"
    assert body["error"]["code"] == "reload_refused", body
    assert body["error"]["message"].startswith("version '0004' refused: 1 problem:"), body
    assert body["error"]["problems"] == [
        {
            "code": "missing_reference",
            "source": "users/bob.json",
            "path": "groups[0]",
            "message": 'group "nope" does not exist',
            "hint": None,
        }
    ]
    assert server.decide("bob", "s3:GetObject", OBJECT)["policy_version"] == "0001"
    status, info = server.call("/admin/status", admin=True)
    assert 'group "nope" does not exist' in info["last_reload_error"]
    status, body = server.call("/admin/reload", raw=b'{"version": 3}', admin=True)
    assert status == 400 and body == {
        "error": {"code": "invalid_request", "message": "version: must be a non-empty string"}
    }
    # the CLI calls the same endpoint
    cli = subprocess.run(
        [sys.executable, "-m", "pdp.cli", "reload", "--admin", server.admin],
        env={**os.environ, "PDP_ADMIN_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0 and cli.stdout.startswith("reloaded: version 0003 (was 0001)")


def pdp_reload(
    srv: Server, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PDP_ADMIN_TOKEN")}
    if token:
        environment["PDP_ADMIN_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "pdp.cli", "reload", "--admin", srv.admin, *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_reload_without_a_token_names_where_the_token_comes_from(server: Server) -> None:
    cli = pdp_reload(server)
    assert cli.returncode == 1
    assert "401" in cli.stderr and "no admin token given" in cli.stderr
    assert "PDP_ADMIN_TOKEN" in cli.stderr and "--admin-token-file" in cli.stderr
    cli = pdp_reload(server, token="wrong")
    assert cli.returncode == 1 and "the token from PDP_ADMIN_TOKEN was refused" in cli.stderr


def test_a_refused_reload_prints_each_problem_once(server: Server) -> None:
    versions = server.store / "versions"
    shutil.copytree(versions / "0002", versions / "0005-broken")
    (versions / "0005-broken" / "users" / "bob.json").write_text('{"groups": ["ghosts"]}')
    before = server.call("/admin/status", admin=True)[1]["version"]
    cli = pdp_reload(server, "--version", "0005-broken", token=TOKEN)
    assert cli.returncode == 1
    problem = 'users/bob.json: groups[0]: group "ghosts" does not exist [missing_reference]'
    assert cli.stderr.count('group "ghosts" does not exist') == 1, cli.stderr
    assert cli.stderr.splitlines() == [
        "pdp reload: 422 (reload_refused): version '0005-broken' refused: 1 problem",
        f"  {problem}",
    ]
    assert server.call("/admin/status", admin=True)[1]["version"] == before


# --- separate servers -------------------------------------------------------------------------


def test_not_ready_until_a_version_loads_and_admin_closed_without_token(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "versions").mkdir(parents=True)
    srv = start_server(tmp_path, store=store, token=None, wait_ready=False)
    try:
        assert srv.call("/healthz")[0] == 200
        status, body = srv.call("/readyz")
        assert status == 503 and body["status"] == "loading", body
        assert body["error"]["code"] == "not_ready", body
        assert body["error"]["message"].startswith("not ready: "), body
        assert "versions/ holds no version" in body["error"]["message"], body
        status, body = srv.call(
            "/v1/is-authorized", {"principal": "bob", "action": "s3:GetObject", "resource": OBJECT}
        )
        assert status == 503 and body["error"]["code"] == "not_ready", body
        assert "versions/ holds no version" in body["error"]["message"], body
        with grpc.insecure_channel(srv.grpc) as channel:
            with pytest.raises(grpc.RpcError) as caught:
                pb_grpc.AuthorizerStub(channel).IsAuthorized(request(), timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        staging = store / "versions" / ".staging"
        shutil.copytree(copy_store(tmp_path / "src") / "versions", staging)
        for name in ("0001", "0002"):  # published atomically, one version at a time
            os.rename(staging / name, store / "versions" / name)
        deadline = time.monotonic() + 20
        while srv.call("/readyz")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert srv.call("/readyz") == (200, {"status": "ready", "policy_version": "0002"})
        status, body = srv.call("/admin/status", admin=True, token="anything")
        assert status == 403 and body["error"]["code"] == "admin_disabled", body
        assert "no admin token configured" in body["error"]["message"], body
    finally:
        assert srv.stop() == 0


def wait_all_ready(srv: Server, seconds: float = 30) -> None:
    """Ready answers from 20 fresh connections in a row: both workers have loaded."""
    deadline = time.monotonic() + seconds
    streak = 0
    while streak < 20 and time.monotonic() < deadline:
        try:
            streak = streak + 1 if srv.call("/readyz")[0] == 200 else 0
        except OSError:
            streak = 0
        if not streak:
            time.sleep(0.1)
    assert streak >= 20


def versions_seen(srv: Server, count: int = 40) -> set[str]:
    """Versions answered over many fresh HTTP connections and gRPC channels (every worker)."""
    seen = {srv.decide("bob", "s3:GetObject", OBJECT)["policy_version"] for _ in range(count)}
    for _ in range(count // 4):
        with grpc.insecure_channel(srv.grpc) as channel:
            answer = pb_grpc.AuthorizerStub(channel).IsAuthorized(request(), timeout=10)
            seen.add(answer.policy_version)
    return seen


def test_two_workers_reload_sighup_and_sigterm(tmp_path: Path) -> None:
    srv = start_server(tmp_path, workers=2)
    try:
        wait_all_ready(srv)
        assert versions_seen(srv) == {"0002"}
        status, body = srv.call("/admin/reload", {"version": "0001"}, admin=True)
        assert status == 200 and len(body["workers"]) == 2, body
        assert set(body["workers"].values()) == {"0001"}
        assert versions_seen(srv) == {"0001"}  # every worker, right after the reload returned
        srv.process.send_signal(signal.SIGHUP)  # workers restart; the pin survives
        time.sleep(1.0)
        wait_all_ready(srv)
        assert versions_seen(srv) == {"0001"}
    finally:
        started = time.monotonic()
        assert srv.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 25
