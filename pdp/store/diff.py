"""`pdp diff OLD NEW`: what changed between two store versions, without a decision log.

Two parts. The statement diff compares every policy of the two versions (managed policies,
inline policies of users, groups and roles, SCPs, RCPs, resource policies) statement by
statement, by content and ignoring their order within a policy. The permission diff finds the
principals (the users and roles of every account) whose policies, groups, boundary or tags
changed (a role is decided as a session of it, with no session policy), and
only for them decides, with the real evaluator of each version, every concrete action that a
changed statement can match (patterns expanded with AWS's service reference) on every Resource
literal the principal's statements name for it (and "*"), with an empty context.

Never overstated: a statement with a Condition never counts as granting (an empty context
satisfies no condition), so what a conditional statement could grant or deny is reported as
"conditional", with its conditions, and not as a grant. Changes elsewhere in the version
(SCPs, RCPs, resource policies) make every user affected. The work is bounded by `max_checks`
decisions in all: past it the diff fails (DiffTooLarge) rather than report less than changed.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pdp.errors import PolicyLoadError
from pdp.language import Policy, glob_matcher
from pdp.reference import Reference, default_reference
from pdp.store.activation import build_snapshot
from pdp.store.snapshot import Snapshot
from pdp.store.version import StoreError, StoreVersion, is_version_directory, resolve_version

__all__ = [
    "DEFAULT_MAX_CHECKS",
    "DIFF_FORMATS",
    "DiffFailed",
    "DiffTooLarge",
    "PermissionChange",
    "StatementChange",
    "VersionDiff",
    "diff_snapshots",
    "diff_versions",
    "open_version",
    "render_diff",
    "statement_diff",
]

DEFAULT_MAX_CHECKS = 1_000_000  # decisions in all, over every affected principal
MAX_NOTES = 20  # of each kind of note
SESSION_NAME = "pdp-diff"  # a role is decided as a session of it, with no session policy

Change = Literal["added", "removed", "changed"]
Kind = Literal["grew", "shrank", "conditional"]


class DiffFailed(Exception):
    """A version could not be opened or read: the diff has no answer (never "no changes")."""


class DiffTooLarge(DiffFailed):
    """More decisions than `max_checks` would be needed."""


@dataclass(frozen=True, slots=True)
class StatementChange:
    """One statement added, removed or changed (same Sid, other content) in one policy."""

    policy: str  # where the policy lives: "policies/Admin.json", "users/bob.json#inline"
    change: Change
    name: str  # its Sid, or Statement[i] (its index in the version that has it)
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None

    def to_dict(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "change": self.change,
            "statement": self.name,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True, slots=True)
class PermissionChange:
    """One (action, resource) of one principal whose decision or conditions differ.

    `old` and `new` are "allow" or "deny" (the decision on an empty context), followed by the
    conditional statements that could turn it ("allow if {...}", "deny if {...}"); `kind` is
    grew (denied before, allowed now), shrank (the reverse), or conditional when a condition
    is involved on either side (what it grants depends on the request's context)."""

    principal: str
    service: str
    action: str
    resource: str
    kind: Kind
    old: str
    new: str

    def to_dict(self) -> dict[str, object]:
        return {
            "principal": self.principal,
            "service": self.service,
            "action": self.action,
            "resource": self.resource,
            "kind": self.kind,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True, slots=True)
class VersionDiff:
    old: str
    new: str
    statements: tuple[StatementChange, ...]
    permissions: tuple[PermissionChange, ...]
    principals_compared: int  # principals in either version
    principals_evaluated: int  # those affected, decided again
    checks: int  # decisions made (two a check: one in each version)
    notes: tuple[str, ...] = field(default=())
    undecided: int = 0  # checks the diff could not decide (a policy variable it cannot fill)

    @property
    def changed(self) -> bool:
        return bool(self.statements or self.permissions)

    @property
    def complete(self) -> bool:
        """Whether every check was decided: only then does "no change" mean no change."""
        return self.undecided == 0

    def to_dict(self) -> dict[str, object]:
        return {
            "old": self.old,
            "new": self.new,
            "changed": self.changed,
            "statements": [s.to_dict() for s in self.statements],
            "permissions": [p.to_dict() for p in self.permissions],
            "principals_compared": self.principals_compared,
            "principals_evaluated": self.principals_evaluated,
            "checks": self.checks,
            "notes": list(self.notes),
            "undecided": self.undecided,
        }


# -- opening ---------------------------------------------------------------------------------


def open_version(
    spec: str, store: str | os.PathLike[str] | None = None, *, names_only: bool = False
) -> Snapshot:
    """A version to compare: a version directory, or (with `store`) a version name of that
    store, or a store path (its current version); with `names_only` (a caller that must not
    name paths: the admin API), a version name of `store` and nothing else. Its policy tests
    are not run. Raises DiffFailed naming `spec` when it is none of these or does not load."""
    path: Path | None = None
    name = spec
    if names_only and store is None:
        raise DiffFailed(f"{spec}: a version name needs a store")
    if store is not None and (names_only or (os.sep not in spec and not os.path.isdir(spec))):
        try:
            name, path = resolve_version(store, spec)
        except (StoreError, OSError) as exc:
            raise DiffFailed(f"{spec}: {exc}") from None
    elif os.path.isdir(os.path.join(spec, "versions")):
        try:
            name, path = resolve_version(spec)
        except (StoreError, OSError) as exc:
            raise DiffFailed(f"{spec}: {exc}") from None
    elif os.path.isdir(spec):
        if not is_version_directory(spec):
            raise DiffFailed(f"{spec}: neither a store nor a store version directory")
        path = Path(os.path.realpath(spec))
        name = path.name
    elif os.path.exists(spec):
        raise DiffFailed(f"{spec}: not a directory (a store or a store version directory)")
    else:
        where = f" (and no version {spec!r} in {os.fspath(store)})" if store is not None else ""
        raise DiffFailed(f"{spec}: no such directory{where}")
    try:
        return build_snapshot(path, name, 0)[1]
    except PolicyLoadError as exc:
        first = "; ".join(f"{d.source or ''} {d.path}: {d.message}" for d in exc.diagnostics[:3])
        raise DiffFailed(f"{spec}: version does not load: {first}") from None


# -- statements --------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _normal(statement: Mapping[str, Any]) -> dict[str, Any]:
    """A statement in one canonical form: single values as sorted lists."""
    out: dict[str, Any] = {}
    for key, value in statement.items():
        if key in ("Action", "NotAction", "Resource", "NotResource"):
            out[key] = sorted({str(v) for v in _as_list(value)})
        else:
            out[key] = value
    return out


def _key(statement: Mapping[str, Any]) -> str:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), default=str)


