"""Each kind of the error table (server/pdp_server/errors.py) as a real `pdp serve` answers it on
loopback: the HTTP status and `{"error": {"code", "message"}}` body, the gRPC status code with
the code in the trailing metadata `pdp-error-code`, and the code on the clients' exceptions.
(body_timeout and busy over HTTP: test_http_limits; busy over gRPC: test_grpc_limits; internal:
test_admin_errors; deadline_exceeded: test_serving and test_batch_limits.)"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from pdp_client import GrpcClient, HttpClient, PdpRequestError, PdpUnavailable
from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc
from pdp_server.errors import KINDS
from tests.integration.servers import Server, start_server

OBJECT = "arn:aws:s3:::example-bucket/report.csv"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("wire-errors")
    srv = start_server(
        tmp,
        PDP_DECISION_LOG=str(tmp / "decisions.jsonl"),
        PDP_RUN_DIR=str(tmp / "run"),
        PDP_MAX_BODY="2000",
    )
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def unready(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with an empty store (never ready) and no admin token."""
    tmp = tmp_path_factory.mktemp("wire-errors-unready")
    (tmp / "store" / "versions").mkdir(parents=True)
    srv = start_server(tmp, store=tmp / "store", token=None, wait_ready=False)
    yield srv
    assert srv.stop() == 0


def assert_http(answer: tuple[int, Any], code: str, message: str) -> dict[str, Any]:
    """The answer is kind `code`'s status with its error object; `message` starts its text."""
    status, body = answer
    assert status == KINDS[code].http, answer
    error: dict[str, Any] = body["error"]
    assert error["code"] == code and error["message"].startswith(message), answer
    return error


def grpc_error(target: str, message: Any, method: str = "IsAuthorized") -> grpc.RpcError:
    with grpc.insecure_channel(target) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            getattr(pb_grpc.AuthorizerStub(channel), method)(message, timeout=10)
    return caught.value


def assert_grpc(exc: grpc.RpcError, code: str, message: str) -> None:
    assert exc.code() == grpc.StatusCode[KINDS[code].grpc], exc
    assert exc.details().startswith(message), exc
    assert ("pdp-error-code", code) in tuple(exc.trailing_metadata()), exc  # type: ignore[attr-defined]


def test_invalid_request(server: Server) -> None:
    body = {"principal": "bob", "action": "s3:GetObject"}
    assert_http(server.call("/v1/is-authorized", body), "invalid_request", "resource: required")
    exc = grpc_error(server.grpc, pb.IsAuthorizedRequest(principal="bob", action="s3:GetObject"))
    assert_grpc(exc, "invalid_request", "resource: required")
    batch = pb.BatchIsAuthorizedRequest(requests=[pb.IsAuthorizedRequest(principal="bob")])
    exc = grpc_error(server.grpc, batch, "BatchIsAuthorized")
    assert_grpc(exc, "invalid_request", "requests[0].action: required")


def test_undecodable_grpc_bytes_are_invalid_request(server: Server) -> None:
    with grpc.insecure_channel(server.grpc) as channel:
        call = channel.unary_unary("/pdp.v1.Authorizer/IsAuthorized")
        with pytest.raises(grpc.RpcError) as caught:
            call(b"\xff\xff\xff", timeout=10)
    assert_grpc(caught.value, "invalid_request", "request: not a valid pdp.v1.IsAuthorizedRequest")


def test_body_too_large(server: Server) -> None:
    raw = b'{"principal": "' + b"x" * 3000 + b'"}'
    answer = server.call("/v1/is-authorized", raw=raw)
    assert_http(answer, "body_too_large", "body: larger than 2000 bytes")


def test_unauthenticated_says_how_to_authenticate(server: Server) -> None:
    request = urllib.request.Request(f"http://{server.admin}/admin/status")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    with caught.value as response:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="pdp-admin"'
    answer = server.call("/admin/status", admin=True, token="wrong")
    assert_http(answer, "unauthenticated", "missing or wrong bearer token")


