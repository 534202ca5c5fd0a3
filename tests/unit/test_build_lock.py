"""The build lock that makes the workers of one server build new snapshots one at a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from server import control
from server.control import Control


def test_workers_build_one_at_a_time(tmp_path: Path) -> None:
    first, second = Control(tmp_path).build_lock(), Control(tmp_path).build_lock()
    events: list[str] = []

    def build(lock: control.BuildLock, name: str) -> None:
        with lock:
            events.append(f"{name} starts")
            time.sleep(0.2)
            events.append(f"{name} ends")

    with first:
        other = threading.Thread(target=build, args=(second, "second"))
        other.start()
        time.sleep(0.1)
        events.append("first ends")
    other.join()
    assert events == ["first ends", "second starts", "second ends"]
    with first:  # reusable: a worker reloads many times
        pass


def test_a_stuck_holder_delays_a_build_but_never_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "BUILD_LOCK_WAIT", 0.2)
    stuck, mine = Control(tmp_path).build_lock(), Control(tmp_path).build_lock()
    with stuck:
        started = time.monotonic()
        with mine:
            waited = time.monotonic() - started
    assert 0.2 <= waited < 5