def _statements(policy: Policy) -> list[dict[str, Any]]:
    raw = policy.document.get("Statement", [])
    return [_normal(s) for s in _as_list(raw) if isinstance(s, Mapping)]


def _name(statement: Mapping[str, Any], index: int) -> str:
    sid = statement.get("Sid")
    return f"Sid {sid}" if isinstance(sid, str) and sid else f"Statement[{index}]"


def _policies(version: StoreVersion) -> dict[str, Policy]:
    """Every policy of a version, by where it lives."""
    out: dict[str, Policy] = {}
    subs = version.accounts or {"": version}
    for account, sub in subs.items():
        at = f"accounts/{account}/" if account else ""
        for name, policy in sub.policies.items():
            out[f"{at}policies/{name}.json"] = policy
        for folder, items in (("users", sub.users), ("groups", sub.groups), ("roles", sub.roles)):
            for item in items.values():
                for policy in item.inline_policies:
                    where = policy.name if "#" in policy.name else f"{item.name}.json#{policy.name}"
                    where = where.removeprefix(at).removeprefix(f"{folder}/")
                    out[f"{at}{folder}/{where}"] = policy
        for role in sub.roles.values():
            out[f"{at}roles/{role.name}.json#trust"] = role.trust_policy
        for file in sub.resources:
            if file.policy is not None:
                out[f"{at}resources/{file.name}.json"] = file.policy
    for kind, table in _org_tables(version):
        for name, policy in table.items():
            out[f"organization/{kind}/{name}.json"] = policy
    return out


