"""The decision log and Access Advisor in a real `pdp serve`: flushed on SIGTERM, never blocking,
bounded in bytes, never torn on a shared stdout."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from pdp.audit.suggest import log_files
from pdp.cli import main
from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc
from tests.integration.servers import Server, copy_store, free_port, start_server

OBJECT = "arn:aws:s3:::example-bucket/report.csv"


def test_every_decision_is_logged_and_flushed_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    srv = start_server(tmp_path, PDP_DECISION_LOG=str(log))
    for i in range(200):
        srv.call(
            "/v1/is-authorized",
            {
                "principal": "bob",
                "action": "s3:GetObject",
                "resource": OBJECT,
                "request_id": f"r{i}",
            },
        )
    srv.call(
        "/v1/is-authorized", {"principal": "bob", "action": "s3:DeleteObject", "resource": OBJECT}
    )
    srv.call(
        "/v1/is-authorized",
        {
            "principal": "arn:aws:iam::123456789012:root",
            "principal_type": "root",
            "action": "iam:CreateUser",
            "resource": "*",
        },
    )
    with grpc.insecure_channel(srv.grpc) as channel:
        pb_grpc.AuthorizerStub(channel).IsAuthorized(
            pb.IsAuthorizedRequest(
                principal="carol", action="dynamodb:GetItem", resource="*", request_id="g1"
            ),
            timeout=10,
        )
    status, advisor = srv.call("/admin/access-advisor/bob", admin=True)
    assert status == 200 and advisor["principal"] == "bob"
    assert [u["service"] for u in advisor["services_used"]] == ["s3"]
    assert advisor["unused_for_days"] == ["ec2", "orders"]
    assert srv.call("/admin/access-advisor/nobody", admin=True)[0] == 404
    status, text = srv.call("/metrics")
    assert "pdp_decision_log_written_total" in text and "pdp_decision_log_dropped_total" in text
    assert srv.stop(signal.SIGTERM) == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(events) == 203  # nothing lost on a clean shutdown
    ids = {e["request_id"] for e in events}
    assert {f"r{i}" for i in range(200)} <= ids and "g1" in ids
    assert [e["reason"] for e in events if e["action"] == "s3:DeleteObject"] == ["explicitDeny"]
    assert [e["root"] for e in events if e["principal"].endswith(":root")] == [True]
    assert Path(f"{log}.advisor.sqlite").exists()


def test_a_stalled_log_never_slows_decisions(tmp_path: Path) -> None:
    fifo = tmp_path / "stalled"
    os.mkfifo(fifo)
    srv = start_server(tmp_path, PDP_DECISION_LOG=str(fifo), PDP_DECISION_LOG_QUEUE="50")
    try:
        slowest = 0.0
        for _ in range(300):
            started = time.perf_counter()
            status, body = srv.call(
                "/v1/is-authorized",
                {"principal": "bob", "action": "s3:GetObject", "resource": OBJECT},
            )
            slowest = max(slowest, time.perf_counter() - started)
            assert status == 200 and body["decision"] == "Allow"
        assert slowest < 1.0
        status, info = srv.call("/admin/status", admin=True)
        assert info["decision_log"]["dropped"] >= 300 - 51
    finally:
        srv.stop(signal.SIGTERM, timeout=60)


def read_log(log: Path) -> list[dict[str, Any]]:
    """Every event of every worker's file and of their rotations."""
    return [
        json.loads(line) for f in log_files(str(log)) for line in Path(f).read_text().splitlines()
    ]


def all_workers_up(run_dir: Path, workers: int) -> None:
    """Wait until every worker has loaded the store: a SIGTERM that reaches a worker still
    starting, before granian sets its signal handlers, is not seen (that worker is killed after
    granian's 15 s), which is not what these tests are about."""
    deadline = time.monotonic() + 60
    while len(list((run_dir / "workers").glob("*.json"))) < workers:
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.05)
    time.sleep(0.5)  # from loading the store to granian's signal handlers


