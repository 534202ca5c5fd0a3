"""A version's impact gate: which changes of the logged decisions refuse its activation.

store.json may say (docs/store.md)::

    "impact_gate": {
        "refuse": ["deny_to_allow"],
        "expected": [{"principal": "alice", "action": "s3:PutObject"}]
    }

Before a server activates such a version (admin reload, the store watcher), it replays its own
decision log against it (`pdp.audit.impact`): a logged decision that would change in a way
`refuse` names (`allow_to_deny`, `deny_to_allow`, `reason_change`), and that no `expected` entry
covers, refuses the version. An entry's `principal`, `action` and `resource` are patterns (`*`
and `?`; the action ignores case; an absent field matches anything) and its optional `change`
narrows it to one kind of change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pdp.language import glob_matcher

__all__ = ["CHANGE_KINDS", "ExpectedChange", "ImpactGate", "gate_problem", "read_gate"]

CHANGE_KINDS = ("allow_to_deny", "deny_to_allow", "reason_change")
MAX_EXPECTED = 1000
MAX_PATTERN = 2048
_EXPECTED_KEYS = ("principal", "action", "resource", "change")


@dataclass(frozen=True, slots=True)
class ExpectedChange:
    """One change the version means to make: patterns of who, what, on what (None: any)."""

    principal: str | None = None
    action: str | None = None
    resource: str | None = None
    change: str | None = None

    def matcher(self) -> Callable[[str, str, str, str], bool]:
        """A predicate (kind, principal, action, resource) -> covered by this entry."""
        who = glob_matcher(self.principal) if self.principal is not None else None
        what = glob_matcher(self.action, ignore_case=True) if self.action is not None else None
        where = glob_matcher(self.resource) if self.resource is not None else None
        change = self.change

        def covers(kind: str, principal: str, action: str, resource: str) -> bool:
            return (
                (change is None or change == kind)
                and (who is None or who(principal))
                and (what is None or what(action))
                and (where is None or where(resource))
            )

        return covers


@dataclass(frozen=True, slots=True)
class ImpactGate:
    """What store.json's `impact_gate` asks: the kinds of change refused, and the expected."""

    refuse: frozenset[str]
    expected: tuple[ExpectedChange, ...] = ()

    def violation(self) -> Callable[[str, str, str, str], bool]:
        """A predicate (kind, principal, action, resource) -> this change refuses the version."""
        covers = [e.matcher() for e in self.expected]
        refuse = self.refuse

        def violates(kind: str, principal: str, action: str, resource: str) -> bool:
            if kind not in refuse:
                return False
            return not any(c(kind, principal, action, resource) for c in covers)

        return violates

    def to_dict(self) -> dict[str, Any]:
        return {
            "refuse": sorted(self.refuse),
            "expected": [
                {k: v for k, v in zip(_EXPECTED_KEYS, _fields(e), strict=True) if v is not None}
                for e in self.expected
            ],
        }


def _fields(entry: ExpectedChange) -> tuple[str | None, ...]:
    return (entry.principal, entry.action, entry.resource, entry.change)


def gate_problem(raw: Any) -> tuple[str, str] | None:
    """(field, why) store.json's `impact_gate` is refused, or None."""
    where = "impact_gate"
    if not isinstance(raw, Mapping):
        return where, "must be an object {refuse: [...], expected: [...]}"
    for key in raw:
        if key not in ("refuse", "expected"):
            return f"{where}.{key}", "unknown field (known: refuse, expected)"
    refuse = raw.get("refuse")
    kinds = ", ".join(CHANGE_KINDS)
    if not isinstance(refuse, list) or not refuse:
        return f"{where}.refuse", f"must be a non-empty list of {kinds}"
    for i, kind in enumerate(refuse):
        if kind not in CHANGE_KINDS:
            return f"{where}.refuse[{i}]", f"must be one of {kinds}"
    expected = raw.get("expected", [])
    if not isinstance(expected, list) or len(expected) > MAX_EXPECTED:
        return f"{where}.expected", f"must be a list of at most {MAX_EXPECTED} objects"
    for i, entry in enumerate(expected):
        here = f"{where}.expected[{i}]"
        if not isinstance(entry, Mapping) or not entry:
            return here, "must be an object with principal, action, resource and/or change"
        for key, value in entry.items():
            if key not in _EXPECTED_KEYS:
                return f"{here}.{key}", f"unknown field (known: {', '.join(_EXPECTED_KEYS)})"
            if key == "change" and value not in CHANGE_KINDS:
                return f"{here}.change", f"must be one of {kinds}"
            if not isinstance(value, str) or not value or len(value) > MAX_PATTERN:
                return f"{here}.{key}", f"must be a pattern of 1 to {MAX_PATTERN} characters"
    return None


def read_gate(raw: Any) -> ImpactGate | None:
    """The gate of a store.json `impact_gate` that `gate_problem` accepted (None: absent)."""
    if raw is None:
        return None
    return ImpactGate(
        frozenset(raw["refuse"]),
        tuple(ExpectedChange(**dict(entry)) for entry in raw.get("expected", [])),
    )