def _org_tables(version: StoreVersion) -> list[tuple[str, Mapping[str, Policy]]]:
    org = version.organization
    return [] if org is None else [("scps", org.scps), ("rcps", org.rcps)]


def _policy_diff(where: str, old: Policy | None, new: Policy | None) -> list[StatementChange]:
    if old is not None and new is not None and old.document == new.document:
        return []  # the common case, without a key a statement
    before = _statements(old) if old is not None else []
    after = _statements(new) if new is not None else []
    left = Counter(_key(s) for s in before)
    right = Counter(_key(s) for s in after)
    removed = [(i, s) for i, s in enumerate(before) if _take(left, right, _key(s))]
    left = Counter(_key(s) for s in before)
    right = Counter(_key(s) for s in after)
    added = [(i, s) for i, s in enumerate(after) if _take(right, left, _key(s))]
    changes: list[StatementChange] = []
    by_sid = {s.get("Sid"): (i, s) for i, s in added if s.get("Sid")}
    for i, statement in removed:
        sid = statement.get("Sid")
        twin = by_sid.pop(sid, None) if sid else None
        if twin is not None:
            changes.append(
                StatementChange(where, "changed", _name(statement, i), statement, twin[1])
            )
        else:
            changes.append(StatementChange(where, "removed", _name(statement, i), statement, None))
    kept = {id(s) for _, s in by_sid.values()}
    for i, statement in added:
        if not statement.get("Sid") or id(statement) in kept:
            changes.append(StatementChange(where, "added", _name(statement, i), None, statement))
    return changes


def _take(mine: Counter[str], other: Counter[str], key: str) -> bool:
    """Whether this occurrence of `key` has no twin left in `other` (consuming one)."""
    if other[key] > 0:
        other[key] -= 1
        return False
    mine[key] -= 1
    return True


def statement_diff(old: StoreVersion, new: StoreVersion) -> list[StatementChange]:
    """Statements added, removed or changed, per policy, in policy order."""
    before, after = _policies(old), _policies(new)
    changes: list[StatementChange] = []
    for where in sorted(before.keys() | after.keys()):
        changes.extend(_policy_diff(where, before.get(where), after.get(where)))
    return changes


# -- permissions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _User:
    """A principal compared: a user, or a role (decided as a session of it, `decide_as`)."""

    arn: str
    name: str
    identity: tuple[dict[str, Any], ...]  # its effective statements
    boundary: tuple[dict[str, Any], ...] | None
    record: object  # what else decides: its tags and path
    decide_as: str = ""  # a role's session ARN ("": the user's own ARN)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Found:
    """A principal as found in a version, before its statements are gathered (only those whose
    `fingerprint` differs between the versions are)."""

    arn: str
    name: str
    policies: tuple[Policy, ...]
    boundary: tuple[Policy, ...] | None
    record: object
    decide_as: str
    fingerprint: object
    tags: Mapping[str, str]


class _Statements:
    """Each policy's canonical statements and a number for its content (equal contents, in
    either version, get the same number), computed once a policy."""

    def __init__(self) -> None:
        self._of: dict[int, tuple[tuple[dict[str, Any], ...], int]] = {}
        self._numbers: dict[str, int] = {}

    def _get(self, policy: Policy) -> tuple[tuple[dict[str, Any], ...], int]:
        found = self._of.get(id(policy))
        if found is None:
            statements = tuple(_statements(policy))
            content = "\n".join(sorted(_key(s) for s in statements))
            number = self._numbers.setdefault(content, len(self._numbers))
            found = self._of[id(policy)] = (statements, number)
        return found

    def key(self, policies: Iterable[Policy]) -> tuple[int, ...]:
        """The content of policies, ignoring their order and the order of their statements."""
        get = self._get
        return tuple(sorted(get(p)[1] for p in policies))

    def of(self, policies: Iterable[Policy]) -> tuple[dict[str, Any], ...]:
        return tuple(s for p in policies for s in self._get(p)[0])

    def user(self, found: _Found) -> _User:
        bound = self.of(found.boundary) if found.boundary is not None else None
        return _User(
            found.arn,
            found.name,
            self.of(found.policies),
            bound,
            found.record,
            found.decide_as,
            found.tags,
        )


