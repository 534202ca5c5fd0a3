"""What a careless or hostile HTTP client can do to a real `pdp serve`: repeated JSON keys,
bodies that never finish, oversized and half-open admin connections. Every wait is bounded."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import TOKEN, Server, start_server

OBJECT = "arn:aws:s3:::example-bucket/report.csv"
BODY_TIMEOUT = 2.0  # PDP_BODY_TIMEOUT for this module's server
ADMIN_TIMEOUT = 1  # PDP_ADMIN_TIMEOUT
QUICK = 2.0  # what "answers quickly" means here: generous, CI cores are noisy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("limits")
    srv = start_server(
        tmp, PDP_BODY_TIMEOUT=str(BODY_TIMEOUT), PDP_ADMIN_TIMEOUT=str(ADMIN_TIMEOUT)
    )
    yield srv
    assert srv.stop() == 0


def timed_call(
    base: str, path: str, raw: bytes | None = None, *, token: str | None = None
) -> tuple[int, Any, float]:
    """One request on a fresh connection, answered within QUICK seconds or a TimeoutError."""
    request = urllib.request.Request(f"http://{base}{path}", data=raw)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=QUICK) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    return status, json.loads(payload), time.monotonic() - started


Connect = Callable[[str], socket.socket]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Raw connections to an address, all closed when the test ends."""
    opened: list[socket.socket] = []

    def open_one(address: str) -> socket.socket:
        host, _, port = address.rpartition(":")
        opened.append(socket.create_connection((host, int(port)), timeout=5))
        return opened[-1]

    yield open_one
    for sock in opened:
        sock.close()


def closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends before it closes the connection; fails if it stays open longer."""
    sock.settimeout(seconds)
    received, still_open = b"", False
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        still_open = True
    assert not still_open, f"connection still open after {seconds} s (got {received!r})"
    return received


# --- repeated JSON keys ---------------------------------------------------------------------

REQUEST = '"action": "s3:GetObject", "resource": "arn:aws:s3:::example-bucket/report.csv"'
IP = '"aws:SourceIp": "203.0.113.9"'
OTHER_IP = '"aws:SourceIp": "10.0.0.1"'


def batch(*items: str) -> bytes:
    return ('{"requests": [' + ", ".join(items) + "]}").encode()


DUPLICATES = [
    (
        "/v1/is-authorized",
        f'{{"principal": "carol", {REQUEST}, "principal": "bob"}}'.encode(),
        'body: duplicate key "principal"',
    ),
    (
        "/v1/is-authorized",
        f'{{"principal": "bob", {REQUEST}, "context": {{{IP}, {OTHER_IP}}}}}'.encode(),
        'context: duplicate key "aws:SourceIp"',
    ),
    (  # an escape in the text takes the slow path, which must find the repeat too
        "/v1/is-authorized",
        f'{{"principal": "carol", {REQUEST}, "princip\\u0061l": "bob"}}'.encode(),
        'body: duplicate key "principal"',
    ),
    (
        "/v1/batch-is-authorized",
        batch(
            f'{{"principal": "bob", {REQUEST}}}',
            f'{{"principal": "bob", {REQUEST}}}',
            f'{{"principal": "bob", {REQUEST}, "context": {{{IP}, {IP}}}}}',
        ),
        'requests[2].context: duplicate key "aws:SourceIp"',
    ),
    (
        "/v1/batch-is-authorized",
        f'{{"requests": [], "requests": [{{"principal": "bob", {REQUEST}}}]}}'.encode(),
        'body: duplicate key "requests"',
    ),
]


@pytest.mark.parametrize(("path", "raw", "message"), DUPLICATES)
def test_http_repeated_json_keys_are_a_400_naming_the_key(
    server: Server, path: str, raw: bytes, message: str
) -> None:
    """A repeated key is refused, not decided for whichever value came last."""
    status, body, _ = timed_call(server.http, path, raw)
    assert (status, body) == (400, {"error": {"code": "invalid_request", "message": message}})


def test_http_escapes_without_repeats_are_decided(server: Server) -> None:
    """The slow path (taken for text with escapes) decides bodies that repeat nothing."""
    raw = f'{{"principal": "b\\u006fb", {REQUEST}, "context": {{"aws:S\\u006furceIp": "1.2.3.4"}}}}'
    status, body, _ = timed_call(server.http, "/v1/is-authorized", raw.encode())
    assert status == 200 and body["decision"] == "Allow", body


def test_admin_repeated_json_keys_are_a_400(server: Server) -> None:
    raw = b'{"version": "0001", "version": "0002"}'
    status, body, _ = timed_call(server.admin, "/admin/reload", raw, token=TOKEN)
    error = {"code": "invalid_request", "message": 'body: duplicate key "version"'}
    assert (status, body) == (400, {"error": error})
    status, body, _ = timed_call(server.admin, "/admin/status", token=TOKEN)
    assert status == 200 and body["version"] == "0002"


# --- slow bodies on the sidecar -------------------------------------------------------------


def slow_body(sock: socket.socket) -> socket.socket:
    sock.sendall(
        b"POST /v1/is-authorized HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n{"
    )
    return sock


def trickle(socks: list[socket.socket], stop: threading.Event) -> None:
    """One more byte on every connection every half second: they never go quiet."""
    while not stop.wait(0.5):
        for sock in socks:
            try:
                sock.sendall(b" ")
            except OSError:
                pass


def test_slow_bodies_do_not_stall_health_or_decisions(server: Server, connect: Connect) -> None:
    """Eight clients trickling bodies hold no decision thread; they get a 408 at the deadline."""
    decision = f'{{"principal": "bob", {REQUEST}}}'.encode()
    socks = [slow_body(connect(server.http)) for _ in range(8)]
    stop = threading.Event()
    sender = threading.Thread(target=trickle, args=(socks, stop), daemon=True)
    sender.start()
    try:
        started = time.monotonic()
        time.sleep(0.3)  # the slow requests are in before ours
        status, body, seconds = timed_call(server.http, "/healthz")
        assert (status, body) == (200, {"status": "ok"}) and seconds < QUICK
        status, body, seconds = timed_call(server.http, "/v1/is-authorized", decision)
        assert status == 200 and body["decision"] == "Allow" and seconds < QUICK
        for sock in socks:
            left = BODY_TIMEOUT + 3 - (time.monotonic() - started)
            answer = closed_within(sock, max(left, 0.1))
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
            if answer:
                error = b'"code":"body_timeout","message":"body: not received within 2 seconds"'
                assert error in answer, answer
    finally:
        stop.set()
        sender.join(5)


def test_large_bodies_share_a_budget_small_ones_are_never_refused(
    tmp_path: Path, connect: Connect
) -> None:
    """Two slow 100 kB bodies hold a 250 kB budget: a third large body is a 503 at once, unread;
    a small decision still answers; once the slow ones time out, large bodies are taken again."""
    srv = start_server(tmp_path, PDP_BODY_TIMEOUT=str(BODY_TIMEOUT), PDP_BODY_BUDGET="250000")
    try:
        socks = [slow_body(connect(srv.http)) for _ in range(2)]
        time.sleep(0.3)
        started = time.monotonic()
        third = slow_body(connect(srv.http))
        third.settimeout(QUICK)
        answer = third.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in answer.lower()
        assert b'{"error":{"code":"busy","message":"busy: too many large' in answer, answer
        assert time.monotonic() - started < QUICK
        decision = f'{{"principal": "bob", {REQUEST}}}'.encode()
        status, body, seconds = timed_call(srv.http, "/v1/is-authorized", decision)
        assert status == 200 and body["decision"] == "Allow" and seconds < QUICK
        for sock in socks:
            closed_within(sock, BODY_TIMEOUT + 3)
        item = f'{{"principal": "bob", {REQUEST}, "context": {{"app:pad": "{"x" * 3000}"}}}}'
        status, body, _ = timed_call(srv.http, "/v1/batch-is-authorized", batch(*[item] * 20))
        assert status == 200 and len(body["results"]) == 20
    finally:
        assert srv.stop() == 0


def test_slow_headers_are_closed_by_the_header_timeout(tmp_path: Path, connect: Connect) -> None:
    """A request line without its headers' end is dropped after PDP_HEADER_TIMEOUT."""
    srv = start_server(tmp_path, PDP_HEADER_TIMEOUT="1")
    try:
        sock = connect(srv.http)
        sock.sendall(b"POST /v1/is-authorized HTTP/1.1\r\nHost: pdp\r\n")
        started = time.monotonic()
        answer = closed_within(sock, 5)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
        assert time.monotonic() - started < 5
        assert srv.call("/healthz")[0] == 200
    finally:
        assert srv.stop() == 0


