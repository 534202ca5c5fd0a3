"""A loaded snapshot holds no reference cycles, so freezing it out of the collector's sight
(pdp/loader.py) can never keep garbage alive: reference counting frees all of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import gc, sys
import pdp
from pdp.loader import load_directory
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
    version = ROOT / "examples" / "store" / "versions" / "0001"
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(version)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "0", result.stderr
