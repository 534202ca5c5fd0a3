"""Reading one store version from disk: its files, their shapes, and every problem with its file.

Layout (docs/store.md)::

    STORE/current -> versions/0002     optional; without it the greatest version name is served
    STORE/versions/0002/account.json   optional
                        store.json     optional: refuse_findings, application_services, impact_gate,
                                   authzen (checks.py, authzen.py)
                        policies/<Name>.json   groups/<Name>.json   users/<name>.json
                        tests/*.json           optional policy tests
                        aws-managed/<path>/<Name>.json   AWS managed policies (aws_managed.py)
                        roles/<Name>.json   resources/<name>.json   (roles.py, resources.py)
                        organization/organization.json, organization/{scps,rcps}/<Name>.json
                        accounts/<12 digits>/   several accounts, each holding account.json,
                                 policies/ groups/ users/ roles/ resources/ (instead of them
                                 at the top)

`resolve_version` turns a store path into one real version directory, once; `read_version` then
reads only below that directory, so a publisher swapping `current` mid-load never mixes versions.
Names starting with "." are skipped (a Kubernetes ConfigMap volume keeps `..data` links there).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pdp.errors import Diagnostic, PolicyValidationError, RequestError
from pdp.language import LAYER_ORDER, JsonObject, MalformedJson, Policy, load_json, parse_policy
from pdp.model import PRINCIPAL_TYPES, Request, Session
from pdp.names import (
    MAX_PATH,
    is_account_id,
    is_group_name,
    is_path,
    is_policy_name,
    is_user_name,
)
from pdp.store.authzen import AuthzenMapping, read_authzen
from pdp.store.aws_managed import (
    AWS_MANAGED_FOLDER,
    AWS_MANAGED_PREFIX,
    ManagedPolicy,
    builtin_managed,
    managed_arn,
    parse_managed,
)
from pdp.store.checks import (
    SETTINGS_FILE,
    SETTINGS_KEYS,
    CheckFailed,
    application_services,
    refused,
    settings_problem,
)
from pdp.store.gate import ImpactGate, read_gate
from pdp.store.organization import ORGANIZATION_FOLDER, Organization, read_organization
from pdp.store.resources import ResourceFile, read_resource
from pdp.store.roles import Role, read_role, statements_of
from pdp.store.shards import MASK, Shards

__all__ = [
    "MfaDevice",
    "SigningCertificate",
    "MAX_FILE_BYTES",
    "AccessKey",
    "Account",
    "Group",
    "Parsed",
    "PolicyTestCase",
    "VERSION_ENTRIES",
    "VERSION_NAME",
    "StoreError",
    "StoreVersion",
    "User",
    "is_version_directory",
    "natural_key",
    "read_version",
    "resolve_version",
    "version_names",
    "version_stamp",
]

MAX_FILE_BYTES = 1 << 20  # 1 MiB: IAM's own limits are a few KiB per policy
_CHUNK = 1 << 16
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
DEFAULT_ACCOUNT = "000000000000"
_FOLDERS = ("policies", "groups", "users", "tests", AWS_MANAGED_FOLDER)
ACCOUNTS_FOLDER = "accounts"
# What a version may hold besides _FOLDERS (spec 14, section 1), read whole at every load.
_MODEL_ENTRIES = ("roles", "resources", ORGANIZATION_FOLDER, ACCOUNTS_FOLDER)
# What accounts/<id>/ holds, and what the top of a multi-account version may not.
_ACCOUNT_FOLDERS = ("policies", "groups", "users", "roles", "resources")
_MAX_STAMPED_FOLDERS = 1000  # of aws-managed/'s subfolders (AWS uses a few dozen paths)
_PATH_RULE = f'path must start and end with "/", at most {MAX_PATH} characters of printable ASCII'
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)
# IAM's size limits, in characters other than white space (reference_iam-quotas.html)
MANAGED_POLICY_CHARS = 6144
USER_INLINE_CHARS = 2048
GROUP_INLINE_CHARS = 5120
_SECRET_WORDS = ("secret", "password", "private_key", "token")
PASSWORD_POLICY_FIELDS: dict[str, type] = {
    "MinimumPasswordLength": int,
    "RequireSymbols": bool,
    "RequireNumbers": bool,
    "RequireUppercaseCharacters": bool,
    "RequireLowercaseCharacters": bool,
    "AllowUsersToChangePassword": bool,
    "MaxPasswordAge": int,
    "PasswordReusePrevention": int,
    "HardExpiry": bool,
}
# AWS's ranges (IAM API Reference, PasswordPolicy and UpdateAccountPasswordPolicy), inclusive.
# MaxPasswordAge may also be 0: what GetAccountPasswordPolicy's ExpirePasswords calls "0 or not
# present", passwords that never expire (an absent field means the same).
PASSWORD_POLICY_RANGES: dict[str, tuple[int, int]] = {
    "MinimumPasswordLength": (6, 128),
    "MaxPasswordAge": (1, 1095),
    "PasswordReusePrevention": (1, 24),
}
_RANGE_UNITS = {
    "MinimumPasswordLength": "characters",
    "MaxPasswordAge": "days",
    "PasswordReusePrevention": "passwords",
}


Parsed = Shards[tuple[bytes, object]]  # file name -> (its bytes, what they parsed to)


class StoreError(Exception):
    """The store path itself cannot be resolved to a version directory; `code` says why."""

    def __init__(self, message: str, code: str = "store_unresolved") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An access key's metadata (never its secret). `id` is None when the source did not say
    it: IAM's credential report, which `pdp import` reads, lists keys by position only."""

    id: str | None
    status: str
    created: str
    last_used: str | None
    # Where and with which service (its namespace, `s3`) the key was last used; None when
    # unknown or never used (the credential report writes N/A).
    last_used_region: str | None = None
    last_used_service: str | None = None


# IAM's quotas: two access keys and two signing certificates a user (IAM User Guide, IAM and
# AWS STS quotas); a store holding more is refused, not silently cut to two.
MAX_ACCESS_KEYS = 2
MAX_SIGNING_CERTIFICATES = 2
MFA_DEVICE_TYPES = ("virtual", "hardware", "fido")


@dataclass(frozen=True, slots=True)
class MfaDevice:
    """An MFA device of a user: its kind and serial (a virtual device's ARN, a hardware
    device's serial number, a FIDO key's id). Never a seed or a code."""

    type: str
    serial: str


@dataclass(frozen=True, slots=True)
class SigningCertificate:
    """An X.509 signing certificate's metadata (never its body). `id` is None when the source
    did not say it (the credential report lists certificates by position only)."""

    id: str | None
    status: str
    uploaded: str


@dataclass(frozen=True, slots=True)
class Identity:
    """What a user file and a group file both hold: a name, a path and policies."""

    name: str
    file: str
    path: str = "/"
    policies: tuple[str, ...] = ()
    inline_policies: tuple[Policy, ...] = ()


@dataclass(frozen=True, slots=True)
class User(Identity):
    """A user file: attachments, tags and credential metadata (never secrets)."""

    groups: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    # True when `mfa_enabled` is true or `mfa_devices` lists a device (the credential
    # report's mfa_active).
    mfa_enabled: bool = False
    console_access: bool = False
    password_last_changed: str | None = None
    access_keys: tuple[AccessKey, ...] = ()
    created: str | None = None  # the user's creation time (user_creation_time)
    password_last_used: str | None = None  # a date, never the password
    mfa_devices: tuple[MfaDevice, ...] = ()
    signing_certificates: tuple[SigningCertificate, ...] = ()
    # A reference to a managed policy (a name in policies/, a customer policy ARN of the
    # account or an AWS managed ARN) whose Allows cap the user's (IAM "Permissions boundaries").
    permissions_boundary: str | None = None


