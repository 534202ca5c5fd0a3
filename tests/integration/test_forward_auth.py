"""Forward-auth through a real `pdp serve`: the headers nginx, Caddy and Traefik send, the
answers they act on (tests/integration/test_proxies.py runs the real proxies)."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import Server, start_server

ACCOUNT = "123456789012"
API = "arn:aws:execute-api:us-east-1:123456789012:orders-api/$default"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{API}/GET/public/*"},
        {
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": f"{API}/POST/orders",
            "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        },
        {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": f"{API}/*/public/secret"},
    ],
}


def write_store(root: Path) -> Path:
    version = root / "versions" / "0001"
    (version / "users").mkdir(parents=True)
    (version / "policies").mkdir()
    (version / "account.json").write_text(json.dumps({"account_id": ACCOUNT}))
    (version / "policies" / "OrdersApi.json").write_text(json.dumps(POLICY))
    (version / "users" / "alice.json").write_text(json.dumps({"policies": ["OrdersApi"]}))
    (version / "users" / "bob.json").write_text("{}")
    (root / "current").symlink_to("versions/0001")
    return root


def start_gateway_server(tmp: Path) -> Server:
    """`pdp serve` on write_store's store, its API id fixed (the Host does not name it)."""
    return start_server(tmp, store=write_store(tmp / "store"), PDP_GATEWAY_API="orders-api")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_gateway_server(tmp_path_factory.mktemp("forward-auth"))
    yield running
    running.stop()


def ask(
    server: Server, headers: dict[str, str], method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://{server.http}/v1/forward-auth", method=method)
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def nginx(uri: str, user: str | None = "alice", method: str = "GET") -> dict[str, str]:
    headers = {"X-Original-URI": uri, "X-Original-Method": method}
    if user is not None:
        headers["X-Forwarded-User"] = user
    return headers


def caddy(uri: str, user: str | None = "alice", method: str = "GET") -> dict[str, str]:
    headers = {"X-Forwarded-Uri": uri, "X-Forwarded-Method": method, "X-Forwarded-Proto": "https"}
    if user is not None:
        headers["X-Forwarded-User"] = user
    return headers


@pytest.mark.parametrize("style", [nginx, caddy])
def test_allowed_answers_200_with_who_and_which_version(server: Server, style: object) -> None:
    status, headers, body = ask(server, style("/public/report?x=1"))  # type: ignore[operator]
    assert status == 200 and body == b""
    assert headers["x-pdp-principal"] == "alice"
    assert headers["x-pdp-policy-version"] == "0001"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (nginx("/admin/users"), 403),  # no statement allows it
        (nginx("/public/secret"), 403),  # an explicit Deny
        (nginx("/public/report", user="bob"), 403),  # bob has no policy
        (nginx("/public/report", method="DELETE"), 403),  # only GET is allowed
        (nginx("/public/report", user=None), 401),  # no principal
        (nginx("/public/report", user=""), 401),
        (nginx("/public/../admin/users"), 403),  # refused before any policy
        (nginx("/public/%2e%2e/admin/users"), 403),
        (nginx("/public%2F..%2Fadmin"), 403),
        (nginx("/public//report"), 403),
        ({"X-Forwarded-User": "alice"}, 400),  # the proxy sent no URI: misconfigured
    ],
)
def test_denials(server: Server, headers: dict[str, str], status: int) -> None:
    assert ask(server, headers)[0] == status


def test_the_method_asked_with_is_the_original_one_when_no_header_names_it(server: Server) -> None:
    # Traefik asks with the original request's method and X-Forwarded-Uri
    headers = {"X-Forwarded-Uri": "/public/report", "X-Forwarded-User": "alice"}
    assert ask(server, headers, method="GET")[0] == 200
    assert ask(server, headers, method="POST")[0] == 403


def test_the_source_ip_is_the_one_the_proxy_appended(server: Server) -> None:
    base = nginx("/orders", method="POST")
    assert ask(server, {**base, "X-Forwarded-For": "203.0.113.7"})[0] == 200
    assert ask(server, {**base, "X-Forwarded-For": "203.0.113.7, 198.51.100.2"})[0] == 403
    assert ask(server, base)[0] == 403  # no address: the IpAddress condition does not hold


def allowed_count(server: Server) -> float:
    status, text = server.call("/metrics")
    assert status == 200
    lines = [line for line in text.splitlines() if line.startswith("pdp_decisions_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if 'decision="Allow"' in line)


def test_each_answer_is_a_counted_decision(server: Server) -> None:
    before = allowed_count(server)
    ask(server, nginx("/public/report"))
    assert allowed_count(server) == before + 1


def test_both_header_families_or_a_repeated_header_are_refused(server: Server) -> None:
    # a proxy sets its own family and passes a client's other headers on: both present means
    # one is the client's, and pdp believes neither
    assert ask(server, {**nginx("/public/report"), "X-Forwarded-Uri": "/public/report"})[0] == 403
    assert ask(server, {**caddy("/public/report"), "X-Original-Method": "GET"})[0] == 403
    host, port = server.http.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    # X-Original-URI sent twice reaches pdp joined ("/public/secret, /x"), which the Deny on
    # /public/secret does not match: a URI never holds a space, so the join is refused
    try:
        connection.putrequest("GET", "/v1/forward-auth")
        for name, value in nginx("/public/secret").items():
            connection.putheader(name, value)
        connection.putheader("X-Original-URI", "/x")
        connection.endheaders()
        assert connection.getresponse().status == 403
    finally:
        connection.close()


def test_underscore_headers_never_join_the_ones_the_proxy_set(server: Server) -> None:
    # WSGI spells X_Forwarded_For as X-Forwarded-For; proxies pass the underscore one on
    host, port = server.http.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("GET", "/v1/forward-auth")
        for name, value in nginx("/orders", method="POST").items():
            connection.putheader(name, value)
        connection.putheader("X-Forwarded-For", "198.51.100.2")  # the proxy's: not allowed
        connection.putheader("X_Forwarded_For", "203.0.113.7")  # the client's
        connection.endheaders()
        assert connection.getresponse().status == 403
    finally:
        connection.close()


def test_the_upstream_is_told_the_principal_as_the_store_spells_it(server: Server) -> None:
    # IAM user names are not distinguished by case: ALICE decides as alice
    status, headers, _ = ask(server, nginx("/public/report", user="ALICE"))
    assert status == 200 and headers["x-pdp-principal"] == "alice"
    arn = f"arn:aws:iam::{ACCOUNT}:user/Alice"
    status, headers, _ = ask(server, nginx("/public/report", user=arn))
    assert status == 200 and headers["x-pdp-principal"] == f"arn:aws:iam::{ACCOUNT}:user/alice"


def refused_count(server: Server, status: int) -> float:
    """pdp_gateway_refused_total for `status`, summed over the workers."""
    _, text = server.call("/metrics")
    prefix, label = "pdp_gateway_refused_total{", f'status="{status}"'
    lines = [line for line in text.splitlines() if line.startswith(prefix) and label in line]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_a_refusal_is_counted_but_is_no_decision(server: Server) -> None:
    before, decided = refused_count(server, 403), allowed_count(server)
    assert ask(server, nginx("/public/../secret"))[0] == 403
    assert ask(server, {**nginx("/public/a"), "X-Forwarded-Uri": "/public/a"})[0] == 403
    assert refused_count(server, 403) == before + 2
    no_user = refused_count(server, 401)
    assert ask(server, nginx("/public/a", user=None))[0] == 401
    assert refused_count(server, 401) == no_user + 1
    assert allowed_count(server) == decided
