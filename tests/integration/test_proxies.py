"""Forward-auth with the real proxies: nginx (`auth_request`) and Caddy (`forward_auth`), each with
basic auth in front of a small upstream, and a real `pdp serve` deciding. The configurations are
the ones docs/serving.md shows. `make test` installs nginx and Caddy (Debian packages) first;
where they cannot be installed, these tests skip and say so."""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.servers import Server, free_port
from tests.integration.test_forward_auth import start_gateway_server

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}

NGINX_CONF = """\
{user}worker_processes 1;
error_log {tmp}/nginx-error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_basic "orders";
            auth_basic_user_file {tmp}/htpasswd;
            auth_request /_pdp;
            auth_request_set $pdp_principal $upstream_http_x_pdp_principal;
            auth_request_set $pdp_version $upstream_http_x_pdp_policy_version;
            proxy_set_header X-Pdp-Principal $pdp_principal;
            proxy_set_header X-Pdp-Policy-Version $pdp_version;
            proxy_pass http://{upstream};
        }}
        location = /_pdp {{
            internal;
            proxy_pass http://{pdp}/v1/forward-auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-User $remote_user;
        }}
    }}
}}
"""

CADDYFILE = """\
{{
    admin off
    auto_https off
}}
http://127.0.0.1:{port} {{
    basicauth {{
{users}
    }}
    forward_auth {pdp} {{
        uri /v1/forward-auth
        header_up X-Forwarded-User {{http.auth.user.id}}
        copy_headers X-Pdp-Principal X-Pdp-Policy-Version
    }}
    reverse_proxy {upstream}
}}
"""


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.skip(
            f"{name} is not installed: `make test` installs it (apt-get install {name}); "
            "it could not here, so the proxy tests did not run"
        )
    return found


