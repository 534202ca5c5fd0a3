"""The load-test kit works: a generated store validates, and locust drives both transports."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.servers import start_server

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"
sys.path.insert(0, str(LOADTESTS))

from generate_store import generate, publish  # noqa: E402


def test_generated_store_loads_and_republishes(tmp_path: Path) -> None:
    store = generate(tmp_path / "store", users=300, groups=12, policies=40)
    publish(store, "0002")
    result = subprocess.run(
        [sys.executable, "-m", "pdp.cli", "validate", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "version 0002: 300 users, 12 groups, 40 policies" in result.stdout


def test_locust_drives_http_and_grpc_without_failures(tmp_path: Path) -> None:
    store = generate(tmp_path / "store", users=300, groups=12, policies=40)
    server = start_server(tmp_path, store=store)
    try:
        for user_class, host in (
            ("SidecarUser", f"http://{server.http}"),
            ("GrpcAuthorizerUser", server.grpc),
        ):
            prefix = tmp_path / user_class
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "locust",
                    "-f",
                    str(LOADTESTS / "locustfile.py"),
                    user_class,
                    "--host",
                    host,
                    "--headless",
                    "-u",
                    "4",
                    "-r",
                    "4",
                    "-t",
                    "3s",
                    "--csv",
                    str(prefix),
                    "--only-summary",
                    "--loglevel",
                    "ERROR",
                ],
                capture_output=True,
                timeout=120,
                check=False,
                env={**os.environ, "PDP_LOADTEST_USERS": "300"},
            )
            with open(f"{prefix}_stats.csv") as handle:
                total = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
            assert int(total["Request Count"]) > 50, user_class
            assert total["Failure Count"] == "0", user_class
    finally:
        assert server.stop() == 0
