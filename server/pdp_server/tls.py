"""TLS on the decision ports (HTTP and gRPC): the server's certificate and key, and with a client
CA, client certificates (mTLS) whose names can be held to an allow-list. docs/serving.md, TLS.

`pdp serve` reads the configured files, checks them (a certificate, a key that belongs to it, a
CA that parses) and stages a copy in its run directory; the workers serve the copies. A
`TlsWatcher` in the parent process looks at the configured files every watch interval and, when
they change, checks and stages the new ones and restarts the workers one by one (SIGHUP, as a
store reload does): new connections get the new certificate, and a broken file never replaces a
good one. Reading the configured paths afresh each time follows the links Kubernetes swaps when
it updates a mounted secret.

Neither grpc nor granian is imported here (the parent process imports this before the workers
exist); the gRPC credentials are built by grpc_service from `Staged`.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import os
import signal
import ssl
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

__all__ = [
    "Staged",
    "TlsError",
    "TlsFiles",
    "TlsWatcher",
    "certificate_names",
    "names_allowed",
    "parse_subjects",
    "peer_allowed",
    "stage",
]

log = logging.getLogger("pdp.server.tls")
MAX_FILE = 1 << 20  # bytes: a certificate chain, key or CA bundle larger than this is refused


class TlsError(ValueError):
    """A TLS file pdp cannot serve; the message names the setting and the file."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The contents of the configured files, checked."""

    cert: bytes
    key: bytes
    ca: bytes | None

    @classmethod
    def read(cls, cert: str, key: str, ca: str | None) -> TlsFiles:
        files = cls(
            _read(cert, "PDP_TLS_CERT"),
            _read(key, "PDP_TLS_KEY"),
            None if ca is None else _read(ca, "PDP_TLS_CLIENT_CA"),
        )
        files.check(cert, key, ca)
        return files

    def check(self, cert: str, key: str, ca: str | None) -> None:
        """Load the files as a TLS server would: Python's ssl (OpenSSL) parses them and checks
        that the key belongs to the certificate."""
        with tempfile.TemporaryDirectory(prefix="pdp-tls-check-") as scratch:
            cert_path, key_path = os.path.join(scratch, "cert"), os.path.join(scratch, "key")
            for path, data in ((cert_path, self.cert), (key_path, self.key)):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                    out.write(data)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                context.load_cert_chain(cert_path, key_path)
            except ssl.SSLError as exc:
                raise TlsError(
                    f"PDP_TLS_CERT {cert} and PDP_TLS_KEY {key}: not a certificate and its key"
                    f" ({exc.reason or exc})"
                ) from None
        if self.ca is not None:
            if b"-----BEGIN CERTIFICATE-----" not in self.ca:
                raise TlsError(f"PDP_TLS_CLIENT_CA {ca}: holds no PEM certificate")
            try:
                context.load_verify_locations(cadata=self.ca.decode("ascii", "replace"))
            except (ssl.SSLError, ValueError) as exc:
                raise TlsError(f"PDP_TLS_CLIENT_CA {ca}: not PEM certificates ({exc})") from None


