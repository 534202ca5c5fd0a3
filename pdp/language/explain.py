"""Why a decision came out as it did: each statement that could apply, taken apart.

An explanation is computed after, and apart from, the decision (`PolicySet.decide_context`,
`decide_chain`): it re-reads the same compiled statements and tests each element on its own
(Action, Resource, Principal for a resource policy, every condition), so the fast path of a
decision never pays for it. It never changes a decision: the `Decision` it is given is the
answer, the explanation only says why.

For each statement of the action's service (the ones a decision looks at) it reports whether
the Action and the Resource matched, each condition's operator, key, policy values (policy
variables resolved against the request) and the request's value, and whether it held. The
condition keys that relevant statements (Action and Resource matched) read and the request
lacks are the "missing context values" of the IAM policy simulator. For an implicit deny, the
nearest misses are the Allow statements whose Action and Resource matched but some conditions
failed, fewest failures first, each with what would have to be true for it to apply.

Bounded: at most `MAX_STATEMENTS` statements examined, each value cut to `MAX_VALUE`
characters and each list to `MAX_LIST_SHOWN` entries; `truncated` says when something was cut.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pdp.language.chain import LAYER_ORDER, Guard, Layers, _excluded, principal_grant
from pdp.language.compile import CompiledStatement
from pdp.language.condition import Condition
from pdp.language.context import MISSING, RequestContext, Value
from pdp.language.evaluate import PolicySet
from pdp.language.operators import EvaluationError
from pdp.language.policy import Policy
from pdp.model import Decision, Principal
from pdp.text import printable

__all__ = [
    "MAX_STATEMENTS",
    "MAX_VALUE",
    "ConditionCheck",
    "Explanation",
    "LayerCheck",
    "NearMiss",
    "StatementCheck",
    "explain_chain",
    "explain_policies",
    "render_text",
    "unexplained",
]

MAX_STATEMENTS = 200  # statements examined per explanation
MAX_VALUE = 256  # characters of one value shown
MAX_LIST_SHOWN = 20  # values of one list shown
MAX_NEAREST = 3  # nearest misses reported


class _Budget:
    """What is left to examine, and whether anything was cut."""

    __slots__ = ("left", "truncated")

    def __init__(self) -> None:
        self.left = MAX_STATEMENTS
        self.truncated = False

    def take(self) -> bool:
        if self.left <= 0:
            self.truncated = True
            return False
        self.left -= 1
        return True

    def text(self, value: str) -> str:
        if len(value) > MAX_VALUE:
            self.truncated = True
            return value[:MAX_VALUE] + "..."
        return value

    def shown(self, value: Value | None) -> Any:
        """A request value as JSON shows it: scalars as they are (strings cut), lists cut."""
        if isinstance(value, tuple):
            if len(value) > MAX_LIST_SHOWN:
                self.truncated = True
            return [self.shown(v) for v in value[:MAX_LIST_SHOWN]]
        if isinstance(value, str):
            return self.text(value)
        return value


@dataclass(frozen=True, slots=True)
class ConditionCheck:
    """One condition (operator, key, values) tested against the request."""

    operator: str
    key: str
    values: tuple[str | None, ...]  # the policy values, variables resolved (None: no value)
    present: bool  # the request has the key
    context: Any  # the request's value (JSON-shaped), None when absent
    matched: bool
    error: str | None = None
    needed: str | None = None  # what would make it true, when it failed and that is expressible

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "operator": self.operator,
            "key": self.key,
            "values": list(self.values),
            "present": self.present,
            "matched": self.matched,
        }
        if self.present:
            out["context"] = self.context
        if self.error is not None:
            out["error"] = self.error
        if self.needed is not None:
            out["needed"] = self.needed
        return out


@dataclass(frozen=True, slots=True)
class StatementCheck:
    """One statement taken apart: which of its elements matched the request."""

    layer: str
    policy: str
    statement: int
    sid: str | None
    effect: str
    action_matched: bool
    resource_matched: bool
    resources: tuple[str | None, ...]  # Resource/NotResource with variables resolved
    conditions: tuple[ConditionCheck, ...]
    principal_matched: bool | None = None  # resource policies only
    level: int | None = None  # the organization level (SCP/RCP allow statements)
    error: str | None = None

    @property
    def applies(self) -> bool:
        return (
            self.error is None
            and self.action_matched
            and self.resource_matched
            and self.principal_matched is not False
            and all(c.matched for c in self.conditions)
        )

    @property
    def relevant(self) -> bool:
        """Action, Resource (and Principal) matched: only its conditions decide."""
        return self.action_matched and self.resource_matched and self.principal_matched is not False

    def failed(self) -> tuple[ConditionCheck, ...]:
        return tuple(c for c in self.conditions if not c.matched)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "layer": self.layer,
            "policy": self.policy,
            "statement": self.statement,
            "sid": self.sid,
            "effect": self.effect,
            "applies": self.applies,
            "action_matched": self.action_matched,
            "resource_matched": self.resource_matched,
        }
        if self.resources:
            out["resources"] = list(self.resources)
        if self.principal_matched is not None:
            out["principal_matched"] = self.principal_matched
        if self.level is not None:
            out["level"] = self.level
        out["conditions"] = [c.to_dict() for c in self.conditions]
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class LayerCheck:
    """The statements of one layer of the chain ("identity" when there is no chain)."""

    layer: str
    statements: tuple[StatementCheck, ...]
    granted: tuple[str, ...] = ()  # SCP/RCP levels allowed by an unconditional Allow (cited)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "layer": self.layer,
            "statements": [s.to_dict() for s in self.statements],
        }
        if self.granted:
            out["granted"] = list(self.granted)
        return out


@dataclass(frozen=True, slots=True)
class NearMiss:
    """An Allow statement that failed only on conditions, with what would make it apply."""

    statement: StatementCheck

    def to_dict(self) -> dict[str, object]:
        s = self.statement
        return {
            "layer": s.layer,
            "policy": s.policy,
            "statement": s.statement,
            "sid": s.sid,
            "failed": len(s.failed()),
            "needed": [c.needed or _failed_text(c) for c in s.failed()],
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why `decision` came out as it did (see the module docstring)."""

    decision: str
    reason: str
    action: str
    resource: str
    layers: tuple[LayerCheck, ...]
    missing_keys: tuple[str, ...]
    nearest_misses: tuple[NearMiss, ...]
    blocked_by: tuple[str, ...] = ()
    examined: int = 0
    truncated: bool = False
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "decision": self.decision,
            "reason": self.reason,
            "action": self.action,
            "resource": self.resource,
            "layers": [layer.to_dict() for layer in self.layers],
            "missing_keys": list(self.missing_keys),
            "nearest_misses": [m.to_dict() for m in self.nearest_misses],
            "examined": self.examined,
            "truncated": self.truncated,
        }
        if self.blocked_by:
            out["blocked_by"] = list(self.blocked_by)
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def explain_policies(
    policies: PolicySet | Iterable[Policy],
    ctx: RequestContext,
    action: str,
    resource: str,
    decision: Decision,
    *,
    layer: str = "identity",
    notes: Sequence[str] = (),
) -> Explanation:
    """The explanation of a decision on one set of policies (identity policies alone)."""
    budget = _Budget()
    checks = _policy_set_checks(policies, ctx, action, resource, budget, layer)
    return _finish(decision, action, resource, (LayerCheck(layer, checks),), budget, notes)