def burst(
    srv: Server, batches: int = 20, size: int = 100, context: dict[str, str] | None = None
) -> list[str]:
    """`batches` batches sent at once, one in ten over gRPC: Denies for bob, and Allows for
    alice (AdministratorAccess) on 50 services, to feed the Access Advisor. The request ids."""

    def requests(n: int) -> list[dict[str, Any]]:
        out = []
        for i in range(size):
            rid = f"b{n}-{i}"
            if i % 2:
                out.append({"principal": "bob", "action": "s3:DeleteObject", "resource": OBJECT})
            else:
                out.append(
                    {"principal": "alice", "action": f"svc{i // 2 % 50}:Do", "resource": "*"}
                )
            out[-1]["request_id"] = rid
            if context:
                out[-1]["context"] = context
        return out

    def send(n: int) -> None:
        if n % 10 == 9:
            with grpc.insecure_channel(srv.grpc) as channel:
                answer = pb_grpc.AuthorizerStub(channel).BatchIsAuthorized(
                    pb.BatchIsAuthorizedRequest(
                        requests=[
                            pb.IsAuthorizedRequest(
                                principal=r["principal"],
                                action=r["action"],
                                resource=r["resource"],
                                request_id=r["request_id"],
                                context={
                                    k: pb.Value(string_value=v)
                                    for k, v in r.get("context", {}).items()
                                },
                            )
                            for r in requests(n)
                        ]
                    ),
                    timeout=30,
                )
                assert len(answer.results) == size
        else:
            status, body = srv.call("/v1/batch-is-authorized", {"requests": requests(n)})
            assert status == 200 and len(body["results"]) == size

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(batches)))
    return [r["request_id"] for n in range(batches) for r in requests(n)]


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_right_after_a_burst_loses_no_line(tmp_path: Path, workers: int) -> None:
    """2,000 decisions, then SIGTERM at once: every line reaches the files, every advisor row
    reaches SQLite (the worker exits through multiprocessing, which skips atexit)."""
    log = tmp_path / "decisions.jsonl"
    run = tmp_path / "run"
    srv = start_server(tmp_path, workers=workers, PDP_DECISION_LOG=str(log), PDP_RUN_DIR=str(run))
    try:
        all_workers_up(run, workers)
        sent = burst(srv)
    finally:
        code = srv.stop(signal.SIGTERM)  # right after the burst
    assert code == 0
    events = read_log(log)
    assert sorted(e["request_id"] for e in events) == sorted(sent)
    db = sqlite3.connect(f"{log}.advisor.sqlite")
    services = {
        s for (s,) in db.execute("SELECT service FROM last_access WHERE principal = 'alice'")
    }
    assert services == {f"svc{i}" for i in range(50)}


def test_a_burst_of_large_requests_keeps_the_earlier_trail(tmp_path: Path) -> None:
    """Large Deny requests are cut to a bounded line, so they cannot rotate the trail away, and
    every cut is counted (metrics, /admin/status)."""
    log = tmp_path / "decisions.jsonl"
    srv = start_server(tmp_path, PDP_DECISION_LOG=str(log), PDP_DECISION_LOG_MAX_BYTES=str(300_000))
    try:
        srv.call(
            "/v1/is-authorized",
            {
                "principal": "bob",
                "action": "s3:GetObject",
                "resource": OBJECT,
                "request_id": "mark",
            },
        )
        big = {"aws:Referer": "r" * 4000, "tags": [f"{i:04}" + "t" * 3996 for i in range(200)]}
        for i in range(40):  # 40 bodies of 800 KB
            status, body = srv.call(
                "/v1/is-authorized",
                {
                    "principal": "bob",
                    "action": "s3:DeleteObject",
                    "resource": OBJECT,
                    "context": big,
                    "request_id": f"big{i}",
                },
            )
            assert status == 200 and body["decision"] == "Deny"
        deadline = time.monotonic() + 20
        while True:
            status, info = srv.call("/admin/status", admin=True)
            if info["decision_log"]["written"] == 41 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert info["decision_log"]["truncated"] == 40
        assert info["decision_log"]["dropped"] == 0
        text = srv.call("/metrics")[1]
        assert "pdp_decision_log_truncated_total" in text
        assert [line for line in text.splitlines() if "decision_log_truncated_total{" in line][
            0
        ].endswith(" 40")
    finally:
        assert srv.stop(signal.SIGTERM) == 0
    events = read_log(log)
    assert [e["request_id"] for e in events] == ["mark"] + [f"big{i}" for i in range(40)]
    cut = events[1]
    assert cut["context"]["aws:Referer"] == "r" * 1024 and "tags" not in cut["context"]
    assert cut["truncated"]["fields"] == ["context.aws:Referer", "context.tags"]
    assert cut["truncated"]["context_bytes"] > 800_000
    assert (
        max(f.stat().st_size for f in tmp_path.glob("decisions.jsonl*") if "advisor" not in f.name)
        <= 300_000
    )