def _read(path: str, setting: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE + 1)
    except OSError as exc:
        raise TlsError(f"{setting} {path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE:
        raise TlsError(f"{setting} {path}: larger than {MAX_FILE} bytes")
    return data


@dataclass(frozen=True, slots=True)
class Staged:
    """The run directory's copies that the workers serve."""

    cert: str
    key: str
    ca: str | None


def stage(files: TlsFiles, directory: str) -> Staged:
    """Write `files` to `directory`, pdp's own (created 0700; an existing one must be a
    directory of this user, never a link), each file written to a new 0600 scratch file that
    no link can redirect, then renamed into place. TlsError when the directory is not pdp's."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        info = os.lstat(directory)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise TlsError(f"{directory}: exists and is not pdp's own directory") from None
        os.chmod(directory, 0o700)
    staged = Staged(
        os.path.join(directory, "cert.pem"),
        os.path.join(directory, "key.pem"),
        None if files.ca is None else os.path.join(directory, "client-ca.pem"),
    )
    pairs = [(staged.cert, files.cert), (staged.key, files.key)]
    if staged.ca is not None and files.ca is not None:
        pairs.append((staged.ca, files.ca))
    for path, data in pairs:
        scratch = f"{path}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)  # left by a process of the same pid that died mid-write
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with open(os.open(scratch, flags, 0o600), "wb") as out:
            out.write(data)
        os.replace(scratch, path)  # a rename replaces a link at `path`, it does not follow it
    return staged


def parse_subjects(raw: str) -> tuple[str, ...]:
    """PDP_TLS_CLIENT_SUBJECTS: names, comma-separated, each compared exactly (no patterns);
    an IP address in its normal form (`2001:DB8::1` is `2001:db8::1`), as certificates' are."""
    names = tuple(_normal(name.strip()) for name in raw.split(",") if name.strip())
    if not names:
        raise ValueError("must name at least one client (a certificate's CN or a SAN)")
    for name in names:
        if any(c.isspace() or ord(c) < 0x20 for c in name) or len(name) > 1024:
            raise ValueError(f"{name[:80]!r}: a name holds no spaces or control characters")
    return names


def _normal(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


@functools.lru_cache(maxsize=1024)  # keyed by the certificate: at most ~2 MB of them
def certificate_names(data: bytes) -> frozenset[str]:
    """Every name a client certificate (DER, or PEM as gRPC shows it) carries, read the same
    way for both ports: each subject CN, and each subject alternative name of type DNS, URI,
    e-mail or IP (in its normal form). A name holding a NUL makes the certificate name
    nothing: a C library (gRPC's among them) would read it cut short at the NUL."""
    try:
        if data.startswith(b"-----BEGIN"):
            certificate = x509.load_pem_x509_certificate(data)
        else:
            certificate = x509.load_der_x509_certificate(data)
        subject = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        names: list[object] = [attribute.value for attribute in subject]
        try:
            alternative = certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value
        except x509.ExtensionNotFound:
            alternative = None
        if alternative is not None:
            for kind in (x509.DNSName, x509.UniformResourceIdentifier, x509.RFC822Name):
                names += alternative.get_values_for_type(kind)
            names += [str(ip) for ip in alternative.get_values_for_type(x509.IPAddress)]
    except ValueError:  # not a certificate cryptography can read: it names nobody
        return frozenset()
    if any(not isinstance(name, str) or "\x00" in name for name in names):
        return frozenset()
    return frozenset(name for name in names if isinstance(name, str))


def peer_allowed(auth_context: Mapping[str, Sequence[bytes]], subjects: Iterable[str]) -> bool:
    """Whether a verified client certificate (gRPC's auth context: its `x509_pem_cert`, not
    the names gRPC extracted, which stop at a NUL) carries one of `subjects`."""
    pem = auth_context.get("x509_pem_cert") or ()
    return bool(pem) and names_allowed(certificate_names(bytes(pem[0])), subjects)


def names_allowed(names: Iterable[str], subjects: Iterable[str]) -> bool:
    """Whether one of a certificate's `names` is one of `subjects`, exactly."""
    return not set(names).isdisjoint(subjects)


class TlsWatcher:
    """Looks at the configured files every `interval` seconds (a daemon thread of the parent
    process); when their contents change and check, stages them and calls `restart`."""

    def __init__(
        self,
        configured: tuple[str, str, str | None],
        current: TlsFiles,
        directory: str,
        interval: float,
        restart: Callable[[], None] | None = None,
    ) -> None:
        self._configured = configured
        self._current = current
        self._directory = directory
        self._interval = max(interval, 0.05)
        self._restart = restart or (lambda: os.kill(os.getpid(), signal.SIGHUP))
        self._stop = threading.Event()
        self._refused: str | None = None

    def start(self) -> None:
        threading.Thread(target=self._run, name="pdp-tls-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def look(self) -> bool:
        """One look: True when new files were staged. The files are read each time (through
        any links, as they are now) and checked only when their bytes changed."""
        cert, key, ca = self._configured
        try:
            files = TlsFiles(
                _read(cert, "PDP_TLS_CERT"),
                _read(key, "PDP_TLS_KEY"),
                None if ca is None else _read(ca, "PDP_TLS_CLIENT_CA"),
            )
            if files == self._current:
                self._refused = None
                return False
            files.check(cert, key, ca)
            stage(files, self._directory)
        except (TlsError, OSError) as exc:
            if str(exc) != self._refused:  # say it once, not every interval
                log.error("pdp serve: TLS files refused, the served ones stay: %s", exc)
                self._refused = str(exc)
            return False
        self._refused = None
        self._current = files
        log.info("pdp serve: TLS files changed: restarting the workers one by one")
        self._restart()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.look()
            except Exception:  # a thread that dies would stop every later rotation
                log.exception("pdp serve: TLS watch failed")
