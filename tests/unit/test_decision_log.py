"""The decision log: fields, sampling, rotation, never blocking, bounded in bytes, counted."""

from __future__ import annotations

import dataclasses
import json
import os
import select
import threading
import time
import tracemalloc
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from pdp.audit.decision_log import DecisionEvent, DecisionLog, LoggedSession
from pdp.model import Decision, MatchedStatement, Session

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
        DecisionEvent.of(
            "bob",
            "s3:GetObject",
            "arn:aws:s3:::b/k",
            {"aws:SourceIp": "10.0.0.1"},
            ALLOW,
            0.0000123,
            "req-1",
        )
    )
    assert log.close()
    (event,) = lines(path)
    assert set(event) == {
        "schema_version",
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
    assert event["schema_version"] == DecisionEvent.SCHEMA == 1


def test_an_event_reads_back_as_it_was_logged(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path))
    sent = DecisionEvent.of("bob", "s3:GetObject", "*", {"n": 7}, ALLOW, 0.0000123, "r1")
    log.record(sent)
    assert log.close()
    (line,) = lines(path)
    event = DecisionEvent.from_dict(line)
    assert event.to_dict() == line
    assert abs(event.time - sent.time) <= 1e-6  # logged to the microsecond
    assert event == dataclasses.replace(sent, decision_id=line["decision_id"], time=event.time)


def test_of_builds_the_event_the_constructor_does() -> None:
    """`of` sets each slot itself (the request path's constructor): it sets them all."""
    fast = DecisionEvent.of("bob", "s3:GetObject", "*", {"n": 7}, DENY, 0.0000123, "r1", now=5.0)
    assert fast == DecisionEvent(
        5.0,
        "bob",
        "s3:GetObject",
        "*",
        {"n": 7},
        "Deny",
        "explicitDeny",
        DENY.matched,
        (),
        "0002",
        False,
        12.3,
        "r1",
    )
    assert {f.name: getattr(fast, f.name) for f in dataclasses.fields(fast)}  # every slot set
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.principal = "alice"  # type: ignore[misc]


def _old_line() -> dict[str, object]:
    """A line as logged before schema_version existed."""
    return {
        "decision_id": "4f0c" * 8,
        "time": "2026-11-28T06:40:12.123456Z",
        "principal": "bob",
        "action": "s3:GetObject",
        "resource": "arn:aws:s3:::example-bucket/report.csv",
        "context": {"aws:SourceIp": "203.0.113.9"},
        "decision": "Allow",
        "reason": "allowed",
        "matched": [{"policy": "policies/P.json", "statement": 1, "sid": None, "effect": "Allow"}],
        "errors": [],
        "policy_version": "0002",
        "root": False,
        "latency_us": 11.4,
        "request_id": "r-17",
    }


def test_a_line_from_before_the_version_reads_as_version_1() -> None:
    event = DecisionEvent.from_dict(_old_line())
    assert event.schema_version == 1 and event.principal == "bob"
    assert event.matched == (MatchedStatement("policies/P.json", 1, None, "Allow"),)
    assert event.to_dict() == {"schema_version": 1, **_old_line()}
    assert event.time == datetime(2026, 11, 28, 6, 40, 12, 123456, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 2}, "newer than this reader"),
        ({"schema_version": "1"}, "schema_version"),
        ({"schema_version": True}, "schema_version"),
        ({"principal": None}, "'principal' is not str"),
        ({"decision": "Maybe"}, "reason does not fit"),
        ({"reason": "explicitDeny"}, "reason does not fit"),
        ({"time": "yesterday"}, "not ISO 8601"),
        (
            {"matched": [{"policy": "p", "statement": True, "sid": None, "effect": "Allow"}]},
            "'statement'",
        ),
        ({"matched": [{"policy": "p", "statement": 0, "sid": None, "effect": "allow"}]}, "effect"),
        ({"matched": ["p"]}, "matched\\[0\\]"),
        ({"errors": [1]}, "errors are strings"),
        ({"root": 0}, "'root' is not bool"),
        ({"latency_us": "fast"}, "'latency_us'"),
        ({"context": []}, "'context' is not dict"),
        ({"request_id": 17}, "'request_id'"),
        ({"truncated": "yes"}, "'truncated'"),
    ],
)
def test_from_dict_refuses_what_is_not_an_event(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DecisionEvent.from_dict({**_old_line(), **change})


def test_from_dict_names_a_missing_field() -> None:
    line = _old_line()
    del line["resource"]
    with pytest.raises(ValueError, match="lacks 'resource'"):
        DecisionEvent.from_dict(line)


def test_allow_sampling_keeps_every_deny_and_root(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), allow_sample_rate=0.0)
    for _ in range(50):
        log.record(DecisionEvent.of("bob", "s3:GetObject", "*", None, ALLOW, 0.0))
        log.record(DecisionEvent.of("bob", "s3:DeleteObject", "*", None, DENY, 0.0))
        log.record(DecisionEvent.of("arn:aws:iam::1:root", "iam:X", "*", None, ROOT, 0.0))
    assert log.close()
    events = lines(path)
    assert len(events) == 100 and log.stats()["sampled_out"] == 50
    assert {e["reason"] for e in events} == {"explicitDeny", "allowed"}
    assert all(e["root"] for e in events if e["decision"] == "Allow")


