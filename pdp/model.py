"""Values that cross pdp's boundary: who asks (`Principal`) and what was decided (`Decision`)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from pdp.errors import RequestError
from pdp.names import is_account_id, is_path, is_user_name

__all__ = ["Decision", "MatchedStatement", "Principal", "Request"]


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


def _unique_id(arn: str) -> str:
    """A stable IAM-style unique id ("AIDA" + 17 base32 characters) derived from the ARN."""
    digest = base64.b32encode(hashlib.sha256(arn.encode()).digest()).decode()
    return "AIDA" + digest[:17]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request: an IAM user (or the account root), with the keys IAM derives from it.

    Build one with `Principal.user(...)` or `Principal.root(...)`; `context_keys` holds the
    request-context keys it supplies (lower-cased names), such as `aws:username`.
    """

    kind: Literal["user", "root"]
    name: str
    account: str
    arn: str
    user_id: str
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    context_keys: Mapping[str, str | bool] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )

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
        keys: dict[str, str | bool] = {
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
        keys: dict[str, str | bool] = {
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

    @property
    def allowed(self) -> bool:
        return self.decision == "Allow"

    def to_dict(self) -> dict[str, object]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "matched": [m.to_dict() for m in self.matched],
            "errors": list(self.errors),
            "policy_version": self.policy_version,
            "root": self.root,
        }


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
    principal_type: str = "user"  # "root": the account root, asked for explicitly
