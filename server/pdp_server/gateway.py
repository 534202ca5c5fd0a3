"""An HTTP request seen by a gateway, as an IAM request: the mapping behind forward-auth and
Envoy ext_authz (docs/serving.md, Gateway mapping).

AWS API Gateway's scheme is the default: the action is `execute-api:Invoke`, the resource
`arn:aws:execute-api:<region>:<account>:<api>/<stage>/<METHOD>/<path>` (the path without its
leading slash and without the query). The principal comes from the first of the configured
sources that has one (`claim:<name>` of verified JWT claims, `peer` for the mTLS peer,
`header:<name>`); with PDP_GATEWAY_ROLE the caller is a session of that role, its string claims
its session tags (as AssumeRoleWithWebIdentity makes them). An `amr` claim holding "mfa" is
`aws:MultiFactorAuthPresent`.

A path is refused, never guessed at: pdp decides on the path the upstream will serve, so a
spelling the upstream could read differently (`/public/../admin`, `%2e%2e`, an encoded slash
or backslash, `//`, a control character, bad percent-encoding) is a Deny before any policy is
read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from pdp import Session
from pdp_server.errors import BadRequest
from pdp_server.requests import MAX_STRING, DecisionRequest, check_session

if TYPE_CHECKING:
    from pdp.store import Snapshot
    from pdp_server.config import Config
    from pdp_server.service import Service

__all__ = [
    "ACTION",
    "MAX_CLAIMS",
    "MAX_HEADER",
    "GatewayAnswer",
    "GatewayRules",
    "HttpCall",
    "Refused",
    "check_role",
    "answer",
    "clean_path",
    "denial_body",
    "parse_sources",
    "refusal",
    "to_request",
]

ACTION = "execute-api:Invoke"
MAX_CLAIMS = 64  # claims read from one token (more: refused)
MAX_CLAIM_CHARS = 16_384  # characters of all string claims together
MAX_HEADER = 8_192  # characters of one header value that pdp reads
_METHOD = re.compile(r"[A-Z]{1,16}")
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_ROLE_ARN = re.compile(
    r"arn:aws:iam::([0-9]{12}):role/(?:[\x21-\x7e]*/)?([\w+=,.@-]{1,64})", re.ASCII
)
_BAD_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")
_SOURCES = ("claim", "peer", "header")
_TAG_VALUE = 256  # AWS's limits for session tags
_TAG_KEY = 128
_MAX_TAGS = 50
AWS_TAGS_CLAIM = "https://aws.amazon.com/tags"


class Refused(Exception):
    """The request cannot be decided as asked: `status` is what the door answers (401: no
    principal; 403: a path pdp will not match; 400: the gateway sent too little)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class HttpCall:
    """What a gateway tells pdp about one request. `headers` have lower-case names;
    `claims` come from a token the gateway verified (never from a header pdp would trust)."""

    method: str
    path: str  # as sent: may hold a query
    host: str = ""
    headers: Mapping[str, str] | None = None
    claims: Mapping[str, Any] | None = None
    peer: str | None = None
    source_ip: str | None = None
    secure: bool = False


@dataclass(frozen=True, slots=True)
class GatewayRules:
    """The mapping's settings (PDP_GATEWAY_*)."""

    region: str = "us-east-1"
    account: str | None = None  # None: the store's account
    api: str | None = None  # None: the Host, without its port
    stage: str = "$default"
    principal: tuple[tuple[str, str], ...] = (("claim", "sub"), ("peer", ""))
    role: str | None = None

    @classmethod
    def of(cls, config: Config, principal: str | None = None) -> GatewayRules:
        """The rules of `config`; `principal` overrides its principal sources (forward-auth
        takes its principal from one header, PDP_FORWARD_AUTH_PRINCIPAL_HEADER)."""
        return cls(
            region=config.gateway_region,
            account=config.gateway_account,
            api=config.gateway_api,
            stage=config.gateway_stage,
            principal=parse_sources(principal or config.gateway_principal),
            role=config.gateway_role,
        )


def parse_sources(raw: str) -> tuple[tuple[str, str], ...]:
    """ "claim:sub,peer,header:x-user" -> (("claim", "sub"), ("peer", ""), ("header", "x-user"))."""
    out = []
    for item in raw.split(","):
        kind, _, name = item.strip().partition(":")
        if kind not in _SOURCES or (kind != "peer") != bool(name):
            raise ValueError(f"{item.strip()!r}: must be claim:<name>, header:<name> or peer")
        out.append((kind, name.lower() if kind == "header" else name))
    return tuple(out)


def check_role(raw: str) -> str:
    """PDP_GATEWAY_ROLE: a role ARN."""
    if not _ROLE_ARN.fullmatch(raw):
        raise ValueError(f"{raw!r}: must be a role ARN (arn:aws:iam::<account>:role/<name>)")
    return raw


