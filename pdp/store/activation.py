"""Load = read + validate the whole version + compile + index + run its policy tests.

Any problem anywhere refuses the version as a whole with every problem listed; the caller keeps
serving what it had. This follows OPA's bundle activation: build aside, then swap one reference.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

from pdp.errors import Diagnostic, PolicyLoadError
from pdp.store.index import Index
from pdp.store.snapshot import Snapshot
from pdp.store.version import (
    PolicyTestCase,
    StoreError,
    StoreVersion,
    natural_key,
    read_version,
    resolve_version,
    version_names,
)
from pdp.store.world import World, needs_world

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "build_snapshot",
    "load_directory",
    "load_newest",
    "load_store",
    "run_policy_tests",
]

DEFAULT_CACHE_SIZE = 100_000


def load_store(
    store: str | os.PathLike[str],
    version: str | None = None,
    cache_size: int = DEFAULT_CACHE_SIZE,
    previous: Snapshot | None = None,
) -> Snapshot:
    """Load the version a store serves now (or the named `version`), reusing what the files
    that did not change parsed and resolved to in `previous` (see `load_directory`)."""
    try:
        name, path = resolve_version(store, version)
    except StoreError as exc:
        raise PolicyLoadError([Diagnostic(exc.code, "", str(exc))], version) from None
    except (OSError, RuntimeError) as exc:
        raise PolicyLoadError([Diagnostic("store_unresolved", "", str(exc))], version) from None
    return load_directory(path, name=name, cache_size=cache_size, previous=previous)


def load_newest(
    store: str | os.PathLike[str],
    *,
    before: str,
    cache_size: int = DEFAULT_CACHE_SIZE,
) -> Snapshot:
    """Load the newest version of a store that loads among those older than `before` (natural
    order: 9 < 10); raise PolicyLoadError when none does.

    Invariant: never a version newer than `before`. A store rolled back (`current` moved from
    0003 to 0002) may hold a newer version that was withdrawn for granting too much; when 0002
    is refused, 0003 must not be what serves."""
    try:
        names = version_names(store)
    except (StoreError, OSError) as exc:
        raise PolicyLoadError([Diagnostic("store_unresolved", "", str(exc))]) from None
    ceiling = natural_key(before)
    for name in reversed(names):
        if natural_key(name) >= ceiling:
            continue
        try:
            return load_store(store, name, cache_size)
        except PolicyLoadError:
            continue  # refused: try the next older one
    message = f"{os.fspath(store)}: no version loads"
    raise PolicyLoadError([Diagnostic("no_version_loads", "", message)])


def load_directory(
    directory: str | os.PathLike[str],
    *,
    name: str | None = None,
    cache_size: int = DEFAULT_CACHE_SIZE,
    previous: Snapshot | None = None,
) -> Snapshot:
    """Load one version directory; its name defaults to the directory's name.

    With `previous` (the snapshot serving now), a file whose name and bytes are unchanged is not
    parsed or compiled again, and users whose files, groups and policies are unchanged keep
    their resolved entries. Everything is still read and validated as a whole, and the policy
    tests run, so the result decides exactly as a cold load of the same directory would."""
    started = time.perf_counter()
    root = Path(os.path.realpath(directory))
    name = name or root.name
    if not root.is_dir():
        raise PolicyLoadError(
            [Diagnostic("store_unresolved", "", f"{directory}: not a directory")], name
        )
    # A load allocates millions of long-lived objects: the cyclic GC would rescan them again
    # and again for nothing (none of them are garbage yet), so it waits until the load is done.
    # Then they are frozen (moved where the collector never looks): a snapshot holds no
    # reference cycles (tests/unit/test_gc.py), so the collector could never free any of them,
    # yet its first pass after a load would scan them all, holding the GIL for hundreds of
    # milliseconds: a stall for every request of the process. Reference counting still frees
    # a snapshot's objects when it is dropped.
    # The trade-off: freeze() also freezes cyclic garbage of the process that the collector has
    # not reached yet, which then stays. The young generations are collected first (well under a
    # millisecond); what may remain is garbage that reached the oldest generation since its last
    # collection, which runs often, since frozen objects no longer count towards it.
    gc_was_enabled = gc.isenabled()
    if gc_was_enabled:
        gc.collect(1)
    gc.disable()
    try:
        version, snapshot = build_snapshot(root, name, cache_size, previous)
        gc.freeze()
    except PolicyLoadError:
        raise
    except Exception as exc:  # a load that fails in any way refuses the version
        message = f"cannot load: {type(exc).__name__}: {exc}"
        raise PolicyLoadError([Diagnostic("load_failed", "", message)], name) from exc
    finally:
        if gc_was_enabled:
            gc.enable()
    failures = [f for _, f in run_policy_tests(version, snapshot) if f is not None]
    if failures:
        raise PolicyLoadError(failures, name)
    snapshot.load_seconds = time.perf_counter() - started
    return snapshot


def build_snapshot(
    root: Path, name: str, cache_size: int, previous: Snapshot | None = None
) -> tuple[StoreVersion, Snapshot]:
    """Read, validate, compile and index a version directory, without running its tests."""
    earlier = previous.source if previous is not None else None
    version, problems = read_version(name, root, earlier)
    if version is None:
        raise PolicyLoadError(problems, name)
    base = previous.index if previous is not None and earlier is not None else None
    index = Index(version, base)
    world = World(version, index) if needs_world(version) else None
    problems = index.problems + (world.problems if world is not None else [])
    if problems:
        raise PolicyLoadError(sorted(problems, key=_order), name)
    return version, Snapshot(index, str(root), cache_size, source=version, world=world)


def run_policy_tests(
    version: StoreVersion, snapshot: Snapshot
) -> list[tuple[PolicyTestCase, Diagnostic | None]]:
    """Decide every case of the version's tests/*.json: each case with its failure, or None."""
    results: list[tuple[PolicyTestCase, Diagnostic | None]] = []
    for case in version.tests:
        decision = snapshot.decide(case)
        wrong = decision.decision != case.expect or (
            case.reason is not None and decision.reason != case.reason
        )
        blocked = case.blocked_by is not None and decision.blocked_by != case.blocked_by
        failure = None
        if wrong or blocked:
            want = case.expect + (f" ({case.reason})" if case.reason else "")
            got = f"{decision.decision} ({decision.reason})"
            if case.blocked_by is not None:
                want += f" blocked_by {_layers(case.blocked_by)}"
                got += f" blocked_by {_layers(decision.blocked_by)}"
            detail = f"; errors: {'; '.join(decision.errors)}" if decision.errors else ""
            failure = Diagnostic(
                "policy_test_failed",
                f"[{case.index}]",
                f"{case.principal} {case.action} on {case.resource}: expected {want},"
                f" got {got}{detail}",
                case.file,
            )
        results.append((case, failure))
    return results


def _layers(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(names) + "]"


def _order(d: Diagnostic) -> tuple[str, str]:
    return (d.source or "", d.path)
