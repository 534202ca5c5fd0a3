"""Calls whose HTTP/2 headers arrive but whose message never does ("half-sent") hold no
thread: a worker keeps answering, and such a call gives its slot back after PDP_BODY_TIMEOUT.

The frames are written by hand (HPACK literals without Huffman coding need no library)."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.servers import Server, start_server

LIMIT = 20
MESSAGE_TIMEOUT = 2.0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("half-sent"),
        PDP_GRPC_MAX_CONCURRENT=str(LIMIT),
        PDP_BODY_TIMEOUT=str(MESSAGE_TIMEOUT),
    )
    yield srv
    srv.stop()


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def _literal(name: str, value: str) -> bytes:
    """An HPACK literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    out = b"\x00"
    for text in (name.encode(), value.encode()):
        assert len(text) < 127
        out += bytes([len(text)]) + text
    return out


def _half_sent(address: str, count: int) -> socket.socket:
    """One connection with `count` IsAuthorized calls: HEADERS without END_STREAM, no DATA."""
    connection = socket.create_connection(tuple(address.rsplit(":", 1)))  # type: ignore[arg-type]
    data = PREFACE + _frame(0x4, 0, 0, b"")  # SETTINGS
    headers = {
        ":method": "POST",
        ":scheme": "http",
        ":authority": address,
        ":path": "/pdp.v1.Authorizer/IsAuthorized",
        "content-type": "application/grpc",
        "te": "trailers",
    }
    block = b"".join(_literal(name, value) for name, value in headers.items())
    for i in range(count):
        data += _frame(0x1, 0x4, 2 * i + 1, block)  # HEADERS, END_HEADERS
    connection.sendall(data)
    return connection


def test_half_sent_calls_do_not_stall_decisions_or_health(server: Server) -> None:
    connections = [_half_sent(server.grpc, 4) for _ in range(4)]  # 16 calls
    try:
        time.sleep(0.3)  # the server has taken them in
        started = time.monotonic()
        assert server.grpc_status(timeout=2) == grpc.StatusCode.OK
        with grpc.insecure_channel(server.grpc) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2
            )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert time.monotonic() - started < 2
    finally:
        for connection in connections:
            connection.close()


def test_a_half_sent_call_gives_its_slot_back_after_the_message_timeout(server: Server) -> None:
    connection = _half_sent(server.grpc, LIMIT)
    try:
        time.sleep(0.3)
        assert (
            server.grpc_status(timeout=2) == grpc.StatusCode.RESOURCE_EXHAUSTED
        )  # all slots are taken
        deadline = time.monotonic() + MESSAGE_TIMEOUT + 3
        while server.grpc_status(timeout=2) != grpc.StatusCode.OK:
            assert time.monotonic() < deadline, "half-sent calls kept their slots"
            time.sleep(0.1)
    finally:
        connection.close()
    log = server.log.read_text()
    assert "Traceback" not in log, log[-2000:]