def _found(
    arn: str,
    name: str,
    policies: tuple[Policy, ...],
    boundary: tuple[Policy, ...] | None,
    record: object,
    decide_as: str,
    statements: _Statements,
    tags: Mapping[str, str],
) -> _Found:
    bound = statements.key(boundary) if boundary is not None else None
    fingerprint = (record, statements.key(policies), bound)
    return _Found(arn, name, policies, boundary, record, decide_as, fingerprint, tags)


def _users(snapshot: Snapshot, statements: _Statements) -> dict[str, _Found]:
    world = snapshot.world
    indexes = world.indexes.values() if world is not None else [snapshot.index]
    users: dict[str, _Found] = {}
    for index in indexes:
        for entry in index.users():
            bound = None
            if world is not None and entry.arn in world.boundaries:
                bound = world.boundaries[entry.arn].policies
            user = entry.user
            record: tuple[object, ...] = (tuple(sorted(user.tags.items())), user.path)
            users[entry.arn] = _found(
                entry.arn, user.name, entry.policies, bound, record, "", statements, user.tags
            )
    for role in world.roles.values() if world is not None else ():
        record = (tuple(sorted(role.role.tags.items())), role.role.path, "role")
        bound = role.boundary.policies if role.boundary is not None else None
        session = f"arn:aws:sts::{role.account}:assumed-role/{role.role.name}/{SESSION_NAME}"
        users[role.arn] = _found(
            role.arn,
            role.role.name,
            role.identity.policies,
            bound,
            record,
            session,
            statements,
            role.role.tags,
        )
    return users


def _patterns(statements: Iterable[Mapping[str, Any]]) -> tuple[set[str], bool]:
    """The Action patterns of statements, and whether one has a NotAction (matches any)."""
    out: set[str] = set()
    negated = False
    for statement in statements:
        if "NotAction" in statement:
            negated = True
        out.update(statement.get("Action", ()))
    return out, negated


class _Expander:
    """Action patterns -> concrete actions: the reference's; for a service the reference does
    not know (an application's own, `orders`), the actions the two versions' statements name
    literally that the pattern matches. A pattern that matches none is kept in `unexpanded`."""

    def __init__(self, reference: Reference, literals: Callable[[], Iterable[str]] = tuple) -> None:
        self.reference = reference
        self._memo: dict[str, tuple[str, ...]] = {}
        self._gather = literals  # read on first need: it walks every policy of both versions
        self._literals: list[str] | None = None
        self.unexpanded: set[str] = set()

    def literals(self) -> list[str]:
        if self._literals is None:
            found = self._gather()
            self._literals = sorted({a for a in found if "*" not in a and "?" not in a})
        return self._literals

    def expand(self, pattern: str) -> tuple[str, ...]:
        found = self._memo.get(pattern)
        if found is None:
            actions = [a.full_name for a in self.reference.actions_matching(pattern)]
            if not actions and "*" not in pattern and "?" not in pattern:
                actions = [pattern]  # an action the reference does not list: decided as written
            elif not actions:
                match = glob_matcher(pattern, ignore_case=True)
                actions = [a for a in self.literals() if match(a)]
            if not actions:
                self.unexpanded.add(pattern)
            found = self._memo[pattern] = tuple(actions)
        return found