def test_rotation_by_size_keeps_every_line(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), max_bytes=4000, backups=50)
    for i in range(300):
        log.record(DecisionEvent.of(f"user{i}", "s3:GetObject", "*", None, DENY, 0.0))
    assert log.close()
    files = sorted(tmp_path.glob("decisions.jsonl*"))
    assert len(files) > 5
    assert all(f.stat().st_size <= 4000 for f in files)
    assert sorted(e["principal"] for e in lines(path)) == sorted(f"user{i}" for i in range(300))


def test_rotation_keeps_only_the_backups_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), max_bytes=2000, backups=2)
    for i in range(300):
        log.record(DecisionEvent.of(f"user{i}", "s3:GetObject", "*", None, DENY, 0.0))
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
        log.record(DecisionEvent.of("bob", "s3:DeleteObject", "*", None, DENY, 0.0))
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
            log.record(
                DecisionEvent.of(f"w{n}", "s3:GetObject", f"arn:aws:s3:::b/{i}", None, DENY, 0.0)
            )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.close()
    stats = log.stats()
    assert stats["written"] + stats["dropped"] == 10_000
    assert len(lines(path)) == stats["written"]


def _flood_a_stalled_log(
    tmp_path: Path, requests: Iterable[tuple[str, str, dict[str, str] | None]]
) -> tuple[DecisionLog, int]:
    """Record `requests` (principal, resource, context) as Denies on a log whose writer is
    stalled (a FIFO nobody reads, 1 MiB queue bound); the log and the bytes its queue holds."""
    fifo = tmp_path / "stalled"
    os.mkfifo(fifo)
    tracemalloc.start()
    try:
        log = DecisionLog(str(fifo), queue_size=100_000, queue_bytes=1 << 20)
        before = tracemalloc.get_traced_memory()[0]
        for principal, resource, context in requests:
            log.record(DecisionEvent.of(principal, "s3:DeleteObject", resource, context, DENY, 0.0))
        return log, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_stalled_writer_holds_at_most_the_queue_bytes(tmp_path: Path) -> None:
    """The queue is bounded by bytes too: large requests fill it long before 10,000 items."""
    log, held = _flood_a_stalled_log(
        tmp_path,  # 400 x 100 KB of context: 40 MB if each item held it all
        (("bob", "*", {f"k{j}": f"{i:05}" + "x" * 9_995 for j in range(10)}) for i in range(400)),
    )
    stats = log.stats()
    assert 0 < stats["queued_bytes"] <= 1 << 20
    assert stats["dropped_by_reason"]["queue_full"] == stats["dropped"] > 0
    assert stats["queued"] + stats["dropped"] == 400
    assert held < 4 << 20, held  # what is queued was cut to the logged size, not the request's
    assert log.close(timeout=0.5) is False
    assert log.stats()["dropped_by_reason"]["shutdown"] == stats["queued"]


