"""Values that cross pdp's boundary: who asks (`Principal`) and what was decided (`Decision`)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import orjson

from pdp.errors import RequestError
from pdp.names import is_account_id, is_path, is_role_name, is_session_name, is_user_name

__all__ = ["Decision", "MatchedStatement", "Principal", "Request", "Session"]


# Keys the principal supplies (lower-cased): a request may not set them. These are the keys
# IAM derives from an IAM user that pdp knows from its store; other aws:Principal* keys
# (PrincipalOrgID, PrincipalOrgPaths, ...) are not in the store, so the caller provides them.
PRINCIPAL_KEYS = frozenset(
    {
        "aws:username",
        "aws:userid",
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "aws:principalisawsservice",
    }
)
PRINCIPAL_TAG_PREFIX = "aws:principaltag/"


def is_principal_key(lower: str) -> bool:
    """True for a (lower-cased) context key that only the principal may supply."""
    return lower in PRINCIPAL_KEYS or lower.startswith(PRINCIPAL_TAG_PREFIX)


def _unique_id(arn: str, prefix: str = "AIDA") -> str:
    """A stable IAM-style unique id (`prefix`, "AIDA" for users and "AROA" for roles, + 17
    base32 characters) derived from the ARN."""
    digest = base64.b32encode(hashlib.sha256(arn.encode()).digest()).decode()
    return prefix + digest[:17]


def role_unique_id(arn: str) -> str:
    """The unique id a role gets when its file names none: "AROA" + 17 characters."""
    return _unique_id(arn, "AROA")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request, with the keys IAM derives from it: an IAM user, the account root, a
    role session, an AWS service principal, an identity provider (federated) or anonymous.

    Build one with `Principal.user(...)`, `.root(...)`, `.session(...)`, `.service(...)`,
    `.federated(...)` or `.anonymous()`; `context_keys` holds the request-context keys it
    supplies (lower-cased names), such as `aws:username`. `arn` is the ARN a resource-based
    policy names it by (a session's `arn:aws:sts::...:assumed-role/<role>/<session>`; the name
    itself for a service or provider); `role_arn` is a session's role.
    """

    kind: Literal["user", "root", "session", "service", "federated", "anonymous"]
    name: str
    account: str
    arn: str
    user_id: str
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    context_keys: Mapping[str, str | bool | int] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )
    role_arn: str | None = None

    @classmethod
    def user(
        cls,
        name: str,
        *,
        account: str,
        tags: Mapping[str, str] | None = None,
        path: str = "/",
        user_id: str | None = None,
    ) -> Principal:
        """An IAM user `arn:aws:iam::<account>:user<path><name>` with its tags."""
        if not is_user_name(name):
            raise RequestError(f"principal: invalid user name {name!r}")
        if not is_account_id(account):
            raise RequestError(f"principal: account must be 12 digits, got {account!r}")
        if not is_path(path):
            raise RequestError(f"principal: invalid path {path!r}")
        clean_tags = _check_tags(tags or {})
        arn = f"arn:aws:iam::{account}:user{path}{name}"
        uid = user_id if user_id is not None else _unique_id(arn)
        keys: dict[str, str | bool | int] = {
            "aws:username": name,
            "aws:userid": uid,
            "aws:principalarn": arn,
            "aws:principalaccount": account,
            "aws:principaltype": "User",
            # present in every signed request; false for IAM users (condition-keys reference)
            "aws:principalisawsservice": False,
        }
        for key, value in clean_tags.items():
            keys[PRINCIPAL_TAG_PREFIX + key.lower()] = value
        return cls(
            kind="user",
            name=name,
            account=account,
            arn=arn,
            user_id=uid,
            tags=MappingProxyType(dict(clean_tags)),
            context_keys=MappingProxyType(keys),
        )

    @classmethod
    def root(cls, *, account: str) -> Principal:
        """The account root user `arn:aws:iam::<account>:root`."""
        if not is_account_id(account):
            raise RequestError(f"principal: account must be 12 digits, got {account!r}")
        arn = f"arn:aws:iam::{account}:root"
        keys: dict[str, str | bool | int] = {
            "aws:userid": account,
            "aws:principalarn": arn,
            "aws:principalaccount": account,
            "aws:principaltype": "Account",
            "aws:principalisawsservice": False,
        }
        return cls(
            kind="root",
            name="root",
            account=account,
            arn=arn,
            user_id=account,
            context_keys=MappingProxyType(keys),
        )

    @classmethod
    def session(
        cls,
        role: str,
        session_name: str,
        *,
        account: str,
        path: str = "/",
        role_id: str | None = None,
        role_tags: Mapping[str, str] | None = None,
        session: Session | None = None,
    ) -> Principal:
        """A role session `arn:aws:sts::<account>:assumed-role/<role>/<session_name>`. Its
        `aws:PrincipalArn` is the role's ARN, `aws:userid` is `<role id>:<session name>`, and
        its principal tags are the role's overridden by the session's (id_session-tags.html)."""
        if not is_role_name(role):
            raise RequestError(f"principal: invalid role name {role!r}")
        if not is_session_name(session_name):
            raise RequestError(
                f"principal: invalid role session name {session_name!r}"
                " (2 to 64 of A-Z a-z 0-9 +=,.@-)"
            )
        if not is_account_id(account):
            raise RequestError(f"principal: account must be 12 digits, got {account!r}")
        role_arn = f"arn:aws:iam::{account}:role{path}{role}"
        rid = role_id if role_id is not None else role_unique_id(role_arn)
        keys: dict[str, str | bool | int] = {
            "aws:userid": f"{rid}:{session_name}",
            "aws:principalarn": role_arn,
            "aws:principalaccount": account,
            "aws:principaltype": "AssumedRole",
            "aws:principalisawsservice": False,
        }
        tags = {k.lower(): (k, v) for k, v in _check_tags(role_tags or {}).items()}
        if session is not None:
            tags.update({k.lower(): (k, v) for k, v in session.tags.items()})
            keys.update(session.context_keys())
        for lower, (_, value) in tags.items():
            keys[PRINCIPAL_TAG_PREFIX + lower] = value
        return cls(
            kind="session",
            name=session_name,
            account=account,
            arn=f"arn:aws:sts::{account}:assumed-role/{role}/{session_name}",
            user_id=str(keys["aws:userid"]),
            tags=MappingProxyType({k: v for k, v in tags.values()}),
            context_keys=MappingProxyType(keys),
            role_arn=role_arn,
        )

    @classmethod
    def service(cls, name: str) -> Principal:
        """An AWS service principal such as `s3.amazonaws.com`, acting on its own behalf."""
        if not isinstance(name, str) or not _SERVICE_PRINCIPAL.fullmatch(name):
            raise RequestError(
                f"principal: {name!r} is not a service principal (such as s3.amazonaws.com)"
            )
        keys: dict[str, str | bool | int] = {
            "aws:principalisawsservice": True,
            "aws:principalservicename": name,
        }
        return cls("service", name, "", name, name, context_keys=MappingProxyType(keys))

    @classmethod
    def federated(cls, provider: str) -> Principal:
        """An identity provider calling sts:AssumeRoleWithWebIdentity / WithSAML: a web identity
        provider (`accounts.google.com`) or an IAM SAML/OIDC provider ARN."""
        if not isinstance(provider, str) or not _PROVIDER.fullmatch(provider):
            raise RequestError(
                f"principal: {provider!r} is not an identity provider (a host name such as"
                " accounts.google.com, or an IAM saml-provider/oidc-provider ARN)"
            )
        account = provider.split(":")[4] if provider.startswith("arn:") else ""
        keys: dict[str, str | bool | int] = {
            "aws:principalisawsservice": False,
            "aws:federatedprovider": provider,
        }
        return cls(
            "federated", provider, account, provider, provider, context_keys=MappingProxyType(keys)
        )

    @classmethod
    def anonymous(cls) -> Principal:
        """An unauthenticated caller: only a resource-based policy open to "*" lets it in."""
        keys: dict[str, str | bool | int] = {
            "aws:userid": "anonymous",
            "aws:principaltype": "Anonymous",
            "aws:principalisawsservice": False,
        }
        return cls(
            "anonymous",
            "anonymous",
            "",
            "anonymous",
            "anonymous",
            context_keys=MappingProxyType(keys),
        )


