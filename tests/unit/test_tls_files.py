"""pdp_server.tls: the allow-list, the peer check, and the watcher's decisions (its restart is a
callback here; tests/integration/test_tls.py rotates through a real server)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pdp_server.tls import TlsError, TlsFiles, TlsWatcher, parse_subjects, peer_allowed, stage
from pdp_server.tls_front import peercert_names
from tests.integration.certs import make_ca, make_cert

SAN = "IP:127.0.0.1"


def test_subjects_are_exact_names() -> None:
    assert parse_subjects(" a , spiffe://x/y ,") == ("a", "spiffe://x/y")
    for bad in ("", " , ", "two words", "a\tb"):
        with pytest.raises(ValueError):
            parse_subjects(bad)


@pytest.mark.parametrize(
    ("context", "allowed"),
    [
        ({"x509_common_name": [b"gateway"]}, True),
        ({"x509_subject_alternative_name": [b"dns.example", b"spiffe://x/gw"]}, True),
        ({"x509_common_name": [b"gateway2"]}, False),  # exact, never a prefix
        ({"x509_common_name": [b"Gateway"]}, False),
        ({"x509_subject_alternative_name": [b"spiffe://x/gw/extra"]}, False),
        ({}, False),  # no certificate
    ],
)
def test_a_peer_is_allowed_by_its_cn_or_a_san(
    context: dict[str, list[bytes]], allowed: bool
) -> None:
    assert peer_allowed(context, ("gateway", "spiffe://x/gw")) is allowed


def test_the_watcher_stages_good_changes_only(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "pki")
    one = make_cert(tmp_path / "pki", ca, "one", "one", SAN)
    two = make_cert(tmp_path / "pki", ca, "two", "two", SAN)
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(one.cert, cert)
    shutil.copy(one.key, key)
    files = TlsFiles.read(str(cert), str(key), None)
    staged = stage(files, str(tmp_path / "staged"))
    restarts: list[int] = []
    watcher = TlsWatcher(
        (str(cert), str(key), None), files, str(tmp_path / "staged"), 1, lambda: restarts.append(1)
    )
    assert watcher.look() is False and restarts == []  # unchanged
    shutil.copy(two.cert, cert)  # the certificate without its key: refused
    assert watcher.look() is False and restarts == []
    assert Path(staged.cert).read_bytes() == one.cert.read_bytes()
    shutil.copy(two.key, key)
    assert watcher.look() is True and restarts == [1]
    assert Path(staged.cert).read_bytes() == two.cert.read_bytes()
    assert Path(staged.key).stat().st_mode & 0o077 == 0
    cert.unlink()  # gone: refused, the staged copy stays
    assert watcher.look() is False and Path(staged.cert).exists()


def test_files_that_do_not_check_name_the_setting(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "pki")
    one = make_cert(tmp_path / "pki", ca, "one", "one", SAN)
    with pytest.raises(TlsError, match="PDP_TLS_CLIENT_CA .*holds no PEM certificate"):
        TlsFiles.read(str(one.cert), str(one.key), str(one.key))
    with pytest.raises(TlsError, match="PDP_TLS_KEY .*cannot read"):
        TlsFiles.read(str(one.cert), str(tmp_path / "missing"), None)
    assert TlsFiles.read(str(one.cert), str(one.key), str(ca.cert)).ca == ca.cert.read_bytes()


def test_the_names_of_a_peer_certificate_as_ssl_shows_it() -> None:
    cert = {
        "subject": ((("organizationName", "pdp tests"),), (("commonName", "gateway"),)),
        "subjectAltName": (("DNS", "gw.example"), ("URI", "spiffe://x/gw")),
    }
    assert peercert_names(cert) == {"gateway", "gw.example", "spiffe://x/gw"}
    assert peercert_names(None) == set() and peercert_names({}) == set()
    assert "pdp tests" not in peercert_names(cert)  # the organization is not a name
