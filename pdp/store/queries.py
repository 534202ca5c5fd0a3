"""Who-can and what-can: the store asked backwards (docs/queries.md, Who-can and what-can).

`who_can` lists the users (and roles; the enabled account roots apart, in `roots`, on the
first page) the forward decision allows an action on a resource (with a given
context). It never guesses: an index built once per snapshot (`QueryIndex`) groups users by
their shared policy set and keeps, per service, only the groups with an Allow statement that
can match that service; every candidate is then confirmed with `Snapshot.is_authorized`, the
forward decision itself. A store with a world (accounts, roles, resource policies) or the
account's change-password grant skips the filter and confirms every user, since something
other than the user's own policies may allow. A candidate the decision denies, but whose
Allow statements for the action and resource carry conditions, is reported apart as
"allowed if" those conditions, never as allowed.

`what_can` lists one user's (or, in a store with roles, one role's: decided as a session of
it) Allow statements as concrete actions (expanded through the service
reference, pdp.reference; a pattern it cannot expand stays a pattern) and resource patterns,
with their conditions, minus the actions an unconditional Deny on every resource removes.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pdp.errors import RequestError
from pdp.language import Policy, RequestContext, check_request
from pdp.model import Decision, Principal
from pdp.reference import default_reference
from pdp.store.snapshot import Snapshot

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_QUERY_SECONDS",
    "MAX_LIMIT",
    "QueryError",
    "QueryIndex",
    "WhatCanResult",
    "WhoCanResult",
    "query_index",
    "what_can",
    "who_can",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_QUERY_SECONDS = 2.0
SESSION_NAME = "pdp-who-can"  # a role is asked about as a session of it
_MAX_EXPANDED = 5000  # concrete actions one what-can answer lists at most
Statement = Any  # a compiled statement of pdp.language (Policy.statements)


class QueryError(ValueError):
    """A who-can or what-can question that cannot be answered as asked (names the field)."""


@dataclass
class WhoCanResult:
    action: str
    resource: str
    allowed: list[dict[str, Any]] = field(default_factory=list)
    allowed_if: list[dict[str, Any]] = field(default_factory=list)
    undecided: list[dict[str, Any]] = field(default_factory=list)  # decisions with errors
    next_page_token: str | None = None
    partial: bool = False  # the deadline passed: the page ends early (next_page_token resumes)
    checked: int = 0  # candidates confirmed with the forward decision
    roots: list[dict[str, Any]] = field(default_factory=list)  # allowed roots (first page)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "resource": self.resource,
            "allowed": self.allowed,
            "allowed_if": self.allowed_if,
            "undecided": self.undecided,
            "next_page_token": self.next_page_token,
            "partial": self.partial,
            "checked": self.checked,
            "roots": self.roots,
        }


@dataclass
class WhatCanResult:
    principal: str
    allowed: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"principal": self.principal, "allowed": self.allowed, "truncated": self.truncated}


class QueryIndex:
    """The distinct Allow statements of the users' policies, each with the users it reaches.

    Users are grouped by their shared policies (equal tuples: pdp/store/index.py shares them),
    users within a group sorted by rank (their place in the sorted list of all users). Each
    distinct Allow statement maps to the groups holding it; per service, the statements that
    can match its actions (those naming it, and those matching any service) are listed once.
    A question scans only those statements, never the users.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        started = time.perf_counter()
        self.version = snapshot.version
        index = snapshot.index
        world = snapshot.world
        # A store of several accounts names its users by ARN (names repeat across accounts);
        # one account's store by name, as its decisions and answers always have.
        if world is not None:
            pairs = sorted(
                ((e.arn, e) for idx in world.indexes.values() for e in idx.users()),
                key=lambda pair: pair[0],
            )
        else:
            pairs = sorted(((e.user.name, e) for e in index.users()), key=lambda pair: pair[0])
        entries = [e for _, e in pairs]
        self._everyone = [name for name, _ in pairs]
        groups: dict[tuple[int, ...], list[int]] = {}
        policies: dict[tuple[int, ...], tuple[Policy, ...]] = {}
        for rank, entry in enumerate(entries):
            key = tuple(id(p) for p in entry.policies)
            groups.setdefault(key, []).append(rank)
            policies.setdefault(key, entry.policies)
        self._groups = list(groups.values())
        reach: dict[int, tuple[Statement, list[int]]] = {}
        for number, key in enumerate(groups):
            for policy in policies[key]:
                for statement in policy.statements:
                    if statement.deny:
                        continue
                    held = reach.get(id(statement))
                    if held is None:
                        reach[id(statement)] = (statement, [number])
                    elif held[1][-1] != number:
                        held[1].append(number)
        self._statements = list(reach.values())
        # something beyond a user's own policies may allow: confirm everyone
        self.confirm_all = snapshot.world is not None
        # roles, by ARN: decided as a session of the role (no session policy, no tags)
        self.role_sessions: dict[str, tuple[str, tuple[Policy, ...]]] = {}
        for role in world.roles.values() if world is not None else ():
            name = f"arn:aws:sts::{role.account}:assumed-role/{role.role.name}/{SESSION_NAME}"
            self.role_sessions[role.arn] = (name, role.identity.policies)
        self.roles = sorted(self.role_sessions)
        # each enabled account root: allowed what no user may be (`WhoCanResult.roots`)
        if world is not None:
            enabled = [a for a, idx in world.indexes.items() if idx.root_enabled]
        else:
            enabled = [index.account] if index.root_enabled else []
        self.roots = sorted(f"arn:aws:iam::{account}:root" for account in enabled)
        self._grant_iam = index.users_change_password
        self._by_service: dict[str, list[tuple[Statement, list[int]]]] = {}
        self._recent: dict[tuple[str, str], list[str]] = {}
        self.build_seconds = time.perf_counter() - started

    @property
    def users(self) -> int:
        return len(self._everyone)

    @property
    def distinct_sets(self) -> int:
        return len(self._groups)

    @property
    def distinct_statements(self) -> int:
        return len(self._statements)

    def _service(self, service: str) -> list[tuple[Statement, list[int]]]:
        found = self._by_service.get(service)
        if found is None:
            found = [
                (s, g) for s, g in self._statements if s.services is None or service in s.services
            ]
            found = self._by_service.setdefault(service, found)
        return found

    def candidates(self, service: str) -> list[str]:
        """The sorted user names whose decision for an action of `service` may be Allow."""
        if self.confirm_all or (self._grant_iam and service == "iam"):
            return self._everyone
        return self._names(g for _, groups in self._service(service) for g in groups)

    def matching(self, action: str, resource: str) -> list[str]:
        """`candidates` narrowed to the users with an Allow statement whose Action and Resource
        can match (conditions ignored, a policy variable in Resource counted as a match): no
        other user can be allowed, or allowed if. Remembered for the last few questions, so
        the pages of one answer cost one scan."""
        service = action.partition(":")[0].lower()
        if self.confirm_all or (self._grant_iam and service == "iam"):
            return self._everyone
        key = (action.lower(), resource)
        found = self._recent.get(key)
        if found is not None:
            return found
        lower = key[0]
        hits: list[int] = []
        for statement, groups in self._service(service):
            if statement.match_action(lower) is statement.not_action:
                continue
            if _resource_can_match(statement, resource):
                hits.extend(groups)
        names = self._names(hits)
        if len(self._recent) >= 64:
            self._recent.pop(next(iter(self._recent)))
        self._recent[key] = names
        return names

    def _names(self, groups: Iterable[int]) -> list[str]:
        everyone, members = self._everyone, self._groups
        ranks = sorted({rank for g in set(groups) for rank in members[g]})
        return [everyone[rank] for rank in ranks]

    def entry_set(self, name: str, snapshot: Snapshot) -> tuple[Policy, ...]:
        found = _user(snapshot, name)
        return found[1].policies if found is not None else ()


