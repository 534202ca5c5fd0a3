"""The decision: explicit Deny beats Allow, no Allow means implicit deny.

(reference_policies_evaluation-logic.html) Statements are looked up by the action's service
prefix through a `PolicySet` built once per set of policies, so a decision only visits the
statements that can match; Deny statements come first, and once one applies the Allow statements
are not visited at all. Evaluation never raises: a malformed request or an unreadable context
value is a Deny that lists the error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Literal

from pdp.errors import RequestError
from pdp.language.compile import CompiledStatement
from pdp.language.context import RequestContext
from pdp.language.operators import EvaluationError
from pdp.language.policy import Policy
from pdp.limits import MAX_ACTION, MAX_STRING
from pdp.model import Decision, Principal

__all__ = ["Candidates", "PolicySet", "applying", "evaluate"]

log = logging.getLogger(__name__)

# A requested action names one action: no wildcards, spaces or control characters.
_ACTION = re.compile(r"[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+", re.ASCII)


def check_request(action: object, resource: object) -> str:
    """Check the action and resource of a request; return the action's lower-cased service."""
    service = _SERVICES.get(action) if type(action) is str else None
    if service is None:
        service = _check_action(action)
    if not isinstance(resource, str) or not 0 < len(resource) <= MAX_STRING:
        raise RequestError(
            f"resource: must be a non-empty string of at most {MAX_STRING} characters"
        )
    return service


# Actions that passed `_check_action` (exact str only), with their lower-cased service: a few
# hundred actions make most requests, and a dict lookup is cheaper than the regex.
_SERVICES: dict[str, str] = {}
_MAX_SERVICES = 4096


def _check_action(action: object) -> str:
    if not isinstance(action, str) or not 0 < len(action) <= MAX_ACTION:
        raise RequestError(f"action: must be a non-empty string of at most {MAX_ACTION} characters")
    if not _ACTION.fullmatch(action):
        raise RequestError(f'action: "{action}" is not of the form "service:action"')
    service = action.partition(":")[0].lower()
    if type(action) is str:
        if len(_SERVICES) >= _MAX_SERVICES:
            _SERVICES.clear()
        _SERVICES[action] = service
    return service


def failure(exc: Exception, version: str | None = None) -> Decision:
    """The Deny for a request that could not be decided: bad input, or an internal error."""
    if isinstance(exc, RequestError):
        return Decision("Deny", "implicitDeny", errors=(str(exc),), policy_version=version)
    log.error("internal error while deciding", exc_info=exc)
    message = f"internal error: {type(exc).__name__}"
    return Decision("Deny", "implicitDeny", errors=(message,), policy_version=version)


Candidates = tuple[tuple[CompiledStatement, ...], tuple[CompiledStatement, ...]]
"""The statements that can match one service's actions: (Deny statements, Allow statements)."""


def _split(statements: Iterable[CompiledStatement]) -> Candidates:
    """Deny and Allow statements apart, each in document order."""
    statements = tuple(statements)
    return tuple(s for s in statements if s.deny), tuple(s for s in statements if not s.deny)


