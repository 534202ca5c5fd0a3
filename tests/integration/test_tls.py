"""TLS and mTLS on both decision ports, through a real `pdp serve` and pdp's own clients, with
certificates made at test time (tests/integration/certs.py); rotation by swapping the files the
way Kubernetes updates a mounted secret (a symlink to a new directory)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pdp_client import GrpcClient, HttpClient
from pdp_client.aio import AsyncGrpcClient
from pdp_client.errors import PdpUnavailable
from tests.integration.certs import Pair, make_ca, make_cert, make_named_cert
from tests.integration.servers import Server, copy_store, start_server

OBJECT = "arn:aws:s3:::example-bucket/report.csv"
SOURCE = {"aws:SourceIp": "203.0.113.9"}
SERVER_SAN = "IP:127.0.0.1,DNS:localhost"
GATEWAY = "spiffe://example.org/ns/prod/sa/gateway"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory)
    other_ca = make_ca(directory, "other-ca")
    return {
        "ca": ca,
        "server": make_cert(directory, ca, "server", "pdp.local", SERVER_SAN),
        "server2": make_cert(directory, ca, "server2", "pdp-rotated.local", SERVER_SAN),
        "gateway": make_cert(directory, ca, "gateway", "orders-gateway", f"URI:{GATEWAY}", True),
        "intruder": make_cert(directory, ca, "intruder", "intruder", "DNS:intruder", True),
        "stranger": make_cert(directory, other_ca, "stranger", "orders-gateway", "DNS:x", True),
        # gRPC's own name list would read "billing-gateway": only the certificate is believed
        "nul": make_named_cert(
            directory, ca, "nul", ["x"], [x509.DNSName("billing-gateway\x00.evil.example")]
        ),
        "two-cns": make_named_cert(directory, ca, "two-cns", ["other", "billing-gateway"], []),
    }


def mtls(pki: dict[str, Pair], subjects: str) -> dict[str, str]:
    """The settings of a server with the test CA's client certificates and an allow-list."""
    return {
        "PDP_TLS_CERT": str(pki["server"].cert),
        "PDP_TLS_KEY": str(pki["server"].key),
        "PDP_TLS_CLIENT_CA": str(pki["ca"].cert),
        "PDP_TLS_CLIENT_SUBJECTS": subjects,
    }


def https(ca: Pair, client: Pair | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.cert))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context


def served_certificate(address: str, alpn: str | None = None) -> str:
    """The subject CN the port presents (no verification: any certificate is read)."""
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols([alpn])
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-nameopt", "multiline"],
        input=pem,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(line.split("=", 1)[1].strip() for line in out.splitlines() if "commonName" in line)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Pair]) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("tls")
    running = start_server(
        tmp,
        ssl_context=https(pki["ca"]),
        PDP_TLS_CERT=str(pki["server"].cert),
        PDP_TLS_KEY=str(pki["server"].key),
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Pair]) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("mtls")
    running = start_server(
        tmp,
        ssl_context=https(pki["ca"], pki["gateway"]),
        **mtls(pki, f"{GATEWAY},billing-gateway"),
    )
    yield running
    running.stop()


def test_both_ports_serve_tls_to_pdps_clients(tls_server: Server, pki: dict[str, Pair]) -> None:
    ca = str(pki["ca"].cert)
    with HttpClient(f"https://{tls_server.http}", ca=ca, timeout=10) as http:
        assert http.is_authorized("bob", "s3:GetObject", OBJECT, SOURCE).decision == "Allow"
    with GrpcClient(tls_server.grpc, ca=ca, timeout=10) as client:
        assert client.is_authorized("bob", "s3:GetObject", OBJECT, SOURCE).decision == "Allow"
        assert client.is_authorized("bob", "s3:DeleteObject", OBJECT).decision == "Deny"


def test_the_async_client_speaks_tls(tls_server: Server, pki: dict[str, Pair]) -> None:
    async def ask() -> str:
        async with AsyncGrpcClient(tls_server.grpc, ca=str(pki["ca"].cert), timeout=10) as pdp:
            return (await pdp.is_authorized("bob", "s3:GetObject", OBJECT, SOURCE)).decision

    assert asyncio.run(ask()) == "Allow"


def test_plaintext_is_refused_on_a_tls_port(tls_server: Server) -> None:
    with GrpcClient(tls_server.grpc, timeout=2, retries=0, on_unavailable="raise") as client:
        with pytest.raises(PdpUnavailable):
            client.is_authorized("bob", "s3:GetObject", OBJECT, SOURCE)
    host, port = tls_server.http.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = raw.recv(100)
    assert not answer.startswith(b"HTTP/1.1 200")