def clean_path(raw: str) -> str:
    """The path the upstream serves, decoded; Refused(403) for any spelling that a server
    could read as another path. The query is not part of it."""
    if "#" in raw:  # a request target never holds a fragment: a server may keep it in the path
        raise Refused(403, "path: a # is refused (a request target has no fragment)")
    path = raw.partition("?")[0]
    if not path.startswith("/"):
        raise Refused(403, f"path: must start with / (got {raw[:80]!r})")
    if len(path) > MAX_STRING // 2:
        raise Refused(403, "path: too long")
    if not path.isascii() or any(c <= " " or c == "\x7f" for c in path):
        # a request target is printable ASCII (RFC 9112): a space is two headers joined
        raise Refused(403, "path: spaces, control and non-ASCII characters must be %-encoded")
    lowered = path.lower()
    if "%2f" in lowered or "%5c" in lowered or "\\" in path:
        raise Refused(403, "path: an encoded slash or a backslash is refused")
    if "%25" in lowered or ";" in path:  # read twice or as parameters by some servers
        raise Refused(403, "path: an encoded % or a ; is refused")
    if _BAD_ESCAPE.search(path):
        raise Refused(403, "path: bad percent-encoding")
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise Refused(403, "path: percent-encoding that is not UTF-8") from None
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in decoded):  # C0, DEL and C1
        raise Refused(403, "path: control characters are refused")
    segments = decoded.split("/")[1:]
    for i, segment in enumerate(segments):
        if segment in (".", ".."):
            raise Refused(403, "path: dot segments (. and ..) are refused")
        if segment == "" and i != len(segments) - 1:
            raise Refused(403, "path: empty segments (//) are refused")
    return decoded


def _principal(call: HttpCall, rules: GatewayRules) -> str | None:
    headers = call.headers or {}
    for kind, name in rules.principal:
        if kind == "claim":
            value = (call.claims or {}).get(name)
        elif kind == "peer":
            value = call.peer
        else:
            value = headers.get(name)
        if isinstance(value, str) and value.strip():
            if len(value) > MAX_HEADER:
                raise Refused(401, f"{kind} {name}: principal too long")
            return value.strip()
    return None


def _mfa(claims: Mapping[str, Any]) -> bool:
    amr = claims.get("amr")
    if isinstance(amr, str):
        return amr == "mfa"
    return isinstance(amr, list) and "mfa" in amr


def _check_claims(claims: Mapping[str, Any]) -> None:
    if len(claims) > MAX_CLAIMS:
        raise Refused(403, f"claims: more than {MAX_CLAIMS}")
    size = sum(len(k) + (len(v) if isinstance(v, str) else 16) for k, v in claims.items())
    if size > MAX_CLAIM_CHARS:
        raise Refused(403, f"claims: more than {MAX_CLAIM_CHARS} characters")


def _tags(claims: Mapping[str, Any]) -> dict[str, str]:
    """A session's tags from its token, as AssumeRoleWithWebIdentity takes them from AWS's claim
    (`https://aws.amazon.com/tags`: `principal_tags`, each a list of one string), or without
    it every scalar claim (strings; numbers and booleans as text). Past AWS's limits (50 tags,
    keys of 128, values of 256 characters) the token is refused, never cut: a Deny may be
    conditioned on the tag that would go missing."""
    tags: dict[str, str] = {}
    if AWS_TAGS_CLAIM in claims:
        found = claims[AWS_TAGS_CLAIM]
        principal_tags = found.get("principal_tags", {}) if isinstance(found, dict) else None
        if not isinstance(principal_tags, dict):
            raise Refused(403, f"claims: {AWS_TAGS_CLAIM}: principal_tags must be an object")
        for key, value in principal_tags.items():
            if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], str)):
                raise Refused(403, f"claims: {AWS_TAGS_CLAIM}: {key}: a list of one string")
            tags[key] = value[0]
    else:
        for key, value in claims.items():
            if isinstance(value, bool):
                tags[key] = "true" if value else "false"
            elif isinstance(value, int | float):
                integral = isinstance(value, float) and value.is_integer()
                tags[key] = str(int(value)) if integral else str(value)
            elif isinstance(value, str):
                tags[key] = value
    over = [k for k, v in tags.items() if not 0 < len(k) <= _TAG_KEY or len(v) > _TAG_VALUE]
    if len(tags) > _MAX_TAGS or over:
        what = f"{over[0]!r} over" if over else f"{len(tags)} tags, over"
        raise Refused(
            403, f"claims: {what} AWS's session tag limits (50 tags, keys 128, values 256)"
        )
    return tags