class PolicySet:
    """The policies that apply to one principal, indexed by action service prefix.

    `version` (the store version) is stamped on every decision it makes.
    """

    __slots__ = ("policies", "version", "_by_service", "_generic", "_decisions", "_implicit")

    def __init__(self, policies: Iterable[Policy], version: str | None = None) -> None:
        self.policies = tuple(policies)
        self.version = version
        statements = [s for p in self.policies for s in p.statements]
        services = {svc for s in statements for svc in (s.services or ())}
        # Invariant: per service, its Deny and its Allow candidates, each in document order, so
        # `matched` lists statements as written.
        self._by_service = {
            svc: _split(s for s in statements if s.services is None or svc in s.services)
            for svc in services
        }
        self._generic = _split(s for s in statements if s.services is None)
        # Decisions without errors are immutable and few (one per set of matching statements):
        # reuse them rather than build one per request. Keyed by the statements themselves
        # (identity hash), which this set holds for as long as the decisions.
        self._decisions: dict[tuple[CompiledStatement, ...], Decision] = {}
        self._implicit = Decision("Deny", "implicitDeny", policy_version=version)

    def candidates(self, service: str) -> Candidates:
        """The statements that can match the actions of `service` (lower-cased): its Deny and
        its Allow statements, each in document order."""
        return self._by_service.get(service, self._generic)

    def services(self) -> frozenset[str]:
        """The services with statements of their own (the others get only the statements
        that may match any service)."""
        return frozenset(self._by_service)

    def for_version(self, version: str | None) -> PolicySet:
        """The same policies stamped with another store version: the statement index is shared,
        the remembered decisions are not (they carry the version)."""
        other = PolicySet.__new__(PolicySet)
        for slot in PolicySet.__slots__:
            setattr(other, slot, getattr(self, slot))
        other.version = version
        other._decisions = {}
        other._implicit = Decision("Deny", "implicitDeny", policy_version=version)
        return other

    def decide(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: Mapping[str, object] | None = None,
        now: float | None = None,
    ) -> Decision:
        """Decide one request; never raises."""
        try:
            if not isinstance(principal, Principal):
                raise RequestError("principal: must be a pdp.Principal")
            service = check_request(action, resource)
            ctx = RequestContext(principal, context, now)
            return self.decide_context(ctx, action.lower(), service, resource)
        except Exception as exc:  # fail closed: never an exception, never an Allow
            return failure(exc, self.version)

    def decide_context(
        self, ctx: RequestContext, action: str, service: str, resource: str
    ) -> Decision:
        """Decide a checked request: `action` lower-cased, `service` its prefix.

        Deny statements are visited first, all of them. If one applies, the decision is an
        explicit Deny whose `matched` lists every Deny that applies, and Allow statements are not
        visited. A Deny statement that cannot be evaluated (an EvaluationError) also ends it
        there: the decision is a Deny (explicit if another Deny applies, else implicit: fail
        closed, the Deny might have applied). In both cases `errors` lists only Deny statements:
        an Allow that would have failed changes nothing and is not visited. Otherwise every Allow
        statement is visited: `matched` lists every Allow that applies, in document order, and
        an error in any of them makes the decision an implicit Deny that lists the errors.
        """
        denies, allows = self._by_service.get(service, self._generic)
        errors: list[str] = []
        hits = applying(denies, action, resource, ctx, errors) if denies else []
        if errors:
            refs = tuple(s.ref for s in hits)
            reason: Literal["explicitDeny", "implicitDeny"] = (
                "explicitDeny" if refs else "implicitDeny"
            )
            return Decision("Deny", reason, refs, tuple(errors), self.version)
        if not hits:
            hits = applying(allows, action, resource, ctx, errors) if allows else []
            if errors:
                return Decision("Deny", "implicitDeny", (), tuple(errors), self.version)
            if not hits:
                return self._implicit
        key = tuple(hits)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._remember(key)
        return decision

    def _remember(self, key: tuple[CompiledStatement, ...]) -> Decision:
        """The Decision for statements that apply (all Deny or all Allow), built once."""
        if len(self._decisions) >= _MAX_REMEMBERED:
            self._decisions.clear()
        refs = tuple(s.ref for s in key)
        if key[0].deny:
            decision = Decision("Deny", "explicitDeny", refs, policy_version=self.version)
        else:
            decision = Decision("Allow", "allowed", refs, policy_version=self.version)
        self._decisions[key] = decision
        return decision


def applying(
    statements: tuple[CompiledStatement, ...],
    action: str,
    resource: str,
    ctx: RequestContext,
    errors: list[str],
) -> list[CompiledStatement]:
    """The statements that apply, in order; those that raise EvaluationError go to `errors`.

    The one place that says when a statement applies (Action, then Resource, then every
    condition), written inline: a statement for another action costs one C-level call, and
    only conditions and policy variables cost a Python frame.
    """
    hits: list[CompiledStatement] = []
    for statement in statements:
        if statement.match_action(action) is statement.not_action:
            continue
        try:
            hit = statement.match_resource(resource)
            if not hit and statement.resource_templates:
                hit = statement.template_hit(resource, ctx)
            if (not hit) is not statement.not_resource:
                continue
            for condition in statement.conditions:
                if not condition(ctx):
                    break
            else:
                hits.append(statement)
        except EvaluationError as exc:
            ref = statement.ref
            errors.append(f"{ref.policy}: Statement[{ref.statement}]: {exc}")
    return hits


_MAX_REMEMBERED = 4096


@lru_cache(maxsize=256)
def _policy_set(policies: tuple[Policy, ...]) -> PolicySet:
    return PolicySet(policies)


def evaluate(
    policies: Iterable[Policy] | PolicySet,
    principal: Principal,
    *,
    action: str,
    resource: str,
    context: Mapping[str, object] | None = None,
    now: float | None = None,
) -> Decision:
    """Decide whether `principal` may perform `action` on `resource` under `policies`.

    `policies` are all the identity policies that apply to the principal (or a prepared
    `PolicySet`). `context` maps condition keys to strings, numbers, booleans or lists of them;
    `now` (epoch seconds) evaluates "as of" a time when the context has no `aws:CurrentTime`.
    Never raises: errors come back as a Deny with `errors` filled in.
    """
    if not isinstance(policies, PolicySet):
        try:
            policies = _policy_set(tuple(policies))
        except Exception as exc:  # a non-Policy in the list, say: fail closed
            return Decision("Deny", "implicitDeny", errors=(f"policies: {exc}",))
    return policies.decide(principal, action, resource, context, now)