def test_invented_services_cannot_grow_the_access_advisor(tmp_path: Path) -> None:
    """alice holds "Action": "*": 600 invented service names make at most the cap of rows, and
    bob's real row stays."""
    log = tmp_path / "decisions.jsonl"
    srv = start_server(
        tmp_path, PDP_DECISION_LOG=str(log), PDP_ACCESS_ADVISOR_MAX_PER_PRINCIPAL="20"
    )
    try:
        srv.call(
            "/v1/is-authorized", {"principal": "bob", "action": "s3:GetObject", "resource": OBJECT}
        )
        for n in range(2):
            invented = [
                {"principal": "alice", "action": f"made-up{n}x{i}:Do", "resource": "*"}
                for i in range(300)
            ]
            invented.append({"principal": "alice", "action": "Bad_Svc:Do", "resource": "*"})
            status, body = srv.call("/v1/batch-is-authorized", {"requests": invented})
            assert status == 200 and {r["decision"] for r in body["results"]} == {"Allow"}
        time.sleep(1.2)  # the advisor flushes each second
        srv.call(
            "/v1/is-authorized", {"principal": "bob", "action": "s3:GetObject", "resource": OBJECT}
        )
        status, alice = srv.call("/admin/access-advisor/alice", admin=True)
        assert status == 200 and len(alice["services_used"]) == 20
        assert [
            u["service"]
            for u in srv.call("/admin/access-advisor/bob", admin=True)[1]["services_used"]
        ] == ["s3"]
        status, info = srv.call("/admin/status", admin=True)
        assert info["access_advisor"]["refused"] == 2 and info["access_advisor"]["pruned"] >= 580
    finally:
        assert srv.stop(signal.SIGTERM) == 0
    db = sqlite3.connect(f"{log}.advisor.sqlite")
    assert db.execute("SELECT COUNT(*) FROM last_access").fetchone()[0] == 21


