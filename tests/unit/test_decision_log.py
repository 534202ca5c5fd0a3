"""The decision log: fields, sampling, rotation, never blocking, nothing lost on close."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from pdp.decision_log import DecisionLog
from pdp.model import Decision, MatchedStatement

ALLOW = Decision(
    "Allow",
    "allowed",
    (MatchedStatement("policies/P.json", 0, "Read", "Allow"),),
    policy_version="0002",
)
DENY = Decision(
    "Deny",
    "explicitDeny",
    (MatchedStatement("policies/P.json", 1, None, "Deny"),),
    policy_version="0002",
)
ROOT = Decision("Allow", "allowed", policy_version="0002", root=True)


def lines(path: Path) -> list[dict[str, object]]:
    files = sorted(path.parent.glob(path.name + "*"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_event_fields(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path))
    log.record(
        "bob",
        "s3:GetObject",
        "arn:aws:s3:::b/k",
        {"aws:SourceIp": "10.0.0.1"},
        ALLOW,
        0.0000123,
        "req-1",
    )
    assert log.close()
    (event,) = lines(path)
    assert set(event) == {
        "decision_id",
        "time",
        "principal",
        "action",
        "resource",
        "context",
        "decision",
        "reason",
        "matched",
        "errors",
        "policy_version",
        "root",
        "latency_us",
        "request_id",
    }
    assert event["principal"] == "bob" and event["decision"] == "Allow"
    assert event["context"] == {"aws:SourceIp": "10.0.0.1"}
    assert event["matched"] == [
        {"policy": "policies/P.json", "statement": 0, "sid": "Read", "effect": "Allow"}
    ]
    assert event["latency_us"] == 12.3 and event["request_id"] == "req-1"
    assert str(event["time"]).endswith("Z") and len(str(event["decision_id"])) == 32


def test_allow_sampling_keeps_every_deny_and_root(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), allow_sample_rate=0.0)
    for _ in range(50):
        log.record("bob", "s3:GetObject", "*", None, ALLOW, 0.0)
        log.record("bob", "s3:DeleteObject", "*", None, DENY, 0.0)
        log.record("arn:aws:iam::1:root", "iam:X", "*", None, ROOT, 0.0)
    assert log.close()
    events = lines(path)
    assert len(events) == 100 and log.stats()["sampled_out"] == 50
    assert {e["reason"] for e in events} == {"explicitDeny", "allowed"}
    assert all(e["root"] for e in events if e["decision"] == "Allow")


def test_rotation_by_size_keeps_every_line(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), max_bytes=4000, backups=50)
    for i in range(300):
        log.record(f"user{i}", "s3:GetObject", "*", None, DENY, 0.0)
    assert log.close()
    files = sorted(tmp_path.glob("decisions.jsonl*"))
    assert len(files) > 5
    assert all(f.stat().st_size <= 4000 for f in files)
    assert sorted(e["principal"] for e in lines(path)) == sorted(f"user{i}" for i in range(300))


def test_rotation_keeps_only_the_backups_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), max_bytes=2000, backups=2)
    for i in range(300):
        log.record(f"user{i}", "s3:GetObject", "*", None, DENY, 0.0)
    assert log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "decisions.jsonl",
        "decisions.jsonl.1",
        "decisions.jsonl.2",
    ]


def test_a_fifo_nobody_reads_never_slows_a_request(tmp_path: Path) -> None:
    """A stalled destination: the writer blocks, the queue fills, requests go on, drops count."""
    fifo = tmp_path / "stalled"
    os.mkfifo(fifo)
    log = DecisionLog(str(fifo), queue_size=100)
    slowest = 0.0
    for _ in range(20_000):
        started = time.perf_counter()
        log.record("bob", "s3:DeleteObject", "*", None, DENY, 0.0)
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 0.5  # a put_nowait, not a wait on the disk (generous: shared CI cores)
    assert log.stats()["dropped"] >= 20_000 - 101
    started = time.monotonic()
    assert log.close(timeout=0.5) is False  # the writer is stuck opening the FIFO: say so
    assert time.monotonic() - started < 3


def test_under_concurrent_load_nothing_is_lost_silently(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), queue_size=50_000)

    def worker(n: int) -> None:
        for i in range(2500):
            log.record(f"w{n}", "s3:GetObject", f"arn:aws:s3:::b/{i}", None, DENY, 0.0)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.close()
    stats = log.stats()
    assert stats["written"] + stats["dropped"] == 10_000
    assert len(lines(path)) == stats["written"]
