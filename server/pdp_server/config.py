"""What `pdp serve` runs with: every setting defined once, here.

Each field of `Config` carries its environment variable, its flag, its parser and its help
(`setting(...)`); `Config.from_sources` reads the environment and then the flags over it, the
`pdp serve` parser is built from the same fields (`add_arguments`), and so is the table in
docs/serving.md (`markdown_table`; a test keeps the two equal). The parent process resolves the
configuration once and hands it to its workers as a file (`save` / `load`): a worker reads no
PDP_* variable of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from typing import Any

from pdp_server.gateway import check_role, parse_sources
from pdp_server.requests import MAX_BATCH, MAX_BATCH_CHARS
from pdp_server.tls import parse_subjects

__all__ = ["Config", "ConfigError", "add_arguments", "markdown_table"]


class ConfigError(ValueError):
    """A setting holds a value the server cannot use; the message names the variable or flag."""


def _text(raw: str) -> str:
    return raw


def _optional(raw: str) -> str | None:
    return raw or None


def _bounded(kind: type[int] | type[float], low: float, high: float | None) -> Callable[[str], Any]:
    what = "a whole number" if kind is int else "a number"
    bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"

    def parse(raw: str) -> int | float:
        try:
            number = kind(raw)
        except ValueError:
            raise ValueError(f"must be {what}, not {raw!r}") from None
        if number < 0 or not math.isfinite(number):
            raise ValueError(f"must be a finite number, not negative: {raw!r}")
        if number < low or (high is not None and number > high):
            raise ValueError(f"must be {bounds}, not {raw!r}")
        return number

    parse.__doc__ = f"{what}, {bounds}"
    return parse


_ON = frozenset({"1", "on", "true", "yes"})
_OFF = frozenset({"", "0", "off", "false", "no"})


def _account(raw: str) -> str | None:
    """a 12-digit account id"""
    if not raw:
        return None
    if not re.fullmatch(r"[0-9]{12}", raw):
        raise ValueError(f"must be a 12-digit account id, not {raw!r}")
    return raw


def _sources(raw: str) -> str:
    """claim:<name>, peer or header:<name>, comma-separated"""
    parse_sources(raw)
    return raw


def _role(raw: str) -> str | None:
    """a role ARN"""
    if not raw:
        return None
    return check_role(raw)


def _subjects(raw: str) -> str | None:
    """names, comma-separated"""
    if not raw:
        return None
    parse_subjects(raw)
    return raw


def _switch(raw: str) -> bool:
    """on or off"""
    lowered = raw.strip().lower()
    if lowered in _ON:
        return True
    if lowered in _OFF:
        return False
    raise ValueError(f"must be on or off (1/0, true/false, yes/no), not {raw!r}")


def _whole(low: float = 0, high: float | None = None) -> Callable[[str], Any]:
    return _bounded(int, low, high)


def _number(low: float = 0, high: float | None = None) -> Callable[[str], Any]:
    return _bounded(float, low, high)


def setting(
    default: Any,
    env: str,
    help: str,
    parse: Callable[[str], Any] = _text,
    *,
    flag: bool = True,
    secret: bool = False,
) -> Any:
    """A Config field: its default, PDP_* variable, parser and help; `flag=False` for values
    that must not appear on a command line (ps shows it to every user)."""
    metadata = {"env": env, "help": help, "parse": parse, "flag": flag, "secret": secret}
    return field(default=default, metadata=metadata, repr=not secret)


@dataclass
class Config:
    """What `pdp serve` runs. The store has no default: it must be given."""

    store: str = setting("", "PDP_STORE", "the store directory to serve (required)")
    grpc: str = setting("127.0.0.1:50051", "PDP_GRPC", "gRPC address, HOST:PORT or unix:PATH")
    http: str = setting("127.0.0.1:8180", "PDP_HTTP", "HTTP sidecar address, HOST:PORT")
    admin: str = setting("127.0.0.1:8182", "PDP_ADMIN", "admin listener address, HOST:PORT")
    workers: int = setting(1, "PDP_WORKERS", "worker processes", _whole(1))
    cache_size: int = setting(
        100_000, "PDP_CACHE_SIZE", "decisions cached per worker (0: no cache)", _whole()
    )
    watch_interval: float = setting(
        1.0, "PDP_WATCH_INTERVAL", "seconds between looks at the store", _number(0.05)
    )
    max_batch: int = setting(MAX_BATCH, "PDP_MAX_BATCH", "requests in one batch", _whole(1))
    max_batch_chars: int = setting(
        MAX_BATCH_CHARS,
        "PDP_MAX_BATCH_CHARS",
        "characters of one batch (strings, plus 16 a context key and value)",
        _whole(1),
    )
    max_body: int = setting(1 << 20, "PDP_MAX_BODY", "bytes of an HTTP request body", _whole(1))
    body_timeout: float = setting(
        10.0, "PDP_BODY_TIMEOUT", "seconds to receive a whole HTTP body (then 408)", _number(0.1)
    )
    header_timeout: float = setting(
        10.0,
        "PDP_HEADER_TIMEOUT",
        "seconds to receive HTTP headers, and idle keep-alive",
        _number(0.1, 60),
    )
    max_connections: int = setting(
        4096, "PDP_MAX_CONNECTIONS", "open HTTP connections per worker", _whole(1)
    )
    body_budget: int = setting(
        64 << 20,
        "PDP_BODY_BUDGET",
        "bytes of large HTTP bodies (over 16 KiB) held per worker",
        _whole(),
    )
    grpc_max_concurrent: int = setting(
        64,
        "PDP_GRPC_MAX_CONCURRENT",
        "gRPC calls admitted at once per worker (0: no limit)",
        _whole(),
    )
    grpc_threads: int = setting(
        4, "PDP_GRPC_THREADS", "threads per worker that read and decide gRPC batches", _whole(1)
    )
    admin_token: str | None = setting(
        None,
        "PDP_ADMIN_TOKEN",
        "the admin bearer token (no flag: a command line is public)",
        _optional,
        flag=False,
        secret=True,
    )
    admin_token_file: str | None = setting(
        None,
        "PDP_ADMIN_TOKEN_FILE",
        "a file holding the admin bearer token (the flag wins over PDP_ADMIN_TOKEN)",
        _optional,
    )
    admin_timeout: int = setting(
        10, "PDP_ADMIN_TIMEOUT", "seconds an idle or half-sent admin connection stays", _whole(1)
    )
    run_dir: str | None = setting(
        None,
        "PDP_RUN_DIR",
        "the workers' shared directory (default: a new temporary one)",
        _optional,
    )
    decision_log: str | None = setting(
        None, "PDP_DECISION_LOG", '"stdout" or a file; off when unset', _optional
    )
    decision_log_sample: float = setting(
        1.0,
        "PDP_DECISION_LOG_SAMPLE",
        "share of Allow decisions logged (Deny and root: all)",
        _number(0, 1),
    )
    decision_log_max_bytes: int = setting(
        100 << 20, "PDP_DECISION_LOG_MAX_BYTES", "bytes of a log file before it rotates", _whole()
    )
    decision_log_backups: int = setting(
        10, "PDP_DECISION_LOG_BACKUPS", "rotated files kept: .1 ... .N", _whole()
    )
    decision_log_queue: int = setting(
        10_000, "PDP_DECISION_LOG_QUEUE", "events queued for the writer", _whole(1)
    )
    decision_log_queue_bytes: int = setting(
        64 << 20,
        "PDP_DECISION_LOG_QUEUE_BYTES",
        "estimated bytes queued for the writer",
        _whole(1),
    )
    decision_log_max_value: int = setting(
        1024, "PDP_DECISION_LOG_MAX_VALUE", "characters per string in a logged context", _whole(1)
    )
    decision_log_max_context: int = setting(
        16 << 10,
        "PDP_DECISION_LOG_MAX_CONTEXT",
        "estimated bytes of one logged context",
        _whole(2),
    )
    advisor_db: str | None = setting(
        None,
        "PDP_ACCESS_ADVISOR_DB",
        "the Access Advisor database (default: <decision log>.advisor.sqlite)",
        _optional,
    )
    advisor_max_rows: int = setting(
        100_000,
        "PDP_ACCESS_ADVISOR_MAX_ROWS",
        "(principal, service) rows in the Access Advisor",
        _whole(1),
    )
    advisor_max_per_principal: int = setting(
        500,
        "PDP_ACCESS_ADVISOR_MAX_PER_PRINCIPAL",
        "services per principal in the Access Advisor",
        _whole(1),
    )
    explain: bool = setting(
        False,
        "PDP_EXPLAIN",
        'honour "explain" on decision requests (it shows policy internals to the caller)',
        _switch,
    )
    authzen_token: str | None = setting(
        None,
        "PDP_AUTHZEN_TOKEN",
        "the key AuthZEN callers send as Authorization (bare or Bearer); open when unset",
        _optional,
        flag=False,
        secret=True,
    )
    authzen_base_url: str | None = setting(
        None,
        "PDP_AUTHZEN_BASE_URL",
        "the policy_decision_point URL of /.well-known/authzen-configuration (default: the Host)",
        _optional,
    )

    tls_cert: str | None = setting(
        None,
        "PDP_TLS_CERT",
        "TLS on the HTTP and gRPC ports: the server's certificate chain (PEM file)",
        _optional,
    )
    tls_key: str | None = setting(
        None, "PDP_TLS_KEY", "the private key of PDP_TLS_CERT (PEM file)", _optional
    )
    tls_client_ca: str | None = setting(
        None,
        "PDP_TLS_CLIENT_CA",
        "mTLS: clients must present a certificate this CA bundle (PEM file) signed",
        _optional,
    )
    tls_client_subjects: str | None = setting(
        None,
        "PDP_TLS_CLIENT_SUBJECTS",
        "mTLS: the client certificate's CN or a SAN must be one of these (both ports)",
        _subjects,
    )
    gateway_region: str = setting(
        "us-east-1",
        "PDP_GATEWAY_REGION",
        "region of the execute-api ARNs (ext_authz, forward-auth)",
    )
    gateway_account: str | None = setting(
        None,
        "PDP_GATEWAY_ACCOUNT",
        "account of the execute-api ARNs (default: the store's account)",
        _account,
    )
    gateway_api: str | None = setting(
        None, "PDP_GATEWAY_API", "API id of the execute-api ARNs (default: the Host)", _optional
    )
    gateway_stage: str = setting("$default", "PDP_GATEWAY_STAGE", "stage of the execute-api ARNs")
    gateway_principal: str = setting(
        "claim:sub,peer",
        "PDP_GATEWAY_PRINCIPAL",
        "ext_authz principal sources in order: claim:<name>, peer, header:<name>",
        _sources,
    )
    gateway_role: str | None = setting(
        None,
        "PDP_GATEWAY_ROLE",
        "a role ARN: gateway callers are sessions of it, claims its session tags",
        _role,
    )
    gateway_jwt_payload: str | None = setting(
        None,
        "PDP_GATEWAY_JWT_PAYLOAD",
        "ext_authz: jwt_authn's payload_in_metadata key of the claims (default: its only one)",
    )
    gateway_deny_body: bool = setting(
        False, "PDP_GATEWAY_DENY_BODY", "say why in the body of a gateway denial", _switch
    )
    forward_auth_principal_header: str = setting(
        "X-Forwarded-User",
        "PDP_FORWARD_AUTH_PRINCIPAL_HEADER",
        "the header forward-auth reads the principal from (the proxy must set it)",
    )

    def advisor_path(self) -> str | None:
        if self.advisor_db:
            return self.advisor_db
        if self.decision_log and self.decision_log != "stdout":
            return f"{self.decision_log}.advisor.sqlite"
        return None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        """The configuration from PDP_* variables alone (no flags)."""
        return cls.from_sources(environ, argparse.Namespace())

    @classmethod
    def from_sources(cls, environ: Mapping[str, str], flags: argparse.Namespace) -> Config:
        """Defaults, then PDP_* variables, then the flags given (`add_arguments` made them);
        then the admin token is read from its file. ConfigError names the variable or flag."""
        values: dict[str, Any] = {}
        token_file_flag = False
        for item in _settings():
            raw_flag = getattr(flags, item.name, None)
            if raw_flag is not None:
                where, raw = _flag(item), raw_flag
                token_file_flag |= item.name == "admin_token_file"
            elif item.metadata["env"] in environ:
                where, raw = item.metadata["env"], environ[item.metadata["env"]]
            else:
                continue
            try:
                values[item.name] = item.metadata["parse"](raw)
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        config = cls(**values)
        if config.admin_token_file and (token_file_flag or not config.admin_token):
            config.admin_token = _read_token(config.admin_token_file, token_file_flag)
        return config

    def check(self) -> None:
        """What `pdp serve` needs beyond each value's own range."""
        if not self.store:
            raise ConfigError("--store (or PDP_STORE): required: the store directory to serve")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("PDP_TLS_CERT and PDP_TLS_KEY: give both (TLS) or neither")
        if self.tls_client_ca and not self.tls_cert:
            raise ConfigError("PDP_TLS_CLIENT_CA: needs PDP_TLS_CERT and PDP_TLS_KEY (TLS)")
        if self.tls_client_subjects and not self.tls_client_ca:
            raise ConfigError(
                "PDP_TLS_CLIENT_SUBJECTS: needs PDP_TLS_CLIENT_CA (client certificates)"
            )

    def save(self, path: str) -> None:
        """Write the resolved configuration for the workers. It holds the token, so it is
        written to a new file of mode 0600 (never through an existing file or link, whatever
        its mode) and renamed into place: the rename replaces a link, it does not follow it."""
        scratch = f"{path}.{os.getpid()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            os.unlink(scratch)  # left by a process of the same pid that died mid-write
        except FileNotFoundError:
            pass
        descriptor = os.open(scratch, flags, 0o600)
        try:
            os.fchmod(descriptor, 0o600)  # whatever the umask made of it
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(asdict(self), handle)
            os.replace(scratch, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(scratch)
            raise

    @classmethod
    def load(cls, path: str) -> Config:
        with open(path, encoding="utf-8") as handle:
            values = json.load(handle)
        known = {item.name for item in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _settings() -> list[Field[Any]]:
    return [item for item in fields(Config) if "env" in item.metadata]


def _flag(item: Field[Any]) -> str:
    return "--" + item.name.replace("_", "-")


def _read_token(path: str, from_flag: bool) -> str | None:
    where = "--admin-token-file" if from_flag else "PDP_ADMIN_TOKEN_FILE"
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None


def _default_text(item: Field[Any]) -> str:
    default = item.default if item.default is not MISSING else None
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return "on" if default else "off"
    if default == "":
        return "none: required"
    if isinstance(default, int) and default >= 1 << 20 and default % (1 << 20) == 0:
        return f"{default} ({default >> 20} MiB)"
    return str(default)


def _kind(item: Field[Any]) -> str:
    parse = item.metadata["parse"]
    return "text" if parse in (_text, _optional) else str(parse.__doc__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting (but the token itself), each defaulting to "not given"."""
    for item in _settings():
        if not item.metadata["flag"]:
            continue
        parser.add_argument(
            _flag(item),
            dest=item.name,
            metavar=item.name.upper(),
            help=f"{item.metadata['help']} ({item.metadata['env']}; {_kind(item)};"
            f" default {_default_text(item)})",
        )


def markdown_table() -> str:
    """The settings as the table in docs/serving.md."""
    lines = [
        "| flag | environment variable | default | values | what it sets |",
        "| --- | --- | --- | --- | --- |",
    ]
    for item in _settings():
        flag = f"`{_flag(item)}`" if item.metadata["flag"] else "(none)"
        cells = (flag, f"`{item.metadata['env']}`", _default_text(item), _kind(item))
        lines.append(f"| {' | '.join(cells)} | {item.metadata['help']} |")
    return "\n".join(lines) + "\n"
