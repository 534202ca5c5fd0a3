"""The decision: explicit Deny beats Allow, no Allow means implicit deny.

(reference_policies_evaluation-logic.html) Statements are looked up by the action's service
prefix through a `PolicySet` built once per set of policies, so a decision only visits the
statements that can match. Evaluation never raises: a malformed request or an unreadable context
value is a Deny that lists the error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

from pdp.compile import CompiledStatement
from pdp.context import RequestContext
from pdp.errors import RequestError
from pdp.model import Decision, MatchedStatement, Principal
from pdp.operators import EvaluationError
from pdp.policy import Policy

__all__ = ["PolicySet", "evaluate"]

log = logging.getLogger(__name__)

MAX_ACTION = 256
# A requested action names one action: no wildcards, spaces or control characters.
_ACTION = re.compile(r"[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+", re.ASCII)
MAX_RESOURCE = 4096


def check_request(action: object, resource: object) -> str:
    """Check the action and resource of a request; return the action's lower-cased service."""
    if not isinstance(action, str) or not 0 < len(action) <= MAX_ACTION:
        raise RequestError(f"action: must be a non-empty string of at most {MAX_ACTION} characters")
    if not _ACTION.fullmatch(action):
        raise RequestError(f'action: "{action}" is not of the form "service:action"')
    service = action.partition(":")[0]
    if not isinstance(resource, str) or not 0 < len(resource) <= MAX_RESOURCE:
        raise RequestError(
            f"resource: must be a non-empty string of at most {MAX_RESOURCE} characters"
        )
    return service.lower()


def failure(exc: Exception, version: str | None = None) -> Decision:
    """The Deny for a request that could not be decided: bad input, or an internal error."""
    if isinstance(exc, RequestError):
        return Decision("Deny", "implicitDeny", errors=(str(exc),), policy_version=version)
    log.error("internal error while deciding", exc_info=exc)
    message = f"internal error: {type(exc).__name__}"
    return Decision("Deny", "implicitDeny", errors=(message,), policy_version=version)


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
        # Invariant: each tuple keeps document order, so `matched` lists statements as written.
        self._by_service = {
            svc: tuple(s for s in statements if s.services is None or svc in s.services)
            for svc in services
        }
        self._generic = tuple(s for s in statements if s.services is None)
        # Decisions without errors are immutable and few (one per set of matching statements):
        # reuse them rather than build one per request.
        self._decisions: dict[tuple[MatchedStatement, ...], Decision] = {}
        self._implicit = Decision("Deny", "implicitDeny", policy_version=version)

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

    def candidates(self, service: str) -> tuple[CompiledStatement, ...]:
        return self._by_service.get(service, self._generic)

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
        """Decide a checked request: `action` lower-cased, `service` its prefix."""
        denies: list[MatchedStatement] = []
        allows: list[MatchedStatement] = []
        errors: list[str] = []
        for statement in self._by_service.get(service, self._generic):
            try:
                if statement.applies(action, resource, ctx):
                    (denies if statement.deny else allows).append(statement.ref)
            except EvaluationError as exc:
                ref = statement.ref
                errors.append(f"{ref.policy}: Statement[{ref.statement}]: {exc}")
        version = self.version
        if errors:
            if denies:
                return Decision("Deny", "explicitDeny", tuple(denies), tuple(errors), version)
            return Decision("Deny", "implicitDeny", (), tuple(errors), version)
        if not denies and not allows:
            return self._implicit
        key = tuple(denies or allows)
        decision = self._decisions.get(key)
        if decision is None:
            if len(self._decisions) >= _MAX_REMEMBERED:
                self._decisions.clear()
            if denies:
                decision = Decision("Deny", "explicitDeny", key, policy_version=version)
            else:
                decision = Decision("Allow", "allowed", key, policy_version=version)
            self._decisions[key] = decision
        return decision


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
