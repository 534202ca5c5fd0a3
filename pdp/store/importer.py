"""Importing an AWS account: `aws iam get-account-authorization-details` -> a new store version.

Inputs (docs/import.md): the authorization details export (the IAM API's response, or the AWS
CLI's output of it), and optionally `aws iam get-account-password-policy` and the CSV of
`aws iam get-credential-report`. The conversion reads everything into memory first and names
every problem by file and JSON path (`UserDetailList[3].UserPolicyList[0].PolicyDocument:
...`); only an export without problems touches the disk.

Publishing (docs/store.md, "Publishing a version"): the version is written into a hidden
directory of `versions/` (`.0003.tmp`, which no loader sees), loaded by the same loader as
`pdp validate`, and only then renamed to its name (`pdp.store.publish`, shared with `pdp
publish`); `current` is swapped (atomically, by renaming a new link over it) only when asked
to. A failed import leaves the store as it was.

Invariants: nothing the store cannot hold is dropped silently (it is a `Skipped`); a user or
role is never imported without its permissions boundary (a boundary that cannot be resolved
refuses the import: without it the identity would be allowed more than AWS allows it); no
access key id is invented; no secret is written
(the inputs hold none, and nothing outside the documented fields is copied).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pdp.errors import Diagnostic, PolicyValidationError
from pdp.language import JsonObject, MalformedJson, load_json, parse_policy
from pdp.names import (
    is_account_id,
    is_group_name,
    is_path,
    is_policy_name,
    is_role_name,
    is_user_name,
)
from pdp.store.aws_managed import AWS_MANAGED_FOLDER, AWS_MANAGED_PREFIX, builtin_managed
from pdp.store.publish import PublishFailed, next_version_name, publish_version, write_files
from pdp.store.roles import MAX_SESSION_DURATION, MIN_SESSION_DURATION
from pdp.store.version import PASSWORD_POLICY_FIELDS, password_policy_problem

__all__ = [
    "MAX_CREDENTIAL_REPORT_BYTES",
    "MAX_EXPORT_BYTES",
    "MAX_PASSWORD_POLICY_BYTES",
    "MAX_USER_TAGS",
    "ImportFailed",
    "ImportResult",
    "Skipped",
    "import_authorization_details",
    "next_version_name",
]

# An export holds every document of the account, AWS managed ones included (some over 100 KB):
# far over the store's 1 MiB per file. IAM's quotas (5,000 users, 300 groups, 1,500 customer
# policies of at most 6,144 characters with 5 versions each, 1,000 roles) stay under 64 MiB.
MAX_EXPORT_BYTES = 64 << 20
MAX_PASSWORD_POLICY_BYTES = 1 << 20
MAX_CREDENTIAL_REPORT_BYTES = 16 << 20  # a few hundred bytes a user, 5,000 users at most
MAX_USER_TAGS = 50  # IAM's quota of tags a user (TagUser: Tags, at most 50 items)
MAX_PROBLEMS = 100  # an export that is wrong everywhere is named by its first hundred problems

_TOP_LEVEL = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
_PAGING = ("IsTruncated", "Marker", "NextToken")
_ARN = re.compile(r"arn:(?P<partition>[^:]*):iam::(?P<account>[^:]*):(?P<resource>.*)", re.DOTALL)
_FALSE_DATES = ("N/A", "no_information", "not_supported")
_ROOT_ROW = "<root_account>"
_NAME_MAX = 255  # bytes of one file or folder name (Linux, macOS)
_HIDDEN = (
    'starts with ".": the store\'s loader skips such files as hidden, so it would vanish from'
    " the version"
)


def _unholdable_folders(path: str) -> str | None:
    """Why an AWS managed policy's path cannot be folders below aws-managed/, or None.

    IAM's path pattern allows empty, `.`, `..` and dot-named segments: as folders they would
    write outside the version (`..`), fall on another policy's file (`/./`, `///`), or be
    skipped by the loader (`.name`)."""
    for segment in path[1:-1].split("/") if path != "/" else ():
        if segment == "":
            return "an empty segment (//) cannot be a folder of aws-managed/"
        if segment.startswith("."):
            return f"the segment {segment!r} starts with a dot: no folder of aws-managed/"
        if len(segment) > _NAME_MAX:
            return f"a segment over {_NAME_MAX} characters cannot be a folder of aws-managed/"
    return None


class ImportFailed(PublishFailed):
    """The import was refused and the store left as it was; `diagnostics` says why, each
    problem with its file and JSON path (or CSV line)."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something in the inputs that the new version does not hold, and why.

    `kind` is one of: `instance_profile` (not modelled), `policy_path` (a customer policy's
    path, not kept),
    `password_policy_field`, `credential_report_row`, `element`
    (an unknown element of the export)."""

    kind: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import wrote: the new version, what it holds, what it left out, what serves."""

    version: str
    path: str
    store_created: bool
    activated: bool
    serving: bool  # whether the store now serves the new version
    current: str | None  # where `current` points after the import, if the store has one
    counts: dict[str, int]
    skipped: tuple[Skipped, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["skipped"] = [asdict(s) for s in self.skipped]
        out["skipped_counts"] = dict(Counter(s.kind for s in self.skipped))
        return out


class _TooMany(Exception):
    """MAX_PROBLEMS were found: the conversion stops there."""


@dataclass(slots=True)
class _Converted:
    """The new version, in memory: file name (relative to the version) -> its bytes."""

    files: dict[str, bytes]
    counts: dict[str, int]
    skipped: list[Skipped]


def _read_bounded(path: str | os.PathLike[str], limit: int, what: str) -> bytes:
    """The bytes of an input file, refused past `limit` without reading more than limit + 1.
    O_NONBLOCK: a FIFO named by mistake is refused, not waited on."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ImportFailed(
                    f"{name}: cannot read {what}",
                    [Diagnostic("not_a_file", "", "not a regular file", name)],
                )
            parts, size = [], 0
            while size <= limit:
                chunk = os.read(fd, min(1 << 20, limit + 1 - size))
                if not chunk:
                    break
                parts.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ImportFailed(
            f"{name}: cannot read {what}",
            [Diagnostic("unreadable_file", "", f"cannot read: {exc.strerror or exc}", name)],
        ) from None
    if size > limit:
        raise ImportFailed(
            f"{name}: {what} is too large",
            [Diagnostic("file_too_large", "", f"over the {limit} byte limit of {what}", name)],
        )
    return b"".join(parts)


class _Converter:
    """Turns the parsed inputs into store files, collecting every problem with its path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Diagnostic] = []
        self.skipped: list[Skipped] = []
        self.account: str | None = None
        self.account_at = ""
        self.users: dict[str, dict[str, Any]] = {}  # name -> the user file's document
        self.user_paths: dict[str, str] = {}
        self.left_out: set[str] = set()  # users left out (their boundary)
        self.groups: dict[str, dict[str, Any]] = {}
        self.roles_out: dict[str, dict[str, Any]] = {}
        self.customer: dict[str, dict[str, Any]] = {}  # name -> its default document
        self.customer_arns: set[str] = set()
        self.managed: dict[str, dict[str, Any]] = {}  # file -> the get-policy-version shape
        self.managed_arns: set[str] = set()
        self.not_default = 0
        self.inline = 0
        self.root: dict[str, Any] | None = None
        self.report_rows: dict[str, str] = {}  # credential report: user -> its line
        self.password_policy: dict[str, Any] | None = None

    # -- problems --------------------------------------------------------------------------

    def problem(
        self, path: str, message: str, code: str = "invalid_export", source: str | None = None
    ) -> None:
        self.problems.append(Diagnostic(code, path, message, source or self.source))
        if len(self.problems) >= MAX_PROBLEMS:
            raise _TooMany

    def entries(self, doc: dict[str, Any], key: str, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """(JSON path, element) of a list element of `doc`; an absent list is empty (an export
        made with --filter leaves lists out)."""
        where = f"{prefix}.{key}" if prefix else key
        value = doc.get(key, [])
        if value is None:
            return
        if not isinstance(value, list):
            self.problem(where, "must be a list")
            return
        for i, item in enumerate(value):
            at = f"{where}[{i}]"
            if isinstance(item, JsonObject):
                for key in item.duplicates:
                    self.problem(f"{at}.{key}", f'duplicate key "{key}"')
            if isinstance(item, dict):
                yield at, item
            else:
                self.problem(at, "must be an object")

    def string(self, at: str, item: dict[str, Any], key: str) -> str | None:
        value = item.get(key)
        if not isinstance(value, str) or not value:
            self.problem(f"{at}.{key}", "missing" if value is None else "must be a string")
            return None
        return value

    def path_of(self, at: str, item: dict[str, Any]) -> str | None:
        path = item.get("Path", "/")
        if not is_path(path):
            self.problem(f"{at}.Path", 'not an IAM path ("/" or "/.../", printable ASCII)')
            return None
        return str(path)

    def check_arn(self, at: str, arn: Any, expected_resource: str) -> None:
        """The element's Arn names this account (learnt from the first ARN) and the entity."""
        if not isinstance(arn, str):
            self.problem(f"{at}.Arn", "missing" if arn is None else "must be a string")
            return
        match = _ARN.fullmatch(arn)
        if match is None:
            self.problem(f"{at}.Arn", f'"{arn}" is not an IAM ARN')
            return
        if match["partition"] != "aws":
            self.problem(
                f"{at}.Arn",
                f'partition "{match["partition"]}": the store builds ARNs in the "aws"'
                " partition only",
            )
            return
        if not self.account_of(f"{at}.Arn", match["account"]):
            return
        if match["resource"] != expected_resource:
            self.problem(
                f"{at}.Arn", f'"{arn}" does not match its name and path ({expected_resource})'
            )

    def account_of(self, at: str, account: str, source: str | None = None) -> bool:
        if not is_account_id(account):
            self.problem(at, f'"{account}" is not an account id (12 digits)', source=source)
            return False
        if self.account is None:
            self.account, self.account_at = account, at
        elif account != self.account:
            self.problem(
                at,
                f"account {account}, but {self.source}: {self.account_at} is in account"
                f" {self.account}",
                source=source,
            )
            return False
        return True

    def document(self, at: str, value: Any, kind: str = "identity") -> dict[str, Any] | None:
        """A policy document: a JSON object (the CLI decodes them) or the URL-encoded JSON text
        the IAM API returns (RFC 3986); checked by the policy validator, problems under `at`."""
        if isinstance(value, str):
            try:
                text = (
                    value
                    if value.lstrip().startswith("{")
                    else urllib.parse.unquote(value, errors="strict")
                )
                value = load_json(text)
            except UnicodeDecodeError:
                self.problem(at, "URL-encoded text that is not UTF-8")
                return None
            except MalformedJson as exc:
                self.problem(at, f"not a JSON policy document ({exc})")
                return None
        if not isinstance(value, dict):
            self.problem(
                at,
                "must be a policy document (a JSON object, or the URL-encoded JSON text that"
                " the IAM API returns)",
            )
            return None
        try:
            parse_policy(value, source=self.source, kind=kind)
        except PolicyValidationError as exc:
            for d in exc.diagnostics:
                self.problem(f"{at}.{d.path}" if d.path else at, d.message, d.code)
            return None
        return value

    # -- the export ------------------------------------------------------------------------

    def export(self, doc: Any) -> None:
        if not isinstance(doc, dict):
            self.problem("", "the export must be a JSON object (get-account-authorization-details)")
            return
        if isinstance(doc, JsonObject):
            for key in doc.duplicates:
                self.problem(key, f'duplicate key "{key}"')
        truncated = doc.get("IsTruncated") is True or any(doc.get(k) for k in _PAGING[1:])
        if truncated:
            self.problem(
                "IsTruncated",
                "the export is one page of several (IsTruncated/Marker/NextToken): it is"
                " incomplete; export with the AWS CLI without --max-items (it follows every"
                " page), or merge the pages first",
                "truncated_export",
            )
            return
        for key in doc:
            if key not in _TOP_LEVEL and key not in _PAGING and key != "ResponseMetadata":
                self.skipped.append(Skipped("element", key, "not an element of the export"))
        self.policies(doc)
        self.groups_of(doc)
        self.users_of(doc)
        self.roles(doc)

    def policies(self, doc: dict[str, Any]) -> None:
        seen: dict[str, str] = {}
        seen_aws: dict[str, tuple[str, str]] = {}  # lower-cased ARN -> (ARN, JSON path)
        for at, item in self.entries(doc, "Policies"):
            name, arn = self.string(at, item, "PolicyName"), item.get("Arn")
            path = self.path_of(at, item)
            if name is None or path is None:
                continue
            if not is_policy_name(name):
                self.problem(f"{at}.PolicyName", f'"{name}" is not an IAM policy name')
                continue
            if name.startswith("."):
                self.problem(f"{at}.PolicyName", f'"{name}" {_HIDDEN}')
                continue
            aws_managed = isinstance(arn, str) and arn.startswith(AWS_MANAGED_PREFIX)
            if aws_managed:
                if arn != f"{AWS_MANAGED_PREFIX}{path[1:]}{name}":
                    self.problem(f"{at}.Arn", f'"{arn}" does not match its name and path')
                    continue
                unholdable = _unholdable_folders(path)
                if unholdable is not None:
                    self.problem(f"{at}.Path", f"{path!r}: {unholdable}")
                    continue
                earlier = seen_aws.get(arn.lower())
                if earlier is not None:
                    clash = "repeats {}" if earlier[0] == arn else "and {} differ only in case"
                    self.problem(f"{at}.Arn", f'"{arn}" ' + clash.format(earlier[1]))
                    continue
                seen_aws[arn.lower()] = (arn, at)
            else:
                self.check_arn(at, arn, f"policy{path}{name}")
            document = self.default_version(at, item)
            if document is None:
                continue
            if aws_managed:
                self.managed[f"{AWS_MANAGED_FOLDER}/{path[1:]}{name}.json"] = document
                self.managed_arns.add(str(arn))
                continue
            if name.lower() in seen:
                self.problem(
                    f"{at}.PolicyName",
                    f'"{name}" and {seen[name.lower()]} differ only in case (IAM names ignore'
                    " case)",
                )
                continue
            seen[name.lower()] = at
            self.customer[name] = document["PolicyVersion"]["Document"]
            self.customer_arns.add(str(arn))
            if path != "/":
                self.skipped.append(
                    Skipped(
                        "policy_path",
                        name,
                        f"path {path} not kept: the store names customer policies by name"
                        " alone (references by ARN, path included, still resolve)",
                    )
                )

    def default_version(self, at: str, item: dict[str, Any]) -> dict[str, Any] | None:
        """The default version of a managed policy, as `aws iam get-policy-version` shows it."""
        versions = list(self.entries(item, "PolicyVersionList", at))
        defaults = [(vat, v) for vat, v in versions if v.get("IsDefaultVersion") is True]
        if len(defaults) != 1:
            self.problem(
                f"{at}.PolicyVersionList",
                f"{len(defaults)} versions have IsDefaultVersion true; exactly one must",
            )
            return None
        vat, version = defaults[0]
        version_id = version.get("VersionId")
        wanted = item.get("DefaultVersionId")
        if wanted is not None and version_id != wanted:
            self.problem(
                f"{vat}.VersionId",
                f"the default version is {version_id!r}, but DefaultVersionId is {wanted!r}",
            )
            return None
        document = self.document(f"{vat}.Document", version.get("Document"))
        if document is None:
            return None
        self.not_default += len(versions) - 1
        shape: dict[str, Any] = {"Document": document, "IsDefaultVersion": True}
        if isinstance(version_id, str):
            shape["VersionId"] = version_id
        if isinstance(version.get("CreateDate"), str):
            shape["CreateDate"] = version["CreateDate"]
        return {"PolicyVersion": shape}

    def attached(self, at: str, item: dict[str, Any]) -> list[str]:
        out = []
        for pat, policy in self.entries(item, "AttachedManagedPolicies", at):
            arn = self.string(pat, policy, "PolicyArn")
            if arn is None:
                continue
            aws_managed = arn.startswith(AWS_MANAGED_PREFIX)
            if aws_managed and arn not in self.managed_arns and arn not in builtin_managed():
                self.problem(
                    f"{pat}.PolicyArn",
                    f'"{arn}" is not in Policies, and pdp has no built-in of it (an export made'
                    " with --filter leaves policies out; export without it)",
                    "missing_reference",
                )
                continue
            if not aws_managed and arn not in self.customer_arns:
                self.problem(
                    f"{pat}.PolicyArn",
                    f'"{arn}" is not in Policies (an export made with --filter leaves policies'
                    " out; export without it)",
                    "missing_reference",
                )
                continue
            out.append(arn)
        return out

    def inline_policies(self, at: str, item: dict[str, Any], key: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for pat, policy in self.entries(item, key, at):
            name = self.string(pat, policy, "PolicyName")
            if name is None:
                continue
            if not is_policy_name(name):
                self.problem(f"{pat}.PolicyName", f'"{name}" is not an IAM policy name')
                continue
            if name in out:
                self.problem(f"{pat}.PolicyName", f'a second inline policy named "{name}"')
                continue
            document = self.document(f"{pat}.PolicyDocument", policy.get("PolicyDocument"))
            if document is not None:
                out[name] = document
                self.inline += 1
        return out

    def new_name(
        self,
        at: str,
        where: str,
        name: str,
        kind: str,
        valid: Callable[[object], bool],
        seen: dict[str, str],
    ) -> bool:
        """Whether `name` (at element `at`) can be a new file of the store: an IAM name of its
        kind, not hidden from the loader (a dot-name), not another's in other case. Each
        refusal is a problem at `where`; an accepted name is remembered in `seen`."""
        if not valid(name):
            self.problem(where, f'"{name}" is not an IAM {kind} name')
        elif name.startswith("."):
            self.problem(where, f'"{name}" {_HIDDEN}')
        elif name.lower() in seen:
            self.problem(where, f'"{name}" and {seen[name.lower()]} differ only in case')
        else:
            seen[name.lower()] = at
            return True
        return False

    def groups_of(self, doc: dict[str, Any]) -> None:
        seen: dict[str, str] = {}
        for at, item in self.entries(doc, "GroupDetailList"):
            name, path = self.string(at, item, "GroupName"), self.path_of(at, item)
            if name is None or path is None:
                continue
            if not self.new_name(at, f"{at}.GroupName", name, "group", is_group_name, seen):
                continue
            self.check_arn(at, item.get("Arn"), f"group{path}{name}")
            group: dict[str, Any] = {"path": path, "policies": self.attached(at, item)}
            inline = self.inline_policies(at, item, "GroupPolicyList")
            if inline:
                group["inline_policies"] = inline
            self.groups[name] = group

    def users_of(self, doc: dict[str, Any]) -> None:
        seen: dict[str, str] = {}
        for at, item in self.entries(doc, "UserDetailList"):
            name, path = self.string(at, item, "UserName"), self.path_of(at, item)
            if name is None or path is None:
                continue
            if not self.new_name(at, f"{at}.UserName", name, "user", is_user_name, seen):
                continue
            self.check_arn(at, item.get("Arn"), f"user{path}{name}")
            groups = self.user_groups(at, item)
            user: dict[str, Any] = {"path": path, "groups": groups}
            user["policies"] = self.attached(at, item)
            inline = self.inline_policies(at, item, "UserPolicyList")
            if inline:
                user["inline_policies"] = inline
            tags = self.tags(at, item)
            if tags:
                user["tags"] = tags
            boundary = self.boundary(at, item)
            if boundary is False:
                self.left_out.add(name)  # fail closed: never imported without its boundary
                continue
            if boundary is not None:
                user["permissions_boundary"] = boundary
            self.users[name] = user
            self.user_paths[name] = path

    def user_groups(self, at: str, item: dict[str, Any]) -> list[str]:
        groups = item.get("GroupList", [])
        if not isinstance(groups, list):
            self.problem(f"{at}.GroupList", "must be a list of group names")
            return []
        out = []
        for i, group in enumerate(groups):
            if not isinstance(group, str) or group not in self.groups:
                self.problem(
                    f"{at}.GroupList[{i}]",
                    f"group {json.dumps(group)} is not in GroupDetailList",
                    "missing_reference",
                )
                continue
            out.append(group)
        return out

    def tags(self, at: str, item: dict[str, Any]) -> dict[str, str]:
        """The user's tags; at most IAM's 50 (TagUser), each key once whatever its case."""
        out: dict[str, str] = {}
        listed = item.get("Tags")
        if isinstance(listed, list) and len(listed) > MAX_USER_TAGS:
            self.problem(
                f"{at}.Tags", f"{len(listed)} tags, over IAM's {MAX_USER_TAGS} a user (TagUser)"
            )
            return out
        keys: set[str] = set()
        for tat, tag in self.entries(item, "Tags", at):
            key, value = tag.get("Key"), tag.get("Value", "")
            if not isinstance(key, str) or not key or not isinstance(value, str):
                self.problem(tat, "a tag is {Key, Value}, both strings")
                continue
            if key.lower() in keys:
                self.problem(f"{tat}.Key", f'tag "{key}" repeats (tag keys ignore case in IAM)')
                continue
            keys.add(key.lower())
            out[key] = value
        return out

    def boundary(self, at: str, item: dict[str, Any]) -> str | bool | None:
        """A user's or role's PermissionsBoundary (`{"PermissionsBoundaryType": "Policy",
        "PermissionsBoundaryArn": ...}`) as a store reference (the ARN); None without one,
        False when it is wrong (a problem at its path)."""
        boundary = item.get("PermissionsBoundary")
        if boundary is None:
            return None
        where = f"{at}.PermissionsBoundary"
        if not isinstance(boundary, dict):
            self.problem(where, "must be an object with PermissionsBoundaryArn")
            return False
        kind = boundary.get("PermissionsBoundaryType", "Policy")
        if kind != "Policy":
            self.problem(f"{where}.PermissionsBoundaryType", f'{kind!r}: IAM has only "Policy"')
            return False
        arn = self.string(where, boundary, "PermissionsBoundaryArn")
        if arn is None:
            return False
        known = (
            arn in self.managed_arns or arn in builtin_managed()
            if arn.startswith(AWS_MANAGED_PREFIX)
            else arn in self.customer_arns
        )
        if not known:
            self.problem(
                f"{where}.PermissionsBoundaryArn",
                f'"{arn}" is not in Policies (an export made with --filter leaves policies out;'
                " export without it)",
                "missing_reference",
            )
            return False
        return arn

    def roles(self, doc: dict[str, Any]) -> None:
        """RoleDetailList -> roles/<Name>.json (docs/store.md): path, trust policy (the
        AssumeRolePolicyDocument, URL-encoded JSON in the IAM API's answer), attached and
        inline policies, permissions boundary, tags, RoleId, MaxSessionDuration, and the
        service-linked flag (path /aws-service-role/...). Instance profiles are not modelled."""
        seen: dict[str, str] = {}
        for at, item in self.entries(doc, "RoleDetailList"):
            name, path = self.string(at, item, "RoleName"), self.path_of(at, item)
            for _, profile in self.entries(item, "InstanceProfileList", at):
                label = profile.get("InstanceProfileName", "?")
                self.skipped.append(
                    Skipped(
                        "instance_profile",
                        str(label),
                        f"of role {name}: the store does not model instance profiles",
                    )
                )
            if name is None or path is None:
                continue
            if not self.new_name(at, f"{at}.RoleName", name, "role", is_role_name, seen):
                continue
            self.check_arn(at, item.get("Arn"), f"role{path}{name}")
            trust = self.document(
                f"{at}.AssumeRolePolicyDocument", item.get("AssumeRolePolicyDocument"), "trust"
            )
            if trust is None:
                continue
            role: dict[str, Any] = {"path": path, "trust_policy": trust}
            role["policies"] = self.attached(at, item)
            inline = self.inline_policies(at, item, "RolePolicyList")
            if inline:
                role["inline_policies"] = inline
            boundary = self.boundary(at, item)
            if boundary is False:
                continue
            if boundary is not None:
                role["permissions_boundary"] = boundary
            tags = self.tags(at, item)
            if tags:
                role["tags"] = tags
            duration = item.get("MaxSessionDuration")
            if duration is not None:
                if (
                    not isinstance(duration, int)
                    or isinstance(duration, bool)
                    or not MIN_SESSION_DURATION <= duration <= MAX_SESSION_DURATION
                ):
                    self.problem(
                        f"{at}.MaxSessionDuration",
                        f"must be {MIN_SESSION_DURATION} to {MAX_SESSION_DURATION} seconds",
                    )
                    continue
                role["max_session_duration"] = duration
            if path.startswith("/aws-service-role/"):
                role["service_linked"] = True
            role_id = item.get("RoleId")
            if role_id is not None:
                if not isinstance(role_id, str) or not re.fullmatch(
                    r"AROA[A-Z0-9]{12,124}", role_id
                ):
                    self.problem(f"{at}.RoleId", f"{role_id!r} is not a role id (AROA...)")
                    continue
                role["role_id"] = role_id
            description = item.get("Description")
            if isinstance(description, str) and description:
                role["description"] = description
            self.roles_out[name] = role

    # -- the extra inputs ------------------------------------------------------------------

    def password_policy_of(self, source: str, doc: Any) -> None:
        inner = doc.get("PasswordPolicy") if isinstance(doc, dict) else None
        if not isinstance(inner, dict):
            self.problem(
                "PasswordPolicy",
                'must be {"PasswordPolicy": {...}}, as aws iam get-account-password-policy'
                " prints it",
                source=source,
            )
            return
        policy: dict[str, Any] = {}
        for key, value in inner.items():
            expected = PASSWORD_POLICY_FIELDS.get(key)
            if key == "ExpirePasswords":
                age = inner.get("MaxPasswordAge")
                if value is not (isinstance(age, int) and age > 0):
                    self.problem(
                        f"PasswordPolicy.{key}",
                        f"ExpirePasswords is {json.dumps(value)} but MaxPasswordAge is"
                        f" {json.dumps(age)} (AWS: true exactly when MaxPasswordAge > 0)",
                        source=source,
                    )
                self.skipped.append(
                    Skipped("password_policy_field", key, "derived from MaxPasswordAge")
                )
            elif expected is None:
                self.skipped.append(
                    Skipped("password_policy_field", key, "not a field the store knows")
                )
            elif (wrong := password_policy_problem(key, value)) is not None:
                self.problem(f"PasswordPolicy.{key}", wrong, source=source)
            else:
                policy[key] = value
        self.password_policy = policy

    def credential_report(self, source: str, raw: bytes) -> None:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.problem("", "not UTF-8 text", source=source)
            return
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = reader.fieldnames or []
        missing = [c for c in ("user", "arn", "password_enabled", "mfa_active") if c not in columns]
        if missing:
            self.problem(
                "line 1", f"not a credential report: no column {', '.join(missing)}", source=source
            )
            return
        try:
            for row in reader:
                self.report_row(source, f"line {reader.line_num}", row)
        except csv.Error as exc:
            self.problem(f"line {reader.line_num}", f"malformed CSV: {exc}", source=source)

    def report_row(self, source: str, at: str, row: dict[str, Any]) -> None:
        name, arn = row.get("user") or "", row.get("arn") or ""
        match = _ARN.fullmatch(arn)
        if match is None or match["partition"] != "aws":
            self.problem(
                f"{at}.arn", f'"{arn}" is not an IAM ARN in the aws partition', source=source
            )
            return
        if not self.account_of(f"{at}.arn", match["account"], source):
            return
        keys = self.report_keys(source, at, row)
        certs = self.report_certificates(source, at, row)
        created = self.report_date(source, f"{at}.user_creation_time", row)
        password_used = self.report_date(source, f"{at}.password_last_used", row)
        mfa = _flag(row.get("mfa_active"))
        if mfa is None:
            self.problem(f"{at}.mfa_active", "must be true or false", source=source)
        earlier = self.report_rows.get(name)
        if earlier is not None:
            self.problem(f"{at}.user", f"a second row for {name} ({earlier})", source=source)
            return
        self.report_rows[name] = at
        if name == _ROOT_ROW:
            if match["resource"] != "root":
                self.problem(
                    f"{at}.arn",
                    f'"{arn}", but the root row names arn:aws:iam::{self.account}:root',
                    source=source,
                )
                return
            self.root = {"mfa_enabled": mfa is True, "access_keys": keys}
            if created is not None:
                self.root["created"] = created
            if password_used is not None:
                self.root["password_last_used"] = password_used
            return
        user = self.users.get(name)
        if user is None:
            why = (
                "left out with its user (permissions boundary)"
                if name in self.left_out
                else "no such user in the export"
            )
            self.skipped.append(Skipped("credential_report_row", name, why))
            return
        expected = f"arn:aws:iam::{self.account}:user{self.user_paths[name]}{name}"
        if arn != expected:
            self.problem(f"{at}.arn", f'"{arn}", but the export has {expected}', source=source)
            return
        password = _flag(row.get("password_enabled"))
        if password is None:
            self.problem(f"{at}.password_enabled", "must be true or false", source=source)
        user["console_access"] = password is True
        user["mfa_enabled"] = mfa is True
        changed = self.report_date(source, f"{at}.password_last_changed", row)
        if changed is not None and password is True:
            user["password_last_changed"] = changed
        user["access_keys"] = keys
        if certs:
            user["signing_certificates"] = certs
        if created is not None:
            user["created"] = created
        if password_used is not None:
            user["password_last_used"] = password_used

    def report_keys(self, source: str, at: str, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The row's access keys, without ids (the report has none: none is invented)."""
        keys = []
        for n in (1, 2):
            active = _flag(row.get(f"access_key_{n}_active"))
            if active is None:
                if f"access_key_{n}_active" in row:
                    self.problem(
                        f"{at}.access_key_{n}_active", "must be true or false", source=source
                    )
                continue
            before = len(self.problems)
            created = self.report_date(source, f"{at}.access_key_{n}_last_rotated", row)
            if created is None:
                if active and len(self.problems) == before:
                    self.problem(
                        f"{at}.access_key_{n}_last_rotated",
                        "an active key must have the date it was created",
                        source=source,
                    )
                continue  # no key (AWS gives N/A for a key that is not active)
            used = self.report_date(source, f"{at}.access_key_{n}_last_used_date", row)
            key: dict[str, Any] = {
                "status": "Active" if active else "Inactive",
                "created": created,
                "last_used": used,
            }
            for part in ("region", "service"):
                value = row.get(f"access_key_{n}_last_used_{part}")
                if used is not None and value and value not in _FALSE_DATES:
                    key[f"last_used_{part}"] = value
            keys.append(key)
        return keys

    def report_certificates(
        self, source: str, at: str, row: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The row's signing certificates, without ids (the report has none), dated by
        cert_N_last_rotated (N/A: no certificate in that position)."""
        certs = []
        for n in (1, 2):
            active = _flag(row.get(f"cert_{n}_active"))
            if active is None:
                if f"cert_{n}_active" in row:
                    self.problem(f"{at}.cert_{n}_active", "must be true or false", source=source)
                continue
            before = len(self.problems)
            uploaded = self.report_date(source, f"{at}.cert_{n}_last_rotated", row)
            if uploaded is not None:
                certs.append({"status": "Active" if active else "Inactive", "uploaded": uploaded})
            elif active and len(self.problems) == before:
                self.problem(
                    f"{at}.cert_{n}_last_rotated",
                    "an active certificate must have the date it was uploaded",
                    source=source,
                )
        return certs

    def report_date(self, source: str, at: str, row: dict[str, Any]) -> str | None:
        value = row.get(at.rpartition(".")[2])
        if value is None or value in _FALSE_DATES or value == "":
            return None
        try:
            datetime.fromisoformat(value)
        except ValueError:
            self.problem(at, f'"{value}" is not an ISO 8601 date', source=source)
            return None
        return str(value)

    # -- the version -----------------------------------------------------------------------

    def result(self) -> _Converted:
        if self.account is None:
            self.problem("", "no ARN in the export names the account: cannot tell its account id")
        files: dict[str, bytes] = {}
        account: dict[str, Any] = {"account_id": self.account}
        if self.root is not None:
            account["root"] = self.root
        if self.password_policy is not None:
            account["password_policy"] = self.password_policy
        files["account.json"] = _dump(account)
        for name, document in self.customer.items():
            files[f"policies/{name}.json"] = _dump(document)
        for name, group in self.groups.items():
            files[f"groups/{name}.json"] = _dump(group)
        for name, user in self.users.items():
            files[f"users/{name}.json"] = _dump(user)
        for name, role in self.roles_out.items():
            files[f"roles/{name}.json"] = _dump(role)
        for rel, shape in self.managed.items():
            files[rel] = _dump(shape)
        counts = {
            "roles": len(self.roles_out),
            "users": len(self.users),
            "groups": len(self.groups),
            "policies": len(self.customer),
            "aws_managed": len(self.managed),
            "inline_policies": self.inline,
            "policy_versions_not_default": self.not_default,
        }
        return _Converted(files, counts, self.skipped)


def _flag(value: Any) -> bool | None:
    """A credential report's true/false (AWS writes them in lower case); None for others."""
    if not isinstance(value, str):
        return None
    return {"true": True, "false": False}.get(value.lower())


def _dump(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def convert(
    export: bytes,
    source: str,
    *,
    password_policy: tuple[str, bytes] | None = None,
    credential_report: tuple[str, bytes] | None = None,
) -> _Converted:
    """The files of the new version, or ImportFailed naming every problem (up to 100)."""
    converter = _Converter(source)
    try:
        try:
            doc = load_json(export)
        except MalformedJson as exc:
            converter.problem("", str(exc), "malformed_json")
        else:
            converter.export(doc)
        if password_policy is not None:
            name, raw = password_policy
            try:
                converter.password_policy_of(name, load_json(raw))
            except MalformedJson as exc:
                converter.problem("", str(exc), "malformed_json", source=name)
        if credential_report is not None and not converter.problems:
            converter.credential_report(*credential_report)
        if not converter.problems:
            converted = converter.result()
    except _TooMany:
        converter.problems.append(
            Diagnostic("too_many_problems", "", f"stopped after {MAX_PROBLEMS} problems", source)
        )
    if converter.problems:
        raise ImportFailed(f"{source}: nothing imported", converter.problems)
    return converted


def import_authorization_details(
    export: str | os.PathLike[str],
    store: str | os.PathLike[str],
    *,
    password_policy: str | os.PathLike[str] | None = None,
    credential_report: str | os.PathLike[str] | None = None,
    activate: bool = False,
) -> ImportResult:
    """Import an account's authorization details as a new version of `store` (created if it
    does not exist). With `activate`, `current` then points to it (created if absent).
    Raises ImportFailed, the store untouched, on any problem."""
    source = os.fspath(export)
    extras: dict[str, tuple[str, bytes]] = {}
    raw = _read_bounded(export, MAX_EXPORT_BYTES, "an authorization details export")
    if password_policy is not None:
        name = os.fspath(password_policy)
        extras["password_policy"] = (
            name,
            _read_bounded(name, MAX_PASSWORD_POLICY_BYTES, "a password policy"),
        )
    if credential_report is not None:
        name = os.fspath(credential_report)
        extras["credential_report"] = (
            name,
            _read_bounded(name, MAX_CREDENTIAL_REPORT_BYTES, "a credential report"),
        )
    converted = convert(raw, source, **extras)
    return _publish(os.fspath(store), converted, activate)


def _publish(store: str, converted: _Converted, activate: bool) -> ImportResult:
    done = publish_version(
        store,
        lambda temporary: write_files(temporary, converted.files),
        activate=activate,
        what="the converted version",
        done="imported",
        link_name=".current.import.tmp",
        error=ImportFailed,
    )
    return ImportResult(
        done.version,
        done.path,
        done.store_created,
        activate,
        done.serving,
        done.current,
        converted.counts,
        tuple(converted.skipped),
    )
