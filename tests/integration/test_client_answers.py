"""Clients against servers that answer wrongly (a proxy, a bug): a batch answer must hold one
result per request, and any malformed answer fails closed like an unreachable pdp."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from pdp_client import AsyncGrpcClient, Decision, GrpcClient, HttpClient, PdpUnavailable
from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc

REQUEST = {"principal": "bob", "action": "s3:GetObject", "resource": "*"}
ALLOW = pb.IsAuthorizedResponse(decision="Allow", reason="allowed", policy_version="0002")
ALLOW_JSON = b'{"decision":"Allow","reason":"allowed","matched":[],"errors":[],"root":false}'


class _Short(pb_grpc.AuthorizerServicer):
    """Answers every batch with one Allow, whatever was asked."""

    def BatchIsAuthorized(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802
        return pb.BatchIsAuthorizedResponse(results=[ALLOW], policy_version="0002")


@pytest.fixture(scope="module")
def short_grpc() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_AuthorizerServicer_to_server(_Short(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


ANSWERS = {
    "/empty": b'{"results": []}',
    "/short": b'{"results": [' + ALLOW_JSON + b"]}",
    "/long": b'{"results": [' + b",".join([ALLOW_JSON] * 4) + b"]}",
    "/none": b'{"policy_version": "0002"}',
    "/list": b"[]",
    "/text": b"Allow",
    "/items": b'{"results": ["Allow", "Allow", "Allow"]}',
    "/broken": b'{"results": [{"decision": "Allow", "matched": [{}]}, {}, {}]}',
}


class _Lying(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = ANSWERS[self.path.split("/v1/")[0]]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def lying_http() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Lying)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _all_denied(decisions: list[Decision], count: int) -> bool:
    return len(decisions) == count and not any(d.allowed for d in decisions)


def test_grpc_batch_with_too_few_results_fails_closed(short_grpc: str) -> None:
    with GrpcClient(short_grpc, timeout=5) as client:
        answer = client.batch_is_authorized([REQUEST] * 3)
        assert _all_denied(answer, 3)
        assert "1 results for 3 requests" in answer[0].errors[0]
        assert [d.allowed for d in client.batch_is_authorized([REQUEST])] == [True]
    with GrpcClient(short_grpc, timeout=5, on_unavailable="raise") as client:
        with pytest.raises(PdpUnavailable, match="1 results for 3 requests"):
            client.batch_is_authorized([REQUEST] * 3)


def test_async_batch_with_too_few_results_fails_closed(short_grpc: str) -> None:
    async def main() -> list[Decision]:
        async with AsyncGrpcClient(short_grpc, timeout=5) as client:
            return await client.batch_is_authorized([REQUEST] * 3)

    assert _all_denied(asyncio.run(main()), 3)


@pytest.mark.parametrize("path", sorted(ANSWERS))
def test_http_wrong_batch_answers_fail_closed(lying_http: str, path: str) -> None:
    with HttpClient(lying_http + path, timeout=5, retries=0) as client:
        answer = client.batch_is_authorized([REQUEST] * 3)
        assert _all_denied(answer, 3), answer
        assert answer[0].errors[0].startswith("pdp unreachable:")


@pytest.mark.parametrize("path", ["/list", "/text", "/broken"])
def test_http_malformed_single_answers_fail_closed(lying_http: str, path: str) -> None:
    with HttpClient(lying_http + path, timeout=5, retries=0) as client:
        decision = client.is_authorized("bob", "s3:GetObject", "*")
        assert not decision.allowed and decision.errors[0].startswith("pdp unreachable:")