def test_not_found_and_method_not_allowed(server: Server) -> None:
    assert_http(server.call("/v1/nothing"), "not_found", "The requested URL was not found")
    answer = server.call("/admin/access-advisor/nobody", admin=True)
    assert_http(answer, "not_found", "no user 'nobody' in the store")
    answer = server.call("/v1/is-authorized", method="GET")
    assert_http(answer, "method_not_allowed", "The method is not allowed")


def test_reload_refused(server: Server) -> None:
    versions = server.store / "versions"
    shutil.copytree(versions / "0002", versions / "0009-broken")
    (versions / "0009-broken" / "users" / "bob.json").write_text('{"groups": ["ghosts"]}')
    answer = server.call("/admin/reload", {"version": "0009-broken"}, admin=True)
    error = assert_http(answer, "reload_refused", "version '0009-broken' refused: 1 problem")
    assert answer[1]["version"] == "0002"
    assert error["problems"] == [
        {
            "code": "missing_reference",
            "source": "users/bob.json",
            "path": "groups[0]",
            "message": 'group "ghosts" does not exist',
            "hint": None,
        }
    ]


def test_the_clients_expose_the_code(server: Server) -> None:
    with HttpClient(f"http://{server.http}") as http:
        with pytest.raises(PdpRequestError) as refused:
            http.is_authorized("bob", "s3:GetObject", "*", {"": 1})
        assert refused.value.code == "invalid_request"
        assert str(refused.value) == "context: keys must not be empty"
        with pytest.raises(PdpRequestError) as refused:
            http.is_authorized("bob", "s3:GetObject", "*", {"app:pad": "x" * 3000})
        assert refused.value.code == "body_too_large"
        assert str(refused.value) == "body: larger than 2000 bytes"
    with GrpcClient(server.grpc) as client:
        with pytest.raises(PdpRequestError) as refused:
            client.is_authorized("bob", "s3:GetObject", "*", {"": 1})
        assert refused.value.code == "invalid_request"
        assert str(refused.value) == "context: keys must not be empty"


def test_not_ready_and_admin_disabled(unready: Server) -> None:
    reason = "not ready: "
    error = assert_http(unready.call("/readyz"), "not_ready", reason)
    assert unready.call("/readyz")[1]["status"] == "loading"
    body = {"principal": "bob", "action": "s3:GetObject", "resource": OBJECT}
    assert assert_http(unready.call("/v1/is-authorized", body), "not_ready", reason) == error
    assert_grpc(grpc_error(unready.grpc, pb.IsAuthorizedRequest(**body)), "not_ready", reason)
    batch = pb.BatchIsAuthorizedRequest(requests=[pb.IsAuthorizedRequest(**body)])
    assert_grpc(grpc_error(unready.grpc, batch, "BatchIsAuthorized"), "not_ready", reason)
    answer = unready.call("/admin/status", admin=True, token="anything")
    assert_http(answer, "admin_disabled", "admin disabled: no admin token configured")


def test_the_clients_expose_not_ready(unready: Server) -> None:
    clients: list[GrpcClient | HttpClient] = [
        HttpClient(f"http://{unready.http}", retries=0, on_unavailable="raise"),
        GrpcClient(unready.grpc, retries=0, on_unavailable="raise"),
    ]
    for client in clients:
        with client, pytest.raises(PdpUnavailable) as caught:
            client.is_authorized("bob", "s3:GetObject", OBJECT)
        assert caught.value.code == "not_ready", caught.value
        assert "not ready: " in str(caught.value), caught.value


def test_an_unreachable_pdp_has_no_code(tmp_path: Path) -> None:
    with HttpClient("http://127.0.0.1:1", retries=0, on_unavailable="raise") as client:
        with pytest.raises(PdpUnavailable) as caught:
            client.is_authorized("bob", "s3:GetObject", OBJECT)
    assert caught.value.code is None