def test_a_certificate_from_another_ca_is_not_trusted(
    tls_server: Server, pki: dict[str, Pair]
) -> None:
    with pytest.raises(ssl.SSLError):
        served = https(pki["stranger"])  # a context trusting only the wrong CA
        host, port = tls_server.http.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            served.wrap_socket(raw, server_hostname="127.0.0.1")


def grpc_code(server: Server, ca: Pair, client: Pair | None) -> grpc.StatusCode:
    credentials = grpc.ssl_channel_credentials(
        ca.cert.read_bytes(),
        client.key.read_bytes() if client else None,
        client.cert.read_bytes() if client else None,
    )
    with grpc.secure_channel(server.grpc, credentials) as channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_mtls_admits_only_the_listed_subjects_on_grpc(
    mtls_server: Server, pki: dict[str, Pair]
) -> None:
    ca = pki["ca"]
    assert grpc_code(mtls_server, ca, pki["gateway"]) == grpc.StatusCode.OK  # its URI SAN
    # signed by the CA, but not listed
    assert grpc_code(mtls_server, ca, pki["intruder"]) == grpc.StatusCode.UNAUTHENTICATED
    assert grpc_code(mtls_server, ca, pki["nul"]) == grpc.StatusCode.UNAUTHENTICATED
    assert grpc_code(mtls_server, ca, pki["two-cns"]) == grpc.StatusCode.OK  # its second CN
    # no certificate, or one of another CA: the handshake fails
    assert grpc_code(mtls_server, ca, None) == grpc.StatusCode.UNAVAILABLE
    assert grpc_code(mtls_server, ca, pki["stranger"]) == grpc.StatusCode.UNAVAILABLE
    gateway = pki["gateway"]
    with GrpcClient(
        mtls_server.grpc, ca=str(ca.cert), cert=str(gateway.cert), key=str(gateway.key)
    ) as client:
        assert client.is_authorized("bob", "s3:GetObject", OBJECT, SOURCE).decision == "Allow"


def test_mtls_on_http_admits_only_the_listed_subjects(
    mtls_server: Server, pki: dict[str, Pair]
) -> None:
    ca, gateway = pki["ca"], pki["gateway"]
    base = f"https://{mtls_server.http}"
    with HttpClient(base, ca=str(ca.cert), cert=str(gateway.cert), key=str(gateway.key)) as http:
        assert http.is_authorized("bob", "s3:GetObject", OBJECT, SOURCE).decision == "Allow"
        batch = http.batch_is_authorized(
            [{"principal": "bob", "action": "s3:GetObject", "resource": OBJECT, "context": SOURCE}]
            * 50
        )
        assert [d.decision for d in batch] == ["Allow"] * 50
    # signed by the CA but not listed: a 403 before any byte reaches the application
    for refused in ("intruder", "nul"):
        status, body = https_get(mtls_server, https(ca, pki[refused]), "/v1/is-authorized")
        assert status == 403 and b"PDP_TLS_CLIENT_SUBJECTS" in body, refused
    assert https_get(mtls_server, https(ca, pki["two-cns"]), "/healthz")[0] == 200
    for client in (None, pki["stranger"]):  # no certificate, or another CA's: no handshake
        with pytest.raises((ssl.SSLError, ConnectionError)):
            https_get(mtls_server, https(ca, client), "/healthz")
    # what the application is told: https (AuthZEN's metadata names the URL callers use)
    status, body = https_get(mtls_server, https(ca, gateway), "/.well-known/authzen-configuration")
    assert status == 200 and b'"https://' in body


