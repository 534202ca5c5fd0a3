"""The committed gRPC stubs match proto/ (regenerated with the pinned grpcio-tools)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUBS = ("authorizer_pb2.py", "authorizer_pb2.pyi", "authorizer_pb2_grpc.py")


def test_stubs_match_the_proto(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'proto'}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(ROOT / "proto" / "pdp" / "v1" / "authorizer.proto"),
        ],
        check=True,
        capture_output=True,
    )
    for name in STUBS:
        fresh = (tmp_path / "pdp" / "v1" / name).read_text()
        committed = (ROOT / "pdp" / "v1" / name).read_text()
        assert fresh == committed, f"pdp/v1/{name} is stale: run scripts/gen_proto.sh"


def test_core_does_not_import_transports() -> None:
    """pdp's core imports neither grpc nor flask (only pdp.v1, the generated wire code, does)."""
    code = (
        "import sys, pdp; "
        "bad = [m for m in ('grpc', 'flask', 'granian') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