def test_http_body_over_the_limit_is_refused_before_it_is_read(
    server: Server, connect: Connect
) -> None:
    """A declared length over PDP_MAX_BODY is answered at once, without waiting for the body."""
    sock = connect(server.http)
    sock.sendall(
        b"POST /v1/is-authorized HTTP/1.1\r\nHost: pdp\r\nContent-Length: 100000000\r\n\r\n"
    )
    started = time.monotonic()
    answer = closed_within(sock, QUICK)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b'"code":"body_too_large","message":"body: larger than 1048576 bytes"' in answer
    assert time.monotonic() - started < QUICK


# --- the admin listener ---------------------------------------------------------------------


def test_admin_refuses_an_oversized_unauthenticated_body_at_once(
    server: Server, connect: Connect
) -> None:
    """A declared admin body over 8 KiB is refused on its headers: nothing is buffered."""
    sock = connect(server.admin)
    sock.sendall(b"POST /admin/reload HTTP/1.1\r\nHost: pdp\r\nContent-Length: 10000000\r\n\r\n")
    started = time.monotonic()
    answer = closed_within(sock, QUICK)
    assert answer.startswith(b"HTTP/1.1 413") and b"exceeds max_body of 8192" in answer, answer
    assert time.monotonic() - started < QUICK
    status, body, _ = timed_call(server.admin, "/admin/status", token=TOKEN)
    assert status == 200


def test_admin_refuses_oversized_headers(server: Server, connect: Connect) -> None:
    sock = connect(server.admin)
    junk = b"X-Junk: " + b"x" * 20000 + b"\r\n"
    sock.sendall(b"GET /admin/status HTTP/1.1\r\nHost: pdp\r\n" + junk + b"\r\n")
    answer = closed_within(sock, QUICK)
    assert answer.split(b" ")[1] == b"431" and b"exceeds max_header of 8192" in answer, answer


def test_admin_answers_while_many_half_open_connections_are_open(
    server: Server, connect: Connect
) -> None:
    """150 connections that never finish a request lock nobody out; the timeout closes them."""
    socks = []
    for i in range(150):
        socks.append(connect(server.admin))
        if i % 2:
            socks[-1].sendall(b"POST /admin/reload HTTP/1.1\r\nHost: pdp\r\n")
    status, body, seconds = timed_call(server.admin, "/admin/status", token=TOKEN)
    assert status == 200 and body["version"] == "0002" and seconds < QUICK
    for sock in socks:  # idle for ADMIN_TIMEOUT, swept every second: closed within ~3 s
        closed_within(sock, ADMIN_TIMEOUT + 5)


def test_idle_admin_connection_is_closed_after_the_timeout(
    server: Server, connect: Connect
) -> None:
    sock = connect(server.admin)
    started = time.monotonic()
    assert closed_within(sock, ADMIN_TIMEOUT + 5) == b""
    assert time.monotonic() - started >= ADMIN_TIMEOUT - 0.1


def test_http2_is_not_spoken(server: Server, connect: Connect) -> None:
    """The sidecar speaks HTTP/1.1 only: HTTP/2's streams would multiply what one connection
    may hold (200 streams, 16 MiB of headers each) and its idle connections never time out."""
    sock = connect(server.http)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    answer = closed_within(sock, QUICK)
    assert not answer.startswith(b"\x00"), answer[:40]  # no SETTINGS frame: no HTTP/2


def test_a_chunked_body_over_the_limit_is_refused_as_too_large(
    server: Server, connect: Connect
) -> None:
    sock = connect(server.http)
    sock.sendall(
        b"POST /v1/is-authorized HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 65536
    for _ in range(20):  # 1.25 MiB, over the 1 MiB default
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    sock.sendall(b"0\r\n\r\n")
    sock.settimeout(QUICK)
    answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    assert b'"code":"body_too_large","message":"body: larger than 1048576 bytes"' in answer


def test_a_chunked_body_within_the_limit_is_decided(server: Server, connect: Connect) -> None:
    body = f'{{"principal": "bob", {REQUEST}}}'.encode()
    sock = connect(server.http)
    sock.sendall(
        b"POST /v1/is-authorized HTTP/1.1\r\nHost: pdp\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    sock.settimeout(QUICK)
    answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200") and b'"decision":"Allow"' in answer, answer