def test_non_ascii_request_strings_count_their_bytes(tmp_path: Path) -> None:
    """A principal and resource of emoji are 4 bytes a character in memory: the queue bound
    counts them so, and holds no more than it says."""
    names = (f"{i:04}" + "\U0001f600" * 4000 for i in range(300))
    log, held = _flood_a_stalled_log(tmp_path, ((name, name + "/r", None) for name in names))
    stats = log.stats()
    assert stats["dropped"] > 0 and stats["queued_bytes"] <= 1 << 20
    assert held < 3 << 19, held  # within 1.5 times the bound
    log.close(timeout=0.5)


def test_oversized_context_values_are_cut_and_the_event_says_so(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), max_value=1024, max_context=16 << 10)
    context = {
        "aws:Referer": "r" * 5000,
        "aws:SourceIp": "10.0.0.1",
        "tags": ["t" * 2000, "ok"],
        "n": 7,
    }
    log.record(DecisionEvent.of("bob", "s3:GetObject", "*", context, ALLOW, 0.0))
    log.record(
        DecisionEvent.of("bob", "s3:GetObject", "*", {"aws:SourceIp": "10.0.0.1"}, ALLOW, 0.0)
    )
    assert log.close()
    cut, whole = lines(path)
    assert cut["context"] == {
        "aws:Referer": "r" * 1024,
        "aws:SourceIp": "10.0.0.1",
        "tags": ["t" * 1024, "ok"],
        "n": 7,
    }
    truncated = cut["truncated"]
    assert isinstance(truncated, dict)
    assert truncated["fields"] == ["context.aws:Referer", "context.tags[0]"]
    assert truncated["context_bytes"] >= 7000
    assert "truncated" not in whole and whole["context"] == {"aws:SourceIp": "10.0.0.1"}
    assert log.stats()["truncated"] == 1


def test_the_whole_logged_context_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), max_value=1024, max_context=16 << 10)
    context = {f"key{i:03}": "v" * 1000 for i in range(128)}
    context["x" * 5000] = "a key longer than a value may be"
    log.record(DecisionEvent.of("bob", "s3:DeleteObject", "*", context, DENY, 0.0))
    assert log.close()
    (event,) = lines(path)
    logged = event["context"]
    assert isinstance(logged, dict) and 10 <= len(logged) <= 16
    assert list(logged) == [f"key{i:03}" for i in range(len(logged))]  # in order, as sent
    assert len(path.read_bytes()) < 20_000
    truncated = event["truncated"]
    assert isinstance(truncated, dict)
    assert (
        len(truncated["fields"]) == 16 and truncated["fields"][0] == f"context.key{len(logged):03}"
    )
    assert len(truncated["fields"]) + truncated["omitted"] == 129 - len(logged)
    assert max(len(f) for f in truncated["fields"]) <= 100
    assert truncated["context_bytes"] > 128_000


def test_oversized_strings_from_the_python_api_are_cut(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path))
    failed = Decision("Deny", "implicitDeny", errors=("e" * 10_000,), policy_version="0002")
    log.record(
        DecisionEvent.of(
            "bob", "s3:GetObject", "arn:aws:s3:::b/" + "k" * 100_000, None, failed, 0.0
        )
    )
    assert log.close()
    (event,) = lines(path)
    assert len(str(event["resource"])) == 4096 and len(str(event["errors"][0])) == 1024  # type: ignore[index]
    assert event["truncated"]["fields"] == ["resource", "errors[0]"]  # type: ignore[index]