def _session(call: HttpCall, name: str, account: str, role: str) -> tuple[str, Session]:
    """A role session of `role` for the caller `name` (its session name), tagged from its
    token's claims (`_tags`)."""
    if not _SESSION_NAME.fullmatch(name):
        raise Refused(401, "principal: not a valid role session name ([\\w+=,.@-]{2,64})")
    found = _ROLE_ARN.fullmatch(role)
    assert found is not None  # checked when the settings were read
    claims = call.claims or {}
    raw: dict[str, Any] = {"tags": _tags(claims), "mfa_present": _mfa(claims)}
    subject = claims.get("sub")
    if isinstance(subject, str) and _SESSION_NAME.fullmatch(subject):
        raw["source_identity"] = subject
    try:
        session = check_session(raw)
    except BadRequest as exc:
        raise Refused(403, str(exc)) from None
    assert session is not None
    arn = f"arn:aws:sts::{found.group(1)}:assumed-role/{found.group(2)}/{name}"
    return arn, session


def _api(call: HttpCall, rules: GatewayRules) -> str:
    """The API id: PDP_GATEWAY_API, else the Host as one spelling (lower case, without its
    port and the DNS root's trailing dot: `Internal.Example.com.:443` is `internal.example.com`)."""
    if rules.api:
        return rules.api
    host, colon, port = call.host.partition(":")
    if colon and not (port.isascii() and port.isdigit() and len(port) <= 5):
        raise Refused(400, "host: a port is digits (or set PDP_GATEWAY_API)")
    host = host.lower().removesuffix(".")
    if not _LABEL.fullmatch(host) or ".." in host or host.endswith("."):
        raise Refused(400, "host: required to name the API (or set PDP_GATEWAY_API)")
    return host


def to_request(call: HttpCall, rules: GatewayRules, store_account: str) -> DecisionRequest:
    """The IAM request of `call` (Refused says why there is none)."""
    method = call.method.upper()
    if not _METHOD.fullmatch(method):
        raise Refused(400, "method: required, an HTTP method")
    path = clean_path(call.path)
    claims = call.claims or {}
    _check_claims(claims)
    name = _principal(call, rules)
    if name is None:
        raise Refused(
            401,
            "no principal: " + ", ".join(k + (":" + n if n else "") for k, n in rules.principal),
        )
    account = rules.account or store_account
    resource = (
        f"arn:aws:execute-api:{rules.region}:{account}:{_api(call, rules)}/{rules.stage}/"
        f"{method}/{path[1:]}"
    )
    if len(resource) > MAX_STRING:
        raise Refused(403, "path: too long")
    context: dict[str, Any] = {"aws:SecureTransport": call.secure}
    if call.source_ip:
        context["aws:SourceIp"] = call.source_ip
    if rules.role is not None:
        principal, session = _session(call, name, account, rules.role)
        return DecisionRequest(principal, ACTION, resource, context, None, "role_session", session)
    context["aws:MultiFactorAuthPresent"] = _mfa(claims)
    return DecisionRequest(name, ACTION, resource, context)


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    """A gateway door's answer: `status` 200 (allow), 400, 401 or 403; on 200 the principal
    the request was decided for and the store version that decided it, else why not."""

    status: int
    why: str = ""
    principal: str = ""
    policy_version: str = ""


def answer(service: Service, call: HttpCall, rules: GatewayRules) -> GatewayAnswer:
    """Map `call` and decide it on the serving snapshot (NotReady before the first load)."""
    snapshot = service.serving()
    try:
        request = to_request(call, rules, snapshot.index.account)
    except Refused as exc:
        return refusal(service, exc)
    decision = service.decide_on(snapshot, request)
    if decision.decision != "Allow":
        return GatewayAnswer(403, decision.reason + "".join(f"; {e}" for e in decision.errors))
    return GatewayAnswer(200, "", _as_stored(snapshot, request), decision.policy_version or "")


def _as_stored(snapshot: Snapshot, request: DecisionRequest) -> str:
    """The principal as the store spells it (`ALICE` decides as the user `alice`, and the
    upstream is told `alice`), in the form the caller used: a name, or an ARN."""
    if request.principal_type != "user":
        return request.principal
    entry = snapshot.index.resolve(request.principal)
    if entry is None:
        return request.principal
    return entry.arn if request.principal.startswith("arn:") else entry.user.name


def refusal(service: Service, exc: Refused) -> GatewayAnswer:
    """The answer to a request refused before any policy was read, counted as one
    (`pdp_gateway_refused_total`): it is a denial, but no decision to log."""
    service.metrics.gateway_refused(exc.status)
    return GatewayAnswer(exc.status, str(exc))


def denial_body(why: str) -> bytes:
    """The body of a denial with PDP_GATEWAY_DENY_BODY=on."""
    return orjson.dumps({"allowed": False, "reason": why})
