"""Workers agree on what to serve through files in a run directory.

`control.json` says what every worker should serve: {"generation": n, "pin": "0001" or null}.
Each worker polls it, reloads when the generation moves, and reports in `workers/<pid>.json`
what it serves. The admin listener lives in one worker, so a reload it receives reaches the
others this way; it answers once every live worker has reported the new generation. A worker
started later (a respawn, SIGHUP) reads the pin at start, so pins survive restarts.

`build.lock` is flock()ed by a worker while it builds a new snapshot (`build_lock`), so that the
workers of a server build one after another: a build takes a core, and the others keep theirs
for serving (docs/serving.md, Reloads under load).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["BUILD_LOCK_WAIT", "BuildLock", "Control"]

log = logging.getLogger("pdp.server.control")

BUILD_LOCK_WAIT = 60.0  # seconds: past this a worker builds anyway (a stuck peer never blocks)


class BuildLock:
    """A reusable context manager: flock() on one file, waited for up to BUILD_LOCK_WAIT (then
    the holder goes ahead without it, so a stuck peer can delay a reload but never stop it). A
    lock that cannot be had at all (no flock() on the run directory's file system, no file
    descriptor left) is built without, with a warning: the lock only paces builds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.warning("build lock %s: %s; building without it", self.path, exc)
            return
        deadline = time.monotonic() + BUILD_LOCK_WAIT
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
        except BaseException as exc:  # no flock() here (ENOLCK...), or interrupted: never leak fd
            os.close(fd)
            if not isinstance(exc, OSError):
                raise
            log.warning("build lock %s: %s; building without it", self.path, exc)
            return
        self._fd = fd

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


class Control:
    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.file = self.run_dir / "control.json"
        self.workers = self.run_dir / "workers"
        self.workers.mkdir(parents=True, exist_ok=True)

    def build_lock(self) -> BuildLock:
        """The server's build lock, for `Authorizer(build_lock=...)`."""
        return BuildLock(self.run_dir / "build.lock")

    def _write(self, path: Path, doc: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # one per writer
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(doc))
        os.replace(tmp, path)  # atomic: readers see the old or the new file, never half

    def read(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.file.read_text())
            return {"generation": int(doc.get("generation", 0)), "pin": doc.get("pin")}
        except (OSError, ValueError):
            return {"generation": 0, "pin": None}

    def publish(self, pin: str | None) -> int:
        generation = int(self.read()["generation"]) + 1
        self._write(self.file, {"generation": generation, "pin": pin})
        return generation

    def report(self, generation: int, version: str | None, error: str | None = None) -> None:
        doc = {"pid": os.getpid(), "generation": generation, "version": version, "error": error}
        self._write(self.workers / f"{os.getpid()}.json", doc)

    def live_workers(self) -> list[dict[str, Any]]:
        out = []
        for path in self.workers.glob("*.json"):
            try:
                doc = json.loads(path.read_text())
                os.kill(int(doc["pid"]), 0)
            except ProcessLookupError:
                path.unlink(missing_ok=True)  # a worker that is gone
                continue
            except (OSError, ValueError, KeyError):
                continue
            out.append(doc)
        return out

    def wait_for(self, generation: int, count: int, timeout: float) -> list[dict[str, Any]]:
        """Wait until `count` live workers report `generation`; return their reports."""
        deadline = time.monotonic() + timeout
        while True:
            done = [w for w in self.live_workers() if w["generation"] >= generation]
            if len(done) >= count or time.monotonic() > deadline:
                return done
            time.sleep(0.02)