def test_stdout_events_are_single_writes_of_at_most_pipe_buf(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Each stdout event is one os.write of one line that fits PIPE_BUF, atomic on a pipe."""
    log = DecisionLog("stdout")
    big = {f"key{i:02}": "v" * 1000 for i in range(12)}
    log.record(DecisionEvent.of("bob", "s3:GetObject", "*", big, ALLOW, 0.0, "r1"))
    log.record(
        DecisionEvent.of(
            "bob", "s3:GetObject", "arn:aws:s3:::b/" + "k" * 4000, big, ALLOW, 0.0, "r2"
        )
    )
    log.record(
        DecisionEvent.of("bob", "s3:GetObject", "*", {"aws:SourceIp": "10.0.0.1"}, ALLOW, 0.0, "r3")
    )
    assert log.close()
    out = capfd.readouterr().out.splitlines()
    assert len(out) == 3 and all(len(line.encode()) + 1 <= select.PIPE_BUF for line in out)
    some, none, whole = (json.loads(line) for line in out)
    assert [e["request_id"] for e in (some, none, whole)] == ["r1", "r2", "r3"]
    assert 1 <= len(some["context"]) < 12 and "context.key11" in some["truncated"]["fields"]
    assert some["context"]["key00"] == "v" * 256  # strings cut shorter to fit
    assert none["context"] == {} and none["truncated"]["fields"] == ["context", "resource"]
    assert len(none["resource"]) == 256 and none["principal"] == "bob"
    assert "truncated" not in whole and whole["context"] == {"aws:SourceIp": "10.0.0.1"}


def test_even_a_hostile_event_fits_pipe_buf_on_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    """Characters JSON escapes or UTF-8 widens, long lists: the line still fits one write."""
    log = DecisionLog("stdout")
    matched = tuple(MatchedStatement(f"policies/P{i}.json", i, "S" * 50, "Deny") for i in range(50))
    hostile = Decision("Deny", "explicitDeny", matched, ("\U0001f600" * 2000,) * 50, "0002")
    context = {"\x01" * 1000: "\x01" * 1000, "k": ["\U0001f600" * 1000] * 200}
    log.record(
        DecisionEvent.of(
            "\U0001f600" * 4096, "s3:" + "\x01" * 4000, '"' * 4096, context, hostile, 0.0, "r"
        )
    )
    assert log.close()
    (line,) = capfd.readouterr().out.splitlines()
    assert len(line.encode()) + 1 <= select.PIPE_BUF
    event = json.loads(line)
    assert event["decision"] == "Deny" and event["reason"] == "explicitDeny"
    assert event["request_id"] == "r" and event["principal"] == "\U0001f600" * 64
    assert event["truncated"]["omitted"] > 0 and len(event["truncated"]["fields"]) == 4


def test_events_recorded_after_close_are_counted_as_dropped(tmp_path: Path) -> None:
    log = DecisionLog(str(tmp_path / "decisions.jsonl"))
    assert log.close()
    log.record(DecisionEvent.of("bob", "s3:GetObject", "*", None, DENY, 0.0))
    assert log.stats()["dropped_by_reason"]["shutdown"] == 1 == log.stats()["dropped"]


def test_rotation_keeps_ten_backups_by_default(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), max_bytes=1000)
    for i in range(300):
        log.record(DecisionEvent.of(f"user{i}", "s3:GetObject", "*", None, DENY, 0.0))
    assert log.close()
    assert len(list(tmp_path.iterdir())) == 11


def test_a_chain_decision_logs_its_principal_type_and_layers() -> None:
    """The evaluation chain's fields are optional: written only for a chain decision or a
    principal other than a user, read back, and absent (schema 1 unchanged) otherwise."""
    from pdp import Decision as _Decision
    from pdp.audit.decision_log import DecisionEvent as _Event

    chain = _Decision(
        "Deny", "implicitDeny", policy_version="1", layers=("scp", "identity"), blocked_by=("scp",)
    )
    event = _Event.of(
        "arn:aws:sts::111111111111:assumed-role/App/s1", "s3:GetObject", "arn:aws:s3:::b/k",
        {}, chain, 0.00001, principal_type="role_session", now=1_700_000_000.0,
    )  # fmt: skip
    line = event.to_dict()
    assert (line["principal_type"], line["layers"], line["blocked_by"]) == (
        "role_session", ["scp", "identity"], ["scp"],
    )  # fmt: skip
    back = _Event.from_dict(line)
    assert (back.principal_type, back.layers, back.blocked_by) == (
        "role_session", ("scp", "identity"), ("scp",),
    )  # fmt: skip
    plain = _Event.of(
        "alice", "s3:GetObject", "arn:aws:s3:::b/k", {}, _Decision("Allow", "allowed"), 0.0
    )
    assert not {"principal_type", "layers", "blocked_by"} & plain.to_dict().keys()
    with pytest.raises(ValueError, match="layers are strings"):
        _Event.from_dict({**line, "layers": [1]})


ROLE = "arn:aws:iam::111111111111:role/App"
SESSION_ARN = "arn:aws:sts::111111111111:assumed-role/App/s1"
READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}


def _session_event(session: Session | None, decision: Decision = DENY) -> DecisionEvent:
    return DecisionEvent.of(
        SESSION_ARN, "s3:GetObject", "arn:aws:s3:::b/k", {}, decision, 0.0, "r1",
        principal_type="role_session", session=session, now=1_700_000_000.0,
    )  # fmt: skip


def test_a_role_session_decision_logs_what_the_session_claimed(tmp_path: Path) -> None:
    """The session's tags as given, its MFA state, source identity, chain and policy ARNs; of
    its inline policies only their count, never the documents."""
    session = Session.from_dict(
        {
            "policies": [READ],
            "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            "tags": {"Team": "blue", "cost": "42"},
            "transitive_tag_keys": ["Team"],
            "mfa_present": True,
            "mfa_age": 60,
            "source_identity": "alice",
            "issued_at": "2026-11-28T06:00:00Z",
            "role_chain": [ROLE],
        }
    )
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path))
    log.record(_session_event(session))
    log.record(_session_event(Session()))
    assert log.close()
    full, empty = lines(path)
    assert full["session"] == {
        "tags": {"Team": "blue", "cost": "42"},
        "policies": 1,
        "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
        "role_chain": [ROLE],
        "source_identity": "alice",
        "mfa_present": True,
        "mfa_age": 60,
    }
    assert "Statement" not in json.dumps(full)  # the inline policy's count, not its document
    assert empty["session"] == {"tags": {}, "policies": 0, "policy_arns": []}
    assert "truncated" not in full and "truncated" not in empty
    for line in (full, empty):
        back = DecisionEvent.from_dict(line)
        assert back.to_dict() == line
    back = DecisionEvent.from_dict(full)
    assert back.session == LoggedSession(
        {"Team": "blue", "cost": "42"}, 1, ("arn:aws:iam::aws:policy/ReadOnlyAccess",), (ROLE,),
        "alice", True, 60,
    )  # fmt: skip


def test_an_event_without_a_session_keeps_its_bytes() -> None:
    """No session, no key: the line is byte for byte what it was before the field existed."""
    plain = DecisionEvent.of("bob", "s3:GetObject", "*", {"n": 7}, DENY, 0.0, "r1", now=5.0)
    assert plain.session is None
    assert orjson.dumps(plain.to_dict()) == (
        b'{"schema_version":1,"decision_id":null,"time":"1970-01-01T00:00:05.000000Z",'
        b'"principal":"bob","action":"s3:GetObject","resource":"*","context":{"n":7},'
        b'"decision":"Deny","reason":"explicitDeny","matched":[{"policy":"policies/P.json",'
        b'"statement":1,"sid":null,"effect":"Deny"}],"errors":[],"policy_version":"0002",'
        b'"root":false,"latency_us":0.0,"request_id":"r1"}'
    )
    assert DecisionEvent.from_dict(plain.to_dict()).session is None


def _session_line(**change: object) -> dict[str, object]:
    line = _session_event(Session.from_dict({"tags": {"team": "blue"}, "mfa_age": 5})).to_dict()
    session = dict(line["session"])  # type: ignore[call-overload]
    for key, value in change.items():
        if value is _ABSENT:
            del session[key]
        else:
            session[key] = value
    return {**line, "session": session}


_ABSENT = object()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tags": ["team"]}, r"'session\.tags' is not dict"),
        ({"tags": {"team": 1}}, r"'session\.tags\.team' is not str"),
        ({"tags": _ABSENT}, r"lacks 'session\.tags'"),
        ({"policies": "1"}, r"'session\.policies' is not int"),
        ({"policies": True}, r"'session\.policies' is not int"),
        ({"policies": -1}, r"'session\.policies' is negative"),
        ({"policies": _ABSENT}, r"lacks 'session\.policies'"),
        ({"policy_arns": "arn"}, r"'session\.policy_arns' is not list"),
        ({"policy_arns": [1]}, r"session\.policy_arns are strings"),
        ({"role_chain": [None]}, r"session\.role_chain are strings"),
        ({"source_identity": 7}, r"'session\.source_identity' is not str"),
        ({"mfa_present": "yes"}, r"'session\.mfa_present' is not bool"),
        ({"mfa_age": True}, r"'session\.mfa_age' is not int"),
        ({"mfa_age": -1}, r"'session\.mfa_age' is negative"),
    ],
)
def test_from_dict_checks_each_session_field(change: dict[str, object], message: str) -> None:
    assert DecisionEvent.from_dict(_session_line()).session is not None  # the unchanged line
    with pytest.raises(ValueError, match=message):
        DecisionEvent.from_dict(_session_line(**change))


def test_from_dict_refuses_a_session_that_is_not_an_object() -> None:
    with pytest.raises(ValueError, match=r"'session' is not an object"):
        DecisionEvent.from_dict({**_session_line(), "session": ["tags"]})


def _hostile_session() -> Session:
    """Built directly, as a Python API caller may: past AWS's limits, which only
    `Session.from_dict` checks."""
    return Session(
        policies=(READ,) * 3,
        policy_arns=tuple(f"arn:aws:iam::aws:policy/{'p' * 2000}{i}" for i in range(12)),
        tags={f"k{i:02}": "\U0001f600" * 2000 for i in range(60)} | {"K" * 2000: "v"},
        source_identity="s" * 2000,
        role_chain=tuple(f"{ROLE}{'x' * 2000}{i}" for i in range(12)),
        mfa_present=False,
    )


def test_a_session_past_the_bounds_is_cut_and_the_event_says_so(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), max_value=100)
    log.record(_session_event(_hostile_session()))
    assert log.close()
    (line,) = lines(path)
    session = line["session"]
    assert isinstance(session, dict)
    assert len(session["tags"]) == 50 and "K" * 2000 not in session["tags"]
    assert all(v == "\U0001f600" * 100 for v in session["tags"].values())
    assert len(session["policy_arns"]) == 10 and len(session["role_chain"]) == 10
    assert all(len(a) == 100 for a in session["policy_arns"] + session["role_chain"])
    assert session["source_identity"] == "s" * 100 and session["policies"] == 3
    truncated = line["truncated"]
    assert isinstance(truncated, dict)
    assert truncated["fields"][:3] == ["session.tags", "session.tags.k00", "session.tags.k01"]
    assert truncated["omitted"] > 0
    assert DecisionEvent.from_dict(line).to_dict() == line


def test_a_session_counts_in_the_queue_bytes(tmp_path: Path) -> None:
    """Its strings are held until written: the queue's byte bound counts them."""
    fifo = tmp_path / "stalled"
    os.mkfifo(fifo)
    log = DecisionLog(str(fifo))
    log.record(_session_event(None))
    plain = log.stats()["queued_bytes"]
    log.record(_session_event(_hostile_session()))
    with_session = log.stats()["queued_bytes"] - plain
    assert plain < 2_000 and with_session > 60 * 2000 * 4  # the tags' emoji: 4 bytes each
    assert log.close(timeout=0.5) is False


def test_a_hostile_session_still_fits_pipe_buf_on_stdout(
    capfd: pytest.CaptureFixture[str],
) -> None:
    log = DecisionLog("stdout")
    log.record(_session_event(_hostile_session()))
    small = Session.from_dict({"tags": {f"t{i}": "v" * 250 for i in range(20)}, "mfa_age": 9})
    log.record(_session_event(small))
    assert log.close()
    hostile, cut = (json.loads(line) for line in capfd.readouterr().out.splitlines())
    for line in (hostile, cut):
        assert len(json.dumps(line, separators=(",", ":")).encode()) + 1 <= select.PIPE_BUF
        assert DecisionEvent.from_dict(line).session is not None
    assert hostile["session"] == {
        "tags": {}, "policies": 3, "policy_arns": [], "source_identity": "s" * 64,
        "mfa_present": False,
    }  # fmt: skip
    assert len(cut["session"]["tags"]) == 4 and cut["session"]["mfa_age"] == 9
    assert "session.tags" in cut["truncated"]["fields"]
