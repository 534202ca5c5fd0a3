"""Access Advisor: per principal and service, when access was last allowed, and by which policy.

Fed by the decision log's writer thread (never by the request path), kept in a small SQLite
database next to the log, so it survives restarts and is shared by the workers of one server
(SQLite serializes their writes). `report` compares what a principal is granted with what it used.

What may create a row: an Allow event (not root) with a matched Allow statement, for a service
named like an IAM service prefix (lower-case letters, digits and hyphens, at most 64). A statement
that names its services can only match actions of those services, so the row's service is one a
policy granted by name. A wildcard statement (`"Action": "*"`, `"*:Get*"`, NotAction) grants any
name a caller cares to invent, so the table is bounded too: at most `max_per_principal` services
per principal and `max_rows` rows in all, the least recently allowed pruned first. The cap per
principal comes first, so one principal's invented names push out only its own oldest rows.

Beside the service rows, one row per (principal, action) holds when that action was last
allowed (`action_usage`), under the same caps (per principal, and in all), so that `report` can
list the actions a principal is granted and never used. Service names come from the service
authorization reference (pdp.reference): `s3` is "Amazon S3".

Nothing observed is lost to a busy database: a flush that SQLite refuses (another worker, an
operator's shell or a backup holding the lock past `busy_timeout`) rolls back and puts its rows
back, merged with what came since (the later time wins), to be written by the next flush. What
waits is bounded (`_PENDING_MAX` keys of each kind; past that the oldest are dropped and counted
in `lost`). `close()` drains: it retries until `drain_timeout`, and only then counts what it
could not write as `lost`, with an error in the log.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pdp.audit.decision_log import DecisionEvent
from pdp.language import Policy
from pdp.reference import Reference, default_reference

__all__ = ["AccessAdvisor", "granted_actions", "granted_services", "principal_name", "report"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS last_access (
    principal TEXT NOT NULL,
    service TEXT NOT NULL,
    last_allowed REAL NOT NULL,
    action TEXT NOT NULL,
    policy TEXT,
    PRIMARY KEY (principal, service)
)
"""
_UPSERT = """
INSERT INTO last_access (principal, service, last_allowed, action, policy)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (principal, service) DO UPDATE SET
    last_allowed = excluded.last_allowed, action = excluded.action, policy = excluded.policy
WHERE excluded.last_allowed > last_access.last_allowed
"""
_INDEX = "CREATE INDEX IF NOT EXISTS last_access_by_time ON last_access (last_allowed)"
_ACTION_SCHEMA = """
CREATE TABLE IF NOT EXISTS action_access (
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    last_allowed REAL NOT NULL,
    PRIMARY KEY (principal, action)
)
"""
_ACTION_UPSERT = """
INSERT INTO action_access (principal, action, last_allowed) VALUES (?, ?, ?)
ON CONFLICT (principal, action) DO UPDATE SET last_allowed = excluded.last_allowed
WHERE excluded.last_allowed > action_access.last_allowed
"""
_ACTION_INDEX = "CREATE INDEX IF NOT EXISTS action_access_by_time ON action_access (last_allowed)"
_PRUNE_PRINCIPAL_ACTIONS = """
DELETE FROM action_access WHERE principal = ? AND action NOT IN (
    SELECT action FROM action_access WHERE principal = ? ORDER BY last_allowed DESC LIMIT ?)
"""
_PRUNE_OLDEST_ACTIONS = """
DELETE FROM action_access WHERE rowid IN (
    SELECT rowid FROM action_access ORDER BY last_allowed LIMIT ?)
"""
ACTIONS_PER_SERVICE_ROW = 20  # action rows a principal may keep per service row allowed
MAX_EXPANDED = 20_000  # concrete actions a report expands granted patterns to, at most
_PRUNE_PRINCIPAL = """
DELETE FROM last_access WHERE principal = ? AND service NOT IN (
    SELECT service FROM last_access WHERE principal = ? ORDER BY last_allowed DESC LIMIT ?)
"""
_PRUNE_OLDEST = """
DELETE FROM last_access WHERE rowid IN (
    SELECT rowid FROM last_access ORDER BY last_allowed LIMIT ?)
"""
# An IAM service prefix, as in "s3", "ec2", "execute-api" (after lower-casing).
_SERVICE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
_PENDING_MAX = 10_000  # keys kept in memory before a flush is forced