class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers what it was asked and who the proxy said the caller is."""

    def _answer(self) -> None:
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "principal": self.headers.get("X-Pdp-Principal"),
                "version": self.headers.get("X-Pdp-Policy-Version"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer  # noqa: N815 (http.server's names)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Proxied:
    name: str
    url: str


def _serving(
    name: str, process: subprocess.Popen[bytes], port: int, log: Path
) -> Iterator[Proxied]:
    """The proxy `process` once it listens on `port`; stopped when the test module is done."""
    try:
        _wait_for_port(port, process, log)
        yield Proxied(name, f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"not listening on {port}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def pdp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_gateway_server(tmp_path_factory.mktemp("proxied-pdp"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _nginx(tmp: Path, pdp: Server, upstream: str) -> Iterator[Proxied]:
    binary = _binary("nginx")
    # {SHA}: base64 of the password's SHA-1, a scheme nginx's auth_basic reads
    (tmp / "htpasswd").write_text(
        "".join(
            f"{user}:{{SHA}}{base64.b64encode(hashlib.sha1(pw.encode()).digest()).decode()}\n"
            for user, pw in PASSWORDS.items()
        )
    )
    port = free_port()
    # as root, nginx's workers would run as nobody, who cannot read this test's files
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = NGINX_CONF.format(user=user, tmp=tmp, port=port, pdp=pdp.http, upstream=upstream)
    (tmp / "nginx.conf").write_text(conf)
    log = tmp / "nginx-error.log"
    log.touch()
    command = [binary, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    yield from _serving("nginx", process, port, log)


def _caddy(tmp: Path, pdp: Server, upstream: str) -> Iterator[Proxied]:
    binary = _binary("caddy")
    env = {**os.environ, "HOME": str(tmp), "XDG_DATA_HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp)}
    users = []
    for user, password in PASSWORDS.items():
        hashed = subprocess.run(
            [binary, "hash-password", "--plaintext", password],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
        users.append(f"        {user} {hashed}")
    port = free_port()
    caddyfile = CADDYFILE.format(port=port, pdp=pdp.http, upstream=upstream, users="\n".join(users))
    (tmp / "Caddyfile").write_text(caddyfile)
    log = tmp / "caddy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "run", "--config", str(tmp / "Caddyfile"), "--adapter", "caddyfile"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    yield from _serving("caddy", process, port, log)


@pytest.fixture(scope="module", params=["nginx", "caddy"])
def proxy(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pdp: Server,
    upstream: str,
) -> Iterator[Proxied]:
    tmp = tmp_path_factory.mktemp(request.param)
    start = _nginx if request.param == "nginx" else _caddy
    yield from start(tmp, pdp, upstream)


def get(
    proxy: Proxied,
    path: str,
    user: str | None = "alice",
    method: str = "GET",
    password: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, object] | None]:
    request = urllib.request.Request(proxy.url + path, method=method)
    if user is not None:
        secret = password if password is not None else PASSWORDS[user]
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def test_an_allowed_request_reaches_the_upstream_with_pdps_headers(proxy: Proxied) -> None:
    status, body = get(proxy, "/public/menu?lang=en")
    assert status == 200
    assert body == {
        "method": "GET",
        "path": "/public/menu?lang=en",
        "principal": "alice",
        "version": "0001",
    }


@pytest.mark.parametrize(
    ("path", "user", "method", "expected"),
    [
        ("/public/menu", "bob", "GET", 403),  # bob has no policy
        ("/public/secret", "alice", "GET", 403),  # the explicit Deny
        ("/orders", "alice", "POST", 403),  # the IpAddress condition (loopback is not in it)
        ("/orders", "alice", "GET", 403),
        ("/admin", "alice", "DELETE", 403),
    ],
)
def test_denials_never_reach_the_upstream(
    proxy: Proxied, path: str, user: str, method: str, expected: int
) -> None:
    assert get(proxy, path, user, method)[0] == expected


def test_without_basic_auth_the_proxy_answers_401(proxy: Proxied) -> None:
    assert get(proxy, "/public/menu", user=None)[0] == 401
    assert get(proxy, "/public/menu", user="alice", password="wrong")[0] == 401


def test_a_client_cannot_name_its_own_principal(proxy: Proxied) -> None:
    spoofed = {"X-Forwarded-User": "alice", "X-Pdp-Principal": "alice"}
    assert get(proxy, "/public/menu", user=None, headers=spoofed)[0] == 401
    assert get(proxy, "/public/menu", user="bob", headers=spoofed)[0] == 403


@pytest.mark.parametrize(
    "tricks",
    [
        {"X-Original-URI": "/public/menu"},  # the header nginx sets, sent to Caddy
        {"X-Forwarded-Uri": "/public/menu"},  # the header Caddy sets, sent to nginx
        {"X-Original-URI": "/public/menu", "X-Forwarded-Uri": "/public/menu"},
        {"X-Original-Method": "GET", "X-Forwarded-Method": "GET"},
    ],
)
def test_the_clients_own_forwarding_headers_are_not_believed(
    proxy: Proxied, tricks: dict[str, str]
) -> None:
    # the proxy's own header names the real request; a client's beside it is refused
    assert get(proxy, "/public/secret", headers=tricks)[0] == 403
    assert get(proxy, "/admin", method="DELETE", headers=tricks)[0] == 403


@pytest.mark.parametrize("name", ["X-Forwarded-For", "X_Forwarded_For"])
def test_the_clients_forwarded_for_is_not_its_address(proxy: Proxied, name: str) -> None:
    # POST /orders needs a source in 203.0.113.0/24; the proxy names the real one (loopback).
    # Caddy passes X_Forwarded_For on, which WSGI would spell as X-Forwarded-For
    assert get(proxy, "/orders", method="POST", headers={name: "203.0.113.7"})[0] == 403


def test_a_fragment_in_the_request_target_is_refused(proxy: Proxied) -> None:
    # nginx forwards the raw target: pdp must not decide /public/menu for it
    host, port = proxy.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        connection.putrequest("GET", "/public/menu#/../secret", skip_accept_encoding=True)
        token = base64.b64encode(f"alice:{PASSWORDS['alice']}".encode()).decode()
        connection.putheader("Authorization", f"Basic {token}")
        connection.endheaders()
        assert connection.getresponse().status in (400, 403)
    finally:
        connection.close()


def test_paths_the_upstream_could_read_otherwise_are_refused(proxy: Proxied) -> None:
    for path in ("/public/%2e%2e/secret", "/public/a%2Fb", "/public/x%252e"):
        assert get(proxy, path)[0] == 403, path