def _matches(
    patterns: Iterable[str], subject: str, matchers: dict[str, Callable[[str], bool]]
) -> bool:
    for pattern in patterns:
        match = matchers.get(pattern)
        if match is None:
            match = matchers[pattern] = glob_matcher(pattern, ignore_case=True)
        if match(subject):
            return True
    return False


def _applies(
    statement: Mapping[str, Any],
    action: str,
    resource: str,
    matchers: dict[str, Callable[[str], bool]],
) -> bool:
    """Whether a statement's Action and Resource elements cover (action, resource), its
    conditions aside."""
    if "NotAction" in statement:
        if _matches(statement["NotAction"], action, matchers):
            return False
    elif not _matches(statement.get("Action", ()), action, matchers):
        return False
    if "NotResource" in statement:
        return not _matches(statement["NotResource"], resource, matchers)
    return _matches(statement.get("Resource", ("*",)), resource, matchers)


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _filled(resource: str, user: str, tags: Mapping[str, str]) -> str:
    """A Resource with the principal's own variables filled in (aws:username, its
    aws:PrincipalTag/<key>); any other variable is left, and the resource is then not decided
    (`unfilled`)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.lower() == "aws:username":
            return user
        if name.lower().startswith("aws:principaltag/"):
            wanted = name.split("/", 1)[1].lower()
            for key, tag in tags.items():
                if key.lower() == wanted:
                    return tag
        return match.group(0)

    return _VARIABLE.sub(value, resource)


class _Resources:
    """The Resource literals a principal's statements name for each concrete action (and
    "*"): the resources each of its actions is decided on. Action patterns are expanded once
    with the reference; a NotAction statement, or a pattern the reference knows no action of,
    is matched action by action."""

    def __init__(
        self,
        statements: Iterable[Mapping[str, Any]],
        user: str,
        tags: Mapping[str, str],
        expander: _Expander,
    ) -> None:
        self._by_action: dict[str, set[str]] = {}
        self._loose: list[tuple[Mapping[str, Any], list[str]]] = []
        for statement in statements:
            literals = [
                _filled(str(r), user, tags)
                for r in statement.get("Resource", ()) or statement.get("NotResource", ())
            ]
            if "NotAction" in statement:
                self._loose.append((statement, literals))
                continue
            for pattern in statement.get("Action", ()):
                for action in expander.expand(pattern):
                    self._by_action.setdefault(action.lower(), set()).update(literals)

    def of(self, action: str, matchers: dict[str, Callable[[str], bool]]) -> set[str]:
        out = {"*", *self._by_action.get(action.lower(), ())}
        for statement, literals in self._loose:
            covers = (
                not _matches(statement["NotAction"], action, matchers)
                if "NotAction" in statement
                else _matches(statement.get("Action", ()), action, matchers)
            )
            if covers:
                out.update(literals)
        return out


def _state(
    snapshot: Snapshot,
    user: _User | None,
    action: str,
    resource: str,
    matchers: dict[str, Callable[[str], bool]],
    principal: str,
) -> tuple[bool, tuple[str, ...]]:
    """(allowed on an empty context, the conditional statements that cover the request)."""
    if user is None:
        return False, ()
    if user.decide_as:
        decision = snapshot.is_authorized(
            user.decide_as, action, resource, principal_type="role_session"
        )
    else:
        decision = snapshot.is_authorized(principal, action, resource)
    if decision.errors:  # never read a failed decision as a Deny that did not change
        raise DiffFailed(
            f"{snapshot.version}: {principal}: {action} on {resource} could not be decided:"
            f" {decision.errors[0]}"
        )
    allowed = decision.decision == "Allow"
    every = list(user.identity) + list(user.boundary or ())
    conditional: list[str] = []
    for statement in every:
        condition = statement.get("Condition")
        if condition and _applies(statement, action, resource, matchers):
            effect = "allow" if statement.get("Effect") == "Allow" else "deny"
            conditional.append(f"{effect} if {_key(condition)}")
    if not conditional:
        return allowed, ()
    # A request no Allow covers is denied whatever its context: its conditional Denies could
    # turn nothing. Any other conditional statement could (a condition with a negated operator,
    # NotIpAddress, applies on an empty context), so it is kept.
    granted = allowed or any(
        s.get("Effect") == "Allow" and _applies(s, action, resource, matchers) for s in every
    )
    kept = conditional if granted else []
    return allowed, tuple(sorted(set(kept)))


def _describe(allowed: bool, conditional: tuple[str, ...]) -> str:
    word = "allow" if allowed else "deny"
    return "; ".join((word, *conditional))


def _candidates(
    old: _User | None, new: _User | None, everything: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The statements whose actions may decide differently, and every statement of the
    principal (both versions), which name the resources to try."""
    before = list(old.identity) + list(old.boundary or ()) if old is not None else []
    after = list(new.identity) + list(new.boundary or ()) if new is not None else []
    every = before + after
    if (
        everything
        or old is None
        or new is None
        or old.record != new.record
        or (old.boundary is None) != (new.boundary is None)
    ):
        return every, every
    left = Counter(_key(s) for s in before)
    right = Counter(_key(s) for s in after)
    changed = (left - right) + (right - left)
    return [s for s in every if _key(s) in changed], every


