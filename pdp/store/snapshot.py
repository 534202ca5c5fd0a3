"""An immutable snapshot of one store version: (version, index, cache), and its decisions.

A request reads the authorizer's snapshot reference once and is decided entirely on that
snapshot, so a reload (one reference assignment) never mixes versions within a request or a batch.

The account root is asked for explicitly: `principal_type="root"` with the root ARN. A root ARN
sent as a user (the default type) is an error, so a service that forwards a free-form user name
(an `X-User` header, a token's `sub`) can never hand out root. Root decisions bypass the cache:
they cost nothing, and no root Allow can then ever be found under a user's key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from pdp.errors import RequestError
from pdp.language import Policy, RequestContext, check_request, failure
from pdp.model import Decision, Principal, Request
from pdp.reference import is_known_action
from pdp.store.cache import DecisionCache, cache_key
from pdp.store.index import Index, UserEntry
from pdp.store.version import StoreVersion

__all__ = ["PRINCIPAL_TYPES", "Snapshot"]

PRINCIPAL_TYPES = ("user", "root")


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
    )

    def __init__(
        self,
        index: Index,
        path: str,
        cache_size: int,
        load_seconds: float = 0.0,
        source: StoreVersion | None = None,
    ) -> None:
        self.version = index.version
        self.path = path
        self.index = index
        self.source = source  # what was read (and parsed): the next load reads against it
        self.cache = DecisionCache(cache_size) if cache_size > 0 else None
        self.loaded_at = time.time()
        self.load_seconds = load_seconds
        if index.root_enabled:
            self._root = Decision("Allow", "allowed", policy_version=self.version, root=True)
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
    ) -> Decision:
        """Decide a request for a user (name or ARN), or for the account root when
        `principal_type` is "root" (then `principal` is the root ARN)."""
        try:
            if principal_type != "user":
                return self._decide_root(principal, action, resource, context, principal_type)
            cache = self.cache
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
        )

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
            if index.is_root_any_case(principal):
                raise RequestError(
                    "principal: the account root is not a user;"
                    ' ask for it with principal_type "root"'
                )
            raise RequestError(
                f'principal: unknown principal "{principal}"'
                f" (no such user in store version {self.version})"
            )
        ctx = RequestContext(index.principal(entry), context)
        lower = action.lower()
        decision = index.policy_set(entry).decide_context(ctx, lower, service, resource)
        if decision.reason == "implicitDeny" and not decision.errors:
            decision = index.account_grant(entry, lower, resource) or decision
        return decision, not decision.errors and not ctx.clock_read

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
