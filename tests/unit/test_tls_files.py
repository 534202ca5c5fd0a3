"""pdp_server.tls: the allow-list, the peer check, and the watcher's decisions (its restart is a
callback here; tests/integration/test_tls.py rotates through a real server)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from pdp_server.tls import (
    TlsError,
    TlsFiles,
    TlsWatcher,
    certificate_names,
    parse_subjects,
    peer_allowed,
    stage,
)
from tests.integration.certs import Pair, make_ca, make_cert, make_named_cert

SAN = "IP:127.0.0.1"


def test_subjects_are_exact_names() -> None:
    assert parse_subjects(" a , spiffe://x/y ,") == ("a", "spiffe://x/y")
    for bad in ("", " , ", "two words", "a\tb"):
        with pytest.raises(ValueError):
            parse_subjects(bad)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return make_ca(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize(
    ("common_names", "sans", "names"),
    [
        (["gateway"], [x509.DNSName("gw.example")], {"gateway", "gw.example"}),
        (["other", "gateway"], [], {"other", "gateway"}),  # every CN, not the first
        ([], [x509.UniformResourceIdentifier("spiffe://x/gw")], {"spiffe://x/gw"}),
        ([], [x509.IPAddress(ipaddress.ip_address("2001:DB8::1"))], {"2001:db8::1"}),
        ([], [x509.RFC822Name("gw@example.org")], {"gw@example.org"}),
        # a NUL: a C library reads the name as "gw.example", so the certificate names nobody
        (["gateway"], [x509.DNSName("gw.example\x00.evil")], set()),
    ],
)
def test_a_certificates_names_are_read_one_way_for_both_ports(
    tmp_path: Path, ca: Pair, common_names: list[str], sans: list[object], names: set[str]
) -> None:
    pair = make_named_cert(tmp_path, ca, "c", common_names, sans)
    pem = pair.cert.read_bytes()
    assert certificate_names(pem) == names  # as gRPC shows it (x509_pem_cert)
    assert certificate_names(ssl.PEM_cert_to_DER_cert(pem.decode())) == names  # as ssl does
    allowed = peer_allowed({"x509_pem_cert": [pem]}, ("gateway", "gw.example", "2001:db8::1"))
    assert allowed is bool(names & {"gateway", "gw.example", "2001:db8::1"})


def test_grpcs_own_name_list_is_not_what_is_read() -> None:
    # gRPC cuts names at a NUL: only its copy of the certificate is believed
    assert peer_allowed({"x509_common_name": [b"gateway"]}, ("gateway",)) is False
    assert certificate_names(b"not a certificate") == frozenset()


def test_ip_subjects_are_compared_in_their_normal_form() -> None:
    assert parse_subjects("2001:DB8:0:0:0:0:0:1, 10.0.0.1") == ("2001:db8::1", "10.0.0.1")


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


def test_staging_refuses_a_directory_that_is_not_pdps_and_follows_no_link(
    tmp_path: Path, ca: Pair
) -> None:
    one = make_cert(tmp_path, ca, "one", "one", SAN)
    files = TlsFiles.read(str(one.cert), str(one.key), None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "linked"
    link.symlink_to(elsewhere)
    with pytest.raises(TlsError, match="not pdp's own directory"):
        stage(files, str(link))
    directory = tmp_path / "staged"
    directory.mkdir(mode=0o755)
    planted = tmp_path / "planted.pem"
    planted.write_text("")
    (directory / f"key.pem.{os.getpid()}.tmp").symlink_to(planted)
    (directory / "key.pem").symlink_to(planted)
    staged = stage(files, str(directory))
    assert planted.read_text() == ""  # the key went to no file but pdp's own
    key = Path(staged.key)
    assert not key.is_symlink() and key.stat().st_mode & 0o077 == 0
    assert directory.stat().st_mode & 0o777 == 0o700