def _actions(statements: Iterable[Mapping[str, Any]], expander: _Expander) -> list[str]:
    patterns, negated = _patterns(statements)
    found: set[str] = set()
    if negated:
        patterns.add("*")
    for pattern in patterns:
        found.update(expander.expand(pattern))
    return sorted(found)


def _principal_changes(
    arn: str,
    old_user: _User | None,
    new_user: _User | None,
    snapshots: tuple[Snapshot, Snapshot],
    everything: bool,
    expander: _Expander,
    budget: list[int],
    unfilled: set[str],
) -> Iterator[PermissionChange]:
    changed, every = _candidates(old_user, new_user, everything)
    if not changed:
        return
    matchers: dict[str, Callable[[str], bool]] = {}
    some = new_user or old_user
    assert some is not None
    resources = _Resources(every, some.name, some.tags, expander)
    for action in _actions(changed, expander):
        for resource in sorted(resources.of(action, matchers)):
            if "${" in resource:
                unfilled.add(f"{arn}: {action} on {resource}")
                continue
            budget[0] -= 1
            if budget[0] < 0:
                raise DiffTooLarge("")
            before = _state(snapshots[0], old_user, action, resource, matchers, arn)
            after = _state(snapshots[1], new_user, action, resource, matchers, arn)
            if before == after:
                continue
            # A condition on either side makes the change conditional: what it grants or
            # refuses depends on the request's context, which is never guessed.
            kind: Kind = "conditional"
            if before[0] != after[0] and not before[1] and not after[1]:
                kind = "grew" if after[0] else "shrank"
            service = action.partition(":")[0].lower()
            yield PermissionChange(
                arn, service, action, resource, kind, _describe(*before), _describe(*after)
            )


def _org_shape(version: StoreVersion) -> object:
    org = version.organization
    if org is None:
        return None
    return (org.id, org.management_account, org.root, sorted(org.account_attachments.items()))


def _resource_shapes(version: StoreVersion) -> list[tuple[object, ...]]:
    subs = version.accounts or {"": version}
    return sorted(
        (account, f.name, f.arns, f.account, sorted(f.tags.items()))
        for account, sub in subs.items()
        for f in sub.resources
    )


def _literal_actions(*versions: StoreVersion) -> Iterator[str]:
    """Every Action and NotAction value the versions' policies write, as written."""
    for version in versions:
        for policy in _policies(version).values():
            for statement in _statements(policy):
                yield from statement.get("Action", ())
                yield from statement.get("NotAction", ())


