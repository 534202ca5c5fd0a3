"""An immutable snapshot of one store version: (version, index, cache), and its decisions.

A request reads the authorizer's snapshot reference once and is decided entirely on that
snapshot, so a reload (one reference assignment) never mixes versions within a request or a batch.

The account root is asked for explicitly: `principal_type="root"` with the root ARN. A root ARN
sent as a user (the default type) is an error, so a service that forwards a free-form user name
(an `X-User` header, a token's `sub`) can never hand out root. Root decisions bypass the cache:
they cost nothing, and no root Allow can then ever be found under a user's key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import NoReturn

from pdp.errors import RequestError
from pdp.language import (
    MAX_STRING,
    Explanation,
    Layers,
    Policy,
    RequestContext,
    as_of,
    check_request,
    decide_chain,
    explain_chain,
    explain_policies,
    failure,
    unexplained,
)
from pdp.model import PRINCIPAL_TYPES, Decision, Principal, Request, Session
from pdp.reference import is_known_action
from pdp.store.cache import DecisionCache, cache_key
from pdp.store.index import ACCOUNT_GRANT, Index, UserEntry
from pdp.store.version import StoreVersion
from pdp.store.world import World, layers, remembers, resource_principal

__all__ = ["PRINCIPAL_TYPES", "Snapshot"]

log = logging.getLogger(__name__)


class Snapshot:
    """One loaded store version. `is_authorized` never raises."""

    __slots__ = (
        "version",
        "path",
        "index",
        "source",
        "cache",
        "loaded_at",
        "load_seconds",
        "_root",
        "_root_allowed",
        "world",
        "__weakref__",  # pdp.store.queries keeps its index beside the snapshot, not past it
    )

    def __init__(
        self,
        index: Index,
        path: str,
        cache_size: int,
        load_seconds: float = 0.0,
        source: StoreVersion | None = None,
        world: World | None = None,
    ) -> None:
        self.version = index.version
        self.world = world  # accounts, roles, resources, boundaries, organization; or None
        self.path = path
        self.index = index
        self.source = source  # what was read (and parsed): the next load reads against it
        self.cache = DecisionCache(cache_size) if cache_size > 0 else None
        self.loaded_at = time.time()
        self.load_seconds = load_seconds
        # the root of any account of the store whose root is enabled (checked before use)
        self._root_allowed = Decision("Allow", "allowed", policy_version=self.version, root=True)
        if index.root_enabled:
            self._root = self._root_allowed
        else:
            self._root = Decision(
                "Deny",
                "implicitDeny",
                errors=("the account root is disabled in account.json",),
                policy_version=self.version,
                root=True,
            )

    def is_unknown_action(self, action: str) -> bool:
        """Is `action` one AWS's service authorization reference lacks, and not of a service the
        store's store.json declares as its applications' own? It marks the decision log and a
        metric only: a decision never depends on it. Never raises."""
        if is_known_action(action):
            return False
        own = self.source.application_services if self.source is not None else frozenset()
        return action.partition(":")[0].lower() not in own

    def is_authorized(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, object] | None = None,
        *,
        principal_type: str = "user",
        session: Session | None = None,
    ) -> Decision:
        """Decide a request for a user (name or ARN), or for another type of principal
        (`principal_type`, model.PRINCIPAL_TYPES): the account root ("root", with the root
        ARN), a role session ("role_session", its assumed-role ARN, with its `session`), an
        AWS service ("service"), an identity provider ("federated") or "anonymous"."""
        try:
            if isinstance(principal, str) and len(principal) > MAX_STRING:  # pdp/limits.py
                raise RequestError(f"principal: must be at most {MAX_STRING} characters")
            if principal_type != "user" or session is not None:
                world = self.world
                if (
                    principal_type == "role_session"
                    and world is not None
                    and type(principal) is str
                ):
                    return self._decide_session(
                        world, principal, action, resource, context, session
                    )
                return self._decide_typed(
                    principal, action, resource, context, principal_type, session
                )
            cache = self.cache
            world = self.world
            if world is not None:
                return self._decide_user_world(world, principal, action, resource, context)
            if cache is None:
                return self._decide(principal, action, resource, context)[0]
            # Keyed on the user's stored name: every spelling of one user (name or ARN, any
            # case) has the same decision, and a principal that is no user is never cached
            # (_decide refuses it).
            entry = self.index.resolve(principal) if type(principal) is str else None
            if entry is None:
                return self._decide(principal, action, resource, context)[0]
            key = cache_key(entry.user.name, action, resource, context)
            if key is not None:
                hit = cache.get(key)
                if hit is not None:
                    return hit
            decision, cacheable = self._decide(principal, action, resource, context, entry)
            if key is not None and cacheable:
                cache.put(key, decision)
            return decision
        except Exception as exc:  # fail closed: never an exception, never an Allow
            return failure(exc, self.version)

    def decide(self, request: Request) -> Decision:
        """`is_authorized` for a request object; never raises."""
        return self.is_authorized(
            request.principal,
            request.action,
            request.resource,
            request.context,
            principal_type=request.principal_type,
            session=request.session,
        )

    def decide_as_of(self, request: Request, now: float) -> tuple[Decision, bool]:
        """`decide` "as of" `now` (epoch seconds: a logged decision's time), and whether the
        decision read the clock (aws:CurrentTime, aws:EpochTime): one that did not is the same
        at any time. The normal path (`decide`) never pays for this; never raises."""
        with as_of(now) as clock:
            decision = self.decide(request)
        return decision, clock.read

    def explain(self, request: Request) -> tuple[Decision, Explanation]:
        """The decision `decide` gives, and why (pdp.language.explain): every statement of the
        action's service in each layer the request has, taken apart. Computed after and apart
        from the decision, which it never changes; slower (docs/queries.md, Explain). A request
        that cannot be decided (bad input) has an explanation that says only that. Never
        raises."""
        decision = self.decide(request)
        return decision, self.why(request, decision)

    def why(self, request: Request, decision: Decision) -> Explanation:
        """The explanation of `decision`, the answer this snapshot gave `request` (`explain`
        without deciding again: for a caller that decided, logged and counted it already).
        Never raises."""
        action = request.action if isinstance(request.action, str) else ""
        resource = request.resource if isinstance(request.resource, str) else ""
        try:
            explanation = self._explain(request, decision)
        except RequestError as exc:
            explanation = unexplained(decision, action, resource, f"not explained: {exc}")
        except Exception as exc:  # never an exception; the decision stands as it was
            log.error("internal error while explaining", exc_info=exc)
            note = f"not explained: internal error: {type(exc).__name__}"
            explanation = unexplained(decision, action, resource, note)
        return explanation

    def _explain(self, request: Request, decision: Decision) -> Explanation:
        """The explanation of `decision`: the request's policies found as `is_authorized`
        finds them, then each statement tested on its own (never cached, never remembered)."""
        principal, action, resource = request.principal, request.action, request.resource
        context, principal_type = request.context, request.principal_type
        if not isinstance(principal, str) or not principal:
            raise RequestError("principal: must be a non-empty string")
        check_request(action, resource)
        lower = action.lower()
        world = self.world
        notes: list[str] = []
        if principal_type == "user" and request.session is None:
            if world is None:
                entry = self.index.resolve(principal)
                if entry is None:
                    self._not_a_user(principal)
                if ACCOUNT_GRANT in decision.matched:
                    notes.append("allowed by account.json AllowUsersToChangePassword")
                ctx = RequestContext(self.index.principal(entry), context)
                own = self.index.policy_set(entry)
                return explain_policies(own, ctx, action, resource, decision, notes=notes)
            found = world.resolve_user(principal)
            if found is None:
                self._not_a_user(principal)
            index, entry = found
            if ACCOUNT_GRANT in decision.matched:
                notes.append("allowed by account.json AllowUsersToChangePassword")
            caller = index.principal(entry)
            identity = index.policy_set(entry)
            lay, values, sealed = layers(
                world, caller, lower, resource, context, identity=identity,
                boundary=world.user_boundary(entry), session=None,
            )  # fmt: skip
            if not sealed and _identity_only(lay):
                ctx = RequestContext(caller, context)
                return explain_policies(identity, ctx, action, resource, decision, notes=notes)
        elif principal_type == "role_session" and world is not None:
            caller, role, policies = world.session(principal, request.session)
            lay, values, sealed = layers(
                world, caller, lower, resource, context, role.identity, role.boundary, policies,
                role.role.service_linked,
            )  # fmt: skip
        elif principal_type == "root" and world is None:
            note = "the account root: identity policies do not restrict it (see the decision)"
            return unexplained(decision, action, resource, note)
        elif world is None or principal_type not in ("root", "service", "federated", "anonymous"):
            note = "not explained: no policy of this store applies to this request"
            if decision.errors:
                note = "not explained: the request was not decided (see the decision's errors)"
            return unexplained(decision, action, resource, note)
        else:
            if principal_type == "root":
                account = world.is_root(principal)
                if account is None:
                    raise RequestError("principal: not the root ARN of an account of the store")
                if not world.indexes[account].root_enabled:
                    note = f"the account root of {account} is disabled in account.json"
                    return unexplained(decision, action, resource, note)
                caller = Principal.root(account=account)
            else:
                caller = world.resource_caller(principal_type, principal)
            lay, values, sealed = layers(world, caller, lower, resource, context, None, None)
            if principal_type == "root" and not sealed and _identity_only(lay):
                note = "the account root: no organization or resource policy limits it here"
                return unexplained(decision, action, resource, note)
        if principal_type == "role_session" and request.session is not None and context:
            sealed = sealed | request.session.stated_keys
        _check_sealed(sealed, context)
        ctx = RequestContext.joined(values, context)
        return explain_chain(lay, caller, ctx, action, resource, decision, notes=notes)

    def _decide(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, object] | None,
        entry: UserEntry | None = None,
    ) -> tuple[Decision, bool]:
        """The decision for a user and whether it may be cached. `entry` is `principal`
        resolved already, when the caller did; the decision uses the user's stored name and
        ARN whatever the case of `principal` (docs/store.md, Principals)."""
        if not isinstance(principal, str) or not principal:
            raise RequestError("principal: must be a user name, user ARN or root ARN")
        service = check_request(action, resource)
        index = self.index
        if entry is None:
            entry = index.resolve(principal)
        if entry is None:
            self._not_a_user(principal)
        ctx = RequestContext(index.principal(entry), context)
        lower = action.lower()
        decision = index.policy_set(entry).decide_context(ctx, lower, service, resource)
        if decision.reason == "implicitDeny" and not decision.errors:
            decision = index.account_grant(entry, lower, resource) or decision
        return decision, not decision.errors and not ctx.clock_read

    def _not_a_user(self, principal: str) -> NoReturn:
        """Raise the RequestError for a user-typed principal that is no user of the store."""
        if self.index.is_root_any_case(principal) or (
            self.world is not None and self.world.is_root(principal) is not None
        ):
            raise RequestError(
                'principal: the account root is not a user; ask for it with principal_type "root"'
            )
        lower = principal.lower()
        if lower.startswith("arn:aws:sts::") and ":assumed-role/" in lower:
            raise RequestError(
                'principal: a role session is not a user; ask with principal_type "role_session"'
            )
        if lower.startswith("arn:aws:iam::") and ":role/" in lower:
            raise RequestError(
                "principal: a role does not make requests, its sessions do: ask for"
                " arn:aws:sts::<account>:assumed-role/<role>/<session> with principal_type"
                ' "role_session"'
            )
        raise RequestError(
            f'principal: unknown principal "{principal}"'
            f" (no such user in store version {self.version})"
        )

    def _decide_user_world(
        self,
        world: World,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, object] | None,
    ) -> Decision:
        """A user's decision in a store with a World: the chain when anything beyond its
        identity policies applies to the request, else exactly the identity-only path."""
        if not isinstance(principal, str) or not principal:
            raise RequestError("principal: must be a user name, user ARN or root ARN")
        found = world.resolve_user(principal)
        if found is None:
            self._not_a_user(principal)
        index, entry = found
        cache = self.cache
        key = cache_key(entry.arn, action, resource, context) if cache is not None else None
        if key is not None and cache is not None:
            hit = cache.get(key)
            if hit is not None:
                return hit
        service = check_request(action, resource)
        lower = action.lower()
        caller = index.principal(entry)
        identity = index.policy_set(entry)
        boundary = world.user_boundary(entry)
        lay, values, sealed = layers(
            world,
            caller,
            lower,
            resource,
            context,
            identity=identity,
            boundary=boundary,
            session=None,
        )
        if not sealed and _identity_only(lay):
            ctx = RequestContext(caller, context)
            decision = identity.decide_context(ctx, lower, service, resource)
            if decision.reason == "implicitDeny" and not decision.errors:
                decision = index.account_grant(entry, lower, resource) or decision
        else:
            _check_sealed(sealed, context)
            ctx = RequestContext.joined(values, context)
            decision = decide_chain(lay, caller, ctx, lower, service, resource, self.version)
            if decision.blocked_by == ("identity",):
                grant = index.account_grant(entry, lower, resource)
                if grant is not None:
                    decision = replace(grant, layers=decision.layers)
        if key is not None and cache is not None and not decision.errors and not ctx.clock_read:
            cache.put(key, decision)
        return decision

    def _decide_typed(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, object] | None,
        principal_type: str,
        session: Session | None,
    ) -> Decision:
        """Decisions for the root user, role sessions, services, providers and anonymous."""
        world = self.world
        if principal_type not in PRINCIPAL_TYPES:
            known = ", ".join(f'"{t}"' for t in PRINCIPAL_TYPES)
            raise RequestError(f"principal_type: must be one of {known}")
        if session is not None and principal_type != "role_session":
            raise RequestError('session: only a principal_type "role_session" has a session')
        if not isinstance(principal, str) or not principal:
            raise RequestError("principal: must be a non-empty string")
        if principal_type == "root" and world is None:
            return self._decide_root(principal, action, resource, context, principal_type)
        service = check_request(action, resource)
        lower = action.lower()
        if principal_type == "root":
            assert world is not None
            account = world.is_root(principal)
            if account is None:
                return self._decide_root(principal, action, resource, context, principal_type)
            caller = Principal.root(account=account)
            if not world.indexes[account].root_enabled:
                return self._disabled_root(account)
        elif principal_type == "role_session":
            raise RequestError(
                f"principal: store version {self.version} holds no roles (roles/<Name>.json)"
            )
        else:
            if principal_type == "anonymous" and principal != "anonymous":
                raise RequestError('principal: with principal_type "anonymous" it is "anonymous"')
            caller = (
                resource_principal(principal_type, principal)
                if world is None
                else world.resource_caller(principal_type, principal)
            )
        sealed: frozenset[str] = frozenset()
        if world is None:
            lay = Layers()
        else:
            lay, values, sealed = layers(world, caller, lower, resource, context, None, None)
        if principal_type == "root" and not sealed and _identity_only(lay):
            if context:
                RequestContext(caller, context)  # a bad context still fails
            return self._root_allowed
        _check_sealed(sealed, context)
        ctx = RequestContext.joined(values, context)
        decision = decide_chain(lay, caller, ctx, lower, service, resource, self.version)
        return replace(decision, root=True) if principal_type == "root" else decision

    def _decide_session(
        self,
        world: World,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, object] | None,
        session: Session | None,
    ) -> Decision:
        """A role session's decision (`_decide_typed`'s most frequent case, on its own)."""
        if not principal:
            raise RequestError("principal: must be a non-empty string")
        service = check_request(action, resource)
        lower = action.lower()
        caller, role, policies = world.session(principal, session)
        lay, values, sealed = layers(
            world, caller, lower, resource, context, role.identity, role.boundary, policies,
            role.role.service_linked, remembers(session),
        )  # fmt: skip
        if context:
            if session is not None:  # what the session states, the context may not restate
                sealed = sealed | session.stated_keys
            _check_sealed(sealed, context)
        ctx = RequestContext.joined(values, context)
        return decide_chain(lay, caller, ctx, lower, service, resource, self.version)

    def _disabled_root(self, account: str) -> Decision:
        return Decision(
            "Deny",
            "implicitDeny",
            errors=(f"the account root of {account} is disabled in account.json",),
            policy_version=self.version,
            root=True,
        )

    def _decide_root(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, object] | None,
        principal_type: str,
    ) -> Decision:
        if principal_type != "root":
            known = ", ".join(f'"{t}"' for t in PRINCIPAL_TYPES)
            raise RequestError(f"principal_type: must be one of {known}")
        check_request(action, resource)
        if not self.index.is_root(principal):
            raise RequestError(
                f'principal: with principal_type "root" the principal is the root ARN'
                f' "arn:aws:iam::{self.index.account}:root"'
            )
        # Root is unrestricted by identity policies, as in IAM; a bad context still fails.
        if context:
            RequestContext(self.index.root_principal(), context)
        return self._root

    def user_principal(self, principal: str) -> Principal | None:
        """The `Principal` a user (name or ARN) decides as (its context keys, tags), None when
        no such user exists: what a policy evaluated for that user is given."""
        entry = self.index.resolve(principal)
        return None if entry is None else self.index.principal(entry)

    def user_policies(self, principal: str) -> tuple[Policy, ...] | None:
        """The effective policies of a user (name or ARN), None when no such user exists."""
        entry = self.index.resolve(principal)
        return None if entry is None else entry.policies


def _identity_only(lay: Layers) -> bool:
    """Whether nothing but identity policies applies: no RCP, SCP, resource policy or
    boundary, and the resource in the principal's account."""
    return (
        lay.rcp is None
        and lay.scp is None
        and not lay.resource
        and not lay.resource_required
        and lay.boundary is None
        and lay.session is None
        and lay.same_account
    )


def _check_sealed(sealed: frozenset[str], context: Mapping[str, object] | None) -> None:
    """Check that the request sets none of the `sealed` keys (names, or prefixes ending in
    "/"): those the store derives, present or absent."""
    if sealed and context:
        prefixes = [p for p in sealed if p.endswith("/")]
        for key in context:
            if not isinstance(key, str):
                continue
            lower = key.lower()
            if lower in sealed or any(lower.startswith(p) for p in prefixes):
                raise RequestError(
                    f'context: key "{key}" is derived from the store and cannot be set by the'
                    " request"
                )