def principal_name(principal: str) -> str:
    """A user ARN and a user name name the same user: key both by name ("root" for root), in
    lower case, since IAM user names ignore case (`BOB`, `bob` and `.../user/Bob` are one user,
    as the decisions treat them: docs/store.md, Principals)."""
    if not principal.isascii():  # no user's name (IAM's are ASCII): kept apart as it is
        return principal
    if principal[:13].lower() == "arn:aws:iam::":
        resource = principal.split(":", 5)[-1]
        if resource.lower() == "root":
            return "root"
        if resource[:5].lower() == "user/":
            return resource.rsplit("/", 1)[-1].lower()
    return principal.lower()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class AccessAdvisor:
    """`AccessAdvisor("decisions.advisor.sqlite")`; `observe(event)` from the log writer."""

    def __init__(
        self,
        path: str,
        *,
        flush_every: float = 1.0,
        max_rows: int = 100_000,
        max_per_principal: int = 500,
        busy_timeout: float = 2.0,
    ) -> None:
        if max_rows < 1 or max_per_principal < 1:
            raise ValueError("max_rows and max_per_principal are at least 1")
        self.path = path
        self.flush_every = flush_every
        self.max_rows = max_rows
        self.max_per_principal = max_per_principal
        self.refused = 0  # Allow events whose service could not be a granted service
        self.pruned = 0  # service rows removed by the caps (by this process)
        self.pruned_actions = 0  # action rows removed by the caps
        self.flush_failures = 0  # flushes SQLite refused (their rows were kept for the next)
        self.lost = 0  # rows never written: over the pending bound, or left at close
        self._db = sqlite3.connect(path, timeout=busy_timeout, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        for statement in (_SCHEMA, _INDEX, _ACTION_SCHEMA, _ACTION_INDEX):
            self._db.execute(statement)
        self._db.commit()
        self._pending: dict[tuple[str, str], tuple[float, str, str | None]] = {}
        self._pending_actions: dict[tuple[str, str], float] = {}
        # Invariant: _lock (pending rows, counters) is never held during SQLite I/O, which can
        # wait up to busy_timeout on a locked database: stats() serves /readyz and /metrics.
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()  # the connection; taken after _lock, never before
        self._last_flush = time.monotonic()

    def observe(self, event: DecisionEvent) -> None:
        """Note an Allow decision event (other events are ignored)."""
        if event.decision != "Allow" or event.root:
            return
        action = event.action
        prefix, colon, _ = action.partition(":")
        service = prefix.lower()
        granted = [m for m in event.matched if m.effect == "Allow"]
        if not (colon and granted and _SERVICE.fullmatch(service)):
            with self._lock:
                self.refused += 1
            return
        stamp = event.time
        key = (principal_name(event.principal), service)
        action_key = (key[0], action.lower())
        with self._lock:
            previous = self._pending.get(key)
            if previous is None or stamp > previous[0]:
                self._pending[key] = (stamp, action, granted[0].policy)
            if stamp > self._pending_actions.get(action_key, 0.0):
                self._pending_actions[action_key] = stamp
            full = len(self._pending) + len(self._pending_actions) >= _PENDING_MAX
        if full or time.monotonic() - self._last_flush >= self.flush_every:
            self.flush()

    def flush(self) -> bool:
        """Write what was observed, then enforce the caps. False when SQLite refused (the rows
        are then back in memory, for the next flush)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            actions, self._pending_actions = self._pending_actions, {}
            self._last_flush = time.monotonic()
        if not pending and not actions:
            return True
        try:
            pruned, pruned_actions = self._write(pending, actions)
        except sqlite3.Error as exc:
            self._restore(pending, actions)
            log.warning("access advisor: cannot write %d row(s) yet: %s", len(pending), exc)
            return False
        with self._lock:
            self.pruned += pruned
            self.pruned_actions += pruned_actions
        return True

    def _restore(
        self,
        pending: dict[tuple[str, str], tuple[float, str, str | None]],
        actions: dict[tuple[str, str], float],
    ) -> None:
        """Put back the rows of a refused flush under what was observed since (later wins),
        keeping at most _PENDING_MAX of each kind (the oldest go, counted in `lost`)."""
        with self._lock:
            self.flush_failures += 1
            for key, row in pending.items():
                newer = self._pending.get(key)
                if newer is None or row[0] > newer[0]:
                    self._pending[key] = row
            for action_key, stamp in actions.items():
                if stamp > self._pending_actions.get(action_key, 0.0):
                    self._pending_actions[action_key] = stamp
            if len(self._pending) > _PENDING_MAX:
                keep = sorted(self._pending.items(), key=lambda kv: kv[1][0])[-_PENDING_MAX:]
                self.lost += len(self._pending) - _PENDING_MAX
                self._pending = dict(keep)
            if len(self._pending_actions) > _PENDING_MAX:
                kept = sorted(self._pending_actions.items(), key=lambda kv: kv[1])[-_PENDING_MAX:]
                self.lost += len(self._pending_actions) - _PENDING_MAX
                self._pending_actions = dict(kept)

    def _write(
        self,
        pending: dict[tuple[str, str], tuple[float, str, str | None]],
        actions: dict[tuple[str, str], float],
    ) -> tuple[int, int]:
        """One transaction: the rows, then the caps; rolled back whole on any SQLite error.
        The rows pruned by the caps (service rows, action rows)."""
        with self._db_lock:
            db = self._db
            try:
                return self._write_rows(db, pending, actions)
            except sqlite3.Error:
                db.rollback()
                raise

    def _write_rows(
        self,
        db: sqlite3.Connection,
        pending: dict[tuple[str, str], tuple[float, str, str | None]],
        actions: dict[tuple[str, str], float],
    ) -> tuple[int, int]:
        db.executemany(_UPSERT, [(p, s, t, a, pol) for (p, s), (t, a, pol) in pending.items()])
        db.executemany(_ACTION_UPSERT, [(p, a, t) for (p, a), t in actions.items()])
        before = db.total_changes
        cap = self.max_per_principal
        principals = {p for p, _ in pending}
        for principal in principals:
            db.execute(_PRUNE_PRINCIPAL, (principal, principal, cap))
        (rows,) = db.execute("SELECT COUNT(*) FROM last_access").fetchone()
        if rows > self.max_rows:
            db.execute(_PRUNE_OLDEST, (rows - self.max_rows,))
        pruned = db.total_changes - before
        before = db.total_changes
        for principal in principals:
            limit = cap * ACTIONS_PER_SERVICE_ROW
            db.execute(_PRUNE_PRINCIPAL_ACTIONS, (principal, principal, limit))
        (rows,) = db.execute("SELECT COUNT(*) FROM action_access").fetchone()
        if rows > self.max_rows:
            db.execute(_PRUNE_OLDEST_ACTIONS, (rows - self.max_rows,))
        pruned_actions = db.total_changes - before
        db.commit()
        return pruned, pruned_actions

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "refused": self.refused,
                "pruned": self.pruned,
                "pending": len(self._pending),
                "flush_failures": self.flush_failures,
                "lost": self.lost,
            }

    def usage(self, principal: str) -> dict[str, dict[str, Any]]:
        """service -> {last_allowed (epoch), action, policy} for one principal."""
        self.flush()
        with self._db_lock:
            rows = self._db.execute(
                "SELECT service, last_allowed, action, policy FROM last_access WHERE principal = ?",
                (principal_name(principal),),
            ).fetchall()
        return {s: {"last_allowed": t, "action": a, "policy": p} for s, t, a, p in rows}

    def action_usage(self, principal: str) -> dict[str, float]:
        """action (lower case) -> when it was last allowed (epoch), for one principal."""
        self.flush()
        with self._db_lock:
            rows = self._db.execute(
                "SELECT action, last_allowed FROM action_access WHERE principal = ?",
                (principal_name(principal),),
            ).fetchall()
        return {a: t for a, t in rows}

    def last_activity(self) -> dict[str, float]:
        """principal -> the last time anything was allowed to it."""
        self.flush()
        with self._db_lock:
            rows = self._db.execute(
                "SELECT principal, MAX(last_allowed) FROM last_access GROUP BY principal"
            ).fetchall()
        return {p: t for p, t in rows}

    def close(self, drain_timeout: float = 10.0) -> bool:
        """Write every pending row, retrying a refused flush until `drain_timeout` seconds have
        passed; what is still pending then is counted in `lost` and logged. True if all was
        written."""
        deadline = time.monotonic() + drain_timeout
        written = self.flush()
        while not written and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            written = self.flush()
        if not written:
            with self._lock:
                left = len(self._pending) + len(self._pending_actions)
                self.lost += left
                self._pending, self._pending_actions = {}, {}
            log.error("access advisor: %d row(s) not written at close (database busy)", left)
        with self._db_lock:
            self._db.close()
        return written


def granted_services(policies: Iterable[Policy]) -> set[str]:
    """Service prefixes that Allow statements can grant; "*" when any service could match."""
    out: set[str] = set()
    for policy in policies:
        for statement in policy.statements:
            if statement.deny:
                continue
            if statement.services is None:
                out.add("*")
            else:
                out.update(statement.services)
    return out


def granted_actions(
    policies: Iterable[Policy], reference: Reference, limit: int = MAX_EXPANDED
) -> tuple[set[str], list[str], bool]:
    """The concrete actions (`s3:GetObject`) that Allow statements' Action patterns name, at
    most `limit`; the patterns not expanded (a wildcard in the service part, NotAction: they
    would name every service); whether the limit cut the expansion."""
    out: set[str] = set()
    skipped: set[str] = set()
    for policy in policies:
        raw = policy.document.get("Statement")
        for stmt in [raw] if isinstance(raw, dict) else list(raw or []):
            if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
                continue
            if "NotAction" in stmt:
                skipped.add("NotAction")
                continue
            value = stmt.get("Action")
            for pattern in [value] if isinstance(value, str) else list(value or []):
                service = pattern.partition(":")[0]
                if pattern == "*" or "*" in service or "?" in service:
                    skipped.add(pattern)
                    continue
                for action in reference.actions_matching(pattern, limit=limit + 1):
                    out.add(action.full_name)
                    if len(out) > limit:
                        return out, sorted(skipped), True
    return out, sorted(skipped), False


def report(
    principal: str,
    policies: Iterable[Policy],
    usage: dict[str, dict[str, Any]],
    *,
    days: int = 90,
    now: float | None = None,
    action_usage: dict[str, float] | None = None,
    reference: Reference | None = None,
) -> dict[str, Any]:
    """Services granted vs. used, with last-used times and what went unused for `days` days;
    with `action_usage` (AccessAdvisor.action_usage) also the concrete actions granted and
    not used in that time."""
    now = time.time() if now is None else now
    cutoff = now - days * 86400
    policies = list(policies)
    ref = reference or default_reference()
    granted = granted_services(policies)
    used = [
        {
            "service": service,
            "service_name": ref.service_name(service),
            "last_allowed": _iso(info["last_allowed"]),
            "action": info["action"],
            "policy": info["policy"],
            "recent": info["last_allowed"] >= cutoff,
        }
        for service, info in sorted(usage.items())
    ]
    recent = {u["service"] for u in used if u["recent"]}
    unused = sorted(s for s in granted if s != "*" and s not in recent)
    answer: dict[str, Any] = {
        "principal": principal_name(principal),
        "days": days,
        "services_granted": sorted(granted),
        "services_used": used,
        "unused_for_days": unused,
        "service_names": {s: ref.service_name(s) for s in sorted(granted | set(usage)) if s != "*"},
    }
    if action_usage is not None:
        actions, skipped, truncated = granted_actions(policies, ref)
        recent_actions = {a for a, t in action_usage.items() if t >= cutoff}
        answer["actions_used"] = [
            {"action": a, "last_allowed": _iso(t), "recent": t >= cutoff}
            for a, t in sorted(action_usage.items())
        ]
        answer["actions_unused_for_days"] = sorted(
            a for a in actions if a.lower() not in recent_actions
        )
        answer["actions_expansion"] = {
            "granted": len(actions),
            "not_expanded": skipped,
            "truncated": truncated,
        }
    if "*" in granted:
        answer["note"] = (
            "a wildcard or NotAction statement grants every service; only the services listed"
            " as used were needed"
        )
    return answer
