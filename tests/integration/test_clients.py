"""The client library against a real pdp on loopback, and when pdp cannot be reached."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from pdp_client import (
    AsyncGrpcClient,
    Decision,
    GrpcClient,
    HttpClient,
    PdpRequestError,
    PdpUnavailable,
)
from tests.integration.servers import Server, free_port, start_server

OBJECT = "arn:aws:s3:::example-bucket/report.csv"
ROOT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("clients"))
    yield srv
    srv.stop()


@pytest.fixture(params=["grpc", "http"])
def client(request: pytest.FixtureRequest, server: Server) -> Iterator[GrpcClient | HttpClient]:
    if request.param == "grpc":
        c: GrpcClient | HttpClient = GrpcClient(server.grpc, timeout=5)
    else:
        c = HttpClient(f"http://{server.http}", timeout=5)
    yield c
    c.close()


def test_decisions_through_both_transports(client: GrpcClient | HttpClient) -> None:
    allow = client.is_authorized("bob", "s3:GetObject", OBJECT, {"aws:SourceIp": "203.0.113.9"})
    assert (allow.decision, allow.reason, allow.policy_version) == ("Allow", "allowed", "0002")
    assert allow.allowed and allow.matched[0].sid == "ReadWriteObjects"
    deny = client.is_authorized("bob", "s3:DeleteObject", OBJECT)
    assert (deny.decision, deny.reason) == ("Deny", "explicitDeny") and not deny.allowed
    mfa = client.is_authorized(
        "bob",
        "s3:DeleteObject",
        "arn:aws:s3:::home-bucket/home/bob/x",
        {"aws:MultiFactorAuthPresent": True, "aws:MultiFactorAuthAge": 30},
    )
    assert mfa.allowed
    listed = client.is_authorized(
        "bob", "orders:Update", "arn:app:orders:::order/1", {"app:OrderTeam": ["blue"]}
    )
    assert not listed.allowed  # a list reached pdp: without ForAnyValue it is an error, a Deny
    assert "needs ForAllValues: or ForAnyValue:" in listed.errors[0]
    root = client.is_authorized(
        "arn:aws:iam::123456789012:root", "iam:CreateUser", "*", principal_type="root"
    )
    assert root.allowed and root.root
    batch = client.batch_is_authorized(
        [
            {"principal": "bob", "action": "s3:GetObject", "resource": OBJECT},
            {"principal": "carol", "action": "dynamodb:PutItem", "resource": "*"},
        ]
    )
    assert [d.reason for d in batch] == ["allowed", "implicitDeny"]


def test_malformed_requests_raise(client: GrpcClient | HttpClient) -> None:
    with pytest.raises(PdpRequestError, match="action: required"):
        client.is_authorized("bob", "", OBJECT)


def test_engine_errors_are_denies(client: GrpcClient | HttpClient) -> None:
    d = client.is_authorized("mallory", "s3:GetObject", OBJECT)
    assert not d.allowed and "unknown principal" in d.errors[0]


def test_async_client(server: Server) -> None:
    async def main() -> tuple[Decision, list[Decision]]:
        async with AsyncGrpcClient(server.grpc, timeout=5) as pdp:
            one = await pdp.is_authorized("bob", "s3:GetObject", OBJECT)
            many = await asyncio.gather(
                *[pdp.is_authorized("bob", a, OBJECT) for a in ("s3:GetObject", "s3:DeleteObject")]
            )
            return one, list(many)

    one, many = asyncio.run(main())
    assert one.allowed and [d.reason for d in many] == ["allowed", "explicitDeny"]


def unreachable_clients(port: int, **kwargs: object) -> list[GrpcClient | HttpClient]:
    return [
        GrpcClient(f"127.0.0.1:{port}", **kwargs),  # type: ignore[arg-type]
        HttpClient(f"http://127.0.0.1:{port}", **kwargs),
    ]  # type: ignore[arg-type]


def test_unreachable_pdp_fails_closed_after_retries() -> None:
    port = free_port()  # nothing listens there
    for pdp in unreachable_clients(port, timeout=1.0, retries=2):
        started = time.monotonic()
        d = pdp.is_authorized("bob", "s3:GetObject", OBJECT)
        assert (d.decision, d.reason) == ("Deny", "implicitDeny")
        assert d.errors[0].startswith("pdp unreachable:")
        assert time.monotonic() - started < 10
        assert all(
            not x.allowed
            for x in pdp.batch_is_authorized(
                [{"principal": "bob", "action": "s3:GetObject", "resource": OBJECT}] * 2
            )
        )
        pdp.close()
    for pdp in unreachable_clients(port, timeout=1.0, retries=1, on_unavailable="raise"):
        with pytest.raises(PdpUnavailable):
            pdp.is_authorized("bob", "s3:GetObject", OBJECT)
        pdp.close()
    with pytest.raises(ValueError, match="never fail open"):
        HttpClient(on_unavailable="allow")


def test_async_client_unreachable() -> None:
    async def main() -> Decision:
        async with AsyncGrpcClient(f"127.0.0.1:{free_port()}", timeout=0.5, retries=1) as pdp:
            return await pdp.is_authorized("bob", "s3:GetObject", OBJECT)

    d = asyncio.run(main())
    assert not d.allowed and d.errors[0].startswith("pdp unreachable:")


def test_a_silent_server_times_out_as_a_deny() -> None:
    """A listener that accepts connections and never answers: each attempt hits the timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        for pdp in unreachable_clients(port, timeout=0.3, retries=0):
            started = time.monotonic()
            d = pdp.is_authorized("bob", "s3:GetObject", OBJECT)
            elapsed = time.monotonic() - started
            assert not d.allowed and d.errors[0].startswith("pdp unreachable:")
            assert 0.25 < elapsed < 5, elapsed
            pdp.close()


def load_example() -> Flask:
    spec = importlib.util.spec_from_file_location(
        "orders_service", ROOT_DIR / "examples" / "orders_service.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.create_app  # type: ignore[no-any-return]


def test_flask_helper_in_the_example_service(server: Server) -> None:
    app = load_example()(HttpClient(f"http://{server.http}", timeout=5))
    web = app.test_client()
    assert web.get("/orders/42", headers={"X-User": "bob"}).status_code == 200
    denied = web.delete("/orders/42", headers={"X-User": "bob"})
    assert denied.status_code == 403
    assert denied.get_json() == {
        "error": "forbidden",
        "action": "orders:Delete",
        "resource": "arn:app:orders:::order/42",
        "reason": "explicitDeny",
        "errors": [],
    }
    assert (
        web.put("/orders/42", headers={"X-User": "bob"}, json={"item": "mouse"}).status_code == 200
    )  # bob is on team blue, like order 42
    assert web.put("/orders/43", headers={"X-User": "bob"}, json={}).status_code == 403
    assert web.get("/orders/42", headers={"X-User": "carol"}).status_code == 403  # not a developer
    assert web.get("/orders/42").status_code == 401  # no principal
    offline = load_example()(
        HttpClient(f"http://127.0.0.1:{free_port()}", timeout=0.5, retries=0)
    ).test_client()
    closed = offline.get("/orders/42", headers={"X-User": "bob"})
    assert closed.status_code == 403 and closed.get_json()["errors"][0].startswith(
        "pdp unreachable"
    )
