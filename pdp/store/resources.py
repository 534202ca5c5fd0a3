"""Resources: `resources/<name>.json` of a version (or of `accounts/<id>/`), read into
`ResourceFile`: the ARN patterns of resources the store knows, their account, their
resource-based policy (a bucket policy, a key policy) and their tags (`aws:ResourceTag/...`).

Every file whose pattern matches a request's resource applies (docs/store.md, "Accounts, roles,
resources and the organization"); this module only reads and checks the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pdp.language import Policy
from pdp.names import is_account_id

if TYPE_CHECKING:
    from pdp.store.version import _Reader

__all__ = ["RESOURCE_FIELDS", "ResourceFile", "arn_account", "read_resource"]

RESOURCE_FIELDS = ("arn", "account", "policy", "tags")
_MAX_ARN = 2048  # IAM's limit on an ARN in a policy's Resource (reference_iam-quotas.html)


@dataclass(frozen=True, slots=True)
class ResourceFile:
    """One resource file, validated. `arns` are ARN patterns (`*` and `?` wildcards, as in a
    policy's Resource); `account` owns every resource they match; `policy` is cited by `file`."""

    name: str
    file: str
    arns: tuple[str, ...]
    account: str
    policy: Policy | None = None
    tags: dict[str, str] = field(default_factory=dict)


def arn_account(arn: str) -> str | None:
    """The account field of an ARN (`arn:aws:sqs:eu-west-1:111122223333:q` -> the id; empty
    for `arn:aws:s3:::bucket`); None when the text is not an ARN (six ":"-separated parts
    starting with "arn")."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2]:
        return None
    return parts[4]


def read_resource(
    reader: _Reader, rel: str, name: str, raw: bytes, enclosing: str
) -> ResourceFile | None:
    """The resource file `rel` (its `account` defaults to the first ARN's account field, else
    to `enclosing`, the account whose folder holds it), or None with its problems in `reader`."""
    doc = reader.parse_json(rel, raw)
    if doc is not None:
        doc = reader.object(rel, doc, RESOURCE_FIELDS)
    if doc is None:
        return None
    before = len(reader.problems)
    arns = _arns(reader, rel, doc)
    account = doc.get("account")
    if account is not None and not is_account_id(account):
        reader.add(rel, "account", "invalid_field", "account must be 12 digits")
        account = None
    if account is None:
        fields = [a for a in (arn_account(arn) for arn, _ in arns) if a]
        account = fields[0] if fields else enclosing
    for arn, where in arns:
        owner = arn_account(arn)
        if owner and owner != account:
            reader.add(
                rel,
                where,
                "account_mismatch",
                f'"{arn}" names account {owner}, not the resource\'s account {account}',
                "a resource file describes resources of one account",
            )
    policy = None
    if "policy" in doc:
        policy = reader.policy(rel, doc["policy"], name=rel, prefix="policy", kind="resource")
    tags = reader.tags(rel, doc)
    if len(reader.problems) != before:
        return None
    return ResourceFile(name, rel, tuple(arn for arn, _ in arns), account, policy, tags)


def _arns(reader: _Reader, rel: str, doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The `arn` field, one pattern or a list: each pattern with its JSON path."""
    if "arn" not in doc:
        reader.add(rel, "arn", "missing_field", "a resource file needs an arn (or a list of them)")
        return []
    value = doc["arn"]
    items = [(value, "arn")] if isinstance(value, str) else None
    if isinstance(value, list) and value:
        items = [(v, f"arn[{i}]") for i, v in enumerate(value)]
    if items is None:
        reader.add(rel, "arn", "invalid_field", "arn must be an ARN or a non-empty list of ARNs")
        return []
    out = []
    for arn, where in items:
        if not isinstance(arn, str) or arn_account(arn) is None or len(arn) > _MAX_ARN:
            reader.add(
                rel,
                where,
                "invalid_field",
                f"{where} must be an ARN pattern (arn:partition:service:region:account:resource)",
            )
            continue
        out.append((arn, where))
    return out
