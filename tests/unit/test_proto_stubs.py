"""The committed gRPC stubs match proto/ (regenerated with the pinned grpcio-tools)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUBS = ("authorizer_pb2.py", "authorizer_pb2.pyi", "authorizer_pb2_grpc.py")


def test_stubs_match_the_proto(tmp_path: Path) -> None:
    """Run scripts/gen_proto.sh into a scratch folder and compare with what is committed."""
    client = tmp_path / "client"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen_proto.sh"), str(tmp_path), str(client)],
        check=True,
        capture_output=True,
        env=env,
    )
    for name in STUBS:
        fresh = (tmp_path / "pdp" / "v1" / name).read_text()
        committed = (ROOT / "pdp" / "v1" / name).read_text()
        assert fresh == committed, f"pdp/v1/{name} is stale: run scripts/gen_proto.sh"
        fresh_client = (client / name).read_text()
        committed_client = (ROOT / "clients/python/src/pdp_client/_pb" / name).read_text()
        assert fresh_client == committed_client, f"the client's {name} is stale"


def test_core_does_not_import_transports() -> None:
    """pdp's core imports neither grpc nor flask (only pdp.v1, the generated wire code, does)."""
    code = (
        "import sys, pdp; "
        "bad = [m for m in ('grpc', 'flask', 'granian') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