def _global_change(old: StoreVersion, new: StoreVersion, statements: list[StatementChange]) -> bool:
    """Whether a change outside principals' own policies may touch every principal: an SCP's
    or RCP's statements or where they are attached, a resource policy, a resource file's ARNs,
    owner or tags, the accounts of the store."""
    if any(
        s.policy.startswith("organization/") or "/resources/" in f"/{s.policy}" for s in statements
    ):
        return True
    return (
        _org_shape(old) != _org_shape(new)
        or _resource_shapes(old) != _resource_shapes(new)
        or sorted(old.accounts) != sorted(new.accounts)
        or old.account != new.account
    )


def diff_snapshots(
    old: Snapshot,
    new: Snapshot,
    *,
    max_checks: int = DEFAULT_MAX_CHECKS,
    reference: Reference | None = None,
) -> VersionDiff:
    """The statement and permission diff of two loaded versions (see the module docstring)."""
    if old.source is None or new.source is None:
        raise DiffFailed("a snapshot without its source version cannot be compared")
    statements = statement_diff(old.source, new.source)
    gathered = _Statements()
    before, after = _users(old, gathered), _users(new, gathered)
    everything = _global_change(old.source, new.source, statements)
    old_version, new_version = old.source, new.source
    expander = _Expander(
        reference or default_reference(), lambda: _literal_actions(old_version, new_version)
    )
    unfilled: set[str] = set()
    budget = [max_checks]
    permissions: list[PermissionChange] = []
    evaluated = 0
    notes: list[str] = []
    if everything:
        notes.append("SCPs, RCPs, resources or accounts changed: every principal was decided again")
    try:
        for arn in sorted(before.keys() | after.keys()):
            old_found, new_found = before.get(arn), after.get(arn)
            if (
                not everything
                and old_found is not None
                and new_found is not None
                and old_found.fingerprint == new_found.fingerprint
            ):
                continue
            old_user = gathered.user(old_found) if old_found is not None else None
            new_user = gathered.user(new_found) if new_found is not None else None
            evaluated += 1
            permissions.extend(
                _principal_changes(
                    arn, old_user, new_user, (old, new), everything, expander, budget, unfilled
                )
            )
    except DiffTooLarge:
        raise DiffTooLarge(
            f"the diff needs more than {max_checks} checks (max_checks); raise it, or compare"
            " versions closer together"
        ) from None
    for pattern in sorted(expander.unexpanded)[:MAX_NOTES]:
        notes.append(f"{pattern}: matches no action of the reference or of the versions")
    for item in sorted(unfilled)[:MAX_NOTES]:
        notes.append(f"{item}: a policy variable the diff cannot fill; not decided")
    left = len(expander.unexpanded) + len(unfilled) - 2 * MAX_NOTES
    if len(expander.unexpanded) > MAX_NOTES or len(unfilled) > MAX_NOTES:
        notes.append(f"... and more such notes ({max(left, 1)} or more)")
    return VersionDiff(
        old.version,
        new.version,
        tuple(statements),
        tuple(permissions),
        len(before.keys() | after.keys()),
        evaluated,
        max_checks - max(budget[0], 0),
        tuple(notes),
        len(unfilled),
    )


def diff_versions(
    old: str,
    new: str,
    *,
    store: str | os.PathLike[str] | None = None,
    max_checks: int = DEFAULT_MAX_CHECKS,
    names_only: bool = False,
) -> VersionDiff:
    """Open two versions (open_version) and diff them."""
    return diff_snapshots(
        open_version(old, store, names_only=names_only),
        open_version(new, store, names_only=names_only),
        max_checks=max_checks,
    )


# -- rendering ---------------------------------------------------------------------------------

DIFF_FORMATS = ("text", "json", "markdown")


def _grouped(
    diff: VersionDiff, reference: Reference
) -> dict[str, list[tuple[str, str, str, str, str, list[str]]]]:
    """Per principal: (service, kind, resource, old, new, actions), an action list shortened
    to `service:* (all N actions)` when it holds every action the reference knows of it."""
    groups: dict[tuple[str, str, str, str, str, str], list[str]] = {}
    for p in diff.permissions:
        groups.setdefault((p.principal, p.service, p.kind, p.resource, p.old, p.new), []).append(
            p.action
        )
    out: dict[str, list[tuple[str, str, str, str, str, list[str]]]] = {}
    for (principal, service, kind, resource, old, new), actions in sorted(groups.items()):
        known = reference.service(service)
        if known is not None and len(known.actions) > 1 and len(set(actions)) == len(known.actions):
            actions = [f"{service}:* (all {len(known.actions)} actions)"]
        out.setdefault(principal, []).append((service, kind, resource, old, new, sorted(actions)))
    return out


