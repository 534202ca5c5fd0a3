"""`pdp serve` at start: ports held by others, stores that are not stores, broken versions."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.servers import TOKEN, Server, copy_store, free_port, start_server

OBJECT = "arn:aws:s3:::example-bucket/report.csv"


def serve(
    store: Path, http: int, grpc: int, admin: int, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run `pdp serve` expecting it to stop by itself; stdout and stderr apart."""
    environment = {
        **os.environ,
        "PDP_STORE": str(store),
        "PDP_HTTP": f"127.0.0.1:{http}",
        "PDP_GRPC": f"127.0.0.1:{grpc}",
        "PDP_ADMIN": f"127.0.0.1:{admin}",
        "PDP_ADMIN_TOKEN": TOKEN,
        "PDP_WATCH_INTERVAL": "0.2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pdp.cli", "serve"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # on a timeout, its workers go too
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def port(address: str) -> int:
    return int(address.rpartition(":")[2])


@pytest.fixture
def occupied() -> Iterator[int]:
    """A port another program listens on: a plain socket, no SO_REUSEPORT."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_second_server_on_the_same_ports_fails_and_the_first_keeps_serving(
    tmp_path: Path,
) -> None:
    first = start_server(tmp_path)
    try:
        other = copy_store(tmp_path / "other")
        (other / "current").unlink()
        (other / "current").symlink_to("versions/0001")
        started = time.monotonic()
        second = serve(other, port(first.http), port(first.grpc), port(first.admin))
        assert time.monotonic() - started < 20
        assert second.returncode != 0
        assert "Traceback" not in second.stderr
        assert f"127.0.0.1:{port(first.http)}" in second.stderr
        assert "address already in use" in second.stderr
        for _ in range(20):  # fresh connections: nobody else answers on these ports
            assert first.decide("bob", "s3:GetObject", OBJECT)["policy_version"] == "0002"
        assert first.call("/admin/status", admin=True)[1]["version"] == "0002"
        assert first.process.poll() is None
    finally:
        assert first.stop() == 0


@pytest.mark.parametrize("listener", ["HTTP", "gRPC", "admin"])
def test_a_port_held_by_another_program_is_one_line_on_stderr(
    tmp_path: Path, occupied: int, listener: str
) -> None:
    ports = {"HTTP": free_port(), "gRPC": free_port(), "admin": free_port()}
    ports[listener] = occupied
    result = serve(copy_store(tmp_path / "store"), ports["HTTP"], ports["gRPC"], ports["admin"])
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        f"pdp serve: cannot listen on 127.0.0.1:{occupied} ({listener}): address already in use"
    ], result.stderr


@pytest.mark.parametrize("kind", ["missing", "file", "no-versions"])
def test_a_store_that_is_not_a_store_stops_serve_before_any_worker(
    tmp_path: Path, kind: str
) -> None:
    store = tmp_path / "store"
    expected = {
        "missing": "does not exist",
        "file": "not a directory",
        "no-versions": "no versions/ directory",
    }[kind]
    if kind == "file":
        store.write_text("{}")
    elif kind == "no-versions":
        store.mkdir()
    started = time.monotonic()
    result = serve(store, free_port(), free_port(), free_port())
    assert time.monotonic() - started < 15
    assert result.returncode != 0
    assert result.stderr.splitlines() == [f"pdp serve: --store {store}: {expected}"]


def break_version(store: Path, name: str) -> None:
    shutil.copytree(store / "versions" / "0002", store / "versions" / name)
    (store / "versions" / name / "users" / "bob.json").write_text('{"groups": ["ghosts"]}')


def point_current(store: Path, name: str) -> None:
    (store / "current.tmp").symlink_to(f"versions/{name}")
    os.replace(store / "current.tmp", store / "current")


def test_a_broken_current_at_start_serves_the_newest_good_version(tmp_path: Path) -> None:
    store = copy_store(tmp_path / "store")
    break_version(store, "0003")
    point_current(store, "0003")
    srv = start_server(tmp_path, store=store)
    try:
        assert srv.call("/readyz") == (200, {"status": "ready", "policy_version": "0002"})
        status, info = srv.admin_status()
        assert status == 200 and info["fallback_from"] == "0003"
        assert 'group "ghosts" does not exist' in info["last_reload_error"]
        assert metric(srv, "pdp_store_fallback") == "1"
        time.sleep(1.0)  # five watch intervals
        log = srv.log.read_text()
        assert log.count('group "ghosts" does not exist') == 1, log
        assert "serving the newest version that loads: 0002" in log
        shutil.copytree(store / "versions" / "0002", store / "versions" / "0004")
        point_current(store, "0004")  # the publisher fixes current: it is picked up
        assert wait_until(
            lambda: srv.decide("bob", "s3:GetObject", OBJECT)["policy_version"] == "0004"
        )
        assert srv.call("/admin/status", admin=True)[1]["fallback_from"] is None
        assert metric(srv, "pdp_store_fallback") == "0"
    finally:
        assert srv.stop() == 0


def metric(srv: Server, name: str) -> str:
    for line in srv.call("/metrics")[1].splitlines():
        if line.startswith(name + "{"):
            return line.rpartition(" ")[2]
    raise AssertionError(f"no {name} in /metrics")


def test_a_store_where_nothing_loads_is_logged_once_then_picked_up(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "versions").mkdir(parents=True)
    source = copy_store(tmp_path / "source")
    break_version(source, "0001-broken")
    shutil.copytree(source / "versions" / "0001-broken", store / "versions" / "0001")
    srv = start_server(tmp_path, store=store, wait_ready=False)
    try:
        # Before the first attempt ends, /readyz says "loading" with no reason yet.
        def refused() -> bool:
            return 'group "ghosts"' in srv.call("/readyz")[1]["error"]["message"]

        assert wait_until(refused)
        status, body = srv.call("/readyz")
        assert status == 503 and body["status"] == "loading", body
        assert body["error"]["code"] == "not_ready", body
        assert 'group "ghosts" does not exist' in body["error"]["message"], body
        time.sleep(1.0)  # five retries
        log = srv.log.read_text()
        assert log.count('group "ghosts" does not exist') == 1, log
        staging = store / "versions" / ".0002.tmp"
        shutil.copytree(source / "versions" / "0002", staging)
        os.rename(staging, store / "versions" / "0002")
        assert wait_until(lambda: srv.call("/readyz")[0] == 200)
        assert srv.call("/readyz")[1]["policy_version"] == "0002"
    finally:
        assert srv.stop() == 0


def test_a_server_without_an_admin_token_warns_once(tmp_path: Path) -> None:
    srv = start_server(tmp_path, token=None, workers=2)
    try:
        log = srv.log.read_text()
        assert log.count("no admin token") == 1, log
        assert "PDP_ADMIN_TOKEN" in log and "--admin-token-file" in log
    finally:
        assert srv.stop() == 0


def test_serve_configured_by_flags_alone(tmp_path: Path) -> None:
    """Every setting is a flag too: with no PDP_* variable at all, flags set the store, the
    listeners, two workers and the admin token file, and the workers run with them."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    srv = start_server(
        tmp_path, workers=2, flags=True, PDP_CACHE_SIZE="0", PDP_RUN_DIR=str(run_dir)
    )
    try:
        (handoff,) = run_dir.glob("config-*.json")  # what the workers read: private
        assert stat.S_IMODE(handoff.stat().st_mode) == 0o600
        status, body = srv.call(
            "/v1/is-authorized", {"principal": "bob", "action": "s3:GetObject", "resource": OBJECT}
        )
        assert status == 200 and body["decision"] == "Allow"
        status, info = srv.call("/admin/status", admin=True)
        assert status == 200 and info["version"] == "0002"
        assert srv.call("/admin/status", admin=True, token="wrong")[0] == 401
        assert info["cache"] is None  # --cache-size 0 reached the worker
    finally:
        assert srv.stop() == 0
    assert list(run_dir.glob("config-*.json")) == []  # the token does not stay on disk


def test_a_run_dir_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    """The workers' configuration cannot be handed over: pdp serve says where, and stops."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PDP_")}
    result = subprocess.run(
        [sys.executable, "-m", "pdp.cli", "serve", "--store", str(copy_store(tmp_path / "s"))]
        + ["--run-dir", "/proc/no-such-dir", "--http", f"127.0.0.1:{free_port()}"]
        + ["--grpc", f"127.0.0.1:{free_port()}", "--admin", f"127.0.0.1:{free_port()}"],
        env={**environment, "PDP_ADMIN_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "pdp serve: --run-dir /proc/no-such-dir: No such file or directory"
    )
    assert "Traceback" not in result.stderr