def https_get(server: Server, context: ssl.SSLContext, path: str) -> tuple[int, bytes]:
    host, port = server.http.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {server.http}\r\nConnection: close\r\n\r\n".encode()
            )
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    if not answer:  # TLS 1.3: a refused certificate shows after the handshake
        raise ConnectionError("closed without an answer")
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def wait_until(predicate: Callable[[], bool], seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("front", [False, True], ids=["granian-tls", "pdp-https-front"])
def test_rotated_files_are_served_and_broken_ones_are_not(
    tmp_path: Path, pki: dict[str, Pair], front: bool
) -> None:
    # as Kubernetes mounts a secret: the configured paths go through a link it swaps
    secret = tmp_path / "secret"
    first, second = secret / "..2026_12_03_1", secret / "..2026_12_03_2"
    for directory, pair in ((first, pki["server"]), (second, pki["server2"])):
        directory.mkdir(parents=True)
        shutil.copy(pair.cert, directory / "tls.crt")
        shutil.copy(pair.key, directory / "tls.key")
    (secret / "..data").symlink_to(first.name)
    for name in ("tls.crt", "tls.key"):
        (secret / name).symlink_to(f"..data/{name}")
    gateway = pki["gateway"]
    mtls = (
        {"PDP_TLS_CLIENT_CA": str(pki["ca"].cert), "PDP_TLS_CLIENT_SUBJECTS": GATEWAY}
        if front
        else {}
    )
    running = start_server(
        tmp_path,
        store=copy_store(tmp_path / "store"),
        workers=2,
        ssl_context=https(pki["ca"], gateway if front else None),
        PDP_TLS_CERT=str(secret / "tls.crt"),
        PDP_TLS_KEY=str(secret / "tls.key"),
        **mtls,
    )
    try:
        assert served_certificate(running.http) == "pdp.local"
        assert served_certificate(running.grpc, alpn="h2") == "pdp.local"
        # a broken certificate never replaces the served one
        broken = secret / "..2026_12_03_broken"
        broken.mkdir()
        (broken / "tls.crt").write_text("-----BEGIN CERTIFICATE-----\nnot one\n")
        shutil.copy(pki["server2"].key, broken / "tls.key")
        swap(secret, broken.name)
        assert wait_until(lambda: "TLS files refused" in running.log.read_text(), 20)
        assert served_certificate(running.http) == "pdp.local"
        swap(secret, second.name)
        shutil.rmtree(first)  # as Kubernetes removes the old directory
        assert wait_until(lambda: served_certificate(running.http) == "pdp-rotated.local")
        assert wait_until(lambda: served_certificate(running.grpc, "h2") == "pdp-rotated.local")
        own = {"cert": str(gateway.cert), "key": str(gateway.key)} if front else {}
        with GrpcClient(running.grpc, ca=str(pki["ca"].cert), timeout=10, **own) as client:
            assert wait_until(
                lambda: (
                    client.is_authorized("bob", "s3:GetObject", OBJECT, SOURCE).decision == "Allow"
                )
            )
        if front:  # and the HTTPS front still checks names after its restart
            status, _ = https_get(running, https(pki["ca"], gateway), "/healthz")
            assert status == 200
            status, _ = https_get(running, https(pki["ca"], pki["intruder"]), "/healthz")
            assert status == 403
    finally:
        running.stop()


def swap(secret: Path, target: str) -> None:
    scratch = secret / "..data_tmp"
    scratch.symlink_to(target)
    scratch.replace(secret / "..data")


def serve(tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PDP_")}
    store = tmp / "store"
    if not store.exists():
        copy_store(store)
    environment.update({"PDP_STORE": str(store), **env})
    return subprocess.run(
        [sys.executable, "-m", "pdp.cli", "serve"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_files_that_are_not_a_certificate_and_its_key_stop_serve(
    tmp_path: Path, pki: dict[str, Pair]
) -> None:
    wrong_key = serve(
        tmp_path, PDP_TLS_CERT=str(pki["server"].cert), PDP_TLS_KEY=str(pki["server2"].key)
    )
    assert wrong_key.returncode != 0
    assert "PDP_TLS_CERT" in wrong_key.stderr
    assert "not a certificate and its key" in wrong_key.stderr
    missing = serve(tmp_path, PDP_TLS_CERT=str(tmp_path / "nope.pem"), PDP_TLS_KEY="x")
    assert missing.returncode != 0 and "cannot read" in missing.stderr
    half = serve(tmp_path, PDP_TLS_CERT=str(pki["server"].cert))
    assert half.returncode != 0 and "give both" in half.stderr
    subjects = serve(tmp_path, PDP_TLS_CLIENT_SUBJECTS="gateway")
    assert subjects.returncode != 0 and "PDP_TLS_CLIENT_CA" in subjects.stderr


def test_the_https_front_bounds_connections_and_handshakes(
    tmp_path: Path, pki: dict[str, Pair]
) -> None:
    running = start_server(
        tmp_path,
        ssl_context=https(pki["ca"], pki["gateway"]),
        **mtls(pki, GATEWAY),
        PDP_MAX_CONNECTIONS="4",
        PDP_HEADER_TIMEOUT="1",
    )
    host, port = running.http.rsplit(":", 1)
    idle = []
    try:
        for _ in range(4):  # connections that never start their handshake hold the slots
            idle.append(socket.create_connection((host, int(port)), timeout=10))
        time.sleep(0.3)
        with socket.create_connection((host, int(port)), timeout=10) as fifth:
            assert fifth.recv(1) == b"", "past PDP_MAX_CONNECTIONS a connection is closed"
        for held in idle:  # each is dropped once its handshake time has passed
            assert held.recv(1) == b""
        status, _ = https_get(running, https(pki["ca"], pki["gateway"]), "/healthz")
        assert status == 200  # the slots are free again
    finally:
        for held in idle:
            held.close()
        running.stop()
