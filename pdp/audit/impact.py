"""What-if: the decisions of the decision log replayed against a candidate version.

`replay(lines, candidate)` decides every logged request again on the candidate `Snapshot` and
counts each whose decision would change: `allow_to_deny`, `deny_to_allow`, or `reason_change`
(explicitDeny <-> implicitDeny), grouped by (change, principal, action, policy) with counts and
the first few examples. The baseline is the decision *as logged* (its `decision` and `reason`),
not a decision of the version serving now; with `baseline=` a snapshot is decided instead.

Fast: each line is parsed once (orjson) and keyed by what the request was (principal, its type,
action, resource, context, session); each distinct request is decided once, its first line read
whole by `DecisionEvent.from_dict`, the later ones only for the request and the decision. A
request whose decision reads the clock (aws:CurrentTime, aws:EpochTime) is decided "as of" each
line's logged time (`Snapshot.decide_as_of`), once per distinct second.

Never silently dropped: a line that cannot be replayed is counted by why and the first few are
named (file and line): unparseable JSON, a line over MAX_LINE bytes (read bounded), not a
decision event, a request the log cut
(`truncated` naming its context, principal, action, resource or session, or more fields than it
names), a role session with inline session policies (the log keeps their count, not the
documents), a clock-reading request whose time does not parse.

Bounded: `max_lines` (the gate reads the newest lines only: `tail_lines`), a `deadline`
(time.monotonic()), at most `max_groups` groups (further changes counted, not grouped), the
table of distinct requests cleared when it holds `max_distinct`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from pdp.model import Decision, Request, Session
from pdp.store import CHANGE_KINDS, Snapshot

from .decision_log import DecisionEvent, LoggedSession

__all__ = [
    "ChangeGroup",
    "ImpactReport",
    "change_kind",
    "forward_lines",
    "render_impact",
    "replay",
    "tail_lines",
]

Line = tuple[str, int, bytes]  # (file, line number (negative: counted from the end), bytes)
Violates = Callable[[str, str, str, str], bool]

_VALID = frozenset({("Allow", "allowed"), ("Deny", "explicitDeny"), ("Deny", "implicitDeny")})
_REPLAYABLE_CUTS = ("errors", "matched", "request_id")  # cut fields a replay does not read
MAX_NAMED = 20  # lines not replayable named in a report
MAX_VIOLATIONS_SHOWN = 5
MAX_LINE = 16 << 20  # bytes of one line read at most (a longer one is counted `too_long`)
_BLOCK = 1 << 20


@dataclass(slots=True)
class ChangeGroup:
    """The changes of one (kind, principal, action, policy): how many, and the first few."""

    kind: str
    principal: str
    action: str
    policy: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.kind,
            "principal": self.principal,
            "action": self.action,
            "policy": self.policy,
            "count": self.count,
            "examples": self.examples,
        }


@dataclass(slots=True)
class ImpactReport:
    """What a replay found; `to_dict()` is the JSON report."""

    candidate: str
    baseline: str
    files: list[str] = field(default_factory=list)
    lines: int = 0
    replayed: int = 0
    unchanged: int = 0
    distinct: int = 0
    changes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGE_KINDS, 0))
    groups: dict[tuple[str, str, str, str], ChangeGroup] = field(default_factory=dict)
    ungrouped: int = 0
    not_replayable: dict[str, int] = field(default_factory=dict)
    named: list[str] = field(default_factory=list)
    violations: int = 0
    violation_examples: list[dict[str, Any]] = field(default_factory=list)
    stopped: str | None = None
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return sum(self.changes.values())

    @property
    def skipped(self) -> int:
        return sum(self.not_replayable.values())

    def sorted_groups(self) -> list[ChangeGroup]:
        """Largest first, then by kind, principal, action, policy."""
        return sorted(
            self.groups.values(),
            key=lambda g: (-g.count, g.kind, g.principal, g.action, g.policy),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "baseline": self.baseline,
            "compared_with": _baseline(self),
            "files": self.files,
            "lines": self.lines,
            "replayed": self.replayed,
            "distinct_requests": self.distinct,
            "unchanged": self.unchanged,
            "changed": self.changed,
            "changes": dict(self.changes),
            "groups": [g.to_dict() for g in self.sorted_groups()],
            "ungrouped": self.ungrouped,
            "not_replayable": {"count": self.skipped, "by_reason": dict(self.not_replayable)},
            "not_replayable_lines": self.named,
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
        }


def change_kind(old: tuple[str, str], new: tuple[str, str]) -> str | None:
    """allow_to_deny, deny_to_allow, reason_change, or None when the decision is the same."""
    if old == new:
        return None
    if old[0] != new[0]:
        return "allow_to_deny" if old[0] == "Allow" else "deny_to_allow"
    return "reason_change"


# --- reading the log -------------------------------------------------------------------------


def forward_lines(paths: Iterable[str]) -> Iterator[Line]:
    """Every line of each file, in order, streamed; of a line longer than MAX_LINE only its
    first MAX_LINE + 1 bytes (no newline: the replay counts it `too_long`)."""
    limit = MAX_LINE
    for path in paths:
        with open(path, "rb") as handle:
            number = 0
            while raw := handle.readline(limit + 1):
                number += 1
                if len(raw) > limit and not raw.endswith(b"\n"):
                    _skip_rest(handle, limit)
                yield path, number, raw


def _skip_rest(handle: Any, limit: int) -> None:
    """Read on, bounded, past the end of a line too long to keep."""
    while more := handle.readline(limit + 1):
        if more.endswith(b"\n"):
            return


def tail_lines(paths: list[str], limit: int) -> Iterator[Line]:
    """At most `limit` lines, the newest first: the files from the last, each read backwards
    by blocks (a line number is then negative: -1 is a file's last line)."""
    left = limit
    for path in reversed(paths):
        for number, raw in _backwards(path):
            if left <= 0:
                return
            left -= 1
            yield path, number, raw


def _backwards(path: str) -> Iterator[tuple[int, bytes]]:
    """The lines backwards; of a line longer than MAX_LINE only its last MAX_LINE + 1 bytes
    are kept while reading on (the replay counts it `too_long`)."""
    limit = MAX_LINE
    with open(path, "rb") as handle:
        position = handle.seek(0, os.SEEK_END)
        rest = b""
        count = 0
        while position > 0:
            size = min(_BLOCK, position)
            position -= size
            handle.seek(position)
            parts = (handle.read(size) + rest).split(b"\n")
            rest = parts[0]
            if len(rest) > limit:
                rest = rest[-(limit + 1) :]  # still too long: flagged when yielded
            for raw in reversed(parts[1:]):
                if raw:
                    count += 1
                    yield -count, raw[-(limit + 1) :]
        if rest:
            yield -(count + 1), rest


# --- the replay ------------------------------------------------------------------------------


class _Outcome:
    """A distinct request: its request, and its replayed decision (and the baseline's)."""

    __slots__ = ("request", "new", "old", "clock", "at")

    def __init__(self, request: Request, new: Decision, old: Decision | None, clock: bool) -> None:
        self.request = request
        self.new = new
        self.old = old
        self.clock = clock  # the decision read the clock: decided again for each second
        self.at: dict[int, tuple[Decision, Decision | None]] = {}


class _Replay:
    def __init__(
        self,
        candidate: Snapshot,
        baseline: Snapshot | None,
        report: ImpactReport,
        examples: int,
        max_groups: int,
        max_distinct: int,
        violates: Violates | None,
    ) -> None:
        self.candidate = candidate
        self.baseline = baseline
        self.report = report
        self.examples = examples
        self.max_groups = max_groups
        self.max_distinct = max_distinct
        self.violates = violates
        self.table: dict[tuple[Any, ...], _Outcome] = {}

    def skip(self, path: str, number: int, why: str, reason: str) -> None:
        counts = self.report.not_replayable
        counts[reason] = counts.get(reason, 0) + 1
        if len(self.report.named) < MAX_NAMED:
            where = f"{path}:{number}" if number > 0 else f"{path}:{-number} from the end"
            self.report.named.append(f"{where}: {why}")

    def first(self, event: dict[str, Any]) -> tuple[_Outcome | None, str, str]:
        """Decide a request seen for the first time; (None, why, reason) when it cannot be."""
        try:
            logged = DecisionEvent.from_dict(event)
        except ValueError as exc:
            return None, f"not a decision event: {exc}", "not_an_event"
        session = None
        if logged.session is not None:
            if logged.session.policies:
                why = (
                    f"its role session had {logged.session.policies} inline session"
                    " policies: the log keeps their count, not the documents"
                )
                return None, why, "session_policies"
            try:
                session = _session(logged.session)
            except Exception as exc:
                return None, f"its session cannot be rebuilt: {exc}", "not_an_event"
        request = Request(
            logged.principal,
            logged.action,
            logged.resource,
            dict(logged.context),
            principal_type=logged.principal_type,
            session=session,
        )
        new, clock = self.candidate.decide_as_of(request, logged.time)
        old = None
        if self.baseline is not None:
            old, read = self.baseline.decide_as_of(request, logged.time)
            clock = clock or read
        return _Outcome(request, new, old, clock), "", ""

    def at(self, outcome: _Outcome, stamp: Any) -> tuple[Decision, Decision | None]:
        """A clock-reading request decided as of a line's time (once per second)."""
        now = _epoch(stamp)
        second = int(now)
        found = outcome.at.get(second)
        if found is None:
            if len(outcome.at) >= 4096:
                outcome.at.clear()
            new, _ = self.candidate.decide_as_of(outcome.request, now)
            old = None
            if self.baseline is not None:
                old, _ = self.baseline.decide_as_of(outcome.request, now)
            found = outcome.at[second] = (new, old)
        return found

    def change(
        self,
        kind: str,
        path: str,
        number: int,
        event: dict[str, Any],
        old: tuple[str, str],
        new: Decision,
        baseline: Decision | None,
    ) -> None:
        report = self.report
        report.changes[kind] += 1
        principal, action = event["principal"], event["action"]
        policy = _policy(new, baseline, event)
        example: dict[str, Any] | None = None
        key = (kind, principal, action, policy)
        group = report.groups.get(key)
        if group is None:
            if len(report.groups) >= self.max_groups:
                report.ungrouped += 1
            else:
                group = report.groups[key] = ChangeGroup(kind, principal, action, policy)
        if group is not None:
            group.count += 1
            if len(group.examples) < self.examples:
                example = _example(path, number, event, old, new)
                group.examples.append(example)
        violates = self.violates
        if violates is not None and violates(kind, principal, action, event["resource"]):
            report.violations += 1
            if len(report.violation_examples) < MAX_VIOLATIONS_SHOWN:
                shown = example or _example(path, number, event, old, new)
                report.violation_examples.append({"change": kind, **shown})

    def run(self, lines: Iterable[Line], deadline: float | None) -> None:
        report = self.report
        loads = orjson.loads
        dumps = orjson.dumps
        table = self.table
        valid = _VALID
        limit = MAX_LINE
        counted = 0
        for path, number, raw in lines:
            counted += 1
            if deadline is not None and counted & 1023 == 0 and time.monotonic() > deadline:
                report.stopped = f"the time budget ran out after {counted - 1} lines"
                counted -= 1
                break
            if len(raw) > limit and len(raw.rstrip(b"\r\n")) > limit:
                self.skip(path, number, f"longer than {limit} bytes", "too_long")
                continue
            try:
                event = loads(raw)
                principal = event["principal"]
                ptype = event.get("principal_type", "user")
                action = event["action"]
                resource = event["resource"]
                context = event["context"]
                logged = (event["decision"], event["reason"])
            except orjson.JSONDecodeError:
                if not raw.strip():
                    counted -= 1  # a blank line: nothing was logged there
                    continue
                self.skip(path, number, "not JSON (a torn or corrupt line)", "unparseable")
                continue
            except (KeyError, TypeError, AttributeError) as exc:
                self.skip(path, number, f"not a decision event: lacks {exc}", "not_an_event")
                continue
            if "truncated" in event:
                why = _cut(event["truncated"])
                if why:
                    self.skip(path, number, why, "truncated")
                    continue
            session = event.get("session")
            try:
                key = (
                    principal,
                    ptype,
                    action,
                    resource,
                    dumps(context) if context else b"",
                    b"" if session is None else dumps(session),
                )
                outcome = table.get(key)
                decided = logged in valid
            except TypeError as exc:  # unhashable fields, or JSON orjson refuses
                self.skip(path, number, f"not a decision event: {exc}", "not_an_event")
                continue
            if not decided:
                self.skip(path, number, f"not a decision: {logged!r:.80}", "not_an_event")
                continue
            if outcome is None:
                outcome, why, reason = self.first(event)
                if outcome is None:
                    self.skip(path, number, why, reason)
                    continue
                if len(table) >= self.max_distinct:
                    table.clear()
                table[key] = outcome
                report.distinct += 1
            if outcome.clock:
                try:
                    new, base = self.at(outcome, event["time"])
                except (KeyError, TypeError, ValueError) as exc:
                    why = f"it reads the clock and its time is not ISO 8601: {exc}"
                    self.skip(path, number, why, "bad_time")
                    continue
            else:
                new, base = outcome.new, outcome.old
            report.replayed += 1
            old = logged if base is None else (base.decision, base.reason)
            if new.decision == old[0] and new.reason == old[1]:
                report.unchanged += 1
                continue
            kind = change_kind(old, (new.decision, new.reason))
            assert kind is not None
            self.change(kind, path, number, event, old, new, base)
        report.lines += counted


def replay(
    lines: Iterable[Line],
    candidate: Snapshot,
    *,
    baseline: Snapshot | None = None,
    files: list[str] | None = None,
    deadline: float | None = None,
    examples: int = 3,
    max_groups: int = 1000,
    max_distinct: int = 200_000,
    violates: Violates | None = None,
) -> ImpactReport:
    """Replay logged decisions (`forward_lines(paths)` or `tail_lines(paths, n)`) against
    `candidate`; compare with each line's logged decision, or with `baseline`'s. `violates`
    (an impact gate's predicate) counts the changes that would refuse the candidate."""
    if examples < 0 or max_groups < 0 or max_distinct < 1:
        raise ValueError("examples and max_groups are >= 0, max_distinct >= 1")
    started = time.perf_counter()
    label = "logged" if baseline is None else f"version {baseline.version}"
    report = ImpactReport(candidate.version, label, list(files or []))
    _Replay(candidate, baseline, report, examples, max_groups, max_distinct, violates).run(
        lines, deadline
    )
    report.seconds = time.perf_counter() - started
    return report


def _cut(truncated: Any) -> str | None:
    """Why a logged event the log cut cannot be replayed as if complete, or None when what was
    cut is nothing a decision reads (error messages, matched statements, the request id)."""
    if not isinstance(truncated, Mapping):
        return "its 'truncated' is not an object"
    fields = truncated.get("fields")
    if not isinstance(fields, list) or truncated.get("omitted", 0) != 0:
        return "the log cut more fields than it names"
    if truncated.get("context_bytes") is not None:
        return "the log cut its context"
    for name in fields:
        if not isinstance(name, str) or not name.startswith(_REPLAYABLE_CUTS):
            return f"the log cut {str(name)[:100]}"
    return None


def _session(logged: LoggedSession) -> Session:
    raw: dict[str, Any] = {"tags": dict(logged.tags), "policy_arns": list(logged.policy_arns)}
    if logged.role_chain:
        raw["role_chain"] = list(logged.role_chain)
    if logged.source_identity is not None:
        raw["source_identity"] = logged.source_identity
    if logged.mfa_present is not None:
        raw["mfa_present"] = logged.mfa_present
    if logged.mfa_age is not None:
        raw["mfa_age"] = logged.mfa_age
    return Session.from_dict(raw)


def _epoch(text: Any) -> float:
    if not isinstance(text, str):
        raise TypeError(f"time is not a string: {text!r:.40}")
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _policy(new: Decision, baseline: Decision | None, event: Mapping[str, Any]) -> str:
    """The policies a change comes from: those the replayed decision matched for its effect,
    else those that had decided it (the baseline's, or the logged `matched`), else the layers
    that blocked it."""
    effect = "Allow" if new.decision == "Allow" else "Deny"
    names = {m.policy for m in new.matched if m.effect == effect}
    if not names:
        if baseline is not None:
            names = {m.policy for m in baseline.matched}
        else:
            matched = event.get("matched")
            if isinstance(matched, list):
                names = {m["policy"] for m in matched if isinstance(m, dict) and "policy" in m} - {
                    None
                }
    if names:
        return ", ".join(sorted(str(n) for n in names))
    if new.blocked_by:
        return "(blocked by " + ", ".join(new.blocked_by) + ")"
    return "-"


def _example(
    path: str, number: int, event: Mapping[str, Any], old: tuple[str, str], new: Decision
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "file": path,
        "line": number,
        "time": event.get("time"),
        "principal": event["principal"],
        "action": event["action"],
        "resource": event["resource"],
        "context": event["context"],
        "before": {"decision": old[0], "reason": old[1]},
        "after": {
            "decision": new.decision,
            "reason": new.reason,
            "matched": [m.to_dict() for m in new.matched],
        },
    }
    if event.get("principal_type", "user") != "user":
        out["principal_type"] = event["principal_type"]
    if new.errors:
        out["after"]["errors"] = list(new.errors)
    if new.blocked_by:
        out["after"]["blocked_by"] = list(new.blocked_by)
    return out


# --- reports ---------------------------------------------------------------------------------

_TITLES = {
    "allow_to_deny": "Allow -> Deny",
    "deny_to_allow": "Deny -> Allow",
    "reason_change": "Deny reason changes",
}
_BASELINE_NOTE = (
    "Compared with each decision as it was logged (its decision and reason), not with a"
    " decision of the version serving now."
)


def render_impact(report: ImpactReport, fmt: str = "text") -> str:
    """The report as text, json, markdown or sarif (SARIF 2.1.0)."""
    if fmt == "json":
        return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "markdown":
        return _markdown(report)
    if fmt == "sarif":
        return _sarif(report)
    if fmt == "text":
        return _text(report)
    raise ValueError(f"format: must be text, json, markdown or sarif, not {fmt!r}")


def _baseline(report: ImpactReport) -> str:
    if report.baseline == "logged":
        return _BASELINE_NOTE
    return f"Compared with {report.baseline} deciding the same requests now."


def _summary(report: ImpactReport) -> str:
    parts = ", ".join(f"{report.changes[k]} {_TITLES[k]}" for k in CHANGE_KINDS)
    return (
        f"{report.lines} logged lines, {report.replayed} replayed against version"
        f" {report.candidate} ({report.distinct} distinct requests): {report.changed} would"
        f" change ({parts}); {report.unchanged} unchanged; {report.skipped} not replayable."
    )


def _request(example: Mapping[str, Any]) -> str:
    context = orjson.dumps(example["context"]).decode() if example["context"] else ""
    return (
        f"{example['principal']} {example['action']} {example['resource']}"
        + (f" {context}" if context else "")
        + f" ({example['file']}:{example['line']})"
    )


def _text(report: ImpactReport) -> str:
    out = [_summary(report), _baseline(report)]
    if report.stopped:
        out.append(f"Stopped early: {report.stopped}.")
    for group in report.sorted_groups():
        out.append("")
        out.append(
            f"{_TITLES[group.kind]}: {group.count} x {group.principal} {group.action}"
            f" (policy: {group.policy})"
        )
        for example in group.examples:
            after = example["after"]
            out.append(
                f"  {example['before']['decision']} ({example['before']['reason']}) -> "
                f"{after['decision']} ({after['reason']}): {_request(example)}"
            )
    if report.ungrouped:
        out.append(f"\n{report.ungrouped} more changes past the group limit (counted above).")
    if report.not_replayable:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(report.not_replayable.items()))
        out.append(f"\nNot replayable: {reasons}.")
    return "\n".join(out) + "\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(report: ImpactReport) -> str:
    out = [
        f"## Impact of version `{report.candidate}`",
        "",
        _summary(report),
        "",
        f"_{_baseline(report)}_",
        "",
    ]
    if report.stopped:
        out += [f"**Stopped early**: {report.stopped}.", ""]
    out += ["| Change | Count | Principal | Action | Policy |", "|---|---:|---|---|---|"]
    for group in report.sorted_groups():
        out.append(
            f"| {_TITLES[group.kind]} | {group.count} | `{_cell(group.principal)}` |"
            f" `{_cell(group.action)}` | {_cell(group.policy)} |"
        )
    examples = [(g, e) for g in report.sorted_groups() for e in g.examples]
    if examples:
        out += ["", "<details><summary>Examples</summary>", ""]
        for group, example in examples:
            out.append(f"- {_TITLES[group.kind]}: `{_cell(_request(example))}`")
        out += ["", "</details>"]
    if report.not_replayable:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(report.not_replayable.items()))
        out += ["", f"Not replayable: {reasons}."]
    return "\n".join(out) + "\n"


def _sarif(report: ImpactReport) -> str:
    level = {"deny_to_allow": "error", "allow_to_deny": "warning", "reason_change": "note"}
    results = []
    for group in report.sorted_groups():
        text = (
            f"{_TITLES[group.kind]} for {group.count} logged decision(s) of {group.principal}"
            f" {group.action} (policy: {group.policy})"
        )
        if group.examples:
            text += f"; e.g. {_request(group.examples[0])}"
        results.append(
            {
                "ruleId": group.kind,
                "level": level[group.kind],
                "message": {"text": text},
                "properties": {
                    "count": group.count,
                    "principal": group.principal,
                    "action": group.action,
                    "policy": group.policy,
                },
            }
        )
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pdp impact",
                        "rules": [
                            {"id": k, "shortDescription": {"text": _TITLES[k]}}
                            for k in CHANGE_KINDS
                        ],
                    }
                },
                "results": results,
                "properties": {
                    "candidate": report.candidate,
                    "baseline": report.baseline,
                    "summary": _summary(report),
                },
            }
        ],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
