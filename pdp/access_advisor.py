"""Access Advisor: per principal and service, when access was last allowed, and by which policy.

Fed by the decision log's writer thread (never by the request path), kept in a small SQLite
database next to the log, so it survives restarts and is shared by the workers of one server
(SQLite serializes their writes). `report` compares what a principal is granted with what it used.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pdp.policy import Policy

__all__ = ["AccessAdvisor", "granted_services", "principal_name", "report"]

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


def principal_name(principal: str) -> str:
    """A user ARN and a user name name the same user: key both by name ("root" for root)."""
    if principal.startswith("arn:aws:iam::"):
        resource = principal.split(":", 5)[-1]
        if resource == "root":
            return "root"
        if resource.startswith("user/"):
            return resource.rsplit("/", 1)[-1]
    return principal


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class AccessAdvisor:
    """`AccessAdvisor("decisions.advisor.sqlite")`; `observe(event)` from the log writer."""

    def __init__(self, path: str, *, flush_every: float = 1.0) -> None:
        self.path = path
        self.flush_every = flush_every
        self._db = sqlite3.connect(path, timeout=10, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()
        self._pending: dict[tuple[str, str], tuple[float, str, str | None]] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def observe(self, event: dict[str, Any]) -> None:
        """Note an Allow decision event (other events are ignored)."""
        if event.get("decision") != "Allow" or event.get("root"):
            return
        action = str(event.get("action", ""))
        service = action.partition(":")[0].lower()
        stamp = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")).timestamp()
        matched = event.get("matched") or [{}]
        key = (principal_name(str(event.get("principal", ""))), service)
        with self._lock:
            previous = self._pending.get(key)
            if previous is None or stamp > previous[0]:
                self._pending[key] = (stamp, action, matched[0].get("policy"))
        if time.monotonic() - self._last_flush >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
            if pending:
                self._db.executemany(
                    _UPSERT, [(p, s, t, a, pol) for (p, s), (t, a, pol) in pending.items()]
                )
                self._db.commit()

    def usage(self, principal: str) -> dict[str, dict[str, Any]]:
        """service -> {last_allowed (epoch), action, policy} for one principal."""
        self.flush()
        with self._lock:
            rows = self._db.execute(
                "SELECT service, last_allowed, action, policy FROM last_access WHERE principal = ?",
                (principal_name(principal),),
            ).fetchall()
        return {s: {"last_allowed": t, "action": a, "policy": p} for s, t, a, p in rows}

    def last_activity(self) -> dict[str, float]:
        """principal -> the last time anything was allowed to it."""
        self.flush()
        with self._lock:
            rows = self._db.execute(
                "SELECT principal, MAX(last_allowed) FROM last_access GROUP BY principal"
            ).fetchall()
        return {p: t for p, t in rows}

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._db.close()


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


def report(
    principal: str,
    policies: Iterable[Policy],
    usage: dict[str, dict[str, Any]],
    *,
    days: int = 90,
    now: float | None = None,
) -> dict[str, Any]:
    """Services granted vs. used, with last-used times and what went unused for `days` days."""
    now = time.time() if now is None else now
    cutoff = now - days * 86400
    granted = granted_services(policies)
    used = [
        {
            "service": service,
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
    }
    if "*" in granted:
        answer["note"] = (
            "a wildcard or NotAction statement grants every service; only the services listed"
            " as used were needed"
        )
    return answer