@dataclass(frozen=True, slots=True)
class Group(Identity):
    """A group file: its path and policies."""


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str = DEFAULT_ACCOUNT
    root_enabled: bool = True
    root_mfa_enabled: bool = False
    root_access_keys: tuple[AccessKey, ...] = ()
    password_policy: dict[str, Any] = field(default_factory=dict)
    created: str | None = None  # the account's creation time (the root row's user_creation_time)
    root_password_last_used: str | None = None
    # account.json `require_permissions_boundary`: the account's rule that every role and user
    # has a permissions boundary (service-linked roles exempt); `pdp audit` reports those that
    # lack one (missing_permissions_boundary). It changes no decision.
    require_permissions_boundary: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyTestCase(Request):
    """One expectation from `tests/*.json`: a request (a typed principal, a role session's
    attributes), and the decision it must get; `blocked_by`, when the case gives it, is the
    list of layers that must have denied (an empty list: none did)."""

    file: str
    index: int
    expect: str
    reason: str | None
    name: str | None = None
    blocked_by: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class StoreVersion:
    """Everything read from one version directory, validated."""

    name: str
    path: str
    account: Account
    policies: dict[str, Policy]
    groups: dict[str, Group]
    users: Shards[User]  # a reload copies only the part of it that it changes
    tests: tuple[PolicyTestCase, ...]
    # What each file (by name) held and parsed to: the next read reuses it (Reader.reuse).
    parsed: Parsed = field(default_factory=Shards, repr=False)
    # The users added, edited or deleted since the version this one was read against; None
    # when read in full.
    changed_users: frozenset[str] | None = None
    # The AWS managed policies of the version's aws-managed/ folder, by ARN, in file order
    # (they override the built-ins of the same ARN: index.py).
    aws_managed: dict[str, ManagedPolicy] = field(default_factory=dict)
    # The service prefixes store.json declares as its applications' own (`orders`), lower case:
    # not judged against AWS's reference, and not counted as unknown actions.
    application_services: frozenset[str] = frozenset()
    # roles/ and resources/ of the account (of the top-level account in the multi-account
    # layout), and the version's organization (None without organization.json).
    roles: dict[str, Role] = field(default_factory=dict)
    resources: tuple[ResourceFile, ...] = ()
    organization: Organization | None = None
    # The multi-account layout: one sub-version per accounts/<id>/, by account id (each with
    # its own account, policies, groups, users, roles and resources); {} for a single account.
    # The version's own fields then are those of the management account's sub-version if the
    # store holds it, else of the lowest account id's, so single-account reports keep working.
    accounts: dict[str, StoreVersion] = field(default_factory=dict)
    # store.json's `impact_gate` (pdp.store.gate): what a replay of the decision log must not
    # show before a server activates this version; None without one.
    impact_gate: ImpactGate | None = None
    # store.json's `authzen` (pdp.store.authzen): how AuthZEN requests map to pdp requests.
    authzen: AuthzenMapping | None = None


