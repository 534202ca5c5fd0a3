"""AWS managed policies: the built-in ones, and the files of a store's `aws-managed/` folder.

An AWS managed policy is named by its ARN, path included:
`arn:aws:iam::aws:policy/AmazonS3FullAccess`, `arn:aws:iam::aws:policy/job-function/Billing`.
A file holds one default version of one such policy, in any of three shapes (docs/store.md):

1. what `aws iam get-policy-version` prints: `{"PolicyVersion": {"Document": ..., "VersionId":
   "v5", "IsDefaultVersion": true, "CreateDate": "..."}}`;
2. the `PolicyVersion` object alone: `{"Document": ..., "VersionId": ...}`;
3. the bare policy document: `{"Version": "2012-10-17", "Statement": [...]}`.

`Document` is a JSON object, or a string: the URL-encoded JSON text the IAM API returns (RFC
3986), or plain JSON text. A wrapper may carry a `"pdp"` object of ours beside `PolicyVersion`
(shape 1) or beside `Document` (shape 2): where the document came from, and whether it is a
narrower stand-in for AWS's (see `MANAGED_METADATA`).

Invariants: AWS managed documents are not held to the 6,144-character limit of customer-managed
policies (AWS's own exceed it); a version that is not the default one (`IsDefaultVersion:
false`) is refused, since IAM decides with the default version only; every problem names the
file and the JSON path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import unquote

from pdp.errors import Diagnostic, PolicyValidationError
from pdp.language import JsonObject, MalformedJson, Policy, load_json, parse_policy
from pdp.names import is_path, is_policy_name

__all__ = [
    "AWS_MANAGED_FOLDER",
    "AWS_MANAGED_PREFIX",
    "MANAGED_METADATA",
    "ManagedPolicy",
    "aws_managed_policies",
    "builtin_managed",
    "document_json",
    "managed_arn",
    "parse_managed",
]

AWS_MANAGED_PREFIX = "arn:aws:iam::aws:policy/"
AWS_MANAGED_FOLDER = "aws-managed"
# The fields of our "pdp" object: what each says.
MANAGED_METADATA = {
    "arn": "the policy's ARN (a built-in must give it; in a store it must match the file's place)",
    "source": "where AWS publishes the document (the AWS Managed Policy Reference page)",
    "retrieved_from": "where these bytes were taken from",
    "stand_in": "true when the document is a narrower stand-in for AWS's, not AWS's own",
    "stand_in_reason": "why it is a stand-in (required when stand_in is true)",
}
# IAM's pattern of a policy version id (API_PolicyVersion, API_GetPolicyVersion), ASCII only
_VERSION_ID = re.compile(r"v[1-9][0-9]*(\.[A-Za-z0-9-]*)?", re.ASCII)
_VERSION_FIELDS = ("Document", "VersionId", "IsDefaultVersion", "CreateDate", "pdp")


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    """One AWS managed policy as pdp holds it: its compiled default version and where it is from.

    `policy.name` is the ARN (what decisions cite); `source` is "built-in" or "store"; `file` is
    the file it was read from (`aws-managed/job-function/Billing.json` in a store)."""

    arn: str
    name: str
    path: str
    policy: Policy
    source: str
    file: str
    version_id: str | None = None
    create_date: str | None = None
    origin: str | None = None
    retrieved_from: str | None = None
    stand_in: bool = False
    stand_in_reason: str | None = None

    def summary(self) -> dict[str, Any]:
        """What `pdp managed list --json` prints for it."""
        return {
            "arn": self.arn,
            "name": self.name,
            "path": self.path,
            "source": self.source,
            "file": self.file,
            "version_id": self.version_id,
            "create_date": self.create_date,
            "stand_in": self.stand_in,
            "stand_in_reason": self.stand_in_reason,
            "origin": self.origin,
            "retrieved_from": self.retrieved_from,
        }


def managed_arn(path: str, name: str) -> str:
    """`("/job-function/", "Billing")` -> `arn:aws:iam::aws:policy/job-function/Billing`."""
    return f"{AWS_MANAGED_PREFIX}{path[1:]}{name}"


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.found: list[Diagnostic] = []

    def add(self, path: str, code: str, message: str, hint: str | None = None) -> None:
        self.found.append(Diagnostic(code, path, message, self.file, hint))

    def object(self, value: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        """`value` when it is an object with only `allowed` keys, none repeated; else {}."""
        if not isinstance(value, dict):
            self.add(where, "not_an_object", f"{where or 'the file'} must be a JSON object")
            return {}
        if isinstance(value, JsonObject):
            for key in value.duplicates:
                self.add(_join(where, key), "duplicate_key", f'duplicate key "{key}"')
        for key in value:
            if key not in allowed:
                self.add(
                    _join(where, key),
                    "unknown_field",
                    f'unknown field "{key}"',
                    f"known: {', '.join(allowed)}",
                )
        return value


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def parse_managed(
    raw: bytes, *, file: str, arn: str | None, source: str
) -> tuple[ManagedPolicy | None, list[Diagnostic]]:
    """Read one AWS managed policy file (any of the three shapes). `arn` is the ARN the file's
    place gives it (a store's file), or None when the file must name it (a built-in). Returns
    the policy, or None with every problem (file and JSON path in each)."""
    problems = _Problems(file)
    try:
        top = load_json(raw)
    except MalformedJson as exc:
        problems.add("", "malformed_json", str(exc))
        return None, problems.found
    if not isinstance(top, dict):
        problems.add("", "not_an_object", "the file must hold a JSON object")
        return None, problems.found
    wrapped = "PolicyVersion" in top or "Document" in top
    if "PolicyVersion" in top:  # shape 1
        problems.object(top, "", ("PolicyVersion", "pdp"))
        where = "PolicyVersion"
        version = problems.object(top["PolicyVersion"], where, _VERSION_FIELDS)
        meta_where, meta = "pdp", top.get("pdp")
        if "pdp" in version:
            meta_where, meta = "PolicyVersion.pdp", version["pdp"]
    elif "Document" in top:  # shape 2
        where = ""
        version = problems.object(top, where, _VERSION_FIELDS)
        meta_where, meta = "pdp", top.get("pdp")
    else:  # shape 3: the document itself
        where, version, meta_where, meta = "", {}, "pdp", None
    if wrapped and "Document" not in version:
        problems.add(where, "missing_field", f"{where or 'the file'} has no Document")
    version_id = _string(problems, version, where, "VersionId")
    if version_id is not None and not _VERSION_ID.fullmatch(version_id):
        problems.add(
            _join(where, "VersionId"),
            "invalid_field",
            'VersionId is "v" and a number, optionally "." and letters or digits (v5, v2.1)',
        )
    create_date = _string(problems, version, where, "CreateDate")
    if create_date is not None and not _is_iso_date(create_date):
        problems.add(
            _join(where, "CreateDate"), "invalid_field", "CreateDate must be an ISO 8601 date"
        )
    default = version.get("IsDefaultVersion", True)
    if not isinstance(default, bool):
        problems.add(_join(where, "IsDefaultVersion"), "invalid_field", "must be true or false")
    elif not default:
        problems.add(
            _join(where, "IsDefaultVersion"),
            "not_default_version",
            "IAM decides with a policy's default version only; this one is not it",
            "save the default version (aws iam get-policy --query Policy.DefaultVersionId)",
        )
    info = _metadata(problems, meta, meta_where)
    named = info.get("arn")
    if arn is None and named is None:
        problems.add(meta_where, "missing_field", "a built-in names its ARN in pdp.arn")
    elif arn is not None and named is not None and named != arn:
        problems.add(
            f"{meta_where}.arn", "invalid_field", f'names "{named}", but its place is "{arn}"'
        )
    arn = arn or named
    parsed = _place(problems, arn, meta_where) if arn is not None else None
    document: Any = version.get("Document") if wrapped else top
    doc_where = _join(where, "Document") if wrapped else ""
    if isinstance(document, str):
        document = _decode(problems, document, doc_where)
    elif document is None and wrapped and "Document" in version:
        problems.add(doc_where, "invalid_field", "Document is null: it must be the document")
    if problems.found or parsed is None or document is None:
        return None, problems.found
    assert arn is not None
    try:
        policy = parse_policy(document, source=file, name=arn)
    except PolicyValidationError as exc:
        for d in exc.diagnostics:
            path = _join(doc_where, d.path) if d.path else doc_where
            problems.add(path, d.code, d.message, d.hint)
        return None, problems.found
    path, name = parsed
    return (
        ManagedPolicy(
            arn,
            name,
            path,
            policy,
            source,
            file,
            version_id,
            create_date,
            info.get("source"),
            info.get("retrieved_from"),
            info.get("stand_in") is True,
            info.get("stand_in_reason"),
        ),
        [],
    )


def _is_iso_date(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _string(problems: _Problems, doc: dict[str, Any], where: str, key: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        problems.add(_join(where, key), "invalid_field", f"{key} must be a string")
        return None
    return value


def _metadata(problems: _Problems, meta: Any, where: str) -> dict[str, Any]:
    if meta is None:
        return {}
    info = problems.object(meta, where, tuple(MANAGED_METADATA))
    for key in ("arn", "source", "retrieved_from", "stand_in_reason"):
        if key in info and not isinstance(info[key], str):
            problems.add(f"{where}.{key}", "invalid_field", f"{key} must be a string")
    stand_in = info.get("stand_in", False)
    if not isinstance(stand_in, bool):
        problems.add(f"{where}.stand_in", "invalid_field", "stand_in must be true or false")
    elif stand_in and not isinstance(info.get("stand_in_reason"), str):
        problems.add(where, "missing_field", "a stand-in says why in stand_in_reason")
    return info


def _place(problems: _Problems, arn: str, where: str) -> tuple[str, str] | None:
    """(path, name) of an AWS managed policy ARN; None, reported, when it is not one."""
    rest = arn[len(AWS_MANAGED_PREFIX) :] if arn.startswith(AWS_MANAGED_PREFIX) else None
    if rest is not None:
        head, _, name = rest.rpartition("/")
        path = f"/{head}/" if head else "/"
        if is_policy_name(name) and is_path(path):
            return path, name
    problems.add(
        f"{where}.arn",
        "invalid_field",
        f'"{arn}" is not an AWS managed policy ARN ({AWS_MANAGED_PREFIX}[path/]Name)',
    )
    return None


def _decode(problems: _Problems, text: str, where: str) -> Any:
    """A Document given as a string: URL-encoded JSON (the IAM API's form, RFC 3986: `+` is a
    plus sign) or, when it starts with "{", JSON text as it is."""
    stripped = text.lstrip()
    try:
        plain = stripped if stripped.startswith("{") else unquote(text, errors="strict")
        return load_json(plain)
    except UnicodeDecodeError:
        problems.add(where, "malformed_document", "the URL-encoded Document is not UTF-8")
    except MalformedJson as exc:
        problems.add(where, "malformed_document", f"the Document string is not JSON: {exc}")
    return None


@cache
def builtin_managed() -> dict[str, ManagedPolicy]:
    """The built-in AWS managed policies (pdp/store/managed/), by ARN.

    Invariant: each parses, names its ARN, version id, the date of that version and its source;
    a failure here is a bug of the package, so it raises."""
    out: dict[str, ManagedPolicy] = {}
    for item in sorted(resources.files("pdp.store.managed").iterdir(), key=lambda i: i.name):
        if not item.name.endswith(".json"):
            continue
        file = f"pdp/store/managed/{item.name}"
        found, problems = parse_managed(item.read_bytes(), file=file, arn=None, source="built-in")
        if found is None:
            raise PolicyValidationError(problems)
        missing = [k for k in ("version_id", "create_date", "origin") if not getattr(found, k)]
        if missing or found.name != item.name[: -len(".json")]:
            raise ValueError(f"{file}: a built-in names itself and records {missing}")
        out[found.arn] = found
    return out


def aws_managed_policies() -> dict[str, Policy]:
    """The built-in AWS managed policies as compiled policies, by ARN (path included)."""
    return {arn: m.policy for arn, m in builtin_managed().items()}


def document_json(policy: ManagedPolicy) -> str:
    """The policy's document as indented JSON text (what `pdp managed show` prints)."""
    return json.dumps(dict(policy.policy.document), indent=2)
