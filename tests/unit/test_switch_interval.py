"""A reload lowers the interpreter's switch interval while it builds, and puts it back after,
however the builds of several authorizers in one process overlap."""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import pdp
from pdp.store import authorizer as authorizer_module

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "store" / "versions" / "0001"


def test_overlapping_reloads_restore_the_switch_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b"):
        shutil.copytree(EXAMPLE, tmp_path / name)
    first = pdp.Authorizer.from_directory(tmp_path / "a")
    second = pdp.Authorizer.from_directory(tmp_path / "b")
    a_building, b_building, a_done = threading.Event(), threading.Event(), threading.Event()
    real = authorizer_module.load_directory

    def load(directory: Any, **kwargs: Any) -> pdp.Snapshot:
        # The builds overlap as A starts, B starts, A ends, B ends.
        if Path(directory).name == "a":
            a_building.set()
            assert b_building.wait(10)
        else:
            b_building.set()
            assert a_done.wait(10)
        return real(directory, **kwargs)

    monkeypatch.setattr(authorizer_module, "load_directory", load)
    before = sys.getswitchinterval()
    try:
        a = threading.Thread(target=first.reload)
        a.start()
        assert a_building.wait(10)
        b = threading.Thread(target=second.reload)
        b.start()
        a.join(10)
        a_done.set()
        b.join(10)
        assert (first.reloads_ok, second.reloads_ok) == (1, 1)
        assert sys.getswitchinterval() == before
    finally:
        sys.setswitchinterval(before)