def natural_key(name: str) -> list[Any]:
    """Version names in natural order: "9" < "10" < "10a"."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _quoted(text: str) -> str:
    """A name from the file system, quoted on one line (control characters escaped)."""
    return json.dumps(text, ensure_ascii=False)


def _check_version_name(store: str | os.PathLike[str], name: str) -> str:
    # Invariant: a served version name is safe in a metric label, a log line and a header.
    if not VERSION_NAME.fullmatch(name):
        raise StoreError(
            f"{os.fspath(store)}: {_quoted(name)} is not allowed as a version name"
            " (1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit)",
            "invalid_version_name",
        )
    return name


def version_names(store: str | os.PathLike[str]) -> list[str]:
    """The names of a store's versions (entries of versions/ that are directories), oldest
    first in natural order (9 < 10); names starting with "." are not versions."""
    versions = Path(os.path.realpath(store)) / "versions"
    if not versions.is_dir():
        raise StoreError(f"{os.fspath(store)}: no versions/ directory")
    return sorted(
        (e.name for e in os.scandir(versions) if not e.name.startswith(".") and e.is_dir()),
        key=natural_key,
    )


# what a version directory may hold (organization.json at the top too, not listed: an empty one
# is refused, so it cannot make an otherwise empty directory a version)
VERSION_ENTRIES = ("account.json", SETTINGS_FILE, *_FOLDERS, *_MODEL_ENTRIES)


def is_version_directory(directory: str | os.PathLike[str]) -> bool:
    """Whether a directory holds at least one of a version's entries (VERSION_ENTRIES, a dangling
    link included: the loader reports it). Every entry is optional to the loader, so this is what
    tells a version from any other directory: the commands that take a path (`pdp validate`,
    `pdp test`, `pdp audit`) refuse one that is neither a store nor a version, which would
    otherwise read as an empty version that passes and denies everything."""
    return any(os.path.lexists(os.path.join(directory, name)) for name in VERSION_ENTRIES)


def version_stamp(directory: str | os.PathLike[str]) -> tuple[int, ...]:
    """Modification times of a version directory, of its files and folders at the top and of
    the folders below aws-managed/ (its AWS paths): a cheap sign that the version changed (a
    file added, removed or renamed), without reading it."""
    stamp = []
    for name in ("", "account.json", SETTINGS_FILE, *_FOLDERS):
        try:
            stamp.append(os.stat(os.path.join(directory, name)).st_mtime_ns)
        except OSError:
            stamp.append(0)
    managed = os.path.join(directory, AWS_MANAGED_FOLDER)
    if stamp[-1]:
        for count, (parent, folders, _files) in enumerate(os.walk(managed)):
            for folder in folders:
                try:
                    stamp.append(os.stat(os.path.join(parent, folder)).st_mtime_ns)
                except OSError:
                    stamp.append(0)
            if count >= _MAX_STAMPED_FOLDERS:
                break
    for name in (
        *_MODEL_ENTRIES,
        "organization.json",
        f"{ORGANIZATION_FOLDER}/scps",
        f"{ORGANIZATION_FOLDER}/rcps",
    ):
        try:
            stamp.append(os.stat(os.path.join(directory, name)).st_mtime_ns)
        except OSError:
            stamp.append(0)
    try:
        accounts = sorted(os.listdir(os.path.join(directory, ACCOUNTS_FOLDER)))
    except OSError:
        accounts = []
    for account in accounts[:_MAX_STAMPED_FOLDERS]:
        for name in ("", "account.json", *_ACCOUNT_FOLDERS):
            try:
                stamp.append(
                    os.stat(os.path.join(directory, ACCOUNTS_FOLDER, account, name)).st_mtime_ns
                )
            except OSError:
                stamp.append(0)
    return tuple(stamp)


def resolve_version(store: str | os.PathLike[str], version: str | None = None) -> tuple[str, Path]:
    """The version a store serves now (or the pinned `version`): its name and real directory."""
    root = Path(os.path.realpath(store))
    versions = root / "versions"
    if not versions.is_dir():
        raise StoreError(f"{store}: no versions/ directory")
    if version is not None:
        _check_version_name(store, version)
        if not (versions / version).is_dir():
            raise StoreError(f"{store}: no version {version!r} in versions/")
        target = Path(os.path.realpath(versions / version))
        return version, target
    current = root / "current"
    if os.path.lexists(current):
        try:
            target = current.resolve(strict=True)
        except (OSError, RuntimeError) as exc:  # dangling link, or a loop
            link = _quoted(os.readlink(current)) if current.is_symlink() else "?"
            raise StoreError(f"{store}: current -> {link} does not resolve ({exc})") from None
        if not target.is_dir():
            raise StoreError(f"{store}: current does not point to a directory")
        return _check_version_name(store, target.name), target
    names = version_names(store)
    if not names:
        raise StoreError(f"{store}: versions/ holds no version")
    name = _check_version_name(store, names[-1])
    return name, Path(os.path.realpath(versions / name))


class _Reader:
    """Reads the files of one version, collecting diagnostics instead of stopping."""

    def __init__(self, root: Path, earlier: Parsed) -> None:
        self.root = Path(os.path.realpath(root))
        self._inside = os.path.join(self.root, "")
        self.problems: list[Diagnostic] = []
        self.earlier = earlier
        # What this read parsed (new or changed files) and the files it no longer has: the
        # next `parsed` table is `earlier` evolved by them (see `parsed_table`).
        self.fresh: dict[str, tuple[bytes, object]] = {}
        self.gone: list[str] = []

    def parsed_table(self) -> Parsed:
        return self.earlier.evolve(self.fresh, self.gone)

    def add(self, file: str, path: str, code: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Diagnostic(code, path, message, file, hint))

    def follow(self, rel: str, link: str) -> str | None:
        """Where a link leads, if that stays in the version directory; None, reported, if not.

        Invariant: every file read is below the real version directory, so a publisher
        swapping what a link points to can never mix another version into this one."""
        real = os.path.realpath(link)
        if real.startswith(self._inside):
            return real
        self.add(
            rel,
            "",
            "link_outside_version",
            f"links outside the version directory (to {_quoted(real)})",
            "copy the file into the version instead",
        )
        return None

    def folder(self, folder: str) -> str | None:
        """The real path of a folder of the version, or None when it is absent or refused."""
        directory = str(self.root / folder)
        if not os.path.lexists(directory):
            return None
        if os.path.islink(directory):
            real = self.follow(folder, directory)
            if real is None:
                return None
            directory = real
        if not os.path.isdir(directory):
            self.add(folder, "", "not_a_directory", f"{folder} must be a directory")
            return None
        return directory

    def entry(self, folder: str, entry: os.DirEntry[str]) -> tuple[str, str] | None:
        """(relative name, path) of a directory entry that is a .json regular file (a link's
        path is where it leads); None, reported, for anything else. The type comes from the
        directory entry: no system call per file."""
        rel = f"{folder}/{entry.name}"
        if not entry.name.endswith(".json"):
            self.add(rel, "", "unexpected_file", "only .json files belong here")
            return None
        path: str | None = entry.path
        if entry.is_symlink():
            path = self.follow(rel, entry.path)  # dangling: reading it says so
            regular = path is not None and (os.path.isfile(path) or not os.path.exists(path))
        else:
            regular = entry.is_file(follow_symlinks=False)
        if path is None:
            return None
        if not regular:
            self.add(rel, "", "not_a_file", "not a regular file")
            return None
        return rel, path

    def files(self, folder: str) -> list[tuple[str, str]]:
        """(relative name, path) of the .json files of a folder, sorted; strings, not Paths:
        a store can hold a hundred thousand files."""
        directory = self.folder(folder)
        if directory is None:
            return []
        with os.scandir(directory) as listing:
            entries = {e.name: e for e in listing if not e.name.startswith(".")}
        out = []
        for name in sorted(entries):
            found = self.entry(folder, entries[name])
            if found is not None:
                out.append(found)
        return out

    def read_json(self, rel: str, path: str) -> Any:
        raw = self.read_bytes(rel, path)
        if raw is None:
            return None
        return self.parse_json(rel, raw)

    def parse_json(self, rel: str, raw: bytes) -> Any:
        try:
            return load_json(raw)
        except MalformedJson as exc:
            self.add(rel, "", "malformed_json", str(exc))
            return None

    def read_bytes(self, rel: str, path: str) -> bytes | None:
        """The bytes of a regular file (as `files` lists them), at most MAX_FILE_BYTES.

        Three system calls: open, read, close. A read shorter than asked for is the end of a
        regular file, so there is no stat() and no second read; O_NONBLOCK keeps a FIFO swapped
        in after listing from blocking the load (it reads as empty, and the version is refused).
        """
        try:
            fd = os.open(path, _READ_FLAGS)  # a link swapped in: refused (O_NOFOLLOW)
            try:
                data = os.read(fd, _CHUNK)
                if len(data) == _CHUNK:
                    parts = [data]
                    size = len(data)
                    while size <= MAX_FILE_BYTES:
                        more = os.read(fd, min(_CHUNK, MAX_FILE_BYTES + 1 - size))
                        if not more:
                            break
                        parts.append(more)
                        size += len(more)
                    data = b"".join(parts)
            finally:
                os.close(fd)
        except OSError as exc:
            self.add(rel, "", "unreadable_file", f"cannot read: {exc.strerror or exc}")
            return None
        if len(data) > MAX_FILE_BYTES:
            self.add(rel, "", "file_too_large", f"file is over the {MAX_FILE_BYTES} byte limit")
            return None
        return data

    def reuse(self, rel: str, raw: bytes) -> Any:
        """What an earlier load parsed from a file of this name with exactly these bytes, or
        None. The name is part of the key (a user's name is its file's name), and the bytes are
        compared whole, so an edited file is never taken for the one read before."""
        earlier = self.earlier.get(rel)
        if earlier is not None and earlier[0] == raw:
            return earlier[1]
        return None

    def remember(self, rel: str, raw: bytes, item: object, problems_before: int) -> None:
        """Keep what a file parsed to for the next load, if parsing it found no problem (with
        one, the version is refused and its table never used)."""
        if len(self.problems) == problems_before:
            self.fresh[rel] = (raw, item)

    def object(self, rel: str, doc: Any, allowed: tuple[str, ...]) -> dict[str, Any] | None:
        if not isinstance(doc, dict):
            self.add(rel, "", "not_an_object", "the file must hold a JSON object")
            return None
        if isinstance(doc, JsonObject):
            for key in doc.duplicates:
                self.add(rel, key, "duplicate_key", f'duplicate key "{key}"')
        for key in doc:
            if key not in allowed:
                secret = any(word in key.lower() for word in _SECRET_WORDS)
                self.add(
                    rel,
                    key,
                    "unknown_field",
                    f'unknown field "{key}"',
                    "pdp never stores secrets" if secret else f"known: {', '.join(allowed)}",
                )
        return doc

    def typed(
        self, rel: str, doc: dict[str, Any], key: str, check: Callable[[Any], bool], what: str
    ) -> bool:
        if key in doc and not check(doc[key]):
            self.add(rel, key, "invalid_field", f"{key} must be {what}")
            return False
        return True

    def names(self, rel: str, doc: dict[str, Any], key: str) -> tuple[str, ...]:
        if key not in doc:
            return ()
        value = doc[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.add(rel, key, "invalid_field", f"{key} must be a list of names")
            return ()
        return tuple(value)

    def inline(
        self, rel: str, doc: dict[str, Any], limit: int, label: str = ""
    ) -> tuple[Policy, ...]:
        """The inline policies of a file, each cited `<rel>#<label><Name>` (a user's
        `users/bob.json#Name`, a role's `roles/Deploy.json#inline/Name`: spec section 5)."""
        if "inline_policies" not in doc:
            return ()
        value = doc["inline_policies"]
        if not isinstance(value, dict):
            self.add(rel, "inline_policies", "invalid_field", "inline_policies must be an object")
            return ()
        size = sum(_chars(json.dumps(d)) for d in value.values())
        if size > limit:
            self.add(
                rel,
                "inline_policies",
                "policy_too_large",
                f"inline policies hold {size} characters, over IAM's {limit}"
                " (white space not counted)",
            )
        out = []
        for name, document in value.items():
            if not is_policy_name(name):
                self.add(rel, f"inline_policies.{name}", "invalid_name", "invalid policy name")
                continue
            policy = self.policy(
                rel, document, name=f"{rel}#{label}{name}", prefix=f"inline_policies.{name}"
            )
            if policy is not None:
                out.append(policy)
        return tuple(out)

    def policy(
        self, rel: str, document: Any, *, name: str, prefix: str = "", kind: str = "identity"
    ) -> Policy | None:
        try:
            return parse_policy(document, source=rel, name=name, kind=kind)
        except PolicyValidationError as exc:
            for d in exc.diagnostics:
                path = f"{prefix}.{d.path}" if prefix and d.path else (prefix or d.path)
                self.add(rel, path, d.code, d.message, d.hint)
            return None

    def tags(self, rel: str, doc: dict[str, Any]) -> dict[str, str]:
        """The `tags` of a file: names to strings, keys differing in more than case."""
        tags = doc.get("tags", {})
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in tags.items()
        ):
            self.add(rel, "tags", "invalid_field", "tags must map names to strings")
            return {}
        if len({k.lower() for k in tags}) != len(tags):
            self.add(rel, "tags", "invalid_field", "tag keys must differ in more than case")
        return dict(tags)

    def date(self, rel: str, where: str, value: Any, optional: bool = True) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value)
                return value
            except ValueError:
                pass
        self.add(rel, where, "invalid_field", f"{where} must be an ISO 8601 date")
        return None

    def access_keys(
        self, rel: str, value: Any, where: str = "access_keys"
    ) -> tuple[AccessKey, ...]:
        if not isinstance(value, list):
            self.add(rel, where, "invalid_field", f"{where} must be a list")
            return ()
        keys = []
        for i, item in enumerate(value):
            at = f"{where}[{i}]"
            item = self.object(rel, item, _KEY_FIELDS)
            if item is None:
                continue
            key_id, status = item.get("id"), item.get("status", "Active")
            if key_id is not None and (
                not isinstance(key_id, str) or not re.fullmatch(r"[A-Z0-9]{16,128}", key_id)
            ):
                self.add(rel, f"{at}.id", "invalid_field", "id must be an access key id (AKIA...)")
                continue
            if status not in ("Active", "Inactive"):
                self.add(rel, f"{at}.status", "invalid_field", 'status is "Active" or "Inactive"')
                continue
            created = self.date(rel, f"{at}.created", item.get("created"), optional=False)
            last_used = self.date(rel, f"{at}.last_used", item.get("last_used"))
            region = self.word(rel, f"{at}.last_used_region", item.get("last_used_region"))
            service = self.word(rel, f"{at}.last_used_service", item.get("last_used_service"))
            if created is not None:
                keys.append(AccessKey(key_id, status, created, last_used, region, service))
        if len(value) > MAX_ACCESS_KEYS:
            self.add(
                rel,
                where,
                "too_many_access_keys",
                f"{len(value)} access keys; IAM allows {MAX_ACCESS_KEYS} a user",
            )
        return tuple(keys)

    def word(self, rel: str, where: str, value: Any) -> str | None:
        """A region or service namespace (`eu-west-1`, `s3`), or None when absent."""
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", value):
            return value
        self.add(rel, where, "invalid_field", f"{where} must be a region or service name")
        return None

    def mfa_devices(self, rel: str, value: Any) -> tuple[MfaDevice, ...]:
        if not isinstance(value, list):
            self.add(rel, "mfa_devices", "invalid_field", "mfa_devices must be a list")
            return ()
        devices = []
        for i, item in enumerate(value):
            at = f"mfa_devices[{i}]"
            item = self.object(rel, item, ("type", "serial"))
            if item is None:
                continue
            kind, serial = item.get("type"), item.get("serial")
            if kind not in MFA_DEVICE_TYPES:
                self.add(rel, f"{at}.type", "invalid_field", f"type is one of {MFA_DEVICE_TYPES}")
            elif not isinstance(serial, str) or not re.fullmatch(r"[\w+=/:,.@-]{9,256}", serial):
                self.add(rel, f"{at}.serial", "invalid_field", "serial must be 9 to 256 characters")
            else:
                devices.append(MfaDevice(kind, serial))
        return tuple(devices)

    def certificates(self, rel: str, value: Any) -> tuple[SigningCertificate, ...]:
        where = "signing_certificates"
        if not isinstance(value, list):
            self.add(rel, where, "invalid_field", f"{where} must be a list")
            return ()
        certs = []
        for i, item in enumerate(value):
            at = f"{where}[{i}]"
            item = self.object(rel, item, ("id", "status", "uploaded"))
            if item is None:
                continue
            cert_id, status = item.get("id"), item.get("status", "Active")
            if cert_id is not None and (
                not isinstance(cert_id, str) or not re.fullmatch(r"\w{24,128}", cert_id)
            ):
                self.add(rel, f"{at}.id", "invalid_field", "id must be a certificate id")
                continue
            if status not in ("Active", "Inactive"):
                self.add(rel, f"{at}.status", "invalid_field", 'status is "Active" or "Inactive"')
                continue
            uploaded = self.date(rel, f"{at}.uploaded", item.get("uploaded"), optional=False)
            if uploaded is not None:
                certs.append(SigningCertificate(cert_id, status, uploaded))
        if len(value) > MAX_SIGNING_CERTIFICATES:
            self.add(
                rel,
                where,
                "too_many_signing_certificates",
                f"{len(value)} signing certificates; IAM allows {MAX_SIGNING_CERTIFICATES} a user",
            )
        return tuple(certs)


