"""The committed gRPC stubs match proto/ (regenerated with the pinned grpcio-tools), and there
is exactly one copy of them in the tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "clients" / "python" / "src" / "pdp_client" / "v1"
STUBS = tuple(
    f"{name}{suffix}"
    for name in ("authorizer", "queries")
    for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
)


def test_stubs_match_the_proto(tmp_path: Path) -> None:
    """Run scripts/gen_proto.sh into a scratch folder and compare with what is committed."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen_proto.sh"), str(tmp_path)],
        check=True,
        capture_output=True,
        env=env,
    )
    for name in STUBS:
        fresh = (tmp_path / name).read_text()
        committed = (HOME / name).read_text()
        assert fresh == committed, f"{name} is stale: run scripts/gen_proto.sh"


def test_one_copy_of_the_stubs() -> None:
    """Every file in the tree that registers a pdp proto is the one in pdp_client/v1."""
    tracked = subprocess.run(
        ["git", "ls-files", "*_pb2*.py", "*_pb2*.pyi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(tracked) == sorted(str((HOME / name).relative_to(ROOT)) for name in STUBS), (
        tracked
    )
