"""The decision log: one JSON line per decision (the audit trail), written off the request path.

`DecisionLog.record` only puts an event on a queue bounded by count and by bytes; a writer
thread turns events into JSON lines (orjson), writes them to stdout or to a file with size-based
rotation, and feeds the Access Advisor store. When the queue is full (a stalled disk, a FIFO
nobody reads) the event is dropped and counted: a request is never blocked by its log line.
`close()` drains the queue; what it cannot write in time is counted as dropped, never lost
silently.

Bounds, so that no caller can make one event large (each is a keyword of `DecisionLog`):

- `max_value` (1 KiB): a string in the context (or in a list there) is cut to that many
  characters; `max_context` (16 KiB): context entries past that estimated size are left out,
  in the order sent. `principal`, `action`, `resource` and `request_id` are cut at 4,096
  characters (the server refuses longer ones), each error message at `max_value`.
- `queue_bytes` (64 MiB) and `queue_size` (10,000): what is queued, counted by the estimated
  size of each event (the sum of the lengths of its strings; no JSON is built on the request
  path). A context is cut on the request path, so the queue holds what will be logged.
- On stdout every event is one `write(2)` of one complete line of at most PIPE_BUF (4,096)
  bytes, which POSIX makes atomic on a pipe or FIFO: several workers sharing stdout never
  interleave. A longer event first loses what of its context does not fit, then has its
  strings cut to 256 characters and its `matched` and `errors` lists (a session's tags and
  lists too) to 4 entries.
- A role session's `session` (present only when the request had one): cut to AWS's counts
  (50 tags, 10 policy ARNs, 10 chained roles), each string to `max_value`, a tag whose key is
  longer left out; counted in the queue's bytes as the context is.

An event that was cut says so: `"truncated": {"fields": [...], "omitted": n, "context_bytes": n}`
names up to 16 cut or left-out fields (`context.aws:Referer`, `context.tags[2]`, `resource`,
`errors[0]`, `context` when all of it was left out), how many more were not named, and the
estimated size of the context as sent.

Sampling: Allow decisions are kept with probability `allow_sample_rate`; Deny decisions and every
decision involving the account root are always kept.

An event is a `DecisionEvent` (opa's EventV1, in IAM's words); `record(event)` queues it and
its line is `event.to_dict()`::

    {"schema_version": 1, "decision_id", "time", "principal", "action", "resource", "context",
     "decision", "reason", "matched": [...], "errors": [...], "policy_version", "root",
     "latency_us", "request_id"}

plus the optional `truncated`, `unknown_action`, `principal_type`, `layers`/`blocked_by` and
`session` (`LoggedSession`: the session's tags, policy count, policy ARNs, role chain, source
identity and MFA state, never its policy documents), each written only when it says something.

Readers (suggest-policy, the Access Advisor) take lines back with `DecisionEvent.from_dict`,
which checks them; lines written before `schema_version` existed are version 1.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import select
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import IO, Any, ClassVar, Literal, cast

import orjson

from pdp.model import (
    MAX_ROLE_CHAIN,
    MAX_SESSION_POLICY_ARNS,
    MAX_SESSION_TAGS,
    Decision,
    MatchedStatement,
    Session,
)

__all__ = ["DecisionEvent", "DecisionLog", "LoggedSession", "worker_path"]

log = logging.getLogger(__name__)

_STOP = object()
_MAX_FIELD = 4096  # principal, action, resource, request_id: the server's own limit
_PIPE_BUF = select.PIPE_BUF  # POSIX: a write to a pipe of at most this many bytes is atomic
_EVENT_BYTES = 512  # an estimate of the fixed fields of an event and one matched statement
_OBJECT_BYTES = 64  # charged per context key and value on top of its length: CPython's overhead
_LISTED = 16  # fields named in "truncated"
_PATH_CHARS = 100  # a named field is cut to this many characters
_SHORT = 256  # strings of an event that exceeds PIPE_BUF on stdout
_REASONS = ("queue_full", "error", "shutdown")


def worker_path(path: str, pid: int) -> str:
    """One file per worker process ("decisions.jsonl" -> "decisions.w1234.jsonl"): rotation is
    then never shared between processes, which cannot coordinate it safely."""
    stem, ext = os.path.splitext(path)
    return f"{stem}.w{pid}{ext}"


_REASONS_OF = {"Allow": ("allowed",), "Deny": ("explicitDeny", "implicitDeny")}


def _iso(epoch: float) -> str:
    stamp = datetime.fromtimestamp(epoch, UTC)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _epoch(text: str) -> float:
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _field(
    line: Mapping[str, Any], name: str, kinds: type | tuple[type, ...], where: str = ""
) -> Any:
    """`line[name]`, checked to be one of `kinds`; `where` prefixes the name in an error
    ("session." for a field of the event's session)."""
    if name not in line:
        raise ValueError(f"a decision event lacks {where + name!r}")
    value = line[name]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
        raise ValueError(
            f"a decision event's {where + name!r} is not {_names(kinds)}: {value!r:.80}"
        )
    return value


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _names(kinds: type | tuple[type, ...]) -> str:
    return " or ".join("null" if k is type(None) else k.__name__ for k in _tuple(kinds))


def _matched(item: Any, i: int) -> MatchedStatement:
    if not isinstance(item, Mapping):
        raise ValueError(f"a decision event's matched[{i}] is not an object")
    policy = _field(item, "policy", str)
    statement = _field(item, "statement", int)
    sid = _field(item, "sid", (str, type(None)))
    effect = _field(item, "effect", str)
    if effect not in ("Allow", "Deny"):
        raise ValueError(f"a decision event's matched[{i}].effect is not Allow or Deny")
    return MatchedStatement(policy, statement, sid, cast(Literal["Allow", "Deny"], effect))


@dataclass(frozen=True, slots=True)
class LoggedSession:
    """What a role session claimed, as the decision log keeps it: its tags as given, its source
    identity and MFA state (None: not stated), the roles it was chained through, the ARNs of its
    managed session policies, and how many inline session policies it had (their count only:
    the documents are the caller's). Built from a `pdp.model.Session` by `of`."""

    tags: Mapping[str, str]
    policies: int = 0
    policy_arns: tuple[str, ...] = ()
    role_chain: tuple[str, ...] = ()
    source_identity: str | None = None
    mfa_present: bool | None = None
    mfa_age: int | None = None

    @classmethod
    def of(cls, session: Session) -> LoggedSession:
        """References only (the session is immutable): cheap enough for the request path."""
        return cls(
            session.tags,
            len(session.policies),
            session.policy_arns,
            session.role_chain,
            session.source_identity,
            session.mfa_present,
            session.mfa_age,
        )

    def to_dict(self) -> dict[str, Any]:
        """`tags`, `policies` and `policy_arns` always; the others only when set."""
        out: dict[str, Any] = {
            "tags": dict(self.tags),
            "policies": self.policies,
            "policy_arns": list(self.policy_arns),
        }
        if self.role_chain:
            out["role_chain"] = list(self.role_chain)
        if self.source_identity is not None:
            out["source_identity"] = self.source_identity
        if self.mfa_present is not None:
            out["mfa_present"] = self.mfa_present
        if self.mfa_age is not None:
            out["mfa_age"] = self.mfa_age
        return out

    @classmethod
    def from_dict(cls, raw: Any) -> LoggedSession:
        """A logged `session` read back, each field checked: ValueError names the field."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"a decision event's 'session' is not an object: {raw!r:.80}")
        where = "session."
        tags = _field(raw, "tags", dict, where)
        for key, value in tags.items():
            if not isinstance(value, str):
                raise ValueError(f"a decision event's 'session.tags.{key:.80}' is not str")
        policies = _field(raw, "policies", int, where)
        if policies < 0:
            raise ValueError(f"a decision event's 'session.policies' is negative: {policies}")
        mfa_age = _optional(raw, "mfa_age", int)
        if mfa_age is not None and mfa_age < 0:
            raise ValueError(f"a decision event's 'session.mfa_age' is negative: {mfa_age}")
        return cls(
            tags,
            policies,
            _strings(raw, "policy_arns", where, required=True),
            _strings(raw, "role_chain", where),
            _optional(raw, "source_identity", str),
            _optional(raw, "mfa_present", bool),
            mfa_age,
        )


def _optional(raw: Mapping[str, Any], name: str, kind: type) -> Any:
    """A session field written only when set: None when absent, else checked to be `kind`."""
    return _field(raw, name, kind, "session.") if name in raw else None


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    """One decision as the log writes it: one JSON line, `to_dict()`, read back by `from_dict`.

    `time` is seconds since the epoch (written as ISO 8601 UTC with microseconds, "...Z");
    `decision_id` is None until the log writes the event, which then gives it a random 32-hex id
    (uuid4, made off the request path). `truncated` says what the log's bounds cut (None: nothing).
    `schema_version` is `SCHEMA`; a line written before the field existed reads as version 1,
    which had the same fields. The bounds are `DecisionLog`'s: an event holds what it is given.
    """

    SCHEMA: ClassVar[int] = 1

    time: float
    principal: str
    action: str
    resource: str
    context: Mapping[str, Any]
    decision: Literal["Allow", "Deny"]
    reason: Literal["allowed", "explicitDeny", "implicitDeny"]
    matched: tuple[MatchedStatement, ...] = ()
    errors: tuple[str, ...] = ()
    policy_version: str | None = None
    root: bool = False
    latency_us: float = 0.0
    request_id: str | None = None
    decision_id: str | None = None
    truncated: Mapping[str, Any] | None = None
    schema_version: int = 1
    # True when the action is not one of AWS's (pdp.reference): decided as any other action,
    # marked for the audit. Optional in a line (written only when true): still schema 1.
    unknown_action: bool = False
    # The evaluation chain (optional, still schema 1): the principal's type when it is not a
    # user, and for a decision of the chain the layers it consulted and those that denied.
    principal_type: str = "user"
    layers: tuple[str, ...] = ()
    blocked_by: tuple[str, ...] = ()
    # What a role session claimed (optional, still schema 1): only when the request had one.
    session: LoggedSession | None = None

    @classmethod
    def of(
        cls,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None,
        decision: Decision,
        latency_s: float,
        request_id: str | None = None,
        *,
        now: float | None = None,
        unknown_action: bool = False,
        principal_type: str = "user",
        session: Session | None = None,
    ) -> DecisionEvent:
        """The event of one decision of `Authorizer.is_authorized`, now (or at `now`).

        The same event as `DecisionEvent(...)` with those fields, built for the request path:
        each slot is set by its descriptor, since the generated frozen `__init__` (one
        `object.__setattr__` per field) costs about twice as much, some 1.5 us a decision."""
        event = _new(cls)
        _set_time(event, time.time() if now is None else now)
        _set_principal(event, principal)
        _set_action(event, action)
        _set_resource(event, resource)
        _set_context(event, context if context is not None else {})
        _set_decision(event, decision.decision)
        _set_reason(event, decision.reason)
        _set_matched(event, decision.matched)
        _set_errors(event, decision.errors)
        _set_policy_version(event, decision.policy_version)
        _set_root(event, decision.root)
        _set_latency_us(event, round(latency_s * 1e6, 1))
        _set_request_id(event, request_id)
        _set_decision_id(event, None)
        _set_truncated(event, None)
        _set_schema_version(event, cls.SCHEMA)
        _set_unknown_action(event, unknown_action)
        _set_principal_type(event, principal_type)
        _set_layers(event, decision.layers)
        _set_blocked_by(event, decision.blocked_by)
        _set_session(event, None if session is None else LoggedSession.of(session))
        return event

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the log line (`truncated` only when something was cut)."""
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "decision_id": self.decision_id,
            "time": _iso(self.time),
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "context": dict(self.context),
            "decision": self.decision,
            "reason": self.reason,
            "matched": [m.to_dict() for m in self.matched],
            "errors": list(self.errors),
            "policy_version": self.policy_version,
            "root": self.root,
            "latency_us": self.latency_us,
            "request_id": self.request_id,
        }
        if self.truncated is not None:
            out["truncated"] = dict(self.truncated)
        if self.unknown_action:
            out["unknown_action"] = True
        if self.principal_type != "user":
            out["principal_type"] = self.principal_type
        if self.layers:
            out["layers"] = list(self.layers)
            out["blocked_by"] = list(self.blocked_by)
        if self.session is not None:
            out["session"] = self.session.to_dict()
        return out

    @classmethod
    def from_dict(cls, line: Mapping[str, Any]) -> DecisionEvent:
        """A logged line read back, checked: ValueError names what is wrong. A line without
        `schema_version` is version 1; a newer version than `SCHEMA` is refused, not guessed."""
        if not isinstance(line, Mapping):
            raise ValueError("a decision event is a JSON object")
        version = line.get("schema_version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"a decision event's schema_version is not a version: {version!r}")
        if version > cls.SCHEMA:
            raise ValueError(
                f"decision event schema_version {version} is newer than this reader's "
                f"({cls.SCHEMA}): upgrade pdp to read it"
            )
        decision = _field(line, "decision", str)
        reason = _field(line, "reason", str)
        if reason not in _REASONS_OF.get(decision, ()):
            raise ValueError(f"a decision event's reason does not fit: {decision} {reason}")
        stamp = _field(line, "time", str)
        try:
            epoch = _epoch(stamp)
        except ValueError:
            raise ValueError(f"a decision event's time is not ISO 8601: {stamp!r:.80}") from None
        matched = _field(line, "matched", list)
        errors = _field(line, "errors", list)
        if not all(isinstance(e, str) for e in errors):
            raise ValueError("a decision event's errors are strings")
        return cls(
            epoch,
            _field(line, "principal", str),
            _field(line, "action", str),
            _field(line, "resource", str),
            _field(line, "context", dict),
            cast(Literal["Allow", "Deny"], decision),
            cast(Literal["allowed", "explicitDeny", "implicitDeny"], reason),
            tuple(_matched(m, i) for i, m in enumerate(matched)),
            tuple(errors),
            _field(line, "policy_version", (str, type(None))),
            _field(line, "root", bool),
            float(_field(line, "latency_us", (int, float))),
            _field(line, "request_id", (str, type(None))) if "request_id" in line else None,
            _field(line, "decision_id", (str, type(None))),
            _field(line, "truncated", dict) if "truncated" in line else None,
            version,
            _field(line, "unknown_action", bool) if "unknown_action" in line else False,
            _field(line, "principal_type", str) if "principal_type" in line else "user",
            _strings(line, "layers"),
            _strings(line, "blocked_by"),
            LoggedSession.from_dict(line["session"]) if "session" in line else None,
        )


def _setter(name: str) -> Callable[[DecisionEvent, Any], None]:
    """The slot descriptor's setter of one field: what `DecisionEvent.of` builds with."""
    setter: Callable[[DecisionEvent, Any], None] = vars(DecisionEvent)[name].__set__
    return setter


_new = object.__new__
_set_time = _setter("time")
_set_principal = _setter("principal")
_set_action = _setter("action")
_set_resource = _setter("resource")
_set_context = _setter("context")
_set_decision = _setter("decision")
_set_reason = _setter("reason")
_set_matched = _setter("matched")
_set_errors = _setter("errors")
_set_policy_version = _setter("policy_version")
_set_root = _setter("root")
_set_latency_us = _setter("latency_us")
_set_request_id = _setter("request_id")
_set_decision_id = _setter("decision_id")
_set_truncated = _setter("truncated")
_set_schema_version = _setter("schema_version")
_set_unknown_action = _setter("unknown_action")
_set_principal_type = _setter("principal_type")
_set_layers = _setter("layers")
_set_blocked_by = _setter("blocked_by")
_set_session = _setter("session")


def _strings(
    line: Mapping[str, Any], name: str, where: str = "", *, required: bool = False
) -> tuple[str, ...]:
    """A list of strings (a chain decision's layers, blocked_by; a session's ARNs), optional
    unless `required`."""
    if name not in line and not required:
        return ()
    items = _field(line, name, list, where)
    if not all(isinstance(i, str) for i in items):
        raise ValueError(f"a decision event's {where}{name} are strings")
    return tuple(items)


# --- bounding an event ---------------------------------------------------------------------


class _Cuts:
    """What was cut from one event: the first few field names, and how many in all."""

    __slots__ = ("context_bytes", "fields", "omitted")

    def __init__(self) -> None:
        self.fields: list[str] = []
        self.omitted = 0
        self.context_bytes: int | None = None

    def add(self, path: str) -> None:
        if len(self.fields) < _LISTED:
            self.fields.append(path if len(path) <= _PATH_CHARS else path[: _PATH_CHARS - 1] + "…")
        else:
            self.omitted += 1

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fields": self.fields, "omitted": self.omitted}
        if self.context_bytes is not None:
            out["context_bytes"] = self.context_bytes
        return out


class _Size:
    """About the JSON size of a context, how many Python objects hold it, and whether a string
    in it (or a key) is longer than max_value."""

    __slots__ = ("json", "objects", "over")

    def __init__(self) -> None:
        self.json = 2
        self.objects = 1
        self.over = False

    @property
    def memory(self) -> int:
        """About what the objects take in memory (a short str is some 50 bytes in CPython)."""
        return self.json + _OBJECT_BYTES * self.objects


def _add_value(value: Any, max_value: int, size: _Size) -> None:
    size.objects += 1
    if isinstance(value, str):
        n = len(value)
        size.json += (n if value.isascii() else 4 * n) + 3  # UTF-8 and CPython: <= 4 per char
        size.over = size.over or n > max_value
    elif isinstance(value, list | tuple):
        size.json += 2
        for item in value:
            _add_value(item, max_value, size)
    elif isinstance(value, Mapping):
        _add_context(value, max_value, size)
    else:
        size.json += 8


def _add_context(context: Mapping[str, Any], max_value: int, size: _Size) -> None:
    for key, value in context.items():
        n = len(str(key))
        size.json += n + 3
        size.objects += 1
        size.over = size.over or n > max_value
        _add_value(value, max_value, size)


def _bytes(text: str) -> int:
    """What a string may hold in memory and in UTF-8, as the context is counted: 4 per
    character unless it is ASCII (an emoji principal is 4 bytes a character, not 1)."""
    n = len(text)
    return n if text.isascii() else 4 * n


def _context_size(context: Mapping[str, Any], max_value: int) -> _Size:
    # Invariant: cheap, a few additions per value and no JSON; this runs on the request path.
    # Flat string and scalar values (nearly every context) are counted inline.
    size = _Size()
    json, longest = 2, 0
    for key, value in context.items():
        kind = type(value)
        if kind is str:
            n = len(value)
            json += n + 6 if value.isascii() else 4 * n + 6
            if n > longest:
                longest = n
        elif kind is bool or kind is int or kind is float:
            json += 11
        else:
            _add_value(value, max_value, size)
            size.objects -= 1  # the value is counted below with the others
        n = len(key)
        json += n
        if n > longest:
            longest = n
    size.json += json
    size.objects += 2 * len(context)
    size.over = size.over or longest > max_value
    return size


def _cut_value(value: Any, max_value: int, path: str, cuts: _Cuts) -> Any:
    if isinstance(value, str):
        if len(value) > max_value:
            cuts.add(path)
            return value[:max_value]
        return value
    if isinstance(value, list | tuple):
        return [_cut_value(v, max_value, f"{path}[{i}]", cuts) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if len(str(k)) > max_value:
                cuts.add(f"{path}.{k}")
            else:
                out[k] = _cut_value(v, max_value, f"{path}.{k}", cuts)
        return out
    return value


def _cut_context(
    context: Mapping[str, Any], max_value: int, max_context: int, cuts: _Cuts
) -> dict[str, Any]:
    """Each string cut to max_value; entries left out, in order, once max_context is reached."""
    out: dict[str, Any] = {}
    used = 2
    for key, value in context.items():
        name = f"context.{key}"
        if len(str(key)) > max_value:
            cuts.add(name)
            continue
        inner = _Cuts()
        cut = _cut_value(value, max_value, name, inner)
        entry = _Size()
        _add_value(cut, max_value, entry)
        size = entry.json + len(str(key)) + 1
        if used + size > max_context:
            cuts.add(name)
            continue
        for field in inner.fields:  # name what was cut, now that the entry is kept
            cuts.add(field)
        cuts.omitted += inner.omitted
        out[key] = cut
        used += size
    return out


def _session_bytes(session: LoggedSession) -> int:
    """About what a logged session holds in memory, counted as the context is (its strings'
    bytes, and `_OBJECT_BYTES` for each object): it is bounded only as the caller built it."""
    strings = [*session.policy_arns, *session.role_chain]
    if session.source_identity is not None:
        strings.append(session.source_identity)
    for key, value in session.tags.items():
        strings += (str(key), str(value))
    return sum(map(_bytes, strings)) + _OBJECT_BYTES * (len(strings) + 4)


def _cut_session(session: dict[str, Any], n: int, items: int | None, cuts: _Cuts) -> None:
    """Cut a logged session in place: its strings to `n` characters (a tag whose key is longer
    is left out), its tags and lists to `items` entries, or to AWS's limits when None (50 tags,
    10 policy ARNs, 10 chained roles). Each cut is named, as `session.tags.<key>`,
    `session.role_chain[2]`, or `session.tags` for entries left out past the count."""
    tags = session["tags"]
    most = MAX_SESSION_TAGS if items is None else items
    if len(tags) > most:
        tags = dict(list(tags.items())[:most])
        cuts.add("session.tags")
    session["tags"] = _cut_value(tags, n, "session.tags", cuts)
    for name, limit in (("policy_arns", MAX_SESSION_POLICY_ARNS), ("role_chain", MAX_ROLE_CHAIN)):
        values = session.get(name)
        if values is None:
            continue
        most = limit if items is None else items
        if len(values) > most:
            values = values[:most]
            cuts.add(f"session.{name}")
        session[name] = _cut_value(values, n, f"session.{name}", cuts)
    if not session.get("role_chain", True):
        del session["role_chain"]  # written only when not empty
    source = session.get("source_identity")
    if isinstance(source, str) and len(source) > n:
        session["source_identity"] = source[:n]
        cuts.add("session.source_identity")


def _fit_context(event: dict[str, Any], cuts: _Cuts, line: bytes, limit: int) -> None:
    """Keep what of the context fits, its strings cut to 256 characters."""
    context = event["context"]
    budget = limit - (len(line) - len(orjson.dumps(context))) - 600  # room for the names
    if context and budget >= 64:
        event["context"] = _cut_context(context, min(_SHORT, budget), budget, cuts)


def _drop_context(event: dict[str, Any], cuts: _Cuts, line: bytes, limit: int) -> None:
    if event["context"]:
        event["context"] = {}
        cuts.fields = [f for f in cuts.fields if not f.startswith("context.")]
        cuts.add("context")


def _cut_strings(
    event: dict[str, Any], cuts: _Cuts, line: bytes, limit: int, n: int = _SHORT
) -> None:
    for name in ("principal", "action", "resource", "request_id"):
        value = event[name]
        if isinstance(value, str) and len(value) > n:
            event[name] = value[:n]
            cuts.add(name)
    event["errors"] = [
        _cut_value(e, n, f"errors[{i}]", cuts) for i, e in enumerate(event["errors"])
    ]
    if "session" in event:
        _cut_session(event["session"], n, None, cuts)


def _cut_lists(event: dict[str, Any], cuts: _Cuts, line: bytes, limit: int) -> None:
    for name in ("matched", "errors"):
        if len(event[name]) > 4:
            event[name] = event[name][:4]
            cuts.add(name)
    if "session" in event:
        _cut_session(event["session"], _SHORT, 4, cuts)


def _minimal(event: dict[str, Any], cuts: _Cuts, line: bytes, limit: int) -> None:
    """The last resort: who, what and the decision; 64 characters a string, no lists (a
    session keeps its policy count, MFA state and source identity, no tags, ARNs or chain)."""
    _cut_strings(event, cuts, line, limit, 64)
    for name in ("matched", "errors"):
        if event[name]:
            event[name] = []
            cuts.add(name)
    if "session" in event:
        _cut_session(event["session"], 64, 0, cuts)
    cuts.omitted += max(0, len(cuts.fields) - 4)
    del cuts.fields[4:]


_SHRINK_STEPS = (_fit_context, _drop_context, _cut_strings, _cut_lists, _minimal)


def _shrink(event: dict[str, Any], cuts: _Cuts, limit: int) -> bytes:
    """Make a stdout line fit `limit` (PIPE_BUF), one step at a time until it does: the context
    first, then long strings, then the lists. The last step leaves about 2 KiB at most."""
    line = _dumps(event, cuts)
    for step in _SHRINK_STEPS:
        if len(line) <= limit:
            break
        step(event, cuts, line, limit)
        line = _dumps(event, cuts)
    return line


def _dumps(event: dict[str, Any], cuts: _Cuts | None) -> bytes:
    if cuts is not None and (cuts.fields or cuts.context_bytes is not None):
        event["truncated"] = cuts.to_dict()
    return orjson.dumps(event) + b"\n"


def _write_fd(fd: int, line: bytes) -> None:
    """One os.write for a whole line; the loop only runs if the kernel took part of it (a line
    above PIPE_BUF on a pipe, or a signal) or the descriptor is non-blocking and full."""
    view = memoryview(line)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)


class DecisionLog:
    """`DecisionLog("stdout")` or `DecisionLog("/var/log/pdp/decisions.jsonl", max_bytes=...)`."""

    def __init__(
        self,
        destination: str = "stdout",
        *,
        max_bytes: int = 100 << 20,
        backups: int = 10,
        queue_size: int = 10_000,
        queue_bytes: int = 64 << 20,
        max_value: int = 1024,
        max_context: int = 16 << 10,
        allow_sample_rate: float = 1.0,
        on_event: Callable[[DecisionEvent], None] | None = None,
    ) -> None:
        if not 0.0 <= allow_sample_rate <= 1.0:
            raise ValueError("allow_sample_rate is between 0 and 1")
        if max_value < 1 or max_context < 2 or queue_bytes < 1 or backups < 0:
            raise ValueError("max_value, max_context and queue_bytes are positive, backups >= 0")
        self.destination = destination
        self.max_bytes = max_bytes
        self.backups = backups
        self.queue_bytes = queue_bytes
        self.max_value = max_value
        self.max_context = max_context
        self.allow_sample_rate = allow_sample_rate
        self.on_event = on_event
        self.written = 0
        self.sampled_out = 0
        self.truncated = 0
        self.dropped_by_reason = dict.fromkeys(_REASONS, 0)
        # Request threads and the writer share these counts; every change holds the lock.
        self._count_lock = threading.Lock()
        self._queued = 0  # accepted and not yet written or dropped (the writer's one included)
        self._queued_bytes = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._handle: IO[bytes] | None = None
        self._size = 0
        self._closed = False
        self._abandoned = False  # close() gave up on the writer and counted the rest dropped
        self._writer = threading.Thread(target=self._run, name="pdp-decision-log", daemon=True)
        self._writer.start()

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by_reason.values())

    # --- the request path: never blocks ------------------------------------------------------

    def record(self, event: DecisionEvent) -> None:
        """Queue `event` for the writer, or count why not (sampled out, queue full, closed).
        A context past the bounds is cut here, so the queue holds only what will be logged."""
        if (
            event.decision == "Allow"
            and not event.root
            and self.allow_sample_rate < 1.0
            and random.random() >= self.allow_sample_rate
        ):
            with self._count_lock:
                self.sampled_out += 1
            return
        try:
            size, context, cuts = self._measure(event)
            if context is not event.context:
                event = replace(event, context=context)
        except Exception:  # a log failure must never fail the request
            log.exception("decision log: cannot measure an event")
            with self._count_lock:
                self.dropped_by_reason["error"] += 1
            return
        with self._count_lock:
            if self._closed:
                self.dropped_by_reason["shutdown"] += 1
                return
            if self._queued_bytes + size > self.queue_bytes:
                self.dropped_by_reason["queue_full"] += 1
                return
            try:
                self._queue.put_nowait((event, cuts, size))
            except queue.Full:
                self.dropped_by_reason["queue_full"] += 1
                return
            self._queued += 1
            self._queued_bytes += size

    def _measure(self, event: DecisionEvent) -> tuple[int, Mapping[str, Any], _Cuts | None]:
        """The estimated size of the event, and its context cut to the bounds if need be."""
        size = _EVENT_BYTES + _bytes(event.principal) + _bytes(event.action)
        size += _bytes(event.resource) + 128 * len(event.matched)
        if event.request_id:
            size += len(event.request_id)
        if event.errors:
            size += sum(map(_bytes, event.errors))
        if event.session is not None:
            size += _session_bytes(event.session)
        cuts = None
        context = event.context
        if context:
            measured = _context_size(context, self.max_value)
            if measured.over or measured.json > self.max_context:
                cuts = _Cuts()
                cuts.context_bytes = measured.json
                context = _cut_context(context, self.max_value, self.max_context, cuts)
                measured = _context_size(context, self.max_value)
            size += measured.memory
        return size, context, cuts

    # --- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is _STOP:
                self._flush()
                return
            recorded, cuts, size = entry
            outcome = "error"
            event: dict[str, Any] = {}
            try:
                event = recorded.to_dict()
                if event["decision_id"] is None:
                    event["decision_id"] = uuid.uuid4().hex
                cuts = self._bound(event, cuts)
                if self.destination == "stdout":
                    line = _shrink(event, cuts, _PIPE_BUF)
                else:
                    line = _dumps(event, cuts)
                if self._abandoned:
                    return
                self._write(line)
                outcome = "written"
                if self.on_event is not None:
                    self.on_event(DecisionEvent.from_dict(event))  # as logged, bounds and all
            except Exception:  # a log failure must never stop the writer
                log.exception("decision log: cannot write an event")
            finally:
                with self._count_lock:
                    if not self._abandoned:
                        self._queued -= 1
                        self._queued_bytes -= size
                        if outcome == "written":
                            self.written += 1
                            self.truncated += "truncated" in event
                        else:
                            self.dropped_by_reason["error"] += 1
            if self._queue.empty():
                self._flush()

    def _bound(self, event: dict[str, Any], cuts: _Cuts | None) -> _Cuts:
        """Cut what the request path left long: the request's strings, the error messages."""
        cuts = cuts or _Cuts()
        for name in ("principal", "action", "resource", "request_id"):
            value = event[name]
            if isinstance(value, str) and len(value) > _MAX_FIELD:
                event[name] = value[:_MAX_FIELD]
                cuts.add(name)
        errors = event["errors"]
        for i, message in enumerate(errors):
            if len(message) > self.max_value:
                errors[i] = message[: self.max_value]
                cuts.add(f"errors[{i}]")
        session = event.get("session")
        if session is not None:
            _cut_session(session, self.max_value, None, cuts)
        return cuts

    def _open(self) -> IO[bytes]:
        if self._handle is None:
            # Opening a FIFO blocks until a reader comes: that happens here, in the writer.
            self._handle = open(self.destination, "ab")  # noqa: SIM115
            self._size = self._handle.tell()
        return self._handle

    def _write(self, line: bytes) -> None:
        if self.destination == "stdout":
            _write_fd(1, line)  # not sys.stdout.buffer, which may split a line in two writes
            return
        handle = self._open()
        if self._size + len(line) > self.max_bytes > 0:
            self._rotate(len(line))
            handle = self._open()
        handle.write(line)
        self._size += len(line)

    def _reopen_if_moved(self) -> None:
        """Several workers may share one file: when another one rotated it, follow the new file
        (as logging.handlers.WatchedFileHandler does), and learn its size."""
        if self._handle is None:
            return
        try:
            same = os.stat(self.destination).st_ino == os.fstat(self._handle.fileno()).st_ino
        except OSError:
            same = False
        if not same:
            self._handle.close()
            self._handle = None
            self._open()

    def _rotate(self, incoming: int) -> None:
        self._reopen_if_moved()
        if self._handle is not None:
            self._size = self._handle.tell()
            if self._size == 0 or self._size + incoming <= self.max_bytes:
                return  # another worker rotated it already (or one line is larger than it all)
            self._handle.close()
            self._handle = None
        if not os.path.isfile(self.destination):
            return
        for n in range(self.backups - 1, 0, -1):
            older = f"{self.destination}.{n}"
            if os.path.exists(older):
                os.replace(older, f"{self.destination}.{n + 1}")
        if self.backups > 0:
            os.replace(self.destination, f"{self.destination}.1")
        else:
            os.unlink(self.destination)
        self._size = 0

    def _flush(self) -> None:
        if self._handle is not None:
            try:
                self._handle.flush()
                self._reopen_if_moved()
            except OSError:
                log.exception("decision log: flush failed")

    # --- shutdown ----------------------------------------------------------------------------

    def close(self, timeout: float = 10.0, stalled: float = 2.0) -> bool:
        """Write everything queued, then stop. Gives up after `timeout` seconds, or once the
        writer has written nothing for `stalled` seconds (a FIFO nobody reads); what it had not
        written is then counted as dropped ("shutdown") and False is returned."""
        with self._count_lock:
            if self._closed:
                return True
            self._closed = True  # from here on, record() counts instead of queueing
        deadline = time.monotonic() + timeout
        stop_queued = False
        left, moved = self._queued, time.monotonic()
        while self._writer.is_alive():
            now = time.monotonic()
            if self._queued != left:  # an int read: no lock needed to see progress
                left, moved = self._queued, now
            if now > deadline or now - moved > stalled:
                break
            if stop_queued:
                self._writer.join(0.1)
                continue
            try:
                self._queue.put(_STOP, timeout=0.1)
                stop_queued = True
            except queue.Full:
                pass
        done = stop_queued and not self._writer.is_alive()
        if not done:
            with self._count_lock:
                self._abandoned = True
                self.dropped_by_reason["shutdown"] += self._queued
                log.error("decision log: %d queued event(s) not written at close", self._queued)
                self._queued = self._queued_bytes = 0
            return False
        if self._handle is not None:
            self._handle.close()
        return True

    def stats(self) -> dict[str, Any]:
        with self._count_lock:
            return {
                "written": self.written,
                "dropped": self.dropped,
                "dropped_by_reason": dict(self.dropped_by_reason),
                "truncated": self.truncated,
                "sampled_out": self.sampled_out,
                "queued": self._queued,
                "queued_bytes": self._queued_bytes,
            }
