"""A loaded snapshot holds no reference cycles, so freezing it out of the collector's sight
(pdp/store/activation.py) can never keep garbage alive: reference counting frees all of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = ROOT / "examples" / "store" / "versions" / "0001"


def run(program: str) -> str:
    """What `program` prints, run in a fresh interpreter (the collector's state is per process)
    with the example store's first version as its argument."""
    result = subprocess.run(
        [sys.executable, "-c", program, str(VERSION)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


PROGRAM = """
import gc, sys
import pdp
from pdp.store.activation import load_directory
gc.collect()
snapshot = load_directory(sys.argv[1], cache_size=100)
assert gc.get_freeze_count() > 0, "the load froze nothing"
for user in ("alice", "bob", "carol"):
    snapshot.is_authorized(user, "s3:GetObject", "arn:aws:s3:::example-bucket/a")
previous = snapshot
snapshot = load_directory(sys.argv[1], cache_size=100, previous=previous)
gc.unfreeze()  # let the collector see everything again
gc.collect()
del previous, snapshot
print(gc.collect())
"""


def test_a_dropped_snapshot_leaves_no_cyclic_garbage() -> None:
    assert run(PROGRAM) == "0"


YOUNG_GARBAGE = """
import gc, sys, weakref
from pdp.store.activation import load_directory

class Node:
    pass

node = Node()
node.self = node  # a cycle: only the collector can free it
alive = weakref.ref(node)
del node
load_directory(sys.argv[1], cache_size=0)  # freezes what the process holds
gc.collect()
print(alive() is None)
"""


def test_garbage_pending_when_a_load_starts_is_not_frozen_for_good() -> None:
    assert run(YOUNG_GARBAGE) == "True"
