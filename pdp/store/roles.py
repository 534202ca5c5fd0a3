"""Roles: `roles/<Name>.json` of a version (or of `accounts/<id>/`), read into `Role`.

A role is an identity like a user (attached and inline policies, a permissions boundary, tags),
plus what only a role has: a trust policy, the resource-based policy saying who may assume it
(kind "trust": every statement names a Principal, and no statement has a Resource, which AWS
refuses in a trust policy), a maximum session duration and the service-linked flag
(docs/store.md, "Accounts, roles, resources and the organization"; IAM User Guide, "Roles terms
and concepts", https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles.html).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pdp.language import Policy
from pdp.model import role_unique_id
from pdp.names import is_path, is_role_name

if TYPE_CHECKING:
    from pdp.store.version import _Reader

__all__ = [
    "MAX_SESSION_DURATION",
    "MIN_SESSION_DURATION",
    "ROLE_FIELDS",
    "ROLE_INLINE_CHARS",
    "Role",
    "read_role",
    "role_arn",
    "role_unique_id",
]

# IAM's quotas (reference_iam-quotas.html): a role's sessions last 1 to 12 hours, and its
# inline policies hold at most 10,240 characters together (white space not counted).
MIN_SESSION_DURATION = 3600
MAX_SESSION_DURATION = 43200
ROLE_INLINE_CHARS = 10240
ROLE_FIELDS = (
    "path",
    "trust_policy",
    "policies",
    "inline_policies",
    "permissions_boundary",
    "tags",
    "max_session_duration",
    "service_linked",
    "role_id",
    "description",
)
# A service-linked role lives at /aws-service-role/<service principal>/ (IAM User Guide,
# "Using service-linked roles"), e.g. /aws-service-role/autoscaling.amazonaws.com/.
_SERVICE_ROLE_PATH = re.compile(r"/aws-service-role/[a-z0-9][a-z0-9.-]*\.amazonaws\.com(\.cn)?/")
_ROLE_ID = re.compile(r"AROA[A-Z0-9]{12,124}")
_DESCRIPTION_CHARS = 1000  # IAM's Description limit (API_CreateRole.html)


def role_arn(account: str, path: str, name: str) -> str:
    """`arn:aws:iam::<account>:role<path><name>`, as IAM writes a role's ARN."""
    return f"arn:aws:iam::{account}:role{path}{name}"


@dataclass(frozen=True, slots=True)
class Role:
    """A role file, validated. `policies` and `permissions_boundary` are references as a user
    writes them (a name in the account's policies/, a customer policy ARN of the account, an
    AWS managed ARN), checked at read time and resolved by the index."""

    name: str
    file: str
    path: str
    arn: str
    role_id: str
    trust_policy: Policy
    policies: tuple[str, ...] = ()
    inline_policies: tuple[Policy, ...] = ()
    permissions_boundary: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    max_session_duration: int = MIN_SESSION_DURATION
    service_linked: bool = False
    description: str | None = None