def test_stdout_lines_are_never_torn_with_two_workers(tmp_path: Path) -> None:
    """Two workers share one stdout pipe: every decision event arrives as one whole JSON line."""
    http, grpc_port, admin = free_port(), free_port(), free_port()
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)  # as in production: sys.stdout buffers
    env.update(
        PDP_STORE=str(copy_store(tmp_path / "store")),
        PDP_HTTP=f"127.0.0.1:{http}",
        PDP_GRPC=f"127.0.0.1:{grpc_port}",
        PDP_ADMIN=f"127.0.0.1:{admin}",
        PDP_WORKERS="2",
        PDP_DECISION_LOG="stdout",
        PDP_RUN_DIR=str(tmp_path / "run"),
        PDP_ADMIN_TOKEN="t",
    )
    with (tmp_path / "stderr.log").open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "pdp.cli", "serve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    assert process.stdout is not None
    chunks: list[bytes] = []

    burst_sent = threading.Event()

    def read_slowly() -> None:
        """Read nothing until the burst is in, then in small steps: both workers' writers wait
        on a full pipe, where a write longer than PIPE_BUF goes in in pieces."""
        assert process.stdout is not None
        while chunk := process.stdout.read1(4096):
            chunks.append(chunk)
            if not burst_sent.wait(30):
                return
            time.sleep(0.0002)

    reader = threading.Thread(target=read_slowly)
    reader.start()
    srv = Server(
        process,
        f"127.0.0.1:{http}",
        f"127.0.0.1:{grpc_port}",
        f"127.0.0.1:{admin}",
        tmp_path,
        tmp_path / "stderr.log",
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if srv.call("/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        all_workers_up(tmp_path / "run", 2)
        # Lines of about 1.3 KB and of over PIPE_BUF (which the log shrinks to fit), in turn.
        sent = burst(srv, batches=10, context={"aws:Referer": "https://example.com/" + "r" * 900})
        sent += burst(srv, batches=10, context={f"app:k{i}": "v" * 1000 for i in range(6)})
        burst_sent.set()
    finally:
        burst_sent.set()
        code = srv.stop(signal.SIGTERM)
        reader.join(30)
        process.stdout.close()
    assert code == 0
    lines = b"".join(chunks).decode().splitlines()
    events = [json.loads(line) for line in lines if '"decision_id"' in line]
    assert sorted(e["request_id"] for e in events) == sorted(sent)


def test_a_locked_advisor_database_does_not_stall_probes_or_decisions(tmp_path: Path) -> None:
    """An operator's sqlite3 shell (or a backup) holding the Access Advisor database: the log
    writer waits on it, /readyz, /metrics and decisions do not."""
    log = tmp_path / "decisions.jsonl"
    srv = start_server(tmp_path, PDP_DECISION_LOG=str(log))
    try:
        allow = {"principal": "alice", "action": "s3:GetObject", "resource": "*"}
        assert srv.call("/v1/is-authorized", allow)[1]["decision"] == "Allow"
        time.sleep(1.2)  # the advisor has its database and flushes at most once a second
        lock = sqlite3.connect(f"{log}.advisor.sqlite", timeout=1)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            time.sleep(1.2)
            srv.call("/v1/is-authorized", {**allow, "action": "ec2:DescribeInstances"})
            time.sleep(0.5)  # the writer is now waiting for the database
            for path, body in (("/readyz", None), ("/metrics", None), ("/v1/is-authorized", allow)):
                started = time.monotonic()
                status, _ = srv.call(path, body)
                assert status == 200 and time.monotonic() - started < 2.0, path
        finally:
            lock.rollback()
            lock.close()
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_three_services_then_sigterm_all_reach_the_advisor(
    tmp_path: Path, workers: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13: three Allows to three services within a second, then SIGTERM: the database has
    all three (the advisor's once-a-second batching must be drained at shutdown), and
    `pdp access-advisor --log` rebuilds the same from the workers' files alone."""
    log = tmp_path / "decisions.jsonl"
    run = tmp_path / "run"
    srv = start_server(tmp_path, workers=workers, PDP_DECISION_LOG=str(log), PDP_RUN_DIR=str(run))
    try:
        all_workers_up(run, workers)
        time.sleep(1.1)  # the first event after a quiet second flushes at once: not the others
        for action in ("s3:GetObject", "ec2:DescribeInstances", "iam:ListUsers"):
            status, body = srv.call(
                "/v1/is-authorized", {"principal": "alice", "action": action, "resource": "*"}
            )
            assert status == 200 and body["decision"] == "Allow", body
    finally:
        code = srv.stop(signal.SIGTERM)
    assert code == 0
    assert sorted(e["action"] for e in read_log(log)) == [
        "ec2:DescribeInstances",
        "iam:ListUsers",
        "s3:GetObject",
    ]
    db = sqlite3.connect(f"{log}.advisor.sqlite")
    rows = db.execute("SELECT service FROM last_access WHERE principal = 'alice'").fetchall()
    assert sorted(s for (s,) in rows) == ["ec2", "iam", "s3"]
    actions = db.execute("SELECT action FROM action_access WHERE principal = 'alice'").fetchall()
    expected = ["ec2:describeinstances", "iam:listusers", "s3:getobject"]
    assert sorted(a for (a,) in actions) == expected
    pattern = str(tmp_path / "decisions*.jsonl")
    argv = ["access-advisor", "--store", str(srv.store), "--principal", "alice", "--log", pattern]
    assert main(argv) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [u["service"] for u in answer["services_used"]] == ["ec2", "iam", "s3"]
    assert [u["action"] for u in answer["actions_used"]] == expected
    assert answer["source"]["events"] == 3


def test_rows_a_busy_database_refused_are_written_at_sigterm(tmp_path: Path) -> None:
    """A flush that SQLite refuses (the database held past its busy timeout: a backup, a shell,
    another worker) keeps its rows; SIGTERM drains them. Before: the refused rows were gone."""
    log = tmp_path / "decisions.jsonl"
    run = tmp_path / "run"
    srv = start_server(tmp_path, PDP_DECISION_LOG=str(log), PDP_RUN_DIR=str(run))
    try:
        all_workers_up(run, 1)
        time.sleep(1.2)  # the advisor's database exists; the next Allow flushes at once
        lock = sqlite3.connect(f"{log}.advisor.sqlite", timeout=1)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            for action in ("s3:GetObject", "ec2:DescribeInstances", "iam:ListUsers"):
                allow = {"principal": "alice", "action": action, "resource": "*"}
                assert srv.call("/v1/is-authorized", allow)[1]["decision"] == "Allow"
            time.sleep(11)  # longer than any busy timeout: the flushes meanwhile are refused
            status, info = srv.call("/admin/status", admin=True)
            assert status == 200 and info["access_advisor"]["flush_failures"] >= 1, info
        finally:
            lock.rollback()
            lock.close()
    finally:
        code = srv.stop(signal.SIGTERM)
    assert code == 0
    db = sqlite3.connect(f"{log}.advisor.sqlite")
    rows = db.execute("SELECT service FROM last_access WHERE principal = 'alice'").fetchall()
    assert sorted(s for (s,) in rows) == ["ec2", "iam", "s3"]
