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
from pdp.language.evaluate import PolicySet
from pdp.language.operators import EvaluationError
from pdp.language.policy import Policy
from pdp.language.principals import PrincipalSpec
from pdp.model import Decision, MatchedStatement, Principal

__all__ = ["LAYER_ORDER", "Guard", "Layers", "decide_chain", "principal_grant"]

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


def _statement_applies(
    statement: CompiledStatement, action: str, resource: str, ctx: RequestContext
) -> bool:
    """Action, Resource and every condition (evaluate._applying's rule, for one statement)."""
    if statement.match_action(action) is statement.not_action:
        return False
    hit = statement.match_resource(resource)
    if not hit and statement.resource_templates:
        hit = statement.template_hit(resource, ctx)
    if (not hit) is not statement.not_resource:
        return False
    return all(condition(ctx) for condition in statement.conditions)


@dataclass(slots=True)
class _Tally:
    """What the layers gave: Deny and Allow statements by layer, and errors."""

    denies: dict[str, list[MatchedStatement]]
    allows: dict[str, list[MatchedStatement]]
    errors: list[str]

    def add(self, layer: str, decision: Decision) -> bool:
        """Record a PolicySet's decision; True when it allowed."""
        if decision.errors:
            self.errors.extend(decision.errors)
        if decision.reason == "explicitDeny":
            self.denies.setdefault(layer, []).extend(decision.matched)
            return False
        if decision.reason == "allowed":
            self.allows.setdefault(layer, []).extend(decision.matched)
            return True
        return False


def _resource_hits(
    policies: Iterable[Policy],
    caller: Principal,
    has_boundary: bool,
    action: str,
    resource: str,
    ctx: RequestContext,
    tally: _Tally,
) -> set[Grant]:
    """Evaluate resource-based policies: Denies go to the tally; returns how the Allow
    statements that apply name the caller."""
    grants: set[Grant] = set()
    for policy in policies:
        for statement in policy.statements:
            spec = statement.principal
            if spec is None:
                continue
            grant: Grant | None
            if statement.not_principal:
                if _excluded(spec, caller, has_boundary):
                    continue
                grant = "principal"
            else:
                grant = principal_grant(spec, caller)
                if grant is None:
                    continue
            try:
                applies = _statement_applies(statement, action, resource, ctx)
            except EvaluationError as exc:
                ref = statement.ref
                tally.errors.append(f"{ref.policy}: Statement[{ref.statement}]: {exc}")
                continue
            if not applies:
                continue
            if statement.deny:
                tally.denies.setdefault("resource", []).append(statement.ref)
            else:
                tally.allows.setdefault("resource", []).append(statement.ref)
                grants.add(grant)
    return grants


def _guard(
    layer: str,
    guard: Guard,
    ctx: RequestContext,
    action: str,
    service: str,
    resource: str,
    tally: _Tally,
) -> bool:
    """Every level must allow; a Deny at any level is recorded (all of them are looked at)."""
    if guard.denies is not None:
        tally.add(layer, guard.denies.decide_context(ctx, action, service, resource))
    allowed = True
    for level in guard.levels:
        if not tally.add(layer, level.decide_context(ctx, action, service, resource)):
            allowed = False
    if allowed and guard.granted:
        tally.allows.setdefault(layer, []).extend(guard.granted)
    return allowed


