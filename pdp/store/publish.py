"""Publishing a store version: write it aside, load it, rename it into place, move `current`.

Shared by `pdp import` (importer.py), `pdp init` and `pdp publish` (docs/store.md, "Publishing a
version"). With an exclusive `flock` on `versions/` held throughout, `publish_version`:

1. names the version: the greatest name's last number plus one (`next_version_name`);
2. has the caller write its files into `versions/.NAME.tmp` (hidden: no loader reads it), each
   file and folder synced to disk (`write_files`);
3. loads that directory with the loader `pdp validate` uses (read, validate, compile, index,
   run its policy tests);
4. renames it to `versions/NAME` and syncs `versions/`;
5. when asked, renames a new link over `current` (atomic) and syncs the store directory.

Invariant: a failure before step 4 leaves the store as it was (the temporary directory and any
store folder this call created are removed). A failure in step 5 keeps the version (the
importer's contract) or removes it again (`keep_unactivated=False`, what `pdp publish` asks).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pdp.errors import Diagnostic, PdpError, PolicyLoadError
from pdp.store.activation import load_directory
from pdp.store.version import MAX_FILE_BYTES, VERSION_NAME, version_names

__all__ = [
    "PublishFailed",
    "Published",
    "fsync_directory",
    "next_version_name",
    "publish_version",
    "write_files",
]


class PublishFailed(PdpError):
    """A version was refused and the store left as it was; `diagnostics` says why, each
    problem with its file and JSON path."""

    def __init__(self, headline: str, diagnostics: list[Diagnostic]) -> None:
        self.headline = headline
        self.diagnostics = tuple(diagnostics)
        lines = "".join(f"\n  {d}" for d in self.diagnostics)
        super().__init__(headline + lines)


@dataclass(frozen=True, slots=True)
class Published:
    """A version in place: its name and path, whether the store directory was created, whether
    `current` was moved to it, whether the store serves it now, and where `current` points."""

    version: str
    path: str
    store_created: bool
    activated: bool
    serving: bool
    current: str | None


def next_version_name(names: list[str]) -> str:
    """The name after the greatest of `names` (natural order): its last number plus one, its
    zero-padding kept (0002 -> 0003, 0099 -> 0100, 9 -> 10, 2026-05 -> 2026-06); 0001 first."""
    if not names:
        return "0001"
    last = names[-1]
    numbers = list(re.finditer(r"\d+", last))
    if not numbers:
        raise ValueError(f'the greatest version "{last}" holds no number to count on from')
    digits = numbers[-1]
    following = str(int(digits.group()) + 1).zfill(len(digits.group()))
    name = last[: digits.start()] + following + last[digits.end() :]
    if not VERSION_NAME.fullmatch(name):
        raise ValueError(f'the version after "{last}" would be "{name}", not a valid name')
    return name


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Sync a directory's entries (a rename or a new file in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_files(root: Path, files: dict[str, bytes]) -> None:
    """Write each file below `root` (new files only), each file and folder synced. Invariant:
    no name leaves `root` (callers refuse such names; this is the last line of defence)."""
    folders = {root}
    for rel, content in files.items():
        parts = rel.split("/")
        if rel.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"{rel!r} is not a plain relative file name")
        if len(content) > MAX_FILE_BYTES:
            raise ValueError(f"{rel}: over the store's {MAX_FILE_BYTES} byte limit of a file")
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        folders.add(target.parent)
        with open(target, "xb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    for folder in folders:
        fsync_directory(folder)


def _failure(
    error: type[PublishFailed], store: str, done: str, message: str, code: str = "store_unusable"
) -> PublishFailed:
    return error(f"{store}: nothing {done}", [Diagnostic(code, "", message, store)])


def _os_failure(
    error: type[PublishFailed], store: str, done: str, exc: OSError, headline: str | None
) -> PublishFailed:
    where = f" ({exc.filename})" if exc.filename else ""
    diagnostic = Diagnostic("store_unusable", "", f"{exc.strerror or exc}{where}", store)
    return error(headline or f"{store}: nothing {done}", [diagnostic])


def publish_version(
    store: str,
    write: Callable[[Path], None],
    *,
    activate: bool,
    follow_current: bool = False,
    create: bool = True,
    keep_unactivated: bool = True,
    what: str = "the new version",
    done: str = "published",
    link_name: str = ".current.publish.tmp",
    error: type[PublishFailed] = PublishFailed,
) -> Published:
    """Write the next version of `store` with `write(temporary_directory)`, load it, rename it
    into place, and point `current` to it when `activate` (or, with `follow_current`, when the
    store has a `current`: one that is not a link is then refused before anything is written).

    `create`: a missing store directory (or an empty one without `versions/`) is made a store;
    otherwise a directory without `versions/` is refused. Raises `error` (a PublishFailed),
    with the headline `STORE: nothing <done>` or `STORE: <what> does not load; nothing <done>`,
    on any problem, the store as it was (but see `keep_unactivated` in the module's doc)."""
    try:
        return _publish(
            store,
            write,
            activate,
            follow_current,
            create,
            keep_unactivated,
            what,
            done,
            link_name,
            error,
        )
    except OSError as exc:  # before anything was written (later ones are named by _publish)
        raise _os_failure(error, store, done, exc, None) from None


def _publish(
    store: str,
    write: Callable[[Path], None],
    activate: bool,
    follow_current: bool,
    create: bool,
    keep_unactivated: bool,
    what: str,
    done: str,
    link_name: str,
    error: type[PublishFailed],
) -> Published:
    root = Path(store)
    versions = root / "versions"
    created: list[Path] = []
    if not root.exists():
        if not create:
            raise _failure(error, store, done, "no such directory (pdp init creates a store)")
        root.mkdir(parents=True)
        created.append(root)
    elif not root.is_dir():
        raise _failure(error, store, done, "not a directory")
    if not versions.is_dir():
        if not create:
            raise _failure(error, store, done, "no versions/: not a store (pdp init makes one)")
        if any(not name.startswith(".") for name in os.listdir(root)):
            raise _failure(
                error,
                store,
                done,
                "has files but no versions/: not a store (give an empty or new directory)",
            )
        versions.mkdir()
        created.append(versions)
    lock = os.open(versions, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    temporary: Path | None = None
    final: Path | None = None  # set once the version is in place
    link = root / link_name
    moved = False  # current names the new version: it can no longer be withdrawn
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = "another pdp import or pdp publish is writing this store"
            raise _failure(error, store, done, message) from None
        current = root / "current"
        if follow_current:
            activate = os.path.lexists(current)
            if activate and not current.is_symlink():
                raise _failure(error, store, done, "current is not a link: it cannot be moved")
        try:
            name = next_version_name(version_names(root))
        except ValueError as exc:
            raise _failure(error, store, done, str(exc)) from None
        if os.path.lexists(versions / name):
            message = f"versions/{name} exists and is not a version directory"
            raise _failure(error, store, done, message)
        temporary = versions / f".{name}.tmp"
        if os.path.lexists(temporary):
            shutil.rmtree(temporary)  # left by a publisher that died: we hold the lock
        temporary.mkdir()
        write(temporary)
        try:
            load_directory(temporary, name=name, cache_size=0)
        except PolicyLoadError as exc:
            headline = f"{store}: {what} does not load; nothing {done}"
            raise error(headline, list(exc.diagnostics)) from None
        os.rename(temporary, versions / name)
        final, temporary = versions / name, None
        fsync_directory(versions)
        if activate:
            if os.path.lexists(current) and not current.is_symlink():
                raise _failure(error, store, done, f"current is not a link; versions/{name} kept")
            if os.path.lexists(link):
                link.unlink()
            os.symlink(f"versions/{name}", link)
            os.replace(link, current)
            moved = True
            fsync_directory(root)
        target = os.readlink(current) if current.is_symlink() else None
        serving = (
            os.path.realpath(current) == os.path.realpath(final)
            if os.path.lexists(current)
            else version_names(root)[-1] == name
        )
    except BaseException as exc:
        if final is not None and os.path.lexists(link):
            link.unlink(missing_ok=True)
        if final is not None and not keep_unactivated and not moved:
            temporary = versions / f".{final.name}.tmp"  # withdrawn: no link names it yet
            try:
                os.rename(final, temporary)
                fsync_directory(versions)
            except OSError:
                temporary = None if os.path.lexists(final) else temporary
            final = None if temporary is not None else final
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        for path in reversed(created):
            try:
                path.rmdir()
            except OSError:
                pass
        if isinstance(exc, OSError):  # named, as every failure is
            headline = None
            if moved and final is not None:
                headline = f"{store}: versions/{final.name} written and activated, not synced"
            elif final is not None:  # after the rename the version is in place; not activated
                headline = f"{store}: versions/{final.name} written, not activated"
            raise _os_failure(error, store, done, exc, headline) from None
        raise
    finally:
        os.close(lock)
    return Published(name, str(versions / name), bool(created), activate, serving, target)