_SERVICE_PRINCIPAL = re.compile(r"[a-z0-9.-]+\.(?:amazonaws\.com|amazon\.com)(?:\.cn)?")
_PROVIDER = re.compile(
    r"[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?:/[\x21-\x7e]*)?"
    r"|arn:aws:iam::[0-9]{12}:(?:saml-provider|oidc-provider)/[\x21-\x7e]+",
    re.ASCII,
)


def _check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise RequestError("principal: tags must be an object of strings")
    seen: set[str] = set()
    for key, value in tags.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise RequestError(f"principal: tag {key!r} must map a non-empty string to a string")
        if key.lower() in seen:
            raise RequestError(f"principal: tag key {key!r} repeats (tag keys ignore case)")
        seen.add(key.lower())
    return dict(tags)


@dataclass(frozen=True, slots=True)
class MatchedStatement:
    """A statement that decided: its policy, its index in `Statement`, its Sid and its Effect."""

    policy: str
    statement: int
    sid: str | None
    effect: Literal["Allow", "Deny"]

    def to_dict(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "statement": self.statement,
            "sid": self.sid,
            "effect": self.effect,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one request.

    `decision` is "Allow" or "Deny"; `reason` uses the IAM policy simulator's words: "allowed",
    "explicitDeny" or "implicitDeny". `matched` holds the statements that decided (the Deny
    statements for an explicit deny, the Allow statements for an allow); `errors` is empty unless
    something went wrong, in which case the decision is always Deny. `policy_version` names the
    store version that decided; `root` is True when the account root made the request.
    """

    decision: Literal["Allow", "Deny"]
    reason: Literal["allowed", "explicitDeny", "implicitDeny"]
    matched: tuple[MatchedStatement, ...] = ()
    errors: tuple[str, ...] = ()
    policy_version: str | None = None
    root: bool = False  # the account root made the request (root use is always reported)
    # The evaluation chain: the layers consulted, in AWS's order (rcp, scp, resource, identity,
    # boundary, session), and those that denied. Both empty for a decision on identity
    # policies alone, which keeps the shape it always had.
    layers: tuple[str, ...] = ()
    blocked_by: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision == "Allow"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "decision": self.decision,
            "reason": self.reason,
            "matched": [m.to_dict() for m in self.matched],
            "errors": list(self.errors),
            "policy_version": self.policy_version,
            "root": self.root,
        }
        if self.layers:
            out["layers"] = list(self.layers)
            out["blocked_by"] = list(self.blocked_by)
        return out


@dataclass(frozen=True, slots=True)
class Request:
    """One decision request, as the transports check it and a store's tests state it: a user
    (name or ARN; the root ARN with `principal_type="root"`), an action, a resource, a context.
    `Snapshot.decide` decides it."""

    principal: str
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    principal_type: str = "user"  # PRINCIPAL_TYPES: "root" is asked for explicitly
    session: Session | None = None  # a role session's attributes (principal_type "role_session")


PRINCIPAL_TYPES = ("user", "root", "role_session", "service", "federated", "anonymous")

_SESSION_FIELDS = (
    "policies",
    "policy_arns",
    "tags",
    "transitive_tag_keys",
    "mfa_present",
    "mfa_age",
    "source_identity",
    "issued_at",
    "role_chain",
)
MAX_SESSION_POLICY_CHARS = 2048  # AWS: the inline session policy, without white space
MAX_SESSION_POLICY_ARNS = 10
MAX_SESSION_TAGS = 50
MAX_ROLE_CHAIN = 10  # a longer chain is no request pdp needs to take
MAX_TAG_KEY, MAX_TAG_VALUE = 128, 256  # AWS's limits for session tags (API_Tag)
_ROLE_ARN = re.compile(r"arn:aws:iam::[0-9]{12}:role/(?:[\x21-\x7e]*/)?[\w+=,.@-]{1,64}", re.ASCII)
_POLICY_ARN = re.compile(r"arn:aws:iam::(?:aws|[0-9]{12}):policy/[\x21-\x7e]+", re.ASCII)
_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z")


@dataclass(frozen=True, slots=True)
class Session:
    """What a role session carries besides its role (id_credentials_temp_control-access.html):
    session policies (inline documents and managed policy ARNs) that limit it, session tags
    (overriding the role's as aws:PrincipalTag), its MFA state, its source identity, when it was
    issued and the roles it was chained through. pdp does not mint sessions: the caller states
    what its credentials carry, as it states the context."""

    policies: tuple[Mapping[str, Any], ...] = ()
    policy_arns: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    transitive_tag_keys: tuple[str, ...] = ()
    mfa_present: bool | None = None
    mfa_age: int | None = None
    source_identity: str | None = None
    issued_at: str | None = None
    role_chain: tuple[str, ...] = ()
    # Derived once, for the store's bounded tables of sessions seen before (pdp.store.world):
    # what the session principal depends on, what its policies are (canonical JSON), and the
    # condition keys it states.
    principal_key: tuple[object, ...] = field(init=False, repr=False, compare=False)
    policies_key: bytes = field(init=False, repr=False, compare=False)
    stated_keys: frozenset[str] = field(init=False, repr=False, compare=False)
    size: int = field(init=False, repr=False, compare=False)  # characters of the keys above

    def __post_init__(self) -> None:
        # Typed: True == 1 == 1.0 in a tuple, but a condition tells them apart, and a Session
        # built in Python (not by from_dict) may hold any of them.
        principal_key = (
            tuple((k, type(v), v) for k, v in self.tags.items()),
            type(self.mfa_present),
            self.mfa_present,
            type(self.mfa_age),
            self.mfa_age,
            self.source_identity,
            self.issued_at,
        )
        policies_key = orjson.dumps(
            [list(self.policies), list(self.policy_arns)],
            default=_plain_mapping,
            option=orjson.OPT_SORT_KEYS,
        )
        object.__setattr__(self, "principal_key", principal_key)
        object.__setattr__(self, "policies_key", policies_key)
        object.__setattr__(self, "stated_keys", frozenset(self.context_keys()))
        # any tag value counts (a bad one is refused when the session is decided)
        tags = sum(len(str(k)) + len(str(v)) for k, v in self.tags.items())
        object.__setattr__(self, "size", tags + len(policies_key) + len(self.source_identity or ""))

    @classmethod
    def from_dict(cls, raw: object, where: str = "session") -> Session:
        """A session from its JSON object; a RequestError names the field that is wrong."""
        if not isinstance(raw, Mapping):
            raise RequestError(f"{where}: must be an object")
        for key in raw:
            if key not in _SESSION_FIELDS:
                known = ", ".join(_SESSION_FIELDS)
                raise RequestError(f"{where}.{key}: unknown field (known: {known})")
        policies = _list(raw, "policies", where)
        for i, doc in enumerate(policies):
            if not isinstance(doc, Mapping):
                raise RequestError(f"{where}.policies[{i}]: must be a policy document (an object)")
        if len(policies) > 1:
            raise RequestError(f"{where}.policies: AWS accepts one inline session policy")
        for i, doc in enumerate(policies):
            if len(orjson.dumps(doc)) > MAX_SESSION_POLICY_CHARS:
                raise RequestError(
                    f"{where}.policies[{i}]: longer than {MAX_SESSION_POLICY_CHARS} characters"
                )
        arns = _list(raw, "policy_arns", where)
        if len(arns) > MAX_SESSION_POLICY_ARNS:
            raise RequestError(f"{where}.policy_arns: at most {MAX_SESSION_POLICY_ARNS} ARNs")
        for i, arn in enumerate(arns):
            if (
                not isinstance(arn, str)
                or not arn.startswith("arn:aws:iam::")
                or ":policy/" not in arn
            ):
                raise RequestError(f"{where}.policy_arns[{i}]: must be a managed policy ARN")
        tags = raw.get("tags", {})
        if not isinstance(tags, Mapping) or len(tags) > MAX_SESSION_TAGS:
            raise RequestError(
                f"{where}.tags: must be an object of at most {MAX_SESSION_TAGS} tags"
            )
        clean = _session_tags(tags, f"{where}.tags") if tags else {}
        transitive = _list(raw, "transitive_tag_keys", where)
        if len(transitive) > MAX_SESSION_TAGS:
            raise RequestError(f"{where}.transitive_tag_keys: at most {MAX_SESSION_TAGS} keys")
        lowered = {k.lower() for k in clean}
        for i, key in enumerate(transitive):
            if not isinstance(key, str) or key.lower() not in lowered:
                raise RequestError(
                    f"{where}.transitive_tag_keys[{i}]: must name one of the session's tags"
                )
        mfa = raw.get("mfa_present")
        if mfa is not None and not isinstance(mfa, bool):
            raise RequestError(f"{where}.mfa_present: must be true or false")
        age = raw.get("mfa_age")
        if age is not None and (type(age) is not int or not 0 <= age <= 10**9):
            raise RequestError(f"{where}.mfa_age: must be a number of seconds")
        source = raw.get("source_identity")
        if source is not None and (
            not isinstance(source, str) or not re.fullmatch(r"[\w+=,.@-]{2,64}", source, re.ASCII)
        ):
            raise RequestError(f"{where}.source_identity: 2 to 64 of A-Z a-z 0-9 +=,.@-")
        issued = raw.get("issued_at")
        if issued is not None and (not isinstance(issued, str) or not _ISO.fullmatch(issued)):
            raise RequestError(f"{where}.issued_at: must be an ISO 8601 UTC time (...Z)")
        chain = _list(raw, "role_chain", where)
        if len(chain) > MAX_ROLE_CHAIN:
            raise RequestError(f"{where}.role_chain: at most {MAX_ROLE_CHAIN} roles")
        for i, arn in enumerate(chain):
            if not isinstance(arn, str) or len(arn) > 2048 or not _ROLE_ARN.fullmatch(arn):
                raise RequestError(f"{where}.role_chain[{i}]: must be a role ARN")
        return cls(
            policies=tuple(policies),
            policy_arns=tuple(arns),
            tags=MappingProxyType(clean),
            transitive_tag_keys=tuple(transitive),
            mfa_present=mfa,
            mfa_age=age,
            source_identity=source,
            issued_at=issued,
            role_chain=tuple(chain),
        )

    def context_keys(self) -> dict[str, str | bool | int]:
        """The condition keys the session sets (lower-cased); the request may not set them."""
        keys: dict[str, str | bool | int] = {}
        if self.mfa_present is not None:
            keys["aws:multifactorauthpresent"] = self.mfa_present
        if self.mfa_age is not None:
            keys["aws:multifactorauthage"] = self.mfa_age
        if self.source_identity is not None:
            keys["aws:sourceidentity"] = self.source_identity
        if self.issued_at is not None:
            keys["aws:tokenissuetime"] = self.issued_at
        return keys

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.policies:
            out["policies"] = [dict(p) for p in self.policies]
        if self.policy_arns:
            out["policy_arns"] = list(self.policy_arns)
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.transitive_tag_keys:
            out["transitive_tag_keys"] = list(self.transitive_tag_keys)
        for key in ("mfa_present", "mfa_age", "source_identity", "issued_at"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.role_chain:
            out["role_chain"] = list(self.role_chain)
        return out


def _plain_mapping(value: object) -> dict[object, object]:
    """orjson's fallback for a session policy document's Mappings that are not dicts (a
    MappingProxyType): the same JSON as the dict would give."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"session.policies: {type(value).__name__} is not JSON")


def _session_tags(tags: Mapping[str, Any], where: str) -> dict[str, str]:
    """Session tags as AWS takes them: string keys of 1 to 128 characters, string values of at
    most 256, keys unique regardless of case."""
    seen: set[str] = set()
    for key, value in tags.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_TAG_KEY:
            raise RequestError(f"{where}: a tag key must be 1 to {MAX_TAG_KEY} characters")
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise RequestError(
                f"{where}.{key}: the value must be a string of at most {MAX_TAG_VALUE} characters"
            )
        if key.lower() in seen:
            raise RequestError(f"{where}.{key}: repeats another tag key (tag keys ignore case)")
        seen.add(key.lower())
    return dict(tags)


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise RequestError(f"{where}.{key}: must be a list")
    return value