def explain_chain(
    layers: Layers,
    caller: Principal,
    ctx: RequestContext,
    action: str,
    resource: str,
    decision: Decision,
    *,
    notes: Sequence[str] = (),
) -> Explanation:
    """The explanation of a chain decision, layer by layer in AWS's order (rcp, scp, resource,
    identity, boundary, session): the layers that the request has."""
    budget = _Budget()
    found: list[LayerCheck] = []
    for name in LAYER_ORDER:
        if name in ("rcp", "scp"):
            guard = layers.rcp if name == "rcp" else layers.scp
            if guard is not None:
                found.append(_guard_check(name, guard, ctx, action, resource, budget))
        elif name == "resource":
            if layers.resource or layers.resource_required:
                checks = _resource_checks(layers, caller, ctx, action, resource, budget)
                found.append(LayerCheck("resource", checks))
        else:
            policy_set: PolicySet | None = getattr(layers, name)
            if policy_set is not None:
                checks = _policy_set_checks(policy_set, ctx, action, resource, budget, name)
                found.append(LayerCheck(name, checks))
    return _finish(decision, action, resource, tuple(found), budget, notes)


def unexplained(decision: Decision, action: str, resource: str, note: str) -> Explanation:
    """An explanation with no statement examined, and why (a request that cannot be decided,
    a principal no policy limits)."""
    budget = _Budget()
    return _finish(decision, action, resource, (), budget, (note,))