_KEY_FIELDS = ("id", "status", "created", "last_used", "last_used_region", "last_used_service")


def read_version(
    name: str, root: Path, earlier: StoreVersion | None = None
) -> tuple[StoreVersion | None, list[Diagnostic]]:
    """Read and validate everything below `root`; the version comes back only without problems.

    With `earlier` (a version read before, usually the one serving), the read is a delta: each
    file's bytes are compared with those `earlier` read under the same name, and only files
    that differ are parsed; the tables of `earlier` are copied and updated (deletions noticed
    by count), so that a reload allocates what changed, not a hundred thousand entries anew.
    Every file is still read and every rule of the whole version still checked; the result
    equals a full read's, order included (tests/integration/test_incremental_reload.py).

    A version with `accounts/` (several accounts) is always read in full: `earlier` is ignored
    there (`_read_accounts`), and the index built from it is a cold one."""
    if os.path.lexists(os.path.join(root, ACCOUNTS_FOLDER)):
        return _read_accounts(name, root)
    if earlier is not None and earlier.accounts:
        earlier = None  # the other layout: nothing to compare file by file
    reader = _Reader(root, earlier.parsed if earlier is not None else Shards())
    account = _read_account(reader)
    changed: set[str] = set()  # the users added, edited or deleted (for the index)
    if earlier is None:
        policies = _read_folder(reader, "policies", _read_policy)
        groups = _read_folder(reader, "groups", _read_group)
        users: Shards[User] = Shards(_read_folder(reader, "users", _read_user).items())
        added = set(_FOLDERS)
    else:
        added = set()
        policies = _read_delta(reader, "policies", _read_policy, earlier.policies, added)
        groups = _read_delta(reader, "groups", _read_group, earlier.groups, added)
        users = _read_delta(reader, "users", _read_user, earlier.users, added, changed)
    roles = _read_roles(reader, "", account.account_id)
    resources = _read_resources(reader, "", account.account_id)
    aws_managed = _read_aws_managed(reader, earlier)
    tests = tuple(t for rel, path in reader.files("tests") for t in _read_tests(reader, rel, path))
    for folder, items in (("users", users), ("groups", groups), ("policies", policies)):
        if folder in added:  # only a new name can clash with another
            _check_names_unique(reader, items, folder)
    organization = read_organization(reader)
    available = {**builtin_managed(), **aws_managed}
    _check_references(reader, account.account_id, policies, available, users, roles)
    _check_model(reader, organization, {account.account_id: "account.json"}, roles, resources)
    settings = _read_settings(reader)
    own = application_services(settings)
    _refuse_findings(reader, settings, own, [(policies, groups, users)])
    if reader.problems:
        return None, _sorted(reader.problems)
    version = StoreVersion(
        name,
        str(root),
        account,
        policies,
        groups,
        users,
        tests,
        reader.parsed_table(),
        frozenset(changed) if earlier is not None else None,
        aws_managed,
        own,
        roles,
        resources,
        organization,
        impact_gate=read_gate(settings.get("impact_gate")),
        authzen=read_authzen(settings.get("authzen")),
    )
    return version, []


