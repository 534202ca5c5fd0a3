"""The build lock that makes the workers of one server build new snapshots one at a time."""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

import pdp
from pdp_server import control
from pdp_server.control import Control

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "store"


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


def test_a_lock_that_cannot_be_taken_never_stops_a_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run directory on a file system without flock() (ENOLCK): the build goes ahead unlocked,
    # as after a stuck peer, instead of every reload failing and leaking a descriptor.
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(control.fcntl, "flock", no_locks)
    store = tmp_path / "store"
    shutil.copytree(EXAMPLE, store, symlinks=True)
    lock = Control(tmp_path / "run").build_lock()
    with pdp.Authorizer.from_store(store, watch=False, build_lock=lock) as authz:
        open_before = len(os.listdir("/proc/self/fd"))
        for _ in range(3):
            authz.reload()
        assert authz.reloads_ok == 3
        assert len(os.listdir("/proc/self/fd")) == open_before