def _finish(
    decision: Decision,
    action: str,
    resource: str,
    layers: tuple[LayerCheck, ...],
    budget: _Budget,
    notes: Sequence[str],
) -> Explanation:
    statements = [s for layer in layers for s in layer.statements]
    missing: dict[str, None] = {}
    for s in statements:
        if s.relevant:
            for c in s.conditions:
                if not c.present:
                    missing.setdefault(c.key, None)
    misses: tuple[NearMiss, ...] = ()
    if decision.reason == "implicitDeny":
        misses = _nearest(statements, decision.blocked_by)
    more = list(notes)
    if budget.truncated:
        more.append(
            f"cut: at most {MAX_STATEMENTS} statements examined, values cut to {MAX_VALUE}"
            f" characters and lists to {MAX_LIST_SHOWN} values"
        )
    return Explanation(
        decision=decision.decision,
        reason=decision.reason,
        action=budget.text(action),
        resource=budget.text(resource),
        layers=layers,
        missing_keys=tuple(missing),
        nearest_misses=misses,
        blocked_by=decision.blocked_by,
        examined=MAX_STATEMENTS - budget.left,
        truncated=budget.truncated,
        notes=tuple(more),
    )


def _nearest(
    statements: Sequence[StatementCheck], blocked_by: tuple[str, ...]
) -> tuple[NearMiss, ...]:
    """The Allow statements that failed on conditions alone, fewest failures first (then in
    layer and document order). When layers are named as blocking, only theirs: an Allow in a
    layer that already allowed would change nothing."""
    order = {name: i for i, name in enumerate(LAYER_ORDER)}
    candidates = [
        (len(s.failed()), order.get(s.layer, 0), i, s)
        for i, s in enumerate(statements)
        if s.effect == "Allow"
        and s.relevant
        and s.error is None
        and s.failed()
        and (not blocked_by or s.layer in blocked_by)
    ]
    candidates.sort(key=lambda c: c[:3])
    return tuple(NearMiss(c[3]) for c in candidates[:MAX_NEAREST])


def _service_statements(
    policies: Iterable[Policy], service: str
) -> Iterable[tuple[Policy, CompiledStatement]]:
    """The statements of `policies` a decision on `service` looks at, in document order."""
    for policy in policies:
        for statement in policy.statements:
            if statement.services is None or service in statement.services:
                yield policy, statement


def _policy_set_checks(
    policies: PolicySet | Iterable[Policy],
    ctx: RequestContext,
    action: str,
    resource: str,
    budget: _Budget,
    layer: str,
    level: int | None = None,
) -> tuple[StatementCheck, ...]:
    given = policies.policies if isinstance(policies, PolicySet) else tuple(policies)
    service = action.partition(":")[0].lower()
    out: list[StatementCheck] = []
    for _policy, statement in _service_statements(given, service):
        if not budget.take():
            break
        out.append(_statement_check(statement, ctx, action, resource, budget, layer, level))
    return tuple(out)


def _guard_check(
    name: str,
    guard: Guard,
    ctx: RequestContext,
    action: str,
    resource: str,
    budget: _Budget,
) -> LayerCheck:
    """An SCP (RCP) layer: the Deny statements of every level, then the Allow statements of
    each level that an unconditional Allow does not already open (numbered root first, among
    those levels only)."""
    checks: list[StatementCheck] = []
    if guard.denies is not None:
        checks += _policy_set_checks(guard.denies, ctx, action, resource, budget, name)
    for i, level in enumerate(guard.levels):
        checks += _policy_set_checks(level, ctx, action, resource, budget, name, i)
    granted = tuple(f"{ref.policy}: Statement[{ref.statement}]" for ref in guard.granted)
    return LayerCheck(name, tuple(checks), granted)


def _resource_checks(
    layers: Layers,
    caller: Principal,
    ctx: RequestContext,
    action: str,
    resource: str,
    budget: _Budget,
) -> tuple[StatementCheck, ...]:
    service = action.partition(":")[0].lower()
    has_boundary = layers.boundary is not None
    out: list[StatementCheck] = []
    for _policy, statement in _service_statements(layers.resource, service):
        if not budget.take():
            break
        spec = statement.principal
        if spec is None:
            named = False
        elif statement.not_principal:
            named = not _excluded(spec, caller, has_boundary)
        else:
            named = principal_grant(spec, caller) is not None
        check = _statement_check(statement, ctx, action, resource, budget, "resource", None)
        out.append(_with_principal(check, named))
    return tuple(out)


def _with_principal(check: StatementCheck, named: bool) -> StatementCheck:
    return StatementCheck(
        check.layer, check.policy, check.statement, check.sid, check.effect,
        check.action_matched, check.resource_matched, check.resources, check.conditions,
        named, check.level, check.error,
    )  # fmt: skip