def _sorted(problems: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(problems, key=lambda d: (d.source or "", d.path))


def _refuse_findings(
    reader: _Reader,
    settings: dict[str, Any],
    own: frozenset[str],
    accounts: list[tuple[dict[str, Policy], dict[str, Group], Shards[User]]],
) -> None:
    """store.json's `refuse_findings`: each account's findings at or above its level."""
    level = settings.get("refuse_findings")
    if level is None or reader.problems:
        return
    hint = f"store.json refuses findings of type {level} and above"
    for policies, groups, users in accounts:
        try:
            found = refused(level, policies, [*groups.values(), *users.values()], own)
        except CheckFailed as exc:  # fail closed: what it would refuse is unknown
            reader.add(exc.file, "", "findings_unavailable", exc.reason, hint)
            found = []
        for finding in found:
            reader.add(
                finding.file,
                finding.path,
                finding.code,
                f"{finding.finding_type}: {finding.message}",
                hint,
            )


def _read_roles(reader: _Reader, prefix: str, account: str) -> dict[str, Role]:
    """roles/ (or accounts/<id>/roles/), by name in file order. Read whole at every load: a
    role's ARN depends on its account, so what a file parsed to is not reused by bytes."""
    folder = f"{prefix}roles"
    out: dict[str, Role] = {}
    for rel, path in reader.files(folder):
        raw = reader.read_bytes(rel, path)
        if raw is not None:
            role = read_role(reader, rel, _stem(rel), raw, account)
            if role is not None:
                out[role.name] = role
    _check_names_unique(reader, out, folder)
    return out


def _read_resources(reader: _Reader, prefix: str, account: str) -> tuple[ResourceFile, ...]:
    """resources/ (or accounts/<id>/resources/), in file order."""
    out = []
    for rel, path in reader.files(f"{prefix}resources"):
        raw = reader.read_bytes(rel, path)
        if raw is not None:
            item = read_resource(reader, rel, _stem(rel), raw, account)
            if item is not None:
                out.append(item)
    return tuple(out)


def _read_accounts(name: str, root: Path) -> tuple[StoreVersion | None, list[Diagnostic]]:
    """The multi-account layout: accounts/<id>/ each read as an account (its file names, and so
    its citations, keep the `accounts/<id>/` prefix), with aws-managed/, tests/, store.json and
    the organization at the top. Always a full read."""
    reader = _Reader(root, Shards())
    for misplaced in ("account.json", *_ACCOUNT_FOLDERS):
        if os.path.lexists(os.path.join(reader.root, misplaced)):
            reader.add(
                misplaced,
                "",
                "layout_conflict",
                f"{misplaced} at the version top and {ACCOUNTS_FOLDER}/: a version holds one"
                f" account at its top or several in {ACCOUNTS_FOLDER}/<12-digit id>/, never both",
                f"move it into {ACCOUNTS_FOLDER}/<id>/",
            )
    ids = []
    directory = reader.folder(ACCOUNTS_FOLDER)
    if directory is not None:
        with os.scandir(directory) as listing:
            entries = sorted((e for e in listing if not e.name.startswith(".")), key=_entry_name)
        for entry in entries:
            rel = f"{ACCOUNTS_FOLDER}/{entry.name}"
            if not is_account_id(entry.name):
                reader.add(rel, "", "invalid_name", "an account folder is named by its 12-digit id")
            elif entry.is_symlink() and reader.follow(rel, entry.path) is None:
                continue  # a link out of the version: reported
            elif not entry.is_dir():
                reader.add(rel, "", "not_a_directory", f"{rel} must be a directory")
            else:
                ids.append(entry.name)
    aws_managed = _read_aws_managed(reader, None)
    available = {**builtin_managed(), **aws_managed}
    settings = _read_settings(reader)
    own = application_services(settings)
    parts = {}
    for account_id in ids:
        prefix = f"{ACCOUNTS_FOLDER}/{account_id}/"
        _check_entries(reader, prefix, ("account.json", *_ACCOUNT_FOLDERS))
        rel = f"{prefix}account.json"
        account = _read_account(reader, rel, account_id)
        if account.account_id != account_id:
            reader.add(
                rel,
                "account_id",
                "invalid_field",
                f"account_id {account.account_id} differs from its folder's name {account_id}",
            )
        policies = _read_folder(reader, f"{prefix}policies", _read_policy)
        groups = _read_folder(reader, f"{prefix}groups", _read_group)
        users: Shards[User] = Shards(_read_folder(reader, f"{prefix}users", _read_user).items())
        for folder, items in (("users", users), ("groups", groups), ("policies", policies)):
            _check_names_unique(reader, items, f"{prefix}{folder}")
        roles = _read_roles(reader, prefix, account_id)
        resources = _read_resources(reader, prefix, account_id)
        _check_references(reader, account_id, policies, available, users, roles)
        parts[account_id] = (account, policies, groups, users, roles, resources)
    tests = tuple(t for rel, path in reader.files("tests") for t in _read_tests(reader, rel, path))
    organization = read_organization(reader)
    _check_model(
        reader,
        organization,
        {a: f"{ACCOUNTS_FOLDER}/{a}/" for a in parts},
        {f"{a}/{n}": r for a, p in parts.items() for n, r in p[4].items()},
        tuple(r for p in parts.values() for r in p[5]),
    )
    _refuse_findings(reader, settings, own, [(p[1], p[2], p[3]) for p in parts.values()])
    if reader.problems:
        return None, _sorted(reader.problems)
    subs = {
        a: StoreVersion(
            name,
            str(reader.root / ACCOUNTS_FOLDER / a),
            account,
            policies,
            groups,
            users,
            (),
            aws_managed=aws_managed,
            application_services=own,
            roles=roles,
            resources=resources,
            organization=organization,
        )
        for a, (account, policies, groups, users, roles, resources) in parts.items()
    }
    management = organization.management_account if organization is not None else None
    top = subs.get(management or "") or (subs[min(subs)] if subs else None)
    version = StoreVersion(
        name,
        str(root),
        top.account if top is not None else Account(),
        top.policies if top is not None else {},
        top.groups if top is not None else {},
        top.users if top is not None else Shards(),
        tests,
        reader.parsed_table(),
        None,
        aws_managed,
        own,
        top.roles if top is not None else {},
        top.resources if top is not None else (),
        organization,
        subs,
        impact_gate=read_gate(settings.get("impact_gate")),
        authzen=read_authzen(settings.get("authzen")),
    )
    return version, []


def _check_entries(reader: _Reader, prefix: str, allowed: tuple[str, ...]) -> None:
    """Report what a folder of the model holds besides `allowed` (`prefix` ends with "/"):
    a file put there would otherwise be ignored unnoticed (aws-managed/ in an account's
    folder, say, which belongs at the version top)."""
    try:
        names = sorted(n for n in os.listdir(reader.root / prefix) if not n.startswith("."))
    except OSError:
        return  # absent or unreadable: reported where it is read
    for name in names:
        if name not in allowed:
            reader.add(
                f"{prefix}{name}",
                "",
                "unexpected_file",
                f"{prefix} holds only {', '.join(allowed)}",
            )


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _check_references(
    reader: _Reader,
    account: str,
    policies: Mapping[str, Policy],
    available: Mapping[str, ManagedPolicy],
    users: Shards[User],
    roles: Mapping[str, Role],
) -> None:
    """Every reference a role makes (attached policies, boundary) and every user's boundary
    names a policy that exists, as the index requires of users' attached policies (same
    messages: pdp/store/index.py `_resolve`). Refused at read time: a boundary that names
    nothing would otherwise cap nothing, or everything, unnoticed."""
    for role in roles.values():
        for i, ref in enumerate(role.policies):
            _check_reference(reader, role.file, f"policies[{i}]", ref, account, policies, available)
        if role.permissions_boundary is not None:
            _check_reference(
                reader,
                role.file,
                "permissions_boundary",
                role.permissions_boundary,
                account,
                policies,
                available,
            )
    for _, user in users.unordered_items():
        if user.permissions_boundary is not None:
            _check_reference(
                reader,
                user.file,
                "permissions_boundary",
                user.permissions_boundary,
                account,
                policies,
                available,
            )


def _check_reference(
    reader: _Reader,
    file: str,
    where: str,
    ref: str,
    account: str,
    policies: Mapping[str, Policy],
    available: Mapping[str, ManagedPolicy],
) -> None:
    if ref.startswith(AWS_MANAGED_PREFIX):
        if ref not in available:
            known = ", ".join(a[len(AWS_MANAGED_PREFIX) :] for a in builtin_managed())
            reader.add(
                file,
                where,
                "missing_reference",
                f'unknown AWS managed policy "{ref}" (built in: {known}; any other'
                " goes in the version's aws-managed/<path>/<Name>.json)",
            )
        return
    if ref.startswith("arn:"):
        if not ref.startswith(f"arn:aws:iam::{account}:policy/"):
            reader.add(
                file, where, "missing_reference", f'policy "{ref}" is not in account {account}'
            )
            return
        ref_name = ref.rsplit("/", 1)[-1]
    else:
        ref_name = ref
    if ref_name not in policies:
        reader.add(file, where, "missing_reference", f'policy "{ref}" does not exist in policies/')


# A principal naming an account: its 12-digit id, or an IAM/STS ARN of it
# (`arn:aws:iam::111122223333:root`, `...:role/R`, `arn:aws:sts::...:assumed-role/R/s`).
_PRINCIPAL_ACCOUNT = re.compile(r"arn:[a-z-]+:(?:iam|sts)::([0-9]{12}):.*|([0-9]{12})", re.DOTALL)


def _check_model(
    reader: _Reader,
    organization: Organization | None,
    accounts: Mapping[str, str],
    roles: Mapping[str, Role],
    resources: tuple[ResourceFile, ...],
) -> None:
    """The rules across files: every account a role's trust policy names is in the store
    or in the organization's tree. A store's account may stand outside the organization (a
    partner's account, modelled for cross-account requests: no SCP or RCP governs it), and a
    resource policy may name any account (a bucket shared with a partner is common)."""
    known = set(accounts)
    if organization is not None:
        known |= set(organization.accounts())
    documents = [(r.file, "trust_policy", r.trust_policy) for r in roles.values()]
    for file, prefix, policy in documents:
        for path, statement in statements_of(policy.document):
            for key in ("Principal", "NotPrincipal"):
                for where, value in _principal_values(statement.get(key), f"{prefix}.{path}.{key}"):
                    found = _PRINCIPAL_ACCOUNT.fullmatch(value)
                    named = (found.group(1) or found.group(2)) if found else None
                    if named is not None and named not in known:
                        reader.add(
                            file,
                            where,
                            "unknown_account",
                            f"names account {named}, which is neither in the store nor in"
                            " organization.json",
                            "add the account to the store or to the organization's tree",
                        )


def _principal_values(element: Any, path: str) -> list[tuple[str, str]]:
    """The AWS and Federated principals of a Principal element, each with its JSON path."""
    if not isinstance(element, dict):
        return []
    out = []
    for key in ("AWS", "Federated"):
        value = element.get(key)
        if isinstance(value, str):
            out.append((f"{path}.{key}", value))
        elif isinstance(value, list):
            out += [(f"{path}.{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, str)]
    return out


_Parse = Callable[["_Reader", str, str, bytes], Any]


def _parse_file(reader: _Reader, rel: str, raw: bytes, parse: _Parse) -> Any:
    """What a file holds (reused when its bytes are those read before), or None if refused."""
    item = reader.reuse(rel, raw)
    if item is None:
        before = len(reader.problems)
        item = parse(reader, rel, _stem(rel), raw)
        reader.remember(rel, raw, item, before)
    return item


def _stem(rel: str) -> str:
    """`users/alice.json` -> `alice`."""
    return rel.rpartition("/")[2][: -len(".json")]


def _read_folder(reader: _Reader, folder: str, parse: _Parse) -> dict[str, Any]:
    """Every file of a folder, by name, in name order."""
    items: dict[str, Any] = {}
    for rel, path in reader.files(folder):
        raw = reader.read_bytes(rel, path)
        if raw is not None:
            item = _parse_file(reader, rel, raw, parse)
            if item is not None:
                items[_stem(rel)] = item
    return items


def _read_delta(
    reader: _Reader,
    folder: str,
    parse: _Parse,
    before: Mapping[str, Any],
    added: set[str],
    changed: set[str] | None = None,
) -> Any:
    """A folder read against what an earlier read of it gave (`before`, by name, whose files
    are all in `reader.earlier`): the same table, but for the files that differ. A `Shards`
    table evolves (copying what changed); a dict is copied, and re-sorted after an addition."""
    directory = reader.folder(folder)
    updates: dict[str, Any] = {}
    refused: list[str] = []
    unchanged = edited = 0
    if directory is not None:
        folder_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        buckets = reader.earlier.buckets
        try:
            with os.scandir(directory) as listing:
                for entry in listing:  # in directory order: no list, no sort of every name
                    name = entry.name
                    if name.startswith("."):
                        continue
                    # The common case, inline (a hundred thousand times): a plain .json file (its
                    # type from the directory entry) whose bytes are those read before under its
                    # name. Anything else falls through to the full path below, which reads and
                    # reports it.
                    if name.endswith(".json") and entry.is_file(follow_symlinks=False):
                        rel = f"{folder}/{name}"
                        earlier = buckets[hash(rel) & MASK].get(rel)
                        if earlier is not None:
                            try:
                                fd = os.open(name, _READ_FLAGS, dir_fd=folder_fd)
                                try:
                                    raw = os.read(fd, _CHUNK)
                                finally:
                                    os.close(fd)
                            except OSError:
                                raw = b""
                            if len(raw) < _CHUNK and earlier[0] == raw:
                                unchanged += 1
                                continue
                    found = reader.entry(folder, entry)
                    if found is None:
                        continue
                    rel, path = found
                    content = reader.read_bytes(rel, path)
                    if content is None:
                        continue
                    earlier = reader.earlier.get(rel)
                    if earlier is not None and earlier[0] == content:
                        unchanged += 1
                        continue
                    stem = entry.name[: -len(".json")]
                    if stem in before:
                        edited += 1
                    else:
                        added.add(folder)
                    item = _parse_file(reader, rel, content, parse)
                    if changed is not None:
                        changed.add(stem)
                    if item is None:
                        refused.append(stem)  # and the version with it
                    else:
                        updates[stem] = item
        finally:
            os.close(folder_fd)
    deleted = refused
    if unchanged + edited < len(before):  # some files went away: find which (rare)
        present = set(os.listdir(directory)) if directory is not None else set()
        gone = [stem for stem in before if f"{stem}.json" not in present]
        reader.gone += [f"{folder}/{stem}.json" for stem in gone]
        deleted = deleted + gone
        if changed is not None:
            changed.update(gone)
    if isinstance(before, Shards):
        return before.evolve(updates, deleted)
    items = dict(before)
    for stem in deleted:
        items.pop(stem, None)
    items.update(updates)
    if folder in added:  # a new name: back to file name order, as a full read gives
        # (not stem order: "a-b.json" comes before "a.json", yet "a" before "a-b")
        items = dict(sorted(items.items(), key=lambda item: f"{item[0]}.json"))
    return items


def _read_aws_managed(reader: _Reader, earlier: StoreVersion | None) -> dict[str, ManagedPolicy]:
    """The aws-managed/ folder, read whole (it holds at most a few thousand files; unchanged
    bytes reuse what they parsed to), by ARN; the files an earlier read had and this one does
    not leave the table of parsed files."""
    out: dict[str, ManagedPolicy] = {}
    seen: dict[str, str] = {}
    builtins = {arn.lower(): arn for arn in builtin_managed()}
    for rel, path in _managed_files(reader):
        raw = reader.read_bytes(rel, path)
        if raw is None:
            continue
        item = _parse_file(reader, rel, raw, _read_managed_file)
        if item is None:
            continue
        clash = seen.get(item.arn.lower())
        if clash is not None:
            reader.add(rel, "", "duplicate_name", f'"{item.arn}" and "{clash}" differ only in case')
        builtin = builtins.get(item.arn.lower(), item.arn)
        if builtin != item.arn:  # meant to override it, it would sit beside it unnoticed
            reader.add(
                rel,
                "",
                "duplicate_name",
                f'"{item.arn}" and the built-in "{builtin}" differ only in case',
                "an override is named exactly as the built-in's ARN",
            )
        seen[item.arn.lower()] = item.arn
        out[item.arn] = item
    if earlier is not None:
        files = {m.file for m in out.values()}
        reader.gone += [m.file for m in earlier.aws_managed.values() if m.file not in files]
    return out


def _managed_files(reader: _Reader) -> list[tuple[str, str]]:
    """(relative name, path) of every .json file below aws-managed/, each folder's files in
    name order, folders (AWS paths) after the files beside them. A folder is read once
    (a link back to a parent is reported, not followed forever), and a path longer than IAM
    allows is reported."""
    out: list[tuple[str, str]] = []
    visited: set[str] = set()
    pending = [AWS_MANAGED_FOLDER]
    while pending:
        folder = pending.pop(0)
        directory = reader.folder(folder)
        if directory is None:
            continue
        if directory in visited:
            reader.add(folder, "", "folder_repeated", "this folder is reached twice (a link)")
            continue
        visited.add(directory)
        with os.scandir(directory) as listing:
            entries = {e.name: e for e in listing if not e.name.startswith(".")}
        below = []
        for name in sorted(entries):
            entry = entries[name]
            if entry.is_dir():
                rel = f"{folder}/{name}"
                if len(rel) - len(AWS_MANAGED_FOLDER) + 1 > MAX_PATH:
                    reader.add(rel, "", "invalid_name", f"an AWS path is at most {MAX_PATH} long")
                else:
                    below.append(rel)
                continue
            found = reader.entry(folder, entry)
            if found is not None:
                out.append(found)
        pending[:0] = below
    return out


def _read_managed_file(reader: _Reader, rel: str, stem: str, raw: bytes) -> ManagedPolicy | None:
    """`aws-managed/job-function/ViewOnlyAccess.json`: the policy whose ARN its place gives,
    `arn:aws:iam::aws:policy/job-function/ViewOnlyAccess`."""
    folders = rel[len(AWS_MANAGED_FOLDER) + 1 : -len(stem) - len(".json")]
    path = f"/{folders}"
    if not is_policy_name(stem) or not is_path(path):
        reader.add(
            rel,
            "",
            "invalid_name",
            f'invalid AWS managed policy name or path "{rel[len(AWS_MANAGED_FOLDER) :]}"',
            "aws-managed/<path>/<Name>.json: the path and name IAM gives the policy",
        )
        return None
    managed, problems = parse_managed(raw, file=rel, arn=managed_arn(path, stem), source="store")
    reader.problems.extend(problems)
    return managed


def _read_policy(reader: _Reader, rel: str, stem: str, raw: bytes) -> Policy | None:
    if not is_policy_name(stem):
        reader.add(rel, "", "invalid_name", f'invalid policy name "{stem}"')
        return None
    chars = _chars(raw.decode("utf-8", "replace"))
    if chars > MANAGED_POLICY_CHARS:
        reader.add(
            rel,
            "",
            "policy_too_large",
            f"{chars} characters, over IAM's {MANAGED_POLICY_CHARS} for a managed policy"
            " (white space not counted)",
        )
        return None
    return reader.policy(rel, raw, name=rel)


def _chars(text: str) -> int:
    """Characters as IAM counts them for size limits: white space is not counted."""
    return len(text) - sum(text.count(c) for c in " \t\n\r")


def _check_names_unique(reader: _Reader, items: Mapping[str, Any], folder: str) -> None:
    seen: dict[str, str] = {}
    for name in items:
        if name.lower() in seen:
            reader.add(
                f"{folder}/{name}.json",
                "",
                "duplicate_name",
                f'"{name}" and "{seen[name.lower()]}" differ only in case (IAM names ignore case)',
            )
        seen[name.lower()] = name


def _read_settings(reader: _Reader) -> dict[str, Any]:
    """The version's store.json (docs/store.md), or {} when it has none or it is refused."""
    link = os.path.join(reader.root, SETTINGS_FILE)
    if not os.path.lexists(link):
        return {}
    path = reader.follow(SETTINGS_FILE, link) if os.path.islink(link) else link
    if path is None or not os.path.isfile(path):
        if path is not None:
            reader.add(SETTINGS_FILE, "", "not_a_file", "not a regular file")
        return {}
    doc = reader.object(SETTINGS_FILE, reader.read_json(SETTINGS_FILE, path), SETTINGS_KEYS)
    problem = settings_problem(doc) if doc is not None else None
    if problem is not None:
        reader.add(SETTINGS_FILE, problem[0], "invalid_field", problem[1])
    return doc if doc is not None and problem is None else {}


def _read_account(
    reader: _Reader, rel: str = "account.json", default: str = DEFAULT_ACCOUNT
) -> Account:
    """`account.json` (or `accounts/<id>/account.json`, whose `default` id is its folder's)."""
    link = os.path.join(reader.root, rel)
    if not os.path.lexists(link):
        return Account(default)
    path = reader.follow(rel, link) if os.path.islink(link) else link
    if path is None:
        return Account(default)
    if not os.path.isfile(path):
        reader.add(rel, "", "not_a_file", "not a regular file")
        return Account(default)
    doc = reader.object(
        rel,
        reader.read_json(rel, path),
        ("account_id", "root", "password_policy", "require_permissions_boundary"),
    )
    if doc is None:
        return Account(default)
    account_id = doc.get("account_id", default)
    if not is_account_id(account_id):
        reader.add(rel, "account_id", "invalid_field", "account_id must be 12 digits")
        account_id = default
    root_doc = reader.object(
        rel,
        doc.get("root", {}),
        ("enabled", "mfa_enabled", "access_keys", "created", "password_last_used"),
    )
    enabled, mfa = True, False
    keys: tuple[AccessKey, ...] = ()
    created = root_used = None
    if root_doc is not None:
        reader.typed(rel, root_doc, "enabled", lambda v: isinstance(v, bool), "true or false")
        reader.typed(rel, root_doc, "mfa_enabled", lambda v: isinstance(v, bool), "true or false")
        enabled = root_doc.get("enabled", True) is not False
        mfa = root_doc.get("mfa_enabled", False) is True
        keys = reader.access_keys(rel, root_doc.get("access_keys", []), "root.access_keys")
        created = reader.date(rel, "root.created", root_doc.get("created"))
        root_used = reader.date(rel, "root.password_last_used", root_doc.get("password_last_used"))
    policy = doc.get("password_policy", {})
    if not isinstance(policy, dict):
        reader.add(rel, "password_policy", "invalid_field", "password_policy must be an object")
        policy = {}
    reader.typed(rel, doc, "require_permissions_boundary", _is_bool, "true or false")
    require_boundary = doc.get("require_permissions_boundary", False) is True
    problem = False
    for key, value in policy.items():
        message = password_policy_problem(key, value)
        if message is not None:
            code = "unknown_field" if key not in PASSWORD_POLICY_FIELDS else "invalid_field"
            reader.add(rel, f"password_policy.{key}", code, message)
            problem = True
    return Account(
        account_id,
        enabled,
        mfa,
        keys,
        {} if problem else dict(policy),
        created,
        root_used,
        require_boundary,
    )


def password_policy_problem(key: str, value: object) -> str | None:
    """What is wrong with one field of a password policy, against AWS's types and ranges; None
    when it is right. `MaxPasswordAge` 0 is right: passwords never expire."""
    expected = PASSWORD_POLICY_FIELDS.get(key)
    if expected is None:
        return f'unknown field "{key}" (IAM\'s fields: {", ".join(PASSWORD_POLICY_FIELDS)})'
    if type(value) is not expected:  # bool is not an int here, nor 14.0
        return f"{key} must be {'a whole number' if expected is int else 'true or false'}"
    bounds = PASSWORD_POLICY_RANGES.get(key)
    if bounds is None or not isinstance(value, int):
        return None
    low, high = bounds
    if low <= value <= high or (key == "MaxPasswordAge" and value == 0):
        return None
    never = " (or 0: passwords never expire)" if key == "MaxPasswordAge" else ""
    return f"{key} must be {low} to {high} {_RANGE_UNITS[key]}{never}, as in AWS; got {value}"


_USER_FIELDS = (
    "groups",
    "policies",
    "inline_policies",
    "tags",
    "path",
    "mfa_enabled",
    "console_access",
    "password_last_changed",
    "access_keys",
    "created",
    "password_last_used",
    "mfa_devices",
    "signing_certificates",
    "permissions_boundary",
)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _read_user(reader: _Reader, rel: str, name: str, raw: bytes) -> User | None:
    doc = reader.parse_json(rel, raw)
    if doc is not None:
        doc = reader.object(rel, doc, _USER_FIELDS)
    if doc is None:
        return None
    if not is_user_name(name):
        reader.add(rel, "", "invalid_name", f'invalid user name "{name}"')
    tags = reader.tags(rel, doc)
    for key in ("mfa_enabled", "console_access"):
        reader.typed(rel, doc, key, _is_bool, "true or false")
    devices = reader.mfa_devices(rel, doc["mfa_devices"]) if "mfa_devices" in doc else ()
    if devices and doc.get("mfa_enabled") is False:
        reader.add(
            rel,
            "mfa_enabled",
            "invalid_field",
            "mfa_enabled is false but mfa_devices lists a device (leave mfa_enabled out)",
        )
    boundary = doc.get("permissions_boundary")
    if boundary is not None and (not isinstance(boundary, str) or not boundary):
        reader.add(
            rel, "permissions_boundary", "invalid_field", "permissions_boundary must be a name"
        )
        boundary = None
    return User(
        **_identity(reader, rel, name, doc, USER_INLINE_CHARS),
        groups=reader.names(rel, doc, "groups"),
        tags=dict(tags),
        mfa_enabled=doc.get("mfa_enabled") is True or bool(devices),
        console_access=doc.get("console_access") is True,
        password_last_changed=reader.date(
            rel, "password_last_changed", doc.get("password_last_changed")
        ),
        access_keys=reader.access_keys(rel, doc["access_keys"]) if "access_keys" in doc else (),
        created=reader.date(rel, "created", doc.get("created")),
        password_last_used=reader.date(rel, "password_last_used", doc.get("password_last_used")),
        mfa_devices=devices,
        signing_certificates=(
            reader.certificates(rel, doc["signing_certificates"])
            if "signing_certificates" in doc
            else ()
        ),
        permissions_boundary=boundary,
    )


def _read_group(reader: _Reader, rel: str, name: str, raw: bytes) -> Group | None:
    doc = reader.parse_json(rel, raw)
    if doc is not None:
        doc = reader.object(rel, doc, ("policies", "inline_policies", "path"))
    if doc is None:
        return None
    if not is_group_name(name):
        reader.add(rel, "", "invalid_name", f'invalid group name "{name}"')
    return Group(**_identity(reader, rel, name, doc, GROUP_INLINE_CHARS))


def _identity(
    reader: _Reader, rel: str, name: str, doc: JsonObject, inline_chars: int
) -> dict[str, Any]:
    """The fields of `Identity` from a user or group document (problems go to `reader`)."""
    path = doc.get("path", "/")
    if not is_path(path):
        reader.add(rel, "path", "invalid_field", _PATH_RULE)
        path = "/"
    return {
        "name": name,
        "file": rel,
        "path": path,
        "policies": reader.names(rel, doc, "policies"),
        "inline_policies": reader.inline(rel, doc, inline_chars),
    }


def _read_tests(reader: _Reader, rel: str, path: str) -> list[PolicyTestCase]:
    doc = reader.read_json(rel, path)
    if doc is None:
        return []
    if not isinstance(doc, list):
        reader.add(rel, "", "invalid_tests", "a tests file holds a list of test cases")
        return []
    out = []
    fields = (
        "principal",
        "principal_type",
        "action",
        "resource",
        "context",
        "expect",
        "reason",
        "name",
        "session",
        "blocked_by",
    )
    for i, case in enumerate(doc):
        at = f"[{i}]"
        case = reader.object(rel, case, fields)
        if case is None:
            continue
        missing = [k for k in ("principal", "action", "resource", "expect") if k not in case]
        if missing:
            reader.add(rel, at, "invalid_test", f"missing {', '.join(missing)}")
            continue
        if not all(isinstance(case[k], str) for k in ("principal", "action", "resource")):
            reader.add(rel, at, "invalid_test", "principal, action and resource are strings")
            continue
        if case["expect"] not in ("Allow", "Deny"):
            reader.add(rel, f"{at}.expect", "invalid_test", 'expect is "Allow" or "Deny"')
            continue
        reason = case.get("reason")
        if reason not in (None, "allowed", "explicitDeny", "implicitDeny"):
            reader.add(
                rel, f"{at}.reason", "invalid_test", "reason is allowed/explicitDeny/implicitDeny"
            )
            continue
        principal_type = case.get("principal_type", "user")
        if principal_type not in PRINCIPAL_TYPES:
            known = ", ".join(f'"{t}"' for t in PRINCIPAL_TYPES)
            reader.add(
                rel, f"{at}.principal_type", "invalid_test", f"principal_type is one of {known}"
            )
            continue
        context = case.get("context") or {}
        if not isinstance(context, dict):
            reader.add(rel, f"{at}.context", "invalid_test", "context must be an object")
            continue
        session_ok, session = _test_session(reader, rel, at, case, principal_type)
        blocked_ok, blocked_by = _test_blocked_by(reader, rel, at, case)
        if not (session_ok and blocked_ok):
            continue
        out.append(
            PolicyTestCase(
                principal=case["principal"],
                action=case["action"],
                resource=case["resource"],
                context=dict(context),
                principal_type=principal_type,
                session=session,
                file=rel,
                index=i,
                expect=case["expect"],
                reason=reason,
                name=case["name"] if isinstance(case.get("name"), str) else None,
                blocked_by=blocked_by,
            )
        )
    return out


def _test_session(
    reader: _Reader, rel: str, at: str, case: dict[str, Any], principal_type: str
) -> tuple[bool, Session | None]:
    """Whether a case's `session` reads, checked as the doors check it (Session.from_dict), and
    the session (None without one). A wrong one is reported here: it would otherwise only fail
    the case at every load, with the same Deny."""
    raw = case.get("session")
    if raw is None:
        return True, None
    if principal_type != "role_session":
        reader.add(
            rel,
            f"{at}.session",
            "invalid_test",
            f'a session needs principal_type "role_session", not "{principal_type}"',
        )
        return False, None
    try:
        return True, Session.from_dict(raw, f"{at}.session")
    except RequestError as exc:
        # from_dict says "<where>.<field>: <what>": the path and the message of the problem
        path, _, message = str(exc).partition(": ")
        reader.add(rel, path, "invalid_test", message)
        return False, None


def _test_blocked_by(
    reader: _Reader, rel: str, at: str, case: dict[str, Any]
) -> tuple[bool, tuple[str, ...] | None]:
    """Whether a case's `blocked_by` reads, and its layers (None without one): layer names
    (LAYER_ORDER), each at most once, in any order (kept in the chain's order, which is the
    decision's). A wrong one is reported: an unknown name ("scps") could never match, and the
    case's failure would not say why."""
    if "blocked_by" not in case:
        return True, None
    raw = case["blocked_by"]
    if not isinstance(raw, list):
        reader.add(rel, f"{at}.blocked_by", "invalid_test", "blocked_by is a list of layers")
        return False, None
    for j, layer in enumerate(raw):
        if layer not in LAYER_ORDER:
            known = ", ".join(LAYER_ORDER)
            reader.add(
                rel,
                f"{at}.blocked_by[{j}]",
                "invalid_test",
                f"unknown layer {json.dumps(layer)[:80]} (layers: {known})",
            )
            return False, None
        if layer in raw[:j]:
            reader.add(rel, f"{at}.blocked_by[{j}]", "invalid_test", f"{layer} twice")
            return False, None
    return True, tuple(layer for layer in LAYER_ORDER if layer in raw)
