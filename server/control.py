"""Workers agree on what to serve through files in a run directory.

`control.json` says what every worker should serve: {"generation": n, "pin": "0001" or null}.
Each worker polls it, reloads when the generation moves, and reports in `workers/<pid>.json`
what it serves. The admin listener lives in one worker, so a reload it receives reaches the
others this way; it answers once every live worker has reported the new generation. A worker
started later (a respawn, SIGHUP) reads the pin at start, so pins survive restarts.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["Control"]


class Control:
    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.file = self.run_dir / "control.json"
        self.workers = self.run_dir / "workers"
        self.workers.mkdir(parents=True, exist_ok=True)

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