def _statement_check(
    statement: CompiledStatement,
    ctx: RequestContext,
    action: str,
    resource: str,
    budget: _Budget,
    layer: str,
    level: int | None,
) -> StatementCheck:
    ref = statement.ref
    lower = action.lower()
    action_matched = statement.match_action(lower) is not statement.not_action
    error: str | None = None
    resolved: tuple[str | None, ...] = tuple(
        None if text is None else budget.text(text)
        for text in (t.resolve(ctx.single) for t in statement.resource_templates)
    )
    try:
        hit = bool(statement.match_resource(resource))
        if not hit and statement.resource_templates:
            hit = statement.template_hit(resource, ctx)
        resource_matched = hit is not statement.not_resource
    except EvaluationError as exc:
        resource_matched = False
        error = str(exc)
    conditions = tuple(_condition_check(c, ctx, budget) for c in statement.conditions)
    errors = [c.error for c in conditions if c.error is not None]
    if error is None and errors:
        error = errors[0]
    return StatementCheck(
        layer=layer,
        policy=ref.policy,
        statement=ref.statement,
        sid=ref.sid,
        effect=ref.effect,
        action_matched=action_matched,
        resource_matched=resource_matched,
        resources=resolved,
        conditions=conditions,
        level=level,
        error=error,
    )


def _condition_check(condition: Condition, ctx: RequestContext, budget: _Budget) -> ConditionCheck:
    value = ctx.get(condition.key)
    present = value is not MISSING
    values = tuple(
        None if text is None else budget.text(text)
        for text in (t.resolve(ctx.single) for t in condition.templates[:MAX_LIST_SHOWN])
    )
    if len(condition.templates) > MAX_LIST_SHOWN:
        budget.truncated = True
    error: str | None = None
    try:
        matched = condition(ctx)
    except EvaluationError as exc:
        matched = False
        error = budget.text(str(exc))
    shown = budget.shown(value) if present else None  # type: ignore[arg-type]
    needed = None if matched else _needed(condition, values, present)
    return ConditionCheck(
        operator=condition.operator.text,
        key=condition.key_text,
        values=values,
        present=present,
        context=shown,
        matched=matched,
        error=error,
        needed=needed,
    )


_PHRASES: Mapping[tuple[str, str, bool], str] = {
    ("string", "equals", False): "must be",
    ("string", "equals", True): "must not be",
    ("string", "equalsignorecase", False): "must be (ignoring case)",
    ("string", "equalsignorecase", True): "must not be (ignoring case)",
    ("like", "like", False): "must match",
    ("like", "like", True): "must not match",
    ("binary", "eq", False): "must be",
    ("ip", "in", False): "must be an address in",
    ("ip", "in", True): "must be an address outside",
    ("arn", "like", False): "must match",
    ("arn", "like", True): "must not match",
    ("numeric", "eq", False): "must be",
    ("numeric", "eq", True): "must not be",
    ("numeric", "lt", False): "must be less than",
    ("numeric", "le", False): "must be at most",
    ("numeric", "gt", False): "must be greater than",
    ("numeric", "ge", False): "must be at least",
    ("date", "eq", False): "must be the date",
    ("date", "eq", True): "must not be the date",
    ("date", "lt", False): "must be before",
    ("date", "le", False): "must be at or before",
    ("date", "gt", False): "must be after",
    ("date", "ge", False): "must be at or after",
}


def _needed(condition: Condition, values: tuple[str | None, ...], present: bool) -> str | None:
    """What would make a failed condition true, in words; None when that is not expressible
    (a policy value whose variable has no value matches nothing)."""
    op = condition.operator
    spec = op.spec
    key = condition.key_text
    shown = [v for v in values if v is not None]
    family = spec.family.name
    if family == "null":
        if "true" in (v.lower() for v in shown):
            return f"{key} must be absent"
        return f"{key} must be present"
    if not shown:
        return None  # every policy value reads a variable the request lacks
    if family == "bool":
        return f"{key} must be {shown[0].lower()}"
    phrase = _PHRASES.get((family, spec.kind, spec.negated))
    if phrase is None:
        return None
    quoted = [_quoted(v) for v in shown]
    listed = quoted[0] if len(quoted) == 1 else "one of " + ", ".join(quoted)
    if spec.negated:
        listed = quoted[0] if len(quoted) == 1 else "any of " + ", ".join(quoted)
    if op.set_op == "all":
        subject = f"every value of {key}"
    elif op.set_op == "any":
        subject = f"some value of {key}"
    else:
        subject = key
    text = f"{subject} {phrase} {listed}"
    if not present and op.set_op != "all" and not op.if_exists:
        text += " (the request lacks it)"
    return text