def decide_chain(
    layers: Layers,
    caller: Principal,
    ctx: RequestContext,
    action: str,
    service: str,
    resource: str,
    version: str | None = None,
) -> Decision:
    """Decide a checked request (`action` lower-cased, `service` its prefix) over `layers`."""
    tally = _Tally({}, {}, [])
    consulted: list[str] = []
    rcp_ok = scp_ok = True
    if layers.rcp is not None:
        consulted.append("rcp")
        rcp_ok = _guard("rcp", layers.rcp, ctx, action, service, resource, tally)
    if layers.scp is not None:
        consulted.append("scp")
        scp_ok = _guard("scp", layers.scp, ctx, action, service, resource, tally)
    grants: set[Grant] = set()
    if layers.resource or layers.resource_required:
        consulted.append("resource")
        has_boundary = layers.boundary is not None
        grants = _resource_hits(layers.resource, caller, has_boundary, action, resource, ctx, tally)
    identity_ok = boundary_ok = session_ok = True
    if layers.identity is not None:
        consulted.append("identity")
        identity_ok = tally.add(
            "identity", layers.identity.decide_context(ctx, action, service, resource)
        )
    elif caller.kind != "root":
        identity_ok = False
    if layers.boundary is not None:
        consulted.append("boundary")
        boundary_ok = tally.add(
            "boundary", layers.boundary.decide_context(ctx, action, service, resource)
        )
    if layers.session is not None:
        consulted.append("session")
        session_ok = tally.add(
            "session", layers.session.decide_context(ctx, action, service, resource)
        )
    order = tuple(consulted)
    if tally.denies:
        blocked = tuple(layer for layer in LAYER_ORDER if layer in tally.denies)
        matched = tuple(m for layer in blocked for m in tally.denies[layer])
        return Decision(
            "Deny", "explicitDeny", matched, tuple(tally.errors), version, layers=order,
            blocked_by=blocked,
        )  # fmt: skip
    if tally.errors:  # fail closed: a statement that could not be read might have denied
        return Decision("Deny", "implicitDeny", (), tuple(tally.errors), version, layers=order)
    blocked = _blocked(layers, caller, grants, rcp_ok, scp_ok, identity_ok, boundary_ok, session_ok)
    if blocked:
        return Decision("Deny", "implicitDeny", (), (), version, layers=order, blocked_by=blocked)
    used = _deciding_layers(layers, caller, grants)
    allowed: tuple[MatchedStatement, ...] = ()
    for layer, refs in tally.allows.items():  # filled in LAYER_ORDER
        if layer in used:
            allowed += tuple(refs)
    # by identity: the statements are the snapshot's own, alive as long as it is
    key = (version, *map(id, allowed), order)
    decision = _ALLOWED.get(key)
    if decision is None:
        if len(_ALLOWED) >= _MAX_ALLOWED:
            _ALLOWED.clear()
        decision = _ALLOWED[key] = Decision("Allow", "allowed", allowed, (), version, layers=order)
    return decision


# Allow decisions are immutable and few (one per set of statements that allow): built once.
_ALLOWED: dict[tuple[object, ...], Decision] = {}
_MAX_ALLOWED = 4096


def _blocked(
    layers: Layers,
    caller: Principal,
    grants: set[Grant],
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
    kind = caller.kind
    if kind in ("service", "federated", "anonymous"):
        return () if grants else ("resource",)
    if kind == "root":
        if layers.same_account and not layers.resource_required:
            return ()
        return () if grants else ("resource",)
    limits = tuple(
        layer for layer, ok in (("boundary", boundary_ok), ("session", session_ok)) if not ok
    )
    if layers.same_account:
        if "principal" in grants:
            return ()
        if "role" in grants:
            return limits
        if layers.resource_required and not grants:
            return ("resource",)
        return (("identity",) if not identity_ok else ()) + limits
    missing = () if grants else ("resource",)
    return missing + (("identity",) if not identity_ok else ()) + limits


def _deciding_layers(layers: Layers, caller: Principal, grants: set[Grant]) -> frozenset[str]:
    """The layers whose Allow statements an Allow cites."""
    used = {"rcp", "scp"}
    if grants:
        used.add("resource")
    direct = layers.same_account and "principal" in grants
    by_role = layers.same_account and "role" in grants
    if caller.kind in ("user", "session") and not direct:
        if not by_role:
            used.add("identity")
        used.update(("boundary", "session"))
    return frozenset(used)