def _summary(diff: VersionDiff) -> str:
    principals = len({p.principal for p in diff.permissions})
    return (
        f"{diff.old} -> {diff.new}: {len(diff.statements)} statement change(s),"
        f" {principals} principal(s) with changed permissions"
        f" ({diff.principals_evaluated} of {diff.principals_compared} principals decided again,"
        f" {diff.checks} checks)"
        + (
            ""
            if diff.complete
            else f"; {diff.undecided} check(s) not decided (see notes): not a complete answer"
        )
    )


def render_diff(diff: VersionDiff, fmt: str = "text", reference: Reference | None = None) -> str:
    """The diff as text (default), json or markdown."""
    if fmt == "json":
        return json.dumps(diff.to_dict(), indent=2) + "\n"
    if fmt not in DIFF_FORMATS:
        raise ValueError(f"format: {fmt!r} is not one of {', '.join(DIFF_FORMATS)}")
    grouped = _grouped(diff, reference or default_reference())
    md = fmt == "markdown"
    lines = [f"# pdp diff {diff.old} -> {diff.new}" if md else _summary(diff)]
    if md:
        lines += ["", _summary(diff)]
    if md:
        lines += ["", "## Statements", ""]
        if diff.statements:
            lines += ["| policy | change | statement | old | new |", "|---|---|---|---|---|"]
    else:
        lines += ["", "statements:" if diff.statements else "statements: no change"]
    for s in diff.statements:
        old = _key(s.old) if s.old is not None else ""
        new = _key(s.new) if s.new is not None else ""
        if md:
            lines.append(
                f"| {_cell(s.policy)} | {s.change} | {_cell(s.name)} | {_code(old)} |"
                f" {_code(new)} |"
            )
        else:
            lines.append(f"  {s.policy}: {s.change} {s.name}")
            lines += [f"    - {old}"] if old else []
            lines += [f"    + {new}"] if new else []
    if not diff.statements and md:
        lines.append("No statement changed.")
    if md:
        lines += ["", "## Permissions", ""]
        if grouped:
            lines += [
                "| principal | service | change | resource | actions | old | new |",
                "|---|---|---|---|---|---|---|",
            ]
    else:
        none = "permissions: no change" if diff.complete else "permissions: none found,"
        none += "" if diff.complete else f" but {diff.undecided} check(s) not decided"
        lines += ["", "permissions:" if grouped else none]
    for principal, rows in grouped.items():
        if not md:
            lines.append(f"  {principal}")
        for service, kind, resource, old, new, actions in rows:
            if md:
                lines.append(
                    f"| {_cell(principal)} | {service} | {kind} | {_cell(resource)} |"
                    f" {_cell(', '.join(actions))} | {_cell(old)} | {_cell(new)} |"
                )
            else:
                lines.append(f"    {service} {kind} on {resource}: {', '.join(actions)}")
                if kind == "conditional" or ";" in old or ";" in new:
                    lines.append(f"      was: {old}")
                    lines.append(f"      now: {new}")
    if not grouped and md:
        lines.append(
            "No principal's permissions changed."
            if diff.complete
            else f"No change found, but {diff.undecided} check(s) were not decided (see notes)."
        )
    if diff.notes:
        lines += ["", "## Notes", ""] if md else ["", "notes:"]
        lines += [f"- {_cell(n)}" if md else f"  {n}" for n in diff.notes]
    return "\n".join(lines) + "\n"


def _code(text: str) -> str:
    return f"`{_cell(text)}`" if text else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