def _user(snapshot: Snapshot, name: str) -> tuple[Any, Any] | None:
    """(index, entry) of a user by name or ARN, in any account of the store."""
    if snapshot.world is not None:
        return snapshot.world.resolve_user(name)
    entry = snapshot.index.resolve(name)
    return None if entry is None else (snapshot.index, entry)


_INDEXES: weakref.WeakKeyDictionary[Snapshot, QueryIndex] = weakref.WeakKeyDictionary()


def query_index(snapshot: Snapshot) -> QueryIndex:
    """The snapshot's query index, built on first use and dropped with the snapshot (two
    threads asking first may both build it: equal results, either kept)."""
    found = _INDEXES.get(snapshot)
    if found is None:
        found = _INDEXES.setdefault(snapshot, QueryIndex(snapshot))
    return found


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit: must be a whole number from 1 to {MAX_LIMIT}")
    return limit


def _token(offset: int, version: str) -> str:
    raw = json.dumps({"o": offset, "v": version}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(token: str | None, version: str) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        offset, of = data["o"], data["v"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise QueryError("page_token: not a token this server gave") from exc
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise QueryError("page_token: not a token this server gave")
    if of != version:
        raise QueryError(f"page_token: from store version {of!r}, serving {version!r}: ask again")
    return offset


def _resource_can_match(statement: Statement, resource: str) -> bool:
    """Whether the statement's Resource (or NotResource) can cover `resource` for some user: a
    pattern with a policy variable may match or not (its value is the user's), so it never
    rules a user out, under Resource nor under NotResource; a static NotResource match does."""
    static = bool(statement.match_resource(resource))
    if statement.not_resource:
        return not static
    return static or bool(statement.resource_templates)


def _statement_doc(policy: Policy, number: int) -> Mapping[str, Any]:
    statements = policy.document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    return statements[number] if 0 <= number < len(statements) else {}


def _near(
    policies: tuple[Policy, ...], action: str, resource: str, decision: Decision
) -> dict[str, Any] | None:
    """Why a denied user might be allowed in another context, or None: the Allow statements
    whose Action and Resource match (`allowed_if`: one of their conditions must hold) and, for
    an explicit Deny, the Deny statements that matched (`unless`: their conditions must not
    hold). None when a Deny without conditions matched, or nothing could allow."""
    unless: list[dict[str, Any]] = []
    by_name = {p.name: p for p in policies}
    for ref in decision.matched if decision.reason == "explicitDeny" else ():
        policy = by_name.get(ref.policy)
        doc = _statement_doc(policy, ref.statement) if policy is not None else {}
        if not doc.get("Condition"):
            return None  # denied whatever the context (or by a policy not the user's own)
        unless.append({**ref.to_dict(), "condition": doc["Condition"]})
    if decision.reason == "explicitDeny":
        allows = _matching(policies, action, resource, conditional_only=False)
    else:
        allows = _matching(policies, action, resource, conditional_only=True)
    if not allows:
        return None
    return {"allowed_if": allows, "unless": unless}


def _matching(
    policies: tuple[Policy, ...], action: str, resource: str, *, conditional_only: bool
) -> list[dict[str, Any]]:
    """The Allow statements whose Action and Resource match (only those with conditions or a
    policy variable in Resource, if `conditional_only`)."""
    lower = action.lower()
    out: list[dict[str, Any]] = []
    for policy in policies:
        for statement in policy.statements:
            if statement.deny or statement.match_action(lower) is statement.not_action:
                continue
            if conditional_only and not statement.conditions and not statement.resource_templates:
                continue
            if not _resource_can_match(statement, resource):
                continue
            doc = _statement_doc(policy, statement.ref.statement)
            out.append(
                {
                    **statement.ref.to_dict(),
                    "condition": doc.get("Condition", {}),
                    "resource": doc.get("Resource", doc.get("NotResource")),
                }
            )
    return out


def who_can(
    snapshot: Snapshot,
    action: str,
    resource: str,
    context: Mapping[str, object] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    page_token: str | None = None,
    deadline_seconds: float = DEFAULT_QUERY_SECONDS,
) -> WhoCanResult:
    """The users the forward decision allows `action` on `resource` with `context` (each
    confirmed by `snapshot.is_authorized`), and apart those allowed only if conditions hold."""
    if not isinstance(action, str) or ":" not in action:
        raise QueryError("action: required, service:Action (e.g. s3:GetObject)")
    if not isinstance(resource, str) or not resource:
        raise QueryError("resource: required, an ARN or *")
    limit = _limit(limit)
    try:  # the question itself, once: a bad context is the asker's error, not every user's Deny
        check_request(action, resource)
        RequestContext(Principal.user("who-can", account=snapshot.index.account), context, None)
    except RequestError as exc:
        raise QueryError(str(exc)) from None
    index = query_index(snapshot)
    names = index.matching(action, resource) + index.roles
    offset = _offset(page_token, snapshot.version)
    result = WhoCanResult(action, resource)
    stop = time.monotonic() + deadline_seconds
    if offset == 0:  # the first page: the roots, apart (no user's policies limit them)
        result.roots = _roots(snapshot, index, action, resource, context)
    position = offset
    while position < len(names):
        if len(result.allowed) + len(result.allowed_if) + len(result.undecided) >= limit:
            break
        if time.monotonic() > stop:
            result.partial = True
            break
        name = names[position]
        position += 1
        result.checked += 1
        role = index.role_sessions.get(name)
        if role is None:
            decision = snapshot.is_authorized(name, action, resource, context)
            policies = index.entry_set(name, snapshot)
            who: dict[str, Any] = {"principal": name, "type": "user"}
        else:
            session, policies = role
            decision = snapshot.is_authorized(
                session, action, resource, context, principal_type="role_session"
            )
            who = {"principal": name, "type": "role", "decided_as": session}
        if decision.decision == "Allow":
            result.allowed.append({**who, "matched": [m.to_dict() for m in decision.matched]})
        elif decision.errors:  # not decided: never allowed, nor guessed allowed-if
            result.undecided.append({**who, "errors": list(decision.errors)})
        else:
            near = _near(policies, action, resource, decision)
            if near is not None:
                result.allowed_if.append({**who, **near})
    if position < len(names):
        result.next_page_token = _token(position, snapshot.version)
    return result


def _roots(
    snapshot: Snapshot,
    index: QueryIndex,
    action: str,
    resource: str,
    context: Mapping[str, object] | None,
) -> list[dict[str, Any]]:
    """The enabled account roots the forward decision allows (principal_type "root")."""
    out = []
    for arn in index.roots:
        decision = snapshot.is_authorized(arn, action, resource, context, principal_type="root")
        if decision.decision == "Allow":
            matched = [m.to_dict() for m in decision.matched]
            out.append({"principal": arn, "type": "root", "matched": matched})
    return out


def what_can(
    snapshot: Snapshot,
    principal: str,
    *,
    service: str | None = None,
    resource_pattern: str | None = None,
    limit: int = MAX_LIMIT,
) -> WhatCanResult:
    """One user's (by name or ARN, any account) or role's (by ARN) allowed actions (concrete
    where the reference knows them) and resource patterns, each with its conditions, minus
    what an unconditional Deny on `*` removes; concrete ones confirmed by the decision."""
    limit = _limit(limit)
    found = _user(snapshot, principal) if isinstance(principal, str) else None
    role = None
    if found is None and isinstance(principal, str) and snapshot.world is not None:
        role = snapshot.world.role_by_arn(principal)
    if found is None and role is None:
        raise QueryError(f"principal: no user (or role ARN) {principal!r} in the store")
    wanted = service.lower() if service else None
    reference = default_reference()
    if role is not None:
        policies = role.identity.policies
        name = role.arn
        asked = f"arn:aws:sts::{role.account}:assumed-role/{role.role.name}/{SESSION_NAME}"

        def decide(action: str, resource: str) -> Decision:
            return snapshot.is_authorized(asked, action, resource, principal_type="role_session")
    else:
        entry = found[1]  # type: ignore[index]  # found is set: role is None
        policies = entry.policies
        name = entry.arn if snapshot.world is not None else entry.user.name

        def decide(action: str, resource: str) -> Decision:
            return snapshot.is_authorized(name, action, resource)

    denied = [
        s
        for p in policies
        for s in p.statements
        if s.deny and not s.conditions and not s.not_resource and s.resources.match_all
    ]
    result = WhatCanResult(name)
    for policy in policies:
        for statement in policy.statements:
            if statement.deny:
                continue
            doc = _statement_doc(policy, statement.ref.statement)
            resources = _as_list(doc.get("Resource", doc.get("NotResource", [])))
            if resource_pattern and resource_pattern not in resources and "*" not in resources:
                continue
            for pattern in _as_list(doc.get("Action", doc.get("NotAction", []))):
                if wanted and pattern.partition(":")[0].lower() not in (wanted, "*"):
                    continue
                if "NotAction" in doc:
                    concrete = [f"NotAction {pattern}"]
                else:
                    concrete = _expand(reference, pattern, wanted)
                for action in concrete:
                    if any(d.match_action(action.lower()) is not d.not_action for d in denied):
                        continue
                    kept = _confirmed(decide, action, resources, doc)
                    if not kept:
                        continue  # every concrete resource is denied (a narrower Deny)
                    if len(result.allowed) >= limit:
                        result.truncated = True
                        return result
                    result.allowed.append(
                        {
                            "action": action,
                            "pattern": pattern,  # as the statement wrote it
                            "resources": kept,
                            "not_resource": "NotResource" in doc,
                            "condition": doc.get("Condition", {}),
                            **statement.ref.to_dict(),
                        }
                    )
    return result


def _confirmed(
    decide: Callable[[str, str], Decision],
    action: str,
    resources: list[str],
    doc: Mapping[str, Any],
) -> list[str]:
    """The resources of an unconditional Allow on a concrete action that the forward decision
    (empty context) allows; patterns (wildcards, variables) and conditional or NotResource
    statements are kept as written, since no single request stands for them."""
    if doc.get("Condition") or "NotResource" in doc or "*" in action or "?" in action:
        return resources
    kept = []
    for resource in resources:
        if any(c in resource for c in "*?$"):
            kept.append(resource)
        elif decide(action, resource).decision == "Allow":
            kept.append(resource)
    return kept


def _as_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _expand(reference: Any, pattern: str, service: str | None) -> list[str]:
    if "*" not in pattern and "?" not in pattern:
        return [pattern]
    if service is not None:
        head, _, tail = pattern.partition(":")
        pattern = f"{service}:{tail or '*'}" if head in ("*", "") or not tail else pattern
    found = reference.actions_matching(pattern, limit=_MAX_EXPANDED + 1)
    if len(found) > _MAX_EXPANDED:
        return [pattern]  # too many to list (`*`): the pattern stands for them
    names = [a.full_name for a in found if service is None or a.service.lower() == service]
    return names or [pattern]
