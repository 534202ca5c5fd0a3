"""`Authorizer`: serves decisions from the current snapshot and swaps it on reload.

The swap is one reference assignment. A request reads `self._snapshot` once, so an in-flight
request finishes on the snapshot it started with; `batch_is_authorized` decides a whole batch on
one snapshot. A failed reload leaves the served snapshot untouched and is kept in `last_error`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from pdp.errors import Diagnostic, PolicyLoadError, RequestError
from pdp.language import failure
from pdp.model import Decision
from pdp.store.activation import DEFAULT_CACHE_SIZE, load_directory, load_newest, load_store
from pdp.store.snapshot import Snapshot
from pdp.store.version import StoreError, resolve_version, version_stamp
from pdp.text import printable

__all__ = ["Authorizer", "ReloadResult"]

log = logging.getLogger(__name__)


def _current_name(store: str | os.PathLike[str]) -> str | None:
    """The version name `current` points to, even when it does not resolve; None without one
    or when the link cannot be read. (Without `current` the greatest version is served, and
    its refusal names it.)"""
    try:
        return os.path.basename(os.path.normpath(os.readlink(os.path.join(store, "current"))))
    except OSError:
        return None


_Target = tuple[str, str, tuple[int, ...]]  # (version name, real path, version_stamp)
# Asked before a reload activates a snapshot, with (serving, candidate): raises PolicyLoadError
# to refuse it (the server's impact gate, pdp.audit.impact); the serving one stays.
BeforeActivation = Callable[[Snapshot | None, Snapshot], None]


def _target(store: str | os.PathLike[str]) -> _Target:
    """What a store serves now, with a stamp that moves when that version changes."""
    name, path = resolve_version(store)
    return name, str(path), version_stamp(path)


_BUILD_SWITCH_INTERVAL = 0.0001  # seconds
# The builds running in this process (several authorizers may reload at once), and the switch
# interval from before the first of them: held by _builds_lock.
_builds = 0
_interval_before = 0.0
_builds_lock = threading.Lock()


@contextmanager
def _responsive() -> Iterator[None]:
    """While a reload builds in a serving process, hand the GIL to the threads that serve at
    least every 0.1 ms (Python's default is 5 ms): a request waiting behind the build then waits
    about that long for each turn. Measured by bench/bench_reload.py: the p99 of a steady load
    while building was 3-4x its p99 before at 0.5 ms, and no higher than before at 0.1 ms; the
    build took no longer."""
    global _builds, _interval_before
    with _builds_lock:  # the interval is the process's: the first build in lowers it
        if _builds == 0:
            _interval_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_interval_before, _BUILD_SWITCH_INTERVAL))
        _builds += 1
    try:
        yield
    finally:
        with _builds_lock:  # and the last one out puts it back, however builds overlap
            _builds -= 1
            if _builds == 0:
                sys.setswitchinterval(_interval_before)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a successful reload did."""

    version: str
    previous: str | None
    seconds: float


class Authorizer:
    """Decisions over a store (watched and reloadable) or a single version directory."""

    def __init__(
        self,
        snapshot: Snapshot,
        *,
        store: str | None = None,
        directory: str | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        pinned: str | None = None,
        build_lock: AbstractContextManager[object] | None = None,
        before_activation: BeforeActivation | None = None,
    ) -> None:
        self._snapshot = snapshot
        self.before_activation = before_activation
        # Held while a reload builds: the server passes one lock per server so that its
        # workers build one at a time and the others keep serving at full speed.
        self._build_lock = build_lock or nullcontext()
        self.store = store
        self.directory = directory
        self.cache_size = cache_size
        self.pinned = pinned
        self.last_error: PolicyLoadError | None = None
        self.fallback_from: str | None = None  # the refused version replaced at start
        self.reloads_ok = 0
        self.reloads_failed = 0
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._failed_target: _Target | None = None
        self._watch_problem: str | None = None  # logged once, until it changes

    @classmethod
    def from_store(
        cls,
        path: str | os.PathLike[str],
        *,
        version: str | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        watch: bool = True,
        interval: float = 1.0,
        fallback: bool = False,
        build_lock: AbstractContextManager[object] | None = None,
        before_activation: BeforeActivation | None = None,
    ) -> Authorizer:
        """Serve a store's current version (or a pinned one) and, by default, watch for changes.

        With `fallback`, a current version that is refused (or a `current` that does not
        resolve) is replaced by the newest version older than it that loads, never a newer one
        (a store rolled back may hold a newer version withdrawn for granting too much):
        `fallback_from` names what was refused until a reload succeeds. A pinned version never
        falls back, and neither does a `current` whose target cannot even be named. When
        nothing loads, the refusal of current is raised. `before_activation` is asked before
        each reload (admin, watcher) activates a version, and for this first load too (with no
        serving snapshot: None): a version it refuses falls back as a refused current does, or
        (pinned, no fallback) is raised. A restart never activates what a reload would refuse."""
        refused, target = None, None
        if fallback and version is None:
            try:
                target = _target(path)  # before the load: a swap meanwhile is then retried
            except (StoreError, OSError, RuntimeError):
                pass
        try:
            snapshot = load_store(path, version, cache_size)
            _check_first(before_activation, snapshot)
        except PolicyLoadError as exc:
            ceiling = exc.version or _current_name(path)
            if not fallback or version is not None or ceiling is None:
                raise
            try:
                snapshot = load_newest(path, before=ceiling, cache_size=cache_size)
                _check_first(before_activation, snapshot)
            except PolicyLoadError:
                raise exc from None
            refused = exc
        authorizer = cls(
            snapshot,
            store=os.fspath(path),
            cache_size=cache_size,
            pinned=version,
            build_lock=build_lock,
            before_activation=before_activation,
        )
        if refused is not None:
            authorizer.fallback_from = refused.version or "current"
            authorizer.last_error = refused
            authorizer._failed_target = target  # refused: not retried until it changes
        if watch:
            authorizer.watch(interval)
        return authorizer

    @classmethod
    def from_directory(
        cls, version_dir: str | os.PathLike[str], *, cache_size: int = DEFAULT_CACHE_SIZE
    ) -> Authorizer:
        """Serve one version directory as it is (reload() re-reads the same directory)."""
        snapshot = load_directory(version_dir, cache_size=cache_size)
        return cls(snapshot, directory=os.fspath(version_dir), cache_size=cache_size)

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def version(self) -> str:
        return self._snapshot.version

    def is_authorized(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, object] | None = None,
        *,
        principal_type: str = "user",
    ) -> Decision:
        """Decide one request on the current snapshot; never raises, `policy_version` set.

        The account root is decided only when asked for: `principal_type="root"` with the root
        ARN; the root ARN as a user is a Deny with an error.
        """
        return self._snapshot.is_authorized(
            principal, action, resource, context, principal_type=principal_type
        )

    def batch_is_authorized(self, requests: Iterable[Mapping[str, Any]]) -> list[Decision]:
        """Decide many requests ({principal, action, resource, context, principal_type}) on one
        snapshot."""
        snapshot = self._snapshot
        out = []
        for r in requests:
            if not isinstance(r, Mapping):
                error = RequestError("request: must be an object {principal, action, resource}")
                out.append(failure(error, snapshot.version))
                continue
            out.append(
                snapshot.is_authorized(
                    r.get("principal"),  # type: ignore[arg-type]
                    r.get("action"),  # type: ignore[arg-type]
                    r.get("resource"),  # type: ignore[arg-type]
                    r.get("context"),
                    principal_type=r.get("principal_type", "user"),
                )
            )
        return out

    def reload(self, version: str | None = None) -> ReloadResult:
        """Load the store's current version, or pin `version`; raise PolicyLoadError on failure.

        On failure the served snapshot stays as it was. `reload()` without a version also
        un-pins: the authorizer follows `current` again.
        """
        with self._reload_lock:
            return self._reload_locked(version)

    def _reload_locked(self, version: str | None) -> ReloadResult:
        """The reload itself; the caller holds _reload_lock."""
        previous = self._snapshot.version
        started = time.perf_counter()
        try:
            with self._build_lock, _responsive():
                snapshot = self._load(version)
            if self.before_activation is not None:
                with _responsive():  # a replay is CPU-bound too: serving threads keep turns
                    self._check_activation(snapshot)
        except PolicyLoadError as exc:
            self.last_error = exc
            self.reloads_failed += 1
            raise
        self._snapshot = snapshot  # the swap: one reference assignment
        self.pinned = version
        self.last_error = None
        self.fallback_from = None
        self.reloads_ok += 1
        self._failed_target = None
        return ReloadResult(snapshot.version, previous, time.perf_counter() - started)

    def _check_activation(self, candidate: Snapshot) -> None:
        """Ask `before_activation`; any failure of it refuses the candidate (fail closed)."""
        _ask(self.before_activation, self._snapshot, candidate)

    def _load(self, version: str | None) -> Snapshot:
        """Build the next snapshot, reusing what the serving one parsed and resolved."""
        if self.store is not None:
            return load_store(self.store, version, self.cache_size, self._snapshot)
        if version is not None:
            message = "serving one directory: there are no versions to pin"
            raise PolicyLoadError([Diagnostic("no_versions", "", message)], version)
        assert self.directory is not None
        return load_directory(self.directory, cache_size=self.cache_size, previous=self._snapshot)

    def watch(self, interval: float = 1.0) -> None:
        """Poll the store every `interval` seconds and reload when the served version changes."""
        if self.store is None or self._watcher is not None:
            return
        self._watcher = threading.Thread(
            target=self._watch_loop, args=(interval,), name="pdp-store-watch", daemon=True
        )
        self._watcher.start()

    def _watch_loop(self, interval: float) -> None:
        assert self.store is not None
        while not self._stop.wait(interval):
            if self.pinned is not None:
                continue
            try:
                target = _target(self.store)
            except (StoreError, OSError, RuntimeError) as exc:
                if str(exc) != self._watch_problem:  # once, not every interval
                    self._watch_problem = str(exc)
                    log.warning("store watch: %s", printable(str(exc)))
                continue
            self._watch_problem = None
            if target[:2] == (self._snapshot.version, self._snapshot.path):
                continue
            if target == self._failed_target:
                continue  # refused already; wait for the publisher to change it
            try:
                with self._reload_lock:
                    # Invariant: a pin set meanwhile wins; the watcher never un-pins.
                    if self.pinned is not None:
                        continue
                    result = self._reload_locked(None)
                log.info("store watch: now serving %s (was %s)", result.version, result.previous)
            except PolicyLoadError as exc:
                self._failed_target = target
                log.error("store watch: %s", exc.one_line())
            except Exception:  # the watcher must outlive any surprise
                log.exception("store watch: unexpected error")

    def close(self) -> None:
        """Stop watching the store."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)

    def status(self) -> dict[str, Any]:
        snapshot = self._snapshot
        counts = snapshot.index.counts
        return {
            "version": snapshot.version,
            "path": snapshot.path,
            "loaded_at": snapshot.loaded_at,
            "load_seconds": snapshot.load_seconds,
            "pinned": self.pinned,
            "users": counts.users,
            "groups": counts.groups,
            "policies": counts.policies,
            "cache": snapshot.cache.stats() if snapshot.cache else None,
            "reloads": {"ok": self.reloads_ok, "failed": self.reloads_failed},
            "last_reload_error": str(self.last_error) if self.last_error else None,
            "fallback_from": self.fallback_from,
        }

    def __enter__(self) -> Authorizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_first(check: BeforeActivation | None, candidate: Snapshot) -> None:
    """The check before activation of a first load (nothing serves yet: serving is None)."""
    if check is not None:
        _ask(check, None, candidate)


def _ask(check: BeforeActivation | None, serving: Snapshot | None, candidate: Snapshot) -> None:
    """Ask `check`; any failure of it refuses the candidate (fail closed)."""
    assert check is not None
    try:
        check(serving, candidate)
    except PolicyLoadError:
        raise
    except Exception as exc:
        message = f"the check before activation failed: {type(exc).__name__}: {exc}"
        raise PolicyLoadError(
            [Diagnostic("activation_check_failed", "", message)], candidate.version
        ) from exc