def read_role(reader: _Reader, rel: str, name: str, raw: bytes, account: str) -> Role | None:
    """The role of `rel` (`roles/Deploy.json`) in `account`, or None with its problems in
    `reader`. The trust policy is cited `roles/Deploy.json#trust`, an inline policy
    `roles/Deploy.json#inline/Name`."""
    doc = reader.parse_json(rel, raw)
    if doc is not None:
        doc = reader.object(rel, doc, ROLE_FIELDS)
    if doc is None:
        return None
    before = len(reader.problems)
    if not is_role_name(name):
        reader.add(
            rel,
            "",
            "invalid_name",
            f'invalid role name "{name}"',
            "1 to 64 of letters, digits and + = , . @ _ -",
        )
    path = doc.get("path", "/")
    if not is_path(path):
        reader.add(
            rel, "path", "invalid_field", 'path must start and end with "/" (printable ASCII)'
        )
        path = "/"
    service_linked = doc.get("service_linked", False)
    if not isinstance(service_linked, bool):
        reader.add(rel, "service_linked", "invalid_field", "service_linked must be true or false")
        service_linked = False
    if service_linked and not _SERVICE_ROLE_PATH.fullmatch(path):
        reader.add(
            rel,
            "path",
            "invalid_field",
            "a service-linked role's path is /aws-service-role/<service principal>/,"
            f' not "{path}"',
            "as /aws-service-role/autoscaling.amazonaws.com/",
        )
    duration = doc.get("max_session_duration", MIN_SESSION_DURATION)
    if type(duration) is not int or not MIN_SESSION_DURATION <= duration <= MAX_SESSION_DURATION:
        reader.add(
            rel,
            "max_session_duration",
            "invalid_field",
            f"max_session_duration must be {MIN_SESSION_DURATION} to {MAX_SESSION_DURATION}"
            f" seconds (1 to 12 hours), as in AWS; got {_show(duration)}",
        )
        duration = MIN_SESSION_DURATION
    arn = role_arn(account, path, name)
    role_id = doc.get("role_id")
    if role_id is None:
        role_id = role_unique_id(arn)
    elif not isinstance(role_id, str) or not _ROLE_ID.fullmatch(role_id):
        reader.add(rel, "role_id", "invalid_field", 'role_id must be a role id ("AROA...")')
    description = doc.get("description")
    if description is not None and (
        not isinstance(description, str) or len(description) > _DESCRIPTION_CHARS
    ):
        reader.add(
            rel,
            "description",
            "invalid_field",
            f"description must be a string of at most {_DESCRIPTION_CHARS} characters",
        )
    boundary = doc.get("permissions_boundary")
    if boundary is not None and (not isinstance(boundary, str) or not boundary):
        reader.add(
            rel, "permissions_boundary", "invalid_field", "permissions_boundary must be a name"
        )
    trust = _trust_policy(reader, rel, doc)
    policies = reader.names(rel, doc, "policies")
    inline = reader.inline(rel, doc, ROLE_INLINE_CHARS, label="inline/")
    tags = reader.tags(rel, doc)
    if trust is None or len(reader.problems) != before:
        return None
    return Role(
        name=name,
        file=rel,
        path=path,
        arn=arn,
        role_id=role_id,
        trust_policy=trust,
        policies=policies,
        inline_policies=inline,
        permissions_boundary=boundary,
        tags=tags,
        max_session_duration=duration,
        service_linked=service_linked,
        description=description,
    )


def _trust_policy(reader: _Reader, rel: str, doc: dict[str, Any]) -> Policy | None:
    """The role's trust policy: required, of kind "trust" (pdp.language: a resource-based
    policy whose statements name a Principal, without the Resource, NotResource and
    NotPrincipal that AWS refuses in a trust policy)."""
    if "trust_policy" not in doc:
        reader.add(
            rel,
            "trust_policy",
            "missing_field",
            "a role needs a trust_policy (who may assume it)",
            'a resource-based policy whose statements name a "Principal"',
        )
        return None
    document = doc["trust_policy"]
    return reader.policy(rel, document, name=f"{rel}#trust", prefix="trust_policy", kind="trust")


def statements_of(document: Any) -> list[tuple[str, dict[str, Any]]]:
    """The statements of a policy document with their JSON paths (`Statement[0]`, or
    `Statement` for a single object), as `pdp.language` names them; [] for a malformed
    document (parse_policy reports it)."""
    if not isinstance(document, dict):
        return []
    raw = document.get("Statement")
    if isinstance(raw, dict):
        return [("Statement", raw)]
    if isinstance(raw, list):
        return [(f"Statement[{i}]", s) for i, s in enumerate(raw) if isinstance(s, dict)]
    return []


def _show(value: Any) -> str:
    return (
        json.dumps(value) if isinstance(value, str | int | float | bool) else type(value).__name__
    )
