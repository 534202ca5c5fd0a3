"""Worker start-up: the admin listener lives in one worker and the others keep trying to bind it
(to take over when its holder exits) without growing; a bad setting stops `pdp serve` at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.servers import start_server


def _workers(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _threads_and_fds(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    threads = int(status.split("Threads:")[1].split()[0])
    return threads, len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_workers_without_the_admin_port_do_not_grow(tmp_path: Path) -> None:
    srv = start_server(tmp_path, workers=2)
    try:
        assert srv.admin_status()[0] == 200
        time.sleep(1.0)  # both workers are up and retrying (every 0.5 s) by now
        workers = _workers(srv.process.pid)
        assert len(workers) == 2
        before = {pid: _threads_and_fds(pid) for pid in workers}
        time.sleep(3.0)  # six retries in the worker without the admin port
        after = {pid: _threads_and_fds(pid) for pid in workers}
        for pid in workers:
            assert after[pid][0] <= before[pid][0] + 1, (before, after)
            assert after[pid][1] <= before[pid][1] + 2, (before, after)
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PDP_WORKERS": "two"}, "PDP_WORKERS: must be a whole number, not 'two'"),
        ({"PDP_BODY_TIMEOUT": "nan"}, "PDP_BODY_TIMEOUT: must be a finite number"),
        ({"PDP_CACHE_SIZE": "-5"}, "PDP_CACHE_SIZE: must be a finite number, not negative"),
        ({"PDP_ADMIN_TOKEN_FILE": "/nonexistent/token"}, "PDP_ADMIN_TOKEN_FILE: cannot read"),
        ({"PDP_DECISION_LOG_SAMPLE": "2"}, "PDP_DECISION_LOG_SAMPLE: must be between 0 and 1"),
        ({"PDP_DECISION_LOG_MAX_VALUE": "0"}, "PDP_DECISION_LOG_MAX_VALUE: must be at least 1"),
        ({"PDP_ACCESS_ADVISOR_MAX_ROWS": "0"}, "PDP_ACCESS_ADVISOR_MAX_ROWS: must be at least 1"),
        ({"PDP_HEADER_TIMEOUT": "600"}, "PDP_HEADER_TIMEOUT: must be between 0.1 and 60"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PDP_")}
    result = subprocess.run(
        [sys.executable, "-m", "pdp.cli", "serve"],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert f"pdp serve: {message}" in result.stderr and "Traceback" not in result.stderr


def test_sigterm_to_a_starting_server_stops_it_promptly(tmp_path: Path) -> None:
    """SIGTERM right after start, while a worker may still be importing (before granian has
    its signal handlers): every worker stops within seconds, not at granian's kill timeout."""
    for attempt in range(3):
        srv = start_server(tmp_path / str(attempt), workers=2, wait_ready=False)
        started = time.monotonic()
        assert srv.stop(timeout=30) == 0
        assert time.monotonic() - started < 15
