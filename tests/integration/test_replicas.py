"""Replicas on one store, as a Deployment runs them: three `pdp serve` processes (their own ports
and run directories) watch one store; after `pdp publish` every one serves the new version
within the watch interval (plus the load), none goes back, and no batch ever mixes versions.
And the image's HEALTHCHECK command, run against a real server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import Server, copy_store, start_server

ROOT = Path(__file__).resolve().parents[2]
WATCH = 0.5
NEW_USER = {"groups": ["readers"]}  # readers have ReadOnlyAccess
DAVE = {"principal": "dave", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}
BOB = {
    "principal": "bob",
    "action": "s3:GetObject",
    "resource": "arn:aws:s3:::example-bucket/report.csv",
    "context": {"aws:SourceIp": "203.0.113.9"},
}


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Path, list[Server]]]:
    store = copy_store(tmp_path / "store")
    running: list[Server] = []
    try:
        for i in range(3):
            directory = tmp_path / f"replica-{i}"
            directory.mkdir()
            running.append(start_server(directory, store=store, PDP_WATCH_INTERVAL=str(WATCH)))
        yield store, running
    finally:
        for server in running:
            server.stop()


def version_of(server: Server) -> str:
    status, body = server.call("/v1/is-authorized", BOB)
    assert status == 200, body
    return str(body["policy_version"])


class Batches(threading.Thread):
    """Batches against one replica until stopped: each answer's batch version, the versions of
    its items, and dave's decision in it (a user only the new version has)."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.seen: list[tuple[str, set[str], str]] = []
        self.failures: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        body = {"requests": [BOB, DAVE] * 10}
        while not self.halt.is_set():
            try:
                status, answer = self.server.call("/v1/batch-is-authorized", body)
            except OSError as exc:
                self.failures.append(repr(exc))
                continue
            if status != 200:
                self.failures.append(f"{status}: {answer}")
                continue
            items = {r["policy_version"] for r in answer["results"]}
            daves = {r["decision"] for r in answer["results"][1::2]}
            if len(daves) != 1:
                self.failures.append(f"dave decided {daves} in one batch")
                continue
            self.seen.append((answer["policy_version"], items, daves.pop()))


def test_every_replica_converges_after_a_publish_and_no_batch_mixes_versions(
    replicas: tuple[Path, list[Server]], tmp_path: Path
) -> None:
    store, servers = replicas
    assert [version_of(s) for s in servers] == ["0002"] * 3
    threads = [Batches(s) for s in servers]
    for thread in threads:
        thread.start()
    time.sleep(1)
    work = tmp_path / "work"
    shutil.copytree(store / "versions" / "0002", work)
    (work / "users" / "dave.json").write_text(json.dumps(NEW_USER))
    published = subprocess.run(
        [sys.executable, "-m", "pdp.cli", "publish", str(work), "--store", str(store)],
        capture_output=True,
        text=True,
    )
    assert published.returncode == 0, published.stdout + published.stderr
    started = time.monotonic()
    converged: dict[int, float] = {}
    while len(converged) < len(servers) and time.monotonic() - started < 30:
        for i, server in enumerate(servers):
            if i not in converged and version_of(server) == "0003":
                converged[i] = time.monotonic() - started
        time.sleep(0.02)
    time.sleep(1)  # batches after the switch
    for thread in threads:
        thread.halt.set()
    for thread in threads:
        thread.join(30)
    print(f"converged after publish (s): {sorted(round(t, 2) for t in converged.values())}")
    assert len(converged) == len(servers), f"only {sorted(converged)} serve 0003"
    # the watch interval, plus loading the version on a noisy 2-core machine
    assert max(converged.values()) < WATCH + 10
    for thread in threads:
        assert not thread.failures, thread.failures[:3]
        versions = [version for version, _, _ in thread.seen]
        assert "0002" in versions and "0003" in versions, "batches ran across the publish"
        first_new = versions.index("0003")
        assert set(versions[first_new:]) == {"0003"}, "a replica went back to 0002"
        for version, items, dave in thread.seen:
            assert items == {version}, f"a batch of {version} held items of {items}"
            assert dave == ("Allow" if version == "0003" else "Deny")


def healthcheck_command() -> list[str]:
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    line = next(line for line in text.splitlines() if line.startswith("HEALTHCHECK"))
    command: list[str] = json.loads(line.split(" CMD ", 1)[1])
    return command


def test_the_images_healthcheck_passes_on_a_serving_pdp_and_fails_without_one(
    tmp_path: Path,
) -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    server = start_server(tmp_path)
    port = server.http.rsplit(":", 1)[1]
    code = command[2].replace("127.0.0.1:8180", f"127.0.0.1:{port}")
    try:
        assert subprocess.run([sys.executable, "-c", code], timeout=10).returncode == 0
    finally:
        server.stop()
    failed = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=10)
    assert failed.returncode != 0
