"""Certificates made at test time with the `openssl` command: a CA, servers and clients it signs
(X.509 v3 with the extensions TLS stacks require: rustls refuses v1 certificates)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        pytest.skip("openssl is not installed: the TLS tests make their certificates with it")
    subprocess.run([binary, *args], check=True, capture_output=True)


def make_ca(directory: Path, name: str = "pdp-test-ca") -> Pair:
    directory.mkdir(parents=True, exist_ok=True)
    pair = Pair(directory / f"{name}.pem", directory / f"{name}.key")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", str(pair.key), "-out", str(pair.cert), "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return pair


def make_cert(
    directory: Path, ca: Pair, name: str, common_name: str, san: str, client: bool = False
) -> Pair:
    """A certificate `ca` signed: a server's (`san` like "IP:127.0.0.1,DNS:localhost") or a
    client's (`san` like "URI:spiffe://example.org/gateway")."""
    pair = Pair(directory / f"{name}.pem", directory / f"{name}.key")
    csr, extensions = directory / f"{name}.csr", directory / f"{name}.ext"
    usage = "clientAuth" if client else "serverAuth"
    extensions.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage={usage}\nsubjectAltName={san}\n"
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(pair.key), "-out", str(csr),
        "-subj", f"/CN={common_name}/O=pdp tests",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-days", "2", "-out", str(pair.cert), "-extfile", str(extensions),
    )  # fmt: skip
    return pair
