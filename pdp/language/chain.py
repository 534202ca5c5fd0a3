"""The evaluation chain: AWS's policy evaluation logic across every policy type.

(reference_policies_evaluation-logic.html and its subpages) For one request, the layers that
apply are given as `Layers`: the RCPs on the resource account's organization path and the SCPs
on the principal account's path (one PolicySet per level, root first), the resource-based
policies of the resource, the principal's identity policies, its permissions boundary and its
session policies. `decide_chain` then follows the documented order:

1. an explicit Deny in any of them decides (`blocked_by` names every layer that denied);
2. every RCP level must allow, then every SCP level must allow;
3. the resource-based policy, the identity policies, the boundary and the session policies,
   combined as the pages say for the principal type and the account relation:
   - in one account, a resource policy that names the principal itself (a user ARN, a role
     session ARN) allows on its own: an implicit deny in identity policies, a boundary or a
     session policy does not limit it; one that names the session's role ARN is limited by the
     boundary and the session policies; one that names the account delegates to the account's
     identity policies (access_policies_boundaries.html, access_policies.html#policies_session);
   - across accounts both sides must allow: the resource policy (naming the principal, its role
     or its account) and the identity policies within the boundary and session policies
     (reference_policies_evaluation-logic-cross-account.html);
   - some services' resource policies are mandatory (a KMS key policy, a role's trust policy):
     identity policies alone never grant there;
   - service principals, identity providers and anonymous callers have no identity policies:
     only a resource policy can allow them.

Evaluation never raises and fails closed: a statement that cannot be evaluated makes the
decision a Deny that lists the error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pdp.language.compile import CompiledStatement
from pdp.language.context import RequestContext
from pdp.language.evaluate import PolicySet, applying
from pdp.language.plan import Plan, Verdict
from pdp.language.policy import Policy
from pdp.language.principals import PrincipalSpec
from pdp.model import Decision, MatchedStatement, Principal

__all__ = ["LAYER_ORDER", "Guard", "Layers", "decide_chain", "forget_plans", "principal_grant"]

LAYER_ORDER = ("rcp", "scp", "resource", "identity", "boundary", "session")

Grant = Literal["principal", "role", "account"]
"""How a resource policy statement names the caller: the caller itself (a user, a role session,
the root user, a service, a provider, or anyone through "*"), a role session's role, or the
caller's account (a delegation to that account's identity policies)."""


def _allows_everything(statement: CompiledStatement) -> bool:
    """An Allow of every action on every resource, unconditionally (FullAWSAccess)."""
    return (
        not statement.deny
        and not statement.not_action
        and not statement.not_resource
        and not statement.conditions
        and statement.services is None
        and statement.match_action("\x00:\x00")  # "*" and only "*" matches any action
        and bool(statement.match_resource("\x00"))
    )


class Guard:
    """The SCP (or RCP) levels on one account's organization path, ready to decide: every level
    must allow and a Deny at any level denies. Built once per path: the Deny statements of all
    levels in one PolicySet (one lookup finds every Deny), and only the levels whose Allow is
    not unconditional (a level holding FullAWSAccess allows everything) visited one by one."""

    __slots__ = ("denies", "levels", "granted")

    def __init__(self, levels: Iterable[Iterable[Policy]], version: str | None = None) -> None:
        deny_policies: list[Policy] = []
        checked: list[PolicySet] = []
        granted: list[MatchedStatement] = []
        for level in levels:
            allows: list[Policy] = []
            free: MatchedStatement | None = None
            for policy in level:
                denies = tuple(s for s in policy.statements if s.deny)
                if denies:
                    deny_policies.append(_only(policy, denies))
                allowing = tuple(s for s in policy.statements if not s.deny)
                if allowing:
                    allows.append(_only(policy, allowing))
                for statement in allowing:
                    if free is None and _allows_everything(statement):
                        free = statement.ref
            if free is not None:
                if free not in granted:
                    granted.append(free)
            else:
                checked.append(PolicySet(allows, version))
        self.denies = PolicySet(deny_policies, version) if deny_policies else None
        self.levels = tuple(checked)
        self.granted = tuple(granted)


def _only(policy: Policy, statements: tuple[CompiledStatement, ...]) -> Policy:
    return Policy(policy.name, policy.version, policy.id, statements, policy.document, policy.kind)


@dataclass(slots=True)
class Layers:
    """The policies that apply to one request, by layer. `rcp`/`scp` are None when no RCP/SCP
    applies (no organization, the management account, a service-linked role); `identity` is
    None for a principal without identity policies (service, provider, anonymous) and for the
    root user (whom identity policies do not restrict). `resource_required`: the service never
    grants on identity policies alone (KMS keys, a role's trust policy for sts actions)."""

    rcp: Guard | None = None
    scp: Guard | None = None
    resource: tuple[Policy, ...] = ()
    resource_required: bool = False
    identity: PolicySet | None = None
    boundary: PolicySet | None = None
    session: PolicySet | None = None
    same_account: bool = True
    # Set by decide_chain on first use, for the caller it decides (a `Prepared`), in one
    # assignment: a thread reads it once, so that another thread preparing the same Layers for
    # another caller never mixes the two callers' parts. Layers are not changed otherwise.
    prepared: Prepared | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Prepared:
    """What decide_chain works out once for a Layers and one caller: the principal side merged
    into a Plan, the resource statements that name the caller (with how they name it),
    whether no RCP is left to evaluate, and the decisions that then depend on the Plan's
    verdict and the resource statements that apply alone."""

    caller: Principal
    plan: Plan
    named: tuple[CompiledStatement, ...]
    grants: dict[CompiledStatement, int]
    fast: bool
    decided: dict[tuple[object, ...], Decision]


def principal_grant(spec: PrincipalSpec, caller: Principal) -> Grant | None:
    """How a Principal element names `caller`, or None when it does not.

    `"*"` names everyone, each caller itself: a role session's permissions from a policy open
    to all are not limited by its boundary or session policies ("Permissions granted directly
    to a session are not limited by an implicit deny in an identity-based policy, a permissions
    boundary, or session policy"; tests/corpus/README.md)."""
    if spec.everyone:
        return "principal"
    kind = caller.kind
    if kind == "user" or kind == "root" or kind == "session":
        aws = spec.aws
        if not aws:
            return None
        if caller.arn.lower() in aws:
            return "principal"
        if kind == "session" and caller.role_arn is not None and caller.role_arn.lower() in aws:
            return "role"
        if f"arn:aws:iam::{caller.account}:root" in aws:
            return "principal" if kind == "root" else "account"
        return None
    if kind == "service":
        return "principal" if caller.arn.lower() in spec.services else None
    if kind == "federated":
        return "principal" if caller.arn.lower() in spec.federated else None
    return None  # anonymous: only "*"


def _excluded(spec: PrincipalSpec, caller: Principal, has_boundary: bool) -> bool:
    """Whether a NotPrincipal element exempts `caller` from its (Deny) statement.

    AWS checks the account, then the role, then the session or user: each must be listed
    (reference_policies_elements_notprincipal.html: "you must also specify the account ARN of
    the principal that should not be denied ... AWS verifies the account first, then the
    role, then the assumed-role user"). And "The NotPrincipal element with a Deny effect will
    always deny any IAM principal that has a permissions boundary policy attached"."""
    if spec.everyone:
        return True
    kind = caller.kind
    if kind == "service":
        return caller.arn.lower() in spec.services
    if kind == "federated":
        return caller.arn.lower() in spec.federated
    if kind == "anonymous":
        return False
    if has_boundary:
        return False
    aws = spec.aws
    if f"arn:aws:iam::{caller.account}:root" not in aws:
        return False
    if kind == "root":
        return True
    if kind == "user":
        return caller.arn.lower() in aws
    role = caller.role_arn.lower() if caller.role_arn is not None else ""
    return role in aws and caller.arn.lower() in aws


# How an applying Allow statement of a resource policy names the caller (a bit mask).
_PRINCIPAL, _ROLE, _ACCOUNT = 1, 2, 4
_GRANT_BITS: dict[Grant, int] = {"principal": _PRINCIPAL, "role": _ROLE, "account": _ACCOUNT}

# The layers a request has (a bit mask), and for each mask its `Decision.layers` tuple.
_RCP, _SCP, _RESOURCE, _IDENTITY, _BOUNDARY, _SESSION = 1, 2, 4, 8, 16, 32
_ORDERS = tuple(
    tuple(layer for bit, layer in enumerate(LAYER_ORDER) if mask & (1 << bit)) for mask in range(64)
)

Refs = tuple[MatchedStatement, ...]


def _named(layers: Layers, caller: Principal) -> dict[CompiledStatement, int]:
    """The resource policy statements whose Principal (or NotPrincipal) takes in `caller`,
    with how they name it (_PRINCIPAL, _ROLE or _ACCOUNT), in document order."""
    has_boundary = layers.boundary is not None
    named: dict[CompiledStatement, int] = {}
    for policy in layers.resource:
        for statement in policy.statements:
            spec = statement.principal
            if spec is None:
                continue
            if statement.not_principal:
                if not _excluded(spec, caller, has_boundary):
                    named[statement] = _PRINCIPAL
                continue
            grant = principal_grant(spec, caller)
            if grant is not None:
                named[statement] = _GRANT_BITS[grant]
    return named


def _guard(
    guard: Guard,
    ctx: RequestContext,
    action: str,
    service: str,
    resource: str,
    errors: list[str],
) -> tuple[Refs, Refs | None]:
    """The Deny statements of every level that apply (all of them are looked at), and the Allow
    statements that let the request through every level, None when a level does not allow."""
    denied: Refs = ()
    if guard.denies is not None:
        decision = guard.denies.decide_context(ctx, action, service, resource)
        if decision.errors:
            errors.extend(decision.errors)
        if decision.reason == "explicitDeny":
            denied = decision.matched
    if not guard.levels:
        return denied, guard.granted
    allowed: Refs | None = ()
    for level in guard.levels:
        decision = level.decide_context(ctx, action, service, resource)
        if decision.errors:
            errors.extend(decision.errors)
        if decision.reason != "allowed":
            allowed = None
        elif allowed is not None:
            allowed += decision.matched
    return denied, None if allowed is None else allowed + guard.granted


def decide_chain(
    layers: Layers,
    caller: Principal,
    ctx: RequestContext,
    action: str,
    service: str,
    resource: str,
    version: str | None = None,
) -> Decision:
    """Decide a checked request (`action` lower-cased, `service` its prefix) over `layers`.

    Every layer is evaluated, so that `blocked_by` names every layer that denied: the RCP
    levels, the principal's side in one pass of its `Plan` (SCP levels, identity policies,
    boundary, session policies) and the resource policy statements that name the caller.
    `_conclude` then combines the answers. When no RCP is left to evaluate, the decision
    follows from the Plan's verdict and the resource statements that apply, and is built once
    per pair."""
    prep = layers.prepared  # read once: see Layers.prepared
    if prep is None or prep.caller is not caller:
        prep = layers.prepared = _prepare(layers, caller)
    errors: list[str] = []
    verdict = prep.plan.run(ctx, action, service, resource, errors)
    hits = tuple(applying(prep.named, action, resource, ctx, errors)) if prep.named else ()
    if prep.fast and not errors:
        decided = prep.decided
        key = (verdict, hits, version)
        found = decided.get(key)
        if found is None:
            if len(decided) >= _MAX_DECIDED:
                decided.clear()
            granted = () if layers.rcp is None else layers.rcp.granted
            found = decided[key] = _conclude(layers, prep, verdict, (), granted, hits, [], version)
        return found
    rcp_denied: Refs = ()
    rcp_allowed: Refs | None = ()
    if layers.rcp is not None:
        rcp_denied, rcp_allowed = _guard(layers.rcp, ctx, action, service, resource, errors)
    return _conclude(layers, prep, verdict, rcp_denied, rcp_allowed, hits, errors, version)


def _prepare(layers: Layers, caller: Principal) -> Prepared:
    grants = _named(layers, caller)
    rcp = layers.rcp
    fast = rcp is None or (rcp.denies is None and not rcp.levels)
    return Prepared(caller, _plan(layers), tuple(grants), grants, fast, {})


_MAX_DECIDED = 8  # decisions remembered per Layers (one per verdict of its Plan)


def _conclude(
    layers: Layers,
    prep: Prepared,
    verdict: Verdict,
    rcp_denied: Refs,
    rcp_allowed: Refs | None,
    hits: tuple[CompiledStatement, ...],
    errors: list[str],
    version: str | None,
) -> Decision:
    """The decision from every layer's answer: Denies first, then errors (fail closed), then
    the layers that keep an implicit deny (`_blocked`), else an Allow citing the statements of
    the layers that decided it."""
    caller = prep.caller
    present = prep.plan.present
    if layers.rcp is not None:
        present |= _RCP
    if layers.resource or layers.resource_required:
        present |= _RESOURCE
    order = _ORDERS[present]
    res_denied = tuple(hit.ref for hit in hits if hit.deny)
    res_allowed = tuple(hit.ref for hit in hits if not hit.deny)
    grants = 0
    for hit in hits:
        if not hit.deny:
            grants |= prep.grants[hit]
    denied = list(verdict.denied)
    if rcp_denied:
        denied.append(("rcp", rcp_denied))
    if res_denied:
        denied.append(("resource", res_denied))
    if denied:
        denied.sort(key=lambda pair: LAYER_ORDER.index(pair[0]))
        return Decision(
            "Deny", "explicitDeny", tuple(m for _, refs in denied for m in refs),
            tuple(errors), version, layers=order, blocked_by=tuple(name for name, _ in denied),
        )  # fmt: skip
    if errors:  # fail closed: a statement that could not be read might have denied
        return Decision("Deny", "implicitDeny", (), tuple(errors), version, layers=order)
    id_allowed = verdict.identity
    if layers.identity is None and caller.kind != "root":
        id_allowed = None  # no identity policies: nothing of theirs allows
    scp_allowed, b_allowed, s_allowed = verdict.scp, verdict.boundary, verdict.session
    blocked = _blocked(
        layers,
        caller.kind,
        grants,
        rcp_allowed is not None,
        scp_allowed is not None,
        id_allowed is not None,
        b_allowed is not None,
        s_allowed is not None,
    )
    if blocked:
        return Decision("Deny", "implicitDeny", (), (), version, layers=order, blocked_by=blocked)
    assert rcp_allowed is not None and scp_allowed is not None  # not blocked
    allowed = rcp_allowed + scp_allowed
    if grants:
        allowed += res_allowed
    if _limited(layers, caller.kind, grants):
        allowed += (id_allowed or ()) if not (layers.same_account and grants & _ROLE) else ()
        allowed += (b_allowed or ()) + (s_allowed or ())
    # by identity: the statements are the snapshot's own, and the Decision holds them
    key = (version, order, *map(id, allowed))
    found = _ALLOWED.get(key)
    if found is None:
        if len(_ALLOWED) >= _MAX_ALLOWED:
            _ALLOWED.clear()
        found = _ALLOWED[key] = Decision("Allow", "allowed", allowed, (), version, layers=order)
    return found


def _plan(layers: Layers) -> Plan:
    """The Plan of a Layers' principal side, shared by every request with the same sets
    (remembered by identity; the entry holds the sets, so no id is reused while it lives)."""
    scp = layers.scp
    sets = (scp, layers.identity, layers.boundary, layers.session)
    key = tuple(map(id, sets))
    found = _PLANS.get(key)
    if found is not None:
        return found[0]
    plan = Plan(
        None if scp is None else scp.denies,
        None if scp is None else scp.levels,
        () if scp is None else scp.granted,
        layers.identity,
        layers.boundary,
        layers.session,
    )
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[key] = (plan, sets)
    return plan


_PLANS: dict[tuple[int, ...], tuple[Plan, tuple[object, ...]]] = {}
_MAX_PLANS = 2048


def forget_plans() -> None:
    """Drop every remembered Plan, and with them the policy sets they keep alive: the store
    calls it when it lets go of the session policy sets callers sent (pdp.store.world)."""
    _PLANS.clear()


# Allow decisions are immutable and few (one per set of statements that allow): built once.
_ALLOWED: dict[tuple[object, ...], Decision] = {}
_MAX_ALLOWED = 4096


def _blocked(
    layers: Layers,
    kind: str,
    grants: int,
    rcp_ok: bool,
    scp_ok: bool,
    identity_ok: bool,
    boundary_ok: bool,
    session_ok: bool,
) -> tuple[str, ...]:
    """The layers that keep an implicit deny, empty when the request is allowed."""
    if not rcp_ok:
        return ("rcp",)
    if not scp_ok:
        return ("scp",)
    if kind == "service" or kind == "federated" or kind == "anonymous":
        return () if grants else ("resource",)
    if kind == "root":
        if layers.same_account and not layers.resource_required:
            return ()
        return () if grants else ("resource",)
    if boundary_ok and session_ok:
        limits: tuple[str, ...] = ()
    else:
        limits = tuple(
            layer for layer, ok in (("boundary", boundary_ok), ("session", session_ok)) if not ok
        )
    if layers.same_account:
        if grants & _PRINCIPAL:
            return ()
        if grants & _ROLE:
            return limits
        if layers.resource_required and not grants:
            return ("resource",)
        return limits if identity_ok else ("identity", *limits)
    missing = () if grants else ("resource",)
    return missing + (() if identity_ok else ("identity",)) + limits


def _limited(layers: Layers, kind: str, grants: int) -> bool:
    """Whether an Allow cites the identity side (identity policies, boundary and session
    policies): for users and role sessions, unless a resource policy in their own account
    names them directly. Within the account, a grant to a session's role cites the boundary
    and the session policies but not the identity policies (decide_chain)."""
    return (kind == "user" or kind == "session") and not (
        layers.same_account and grants & _PRINCIPAL
    )