def _quoted(value: str) -> str:
    """A policy value as `needed` shows it: quoted (JSON) when it would not read plainly."""
    if not value or value != value.strip() or "," in value or '"' in value:
        return json.dumps(value, ensure_ascii=False)
    return value


def _failed_text(c: ConditionCheck) -> str:
    if c.error is not None:
        return f"{c.operator} {c.key}: {c.error}"
    return f"{c.operator} {c.key} must hold"


_GREEN, _RED, _BOLD, _RESET = "\033[32m", "\033[31m", "\033[1m", "\033[0m"
_MARKS = re.compile(r"(?<=: )(yes|no|applies|does not apply)\b")


def render_text(explanation: Explanation, colour: bool = False) -> str:
    """An explanation as a tree, for a terminal. Every line is escaped (pdp.text.printable:
    policy names and request values may hold control characters); `colour` then paints the
    verdicts with ANSI colours."""
    lines = [printable(line) for line in _tree(explanation)]
    if colour:
        lines[0] = f"{_BOLD}{lines[0]}{_RESET}"
        lines = [_MARKS.sub(_paint, line) for line in lines]
    return "\n".join(lines)


def _paint(match: re.Match[str]) -> str:
    word = match.group(1)
    code = _GREEN if word in ("yes", "applies") else _RED
    return f"{code}{word}{_RESET}"


def _tree(e: Explanation) -> list[str]:
    lines = [f"why: {e.decision} ({e.reason})  {e.action} on {e.resource}"]
    if e.blocked_by:
        lines.append(f"  blocked by: {', '.join(e.blocked_by)}")
    for li, layer in enumerate(e.layers):
        last_layer = li == len(e.layers) - 1
        lines.append(f"{'└─' if last_layer else '├─'} layer {layer.layer}")
        stem = "   " if last_layer else "│  "
        for granted in layer.granted:
            lines.append(f"{stem}├─ allowed unconditionally by {granted}")
        if not layer.statements:
            lines.append(f"{stem}└─ (no statement for this service)")
        for si, s in enumerate(layer.statements):
            lines.extend(_statement_lines(s, stem, si == len(layer.statements) - 1))
    if e.missing_keys:
        lines.append("missing context values: " + ", ".join(e.missing_keys))
    if e.nearest_misses:
        lines.append("nearest misses (Allow statements that failed only on conditions):")
        for i, miss in enumerate(e.nearest_misses, 1):
            s = miss.statement
            sid = f" Sid {s.sid}" if s.sid else ""
            count = len(s.failed())
            lines.append(
                f"  {i}. {s.policy} Statement[{s.statement}]{sid} ({s.layer}):"
                f" {count} condition{'s' if count != 1 else ''} failed"
            )
            for c in s.failed():
                lines.append(f"     - {c.needed or _failed_text(c)}")
    for note in e.notes:
        lines.append(f"note: {note}")
    return lines


def _statement_lines(s: StatementCheck, stem: str, last: bool) -> list[str]:
    sid = f" Sid {s.sid}" if s.sid else ""
    level = f" level {s.level}" if s.level is not None else ""
    verdict = "applies" if s.applies else "does not apply"
    head = f"{stem}{'└─' if last else '├─'} {s.policy} Statement[{s.statement}]{sid}"
    lines = [f"{head} ({s.effect}{level}): {verdict}"]
    inner = stem + ("   " if last else "│  ")
    items = [f"Action: {_yes(s.action_matched)}", f"Resource: {_yes(s.resource_matched)}"]
    if s.resources:
        shown = ", ".join("(a variable has no value)" if r is None else r for r in s.resources)
        items[-1] += f" [{shown}]"
    if s.principal_matched is not None:
        items.append(f"Principal: {_yes(s.principal_matched)}")
    items += [_condition_text(c) for c in s.conditions]
    if s.error is not None:
        items.append(f"error: {s.error}")
    for i, item in enumerate(items):
        lines.append(f"{inner}{'└─' if i == len(items) - 1 else '├─'} {item}")
    return lines


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def _condition_text(c: ConditionCheck) -> str:
    policy = ", ".join("(no value)" if v is None else v for v in c.values)
    request = json.dumps(c.context, ensure_ascii=False) if c.present else "(absent)"
    text = f"{c.operator} {c.key}: {_yes(c.matched)}  request {request} vs policy [{policy}]"
    if not c.matched and c.needed:
        text += f"  -> {c.needed}"
    return text
