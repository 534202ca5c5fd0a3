"""Creating a store and publishing an edited version: `pdp init` and `pdp publish`.

`init_store(DIR)` makes a new store: `versions/0001` with an account file, an example user,
group, customer-managed policy and policy tests, and `current -> versions/0001`. It refuses a
DIR that exists and is not empty (a hidden file counts: nothing is ever written beside it).

`publish_directory(WORKDIR, STORE)` publishes a version directory being edited as the store's
next version: WORKDIR is loaded first (read, validate, its policy tests), so that a refusal
never touches the store; then what the loader reads of it (account.json, store.json and the
folders, hidden names left out) is copied into the store by `publish_version`, loaded again
there (the bytes published are the bytes checked), and `current` is moved when the store has
one. Anything else at WORKDIR's top (a README, a Makefile) is not copied, and is listed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdp.errors import Diagnostic, PolicyLoadError
from pdp.store.activation import load_directory
from pdp.store.aws_managed import AWS_MANAGED_FOLDER
from pdp.store.publish import Published, PublishFailed, publish_version, write_files
from pdp.store.version import MAX_FILE_BYTES

__all__ = [
    "EXAMPLE_FILES",
    "PublishedDirectory",
    "init_store",
    "publish_directory",
]

_TOP_FILES = ("account.json", "store.json")
_TOP_FOLDERS = ("policies", "groups", "users", "tests", AWS_MANAGED_FOLDER)
MAX_COPIED_FILES = 1_000_000  # ten times the 112,000 files of the largest store benchmarked


def _json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode()


_BUCKET = "arn:aws:s3:::example-bucket"
EXAMPLE_FILES: dict[str, bytes] = {
    "account.json": _json(
        {
            "account_id": "123456789012",
            "root": {"enabled": False, "mfa_enabled": True, "access_keys": []},
            "password_policy": {
                "MinimumPasswordLength": 14,
                "RequireSymbols": True,
                "RequireNumbers": True,
                "RequireUppercaseCharacters": True,
                "RequireLowercaseCharacters": True,
                "AllowUsersToChangePassword": True,
                "MaxPasswordAge": 90,
                "PasswordReusePrevention": 5,
            },
        }
    ),
    "policies/ExampleBucketRead.json": _json(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ListTheBucket",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": _BUCKET,
                },
                {
                    "Sid": "ReadItsObjects",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"{_BUCKET}/*",
                },
            ],
        }
    ),
    "groups/example-readers.json": _json({"policies": ["ExampleBucketRead"], "path": "/"}),
    "users/example-user.json": _json({"groups": ["example-readers"], "path": "/"}),
    "tests/example.json": _json(
        [
            {
                "name": "a reader reads an object",
                "principal": "example-user",
                "action": "s3:GetObject",
                "resource": f"{_BUCKET}/report.csv",
                "expect": "Allow",
                "reason": "allowed",
            },
            {
                "name": "a reader cannot delete",
                "principal": "example-user",
                "action": "s3:DeleteObject",
                "resource": f"{_BUCKET}/report.csv",
                "expect": "Deny",
                "reason": "implicitDeny",
            },
        ]
    ),
}


def init_store(directory: str | os.PathLike[str]) -> Published:
    """Make `directory` (absent or empty) a store of one version with `current` on it.
    Raises PublishFailed, nothing left behind, on any problem."""
    store = os.fspath(directory)
    try:
        entries = os.listdir(store) if os.path.isdir(store) else None
    except OSError as exc:
        raise PublishFailed(
            f"{store}: nothing created",
            [Diagnostic("store_unusable", "", f"cannot list: {exc.strerror or exc}", store)],
        ) from None
    if entries:
        shown = ", ".join(sorted(entries)[:5]) + (", ..." if len(entries) > 5 else "")
        message = f"not empty ({len(entries)} entries: {shown}): pdp init writes a new store only"
        raise PublishFailed(
            f"{store}: nothing created", [Diagnostic("store_not_empty", "", message, store)]
        )
    return publish_version(
        store,
        lambda temporary: write_files(temporary, EXAMPLE_FILES),
        activate=True,
        what="the example version",
        done="created",
    )


@dataclass(frozen=True, slots=True)
class PublishedDirectory:
    """What `publish_directory` did: the version in place, what it holds, what was left out."""

    published: Published
    users: int
    groups: int
    policies: int
    tests: int
    left_out: tuple[str, ...]


def publish_directory(
    workdir: str | os.PathLike[str], store: str | os.PathLike[str]
) -> PublishedDirectory:
    """Publish `workdir` as the next version of `store` (see the module's doc). Raises
    PublishFailed, the store as it was, on any problem: WORKDIR's own problems are named by
    their file and JSON path below WORKDIR."""
    source = os.fspath(workdir)
    target = os.fspath(store)
    root = Path(os.path.realpath(source))
    if not root.is_dir():
        raise PublishFailed(
            f"{source}: nothing published",
            [Diagnostic("not_a_version", "", "not a directory", source)],
        )
    if (root / "versions").is_dir() or (root / "current").exists():
        message = "a store, not a version directory: give the version being edited"
        raise PublishFailed(
            f"{source}: nothing published", [Diagnostic("not_a_version", "", message, source)]
        )
    try:
        snapshot = load_directory(root, name="workdir", cache_size=0)
    except PolicyLoadError as exc:
        raise PublishFailed(
            f"{source}: does not load; nothing published", list(exc.diagnostics)
        ) from None
    left_out = tuple(
        sorted(
            name
            for name in os.listdir(root)
            if not name.startswith(".") and name not in _TOP_FILES + _TOP_FOLDERS
        )
    )
    files = _collect(root, source)
    published = publish_version(
        target,
        lambda temporary: write_files(temporary, files),
        activate=False,
        follow_current=True,
        create=False,
        keep_unactivated=False,
        what=f"the copy of {source}",
    )
    counts = snapshot.index.counts
    tests = len(snapshot.source.tests) if snapshot.source is not None else 0
    return PublishedDirectory(
        published, counts.users, counts.groups, counts.policies, tests, left_out
    )


def _collect(root: Path, source: str) -> dict[str, bytes]:
    """The bytes of every file the loader reads below `root` (hidden names left out), each
    read once, at most MAX_FILE_BYTES, every real path inside `root`."""
    files: dict[str, bytes] = {}

    def refuse(rel: str, message: str) -> PublishFailed:
        where = f"{source}/{rel}"
        return PublishFailed(
            f"{source}: nothing published", [Diagnostic("not_copied", "", message, where)]
        )

    def take(rel: str, path: str) -> None:
        real = os.path.realpath(path)
        if os.path.commonpath([real, str(root)]) != str(root):
            raise refuse(rel, "a link that leaves the version")
        if not os.path.isfile(real):
            raise refuse(rel, "not a regular file")
        if len(files) >= MAX_COPIED_FILES:
            raise refuse(rel, f"over {MAX_COPIED_FILES} files")
        with open(real, "rb") as handle:
            content = handle.read(MAX_FILE_BYTES + 1)
        if len(content) > MAX_FILE_BYTES:
            raise refuse(rel, f"over the store's {MAX_FILE_BYTES} byte limit of a file")
        files[rel] = content

    for name in _TOP_FILES:
        if os.path.lexists(root / name):
            take(name, str(root / name))
    for folder in _TOP_FOLDERS:
        if not (root / folder).is_dir():
            continue
        for here, dirs, names in os.walk(root / folder, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            base = os.path.relpath(here, root)
            for name in sorted(names):
                if not name.startswith("."):
                    take(f"{base}/{name}", os.path.join(here, name))
    return files
