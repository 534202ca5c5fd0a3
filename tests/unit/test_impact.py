"""What-if (`pdp impact`, pdp.audit.impact): the decision log replayed against a candidate version,
on logs written by the real DecisionLog writer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

import pdp.audit.impact as impact_module
from pdp import Session
from pdp.audit import (
    DecisionEvent,
    DecisionLog,
    forward_lines,
    render_impact,
    replay,
    tail_lines,
)
from pdp.language import as_of
from pdp.model import Request
from pdp.store import ImpactGate, Snapshot, load_store, read_version

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "store"
OBJECT = "arn:aws:s3:::example-bucket/a"
INSTANCE = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"
Req = tuple[str, str, str, dict[str, Any]]
REQUESTS: list[Req] = [
    ("bob", "s3:GetObject", OBJECT, {}),
    ("bob", "ec2:StopInstances", INSTANCE, {}),
    ("alice", "iam:CreateUser", "arn:aws:iam::123456789012:user/dave", {}),
    ("carol", "s3:GetObject", OBJECT, {"aws:SourceIp": "10.0.0.1"}),
]


def write_log(
    path: Path,
    snapshot: Snapshot,
    requests: Iterable[Req],
    *,
    times: int = 1,
    now: float | None = None,
    **log_options: Any,
) -> Path:
    """Decide each request on `snapshot` and log it with the real writer, `times` times."""
    log = DecisionLog(str(path), **log_options)
    for _ in range(times):
        for principal, action, resource, context in requests:
            decision = snapshot.is_authorized(principal, action, resource, context)
            log.record(DecisionEvent.of(principal, action, resource, context, decision, 0, now=now))
    assert log.close()
    return path


@pytest.fixture(scope="module")
def current() -> Snapshot:
    return load_store(EXAMPLE)  # 0002


@pytest.fixture(scope="module")
def older() -> Snapshot:
    return load_store(EXAMPLE, "0001")


def test_replay_counts_and_groups_every_change(
    tmp_path: Path, current: Snapshot, older: Snapshot
) -> None:
    log = write_log(tmp_path / "decisions.jsonl", current, REQUESTS, times=3)
    report = replay(forward_lines([str(log)]), older, files=[str(log)])
    assert (report.lines, report.replayed, report.distinct) == (12, 12, 4)
    assert report.changes == {"allow_to_deny": 3, "deny_to_allow": 0, "reason_change": 3}
    assert report.unchanged == 6 and report.skipped == 0
    groups = {(g.kind, g.principal, g.action): g for g in report.sorted_groups()}
    assert set(groups) == {
        ("allow_to_deny", "carol", "s3:GetObject"),
        ("reason_change", "bob", "ec2:StopInstances"),
    }
    carol = groups["allow_to_deny", "carol", "s3:GetObject"]
    assert carol.count == 3 and carol.policy == "arn:aws:iam::aws:policy/ReadOnlyAccess"
    assert len(carol.examples) == 3 and carol.examples[0]["line"] == 4
    assert carol.examples[0]["before"] == {"decision": "Allow", "reason": "allowed"}
    assert carol.examples[0]["after"]["decision"] == "Deny"
    bob = groups["reason_change", "bob", "ec2:StopInstances"]
    assert bob.policy == "policies/EC2TeamInstances.json"  # the logged deny, now gone
    # the same version replayed on itself changes nothing
    same = replay(forward_lines([str(log)]), current)
    assert same.changed == 0 and same.unchanged == 12


def test_the_baseline_is_the_logged_decision_unless_asked(
    tmp_path: Path, current: Snapshot, older: Snapshot
) -> None:
    log = write_log(tmp_path / "decisions.jsonl", older, REQUESTS)  # logged by 0001
    against_log = replay(forward_lines([str(log)]), older)
    assert against_log.changed == 0 and against_log.baseline == "logged"
    against_current = replay(forward_lines([str(log)]), older, baseline=current)
    assert against_current.baseline == "version 0002"
    assert against_current.changes["allow_to_deny"] == 1  # carol: 0002 allows, 0001 does not


def test_lines_that_cannot_be_replayed_are_counted_and_named(
    tmp_path: Path, current: Snapshot
) -> None:
    path = tmp_path / "decisions.jsonl"
    write_log(path, current, REQUESTS[:1])
    long_context = {f"app:k{i}": "x" * 200 for i in range(20)}
    write_log(path, current, [("bob", "s3:GetObject", OBJECT, long_context)], max_context=512)
    with path.open("ab") as handle:
        handle.write(b"\n")  # blank: nothing was logged there
        handle.write(b'{"principal": "bob"}\n')  # no action, resource, ...
        handle.write(b'{"schema_version": 1, "torn')  # a writer that died mid-line
    truncated = json.loads(path.read_text().splitlines()[1])
    assert "context_bytes" in truncated["truncated"]
    report = replay(forward_lines([str(path)]), current)
    assert report.lines == 4 and report.replayed == 1
    assert report.not_replayable == {"truncated": 1, "not_an_event": 1, "unparseable": 1}
    assert [n.split(": ", 1)[0] for n in report.named] == [
        f"{path}:2",
        f"{path}:4",
        f"{path}:5",
    ]
    assert "the log cut" in report.named[0]


def test_a_cut_error_message_does_not_stop_a_replay() -> None:
    assert impact_module._cut({"fields": ["errors[0]", "matched"], "omitted": 0}) is None
    assert impact_module._cut({"fields": ["context.a"], "omitted": 0}) is not None
    assert impact_module._cut({"fields": ["errors[0]"], "omitted": 3}) is not None
    assert impact_module._cut({"fields": ["resource"], "omitted": 0}) is not None


def test_a_session_with_inline_policies_is_not_replayable(
    tmp_path: Path, current: Snapshot
) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path))
    decision = current.is_authorized("bob", "s3:GetObject", OBJECT)
    session = Session(policies=({"Version": "2012-10-17", "Statement": []},))
    principal = "arn:aws:sts::123456789012:assumed-role/R/s"
    log.record(
        DecisionEvent.of(
            principal, "s3:GetObject", OBJECT, {}, decision, 0, principal_type="role_session",
            session=session,
        )
    )  # fmt: skip
    assert log.close()
    report = replay(forward_lines([str(path)]), current)
    assert report.not_replayable == {"session_policies": 1} and report.replayed == 0


TIMED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
        }
    ],
}


def timed_store(root: Path) -> Path:
    version = root / "versions" / "0001"
    (version / "users").mkdir(parents=True)
    (version / "policies").mkdir()
    (version / "account.json").write_text('{"account_id": "123456789012"}')
    (version / "users" / "tim.json").write_text('{"policies": ["Timed"]}')
    (version / "policies" / "Timed.json").write_text(json.dumps(TIMED))
    (root / "current").symlink_to("versions/0001")
    return root


def test_a_request_that_reads_the_clock_replays_as_of_its_logged_time(tmp_path: Path) -> None:
    snapshot = load_store(timed_store(tmp_path / "store"))
    before, after = 1_800_000_000.0, 1_990_000_000.0  # 2027, 2033
    request = Request("tim", "s3:GetObject", OBJECT)
    assert snapshot.decide_as_of(request, before) == (snapshot.decide(request), True)
    assert snapshot.decide_as_of(request, after)[0].decision == "Deny"
    assert snapshot.decide_as_of(Request("tim", "s3:PutObject", OBJECT), after)[1] is False
    path = tmp_path / "decisions.jsonl"
    reqs: list[Req] = [("tim", "s3:GetObject", OBJECT, {})]
    log = DecisionLog(str(path))
    for at in (before, after, before + 1):
        with as_of(at):
            decision = snapshot.is_authorized(*reqs[0])
        log.record(DecisionEvent.of(*reqs[0], decision, 0, now=at))
    assert log.close()
    logged = [json.loads(line)["decision"] for line in path.read_text().splitlines()]
    assert logged == ["Allow", "Deny", "Allow"]
    report = replay(forward_lines([str(path)]), snapshot)
    # read at today's clock (before 2030), the 2033 line would come out Allow: a change
    assert report.changed == 0 and report.replayed == 3 and report.distinct == 1


def test_tail_lines_reads_the_newest_lines_backwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(impact_module, "_BLOCK", 7)  # lines span blocks
    old, new = tmp_path / "d.jsonl.1", tmp_path / "d.jsonl"
    old.write_bytes(b"".join(b"old-%d\n" % i for i in range(5)))
    new.write_bytes(b"".join(b"new-%d\n" % i for i in range(3)) + b"torn")
    got = [(Path(p).name, n, raw) for p, n, raw in tail_lines([str(old), str(new)], 6)]
    assert got == [
        ("d.jsonl", -1, b"torn"),
        ("d.jsonl", -2, b"new-2"),
        ("d.jsonl", -3, b"new-1"),
        ("d.jsonl", -4, b"new-0"),
        ("d.jsonl.1", -1, b"old-4"),
        ("d.jsonl.1", -2, b"old-3"),
    ]


def test_the_gate_refuses_only_what_it_names_and_does_not_expect() -> None:
    gate = ImpactGate(frozenset({"deny_to_allow"}))
    violates = gate.violation()
    assert violates("deny_to_allow", "bob", "s3:GetObject", OBJECT)
    assert not violates("allow_to_deny", "bob", "s3:GetObject", OBJECT)
    from pdp.store import ExpectedChange

    expected = ImpactGate(
        frozenset({"deny_to_allow"}),
        (ExpectedChange(principal="bob", action="S3:Get*", resource="arn:aws:s3:::example-*"),),
    ).violation()
    assert not expected("deny_to_allow", "bob", "s3:GetObject", OBJECT)
    assert expected("deny_to_allow", "bob", "s3:PutObject", OBJECT)
    assert expected("deny_to_allow", "alice", "s3:GetObject", OBJECT)


def _version_with(tmp_path: Path, settings: dict[str, Any]) -> Path:
    version = tmp_path / "v"
    shutil.copytree(EXAMPLE / "versions" / "0002", version)
    (version / "store.json").write_text(json.dumps(settings))
    return version


def test_store_json_declares_the_gate(tmp_path: Path) -> None:
    gate = {
        "refuse": ["deny_to_allow"],
        "expected": [{"principal": "bob", "change": "deny_to_allow"}],
    }
    version, problems = read_version("v", _version_with(tmp_path, {"impact_gate": gate}))
    assert problems == [] and version is not None
    assert version.impact_gate is not None and version.impact_gate.to_dict() == gate


@pytest.mark.parametrize(
    ("gate", "field"),
    [
        ({"refuse": ["allow_to_maybe"]}, "impact_gate.refuse[0]"),
        ({"refuse": []}, "impact_gate.refuse"),
        ({"refuse": ["deny_to_allow"], "expected": [{"who": "x"}]}, "impact_gate.expected[0].who"),
        ({"refuse": ["deny_to_allow"], "extra": 1}, "impact_gate.extra"),
        ("yes", "impact_gate"),
    ],
)
def test_a_bad_gate_refuses_the_version_naming_the_field(
    tmp_path: Path, gate: Any, field: str
) -> None:
    version, problems = read_version("v", _version_with(tmp_path, {"impact_gate": gate}))
    assert version is None
    assert [(p.source, p.path) for p in problems] == [("store.json", field)], problems


# --- formats ---------------------------------------------------------------------------------


@pytest.fixture
def report(tmp_path: Path, current: Snapshot, older: Snapshot) -> Any:
    log = write_log(tmp_path / "decisions.jsonl", current, REQUESTS, times=2)
    return replay(forward_lines([str(log)]), older, files=[str(log)])


def test_json_report(report: Any) -> None:
    doc = json.loads(render_impact(report, "json"))
    assert doc["baseline"] == "logged" and doc["candidate"] == "0001"
    assert doc["changed"] == 4 and doc["changes"]["allow_to_deny"] == 2
    assert doc["not_replayable"] == {"count": 0, "by_reason": {}}
    assert [(g["change"], g["count"]) for g in doc["groups"]] == [
        ("allow_to_deny", 2),
        ("reason_change", 2),
    ]


def test_sarif_report_has_the_minimal_2_1_0_shape(report: Any) -> None:
    doc = json.loads(render_impact(report, "sarif"))
    assert doc["version"] == "2.1.0" and "sarif-2.1.0" in doc["$schema"]
    (run,) = doc["runs"]
    rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert run["tool"]["driver"]["name"] == "pdp impact"
    assert len(run["results"]) == 2
    for result in run["results"]:
        assert result["ruleId"] in rules
        assert result["level"] in ("none", "note", "warning", "error")
        assert result["message"]["text"]


def test_markdown_and_text_reports(report: Any) -> None:
    markdown = render_impact(report, "markdown")
    assert markdown.startswith("## Impact of version `0001`")
    assert "| Change | Count | Principal | Action | Policy |" in markdown
    assert "| Allow -> Deny | 2 | `carol` | `s3:GetObject` |" in markdown
    assert "as it was logged" in markdown
    text = render_impact(report, "text")
    assert "Allow -> Deny: 2 x carol s3:GetObject" in text
    with pytest.raises(ValueError, match="format"):
        render_impact(report, "yaml")


# --- the command line, end to end ------------------------------------------------------------


def test_pdp_impact_end_to_end(tmp_path: Path, current: Snapshot) -> None:
    store = tmp_path / "store"
    shutil.copytree(EXAMPLE, store, symlinks=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    write_log(logs / "decisions.jsonl", current, REQUESTS, times=2)
    with (logs / "decisions.jsonl").open("ab") as handle:
        handle.write(b"not json\n")
    nxt = store / "versions" / "0001"
    (nxt / "store.json").write_text(json.dumps({"impact_gate": {"refuse": ["allow_to_deny"]}}))

    def pdp(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pdp.cli", "impact", "--store", str(store), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ,
        )

    result = pdp("--candidate", "0001", "--log", str(logs / "decisions*.jsonl"), "--format", "json")
    assert result.returncode == 3, result.stderr  # its own gate refuses carol's Allow -> Deny
    doc = json.loads(result.stdout)
    assert doc["changes"] == {"allow_to_deny": 2, "deny_to_allow": 0, "reason_change": 2}
    assert doc["not_replayable"]["by_reason"] == {"unparseable": 1}
    assert "decisions.jsonl:9: not JSON" in result.stderr
    assert "impact_gate refuses it" in result.stderr
    # a directory path as the candidate; no gate there; --fail-on
    other = tmp_path / "next"
    shutil.copytree(EXAMPLE / "versions" / "0001", other)
    result = pdp("--candidate", str(other), "--log", str(logs / "decisions.jsonl"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("9 logged lines, 8 replayed against version next")
    result = pdp("--candidate", str(other), "--log", str(logs / "*.jsonl"), "--fail-on",
                 "reason_change", "--format", "markdown")  # fmt: skip
    assert result.returncode == 3 and "| Deny reason changes | 2 | `bob`" in result.stdout
    result = pdp("--candidate", "0009", "--log", str(logs / "*.jsonl"))
    assert result.returncode == 1 and "--candidate 0009" in result.stderr
    result = pdp("--candidate", "0001", "--log", str(tmp_path / "none*.jsonl"))
    assert result.returncode == 1 and "no decision-log file matches" in result.stderr


def test_replay_keeps_only_each_distinct_request_once(
    tmp_path: Path, current: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = write_log(tmp_path / "decisions.jsonl", current, REQUESTS, times=50)
    calls: list[Request] = []
    real = Snapshot.decide_as_of

    def counting(self: Snapshot, request: Request, now: float) -> Any:
        calls.append(request)
        return real(self, request, now)

    monkeypatch.setattr(Snapshot, "decide_as_of", counting)
    report = replay(forward_lines([str(log)]), current)
    assert report.replayed == 200 and len(calls) == 4


@pytest.mark.parametrize(
    "line",
    [
        b"[1, 2]",
        b'"text"',
        b'{"principal": ["x"], "action": "a", "resource": "r", "context": {},'
        b' "decision": "Allow", "reason": "allowed"}',
        b'{"principal": "bob", "action": "a", "resource": "r", "context": {},'
        b' "decision": ["Allow"], "reason": "allowed"}',
        b'{"principal": "bob", "action": "a", "resource": "r", "context": {},'
        b' "decision": "Allow", "reason": "explicitDeny"}',
        b'{"principal": "bob", "action": "s3:GetObject", "resource": "*", "context": {},'
        b' "decision": "Allow", "reason": "allowed"}',  # no time, matched, ...: from_dict refuses
        b'{"principal": "bob", "action": "a", "resource": "r", "context": {},'
        b' "decision": "Allow", "reason": "allowed", "truncated": {"fields": ["principal"]}}',
    ],
)
def test_garbage_lines_are_counted_never_replayed(line: bytes, current: Snapshot) -> None:
    report = replay([("f", 1, line)], current)
    assert report.lines == 1 and report.replayed == 0 and report.skipped == 1
    assert report.named and report.named[0].startswith("f:1: ")


def test_a_failing_check_before_activation_refuses_the_version(tmp_path: Path) -> None:
    from pdp import Authorizer, PolicyLoadError

    store = tmp_path / "store"
    shutil.copytree(EXAMPLE, store, symlinks=True)
    seen: list[tuple[str, str]] = []

    def broken(serving: Snapshot | None, candidate: Snapshot) -> None:
        seen.append((serving.version if serving else "-", candidate.version))
        if serving is not None or candidate.version == "0002":
            raise RuntimeError("disk on fire")

    # the first load is checked too: 0002 refused, the newest older version that passes serves
    authorizer = Authorizer.from_store(store, watch=False, fallback=True, before_activation=broken)
    assert authorizer.version == "0001" and seen == [("-", "0002"), ("-", "0001")]
    assert authorizer.fallback_from == "0002"
    with pytest.raises(PolicyLoadError) as pinned:  # pinned: no fallback, the refusal raised
        Authorizer.from_store(store, version="0002", watch=False, before_activation=broken)
    assert pinned.value.diagnostics[0].code == "activation_check_failed"
    seen.clear()
    with pytest.raises(PolicyLoadError) as refused:
        authorizer.reload(version="0002")
    assert seen == [("0001", "0002")] and authorizer.version == "0001"
    assert refused.value.diagnostics[0].code == "activation_check_failed"
    assert "disk on fire" in refused.value.diagnostics[0].message


@pytest.mark.parametrize("reader", ["forward", "tail"])
def test_a_huge_line_is_read_bounded_and_counted_never_replayed(
    reader: str, tmp_path: Path, current: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line longer than MAX_LINE (a corrupt log, a file with no newline) is never held whole:
    at most MAX_LINE + 1 bytes of it are read, and it is counted `too_long`, with its file."""
    monkeypatch.setattr(impact_module, "MAX_LINE", 200)
    monkeypatch.setattr(impact_module, "_BLOCK", 64)
    good = json.dumps(
        {"principal": "bob", "action": "a", "resource": "r", "context": {}, "x": "y" * 100}
    ).encode()
    path = tmp_path / "log.jsonl"
    path.write_bytes(good + b"\n" + b"z" * 5000 + b"\n" + good + b"\n")
    files = [str(path)]
    lines = list(forward_lines(files) if reader == "forward" else tail_lines(files, 10))
    assert len(lines) == 3 and all(len(raw) <= 201 for _, _, raw in lines), [
        len(r) for _, _, r in lines
    ]
    assert sorted(n for _, n, _ in lines) == ([1, 2, 3] if reader == "forward" else [-3, -2, -1])
    report = replay(lines, current)
    assert report.lines == 3 and report.not_replayable.get("too_long") == 1, report.to_dict()
    assert any("longer than 200 bytes" in n for n in report.named), report.named


def test_the_cli_gate_refuses_a_log_of_nothing_replayable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the server's gate: lines logged, none replayed, so the gate checked nothing (exit 3)."""
    from pdp.cli import main

    store = tmp_path / "store"
    shutil.copytree(EXAMPLE, store, symlinks=True)
    (store / "versions" / "0001" / "store.json").write_text(
        json.dumps({"impact_gate": {"refuse": ["allow_to_deny"]}})
    )
    log = tmp_path / "decisions.jsonl"
    log.write_bytes(b"not json\n")
    argv = ["impact", "--store", str(store), "--candidate", "0001", "--log", str(log)]
    assert main(argv) == 3
    assert "none of the 1 logged lines could be replayed" in capsys.readouterr().err
    log.write_bytes(b"")
    assert main(argv) == 0  # nothing logged: nothing could change
