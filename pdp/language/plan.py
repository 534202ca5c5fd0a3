"""The principal's side of the evaluation chain, merged into one statement index.

Up to four sets of policies look at a request on the principal's side: the SCP levels of its
account, its identity policies, its permissions boundary and its session policies. A `Plan`
merges their statements by service, the Deny statements of every layer first, then the Allow
statements, each in layer order and document order, so that one pass of `applying` (the one
place that says when a statement applies) finds every statement that applies. What a set of
applying statements means for each layer, a `Verdict`, is worked out once per set and
remembered: sets are few (one per combination of statements that apply).

Like a PolicySet on its own, the pass visits every Deny statement first and, when one applies
or cannot be evaluated, stops there: the Allow statements are not visited.
"""

from __future__ import annotations

from dataclasses import dataclass

from pdp.language.compile import CompiledStatement
from pdp.language.context import RequestContext
from pdp.language.evaluate import Candidates, PolicySet, applying
from pdp.model import MatchedStatement

__all__ = ["Plan", "Verdict"]

Refs = tuple[MatchedStatement, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Verdict:
    """What one set of applying statements means for each principal-side layer: the Deny
    statements that apply, by layer (in layer order), and for each layer its Allow statements,
    None when the layer is there and does not allow (for the SCPs: when a level does not).
    A layer that is not there allows with no statements: (). Compared by identity: a Plan
    makes one Verdict per set of statements."""

    denied: tuple[tuple[str, Refs], ...]
    scp: Refs | None
    identity: Refs | None
    boundary: Refs | None
    session: Refs | None


@dataclass(frozen=True, slots=True)
class _Source:
    layer: str  # "scp", "identity", "boundary" or "session"
    level: int  # an SCP level that must allow (0, 1, ...); -1 for the SCP Denies and the rest
    statements: frozenset[CompiledStatement]
    policies: PolicySet


class Plan:
    """The SCP levels (`scp_denies`, `scp_levels`, `scp_granted`: a Guard's parts), identity
    policies, boundary and session policies of one principal, decided in one pass."""

    __slots__ = ("present", "_sources", "_levels", "_granted", "_present", "_by_service",
                 "_generic", "_verdicts", "_max_verdicts")  # fmt: skip

    def __init__(
        self,
        scp_denies: PolicySet | None,
        scp_levels: tuple[PolicySet, ...] | None,
        scp_granted: Refs,
        identity: PolicySet | None,
        boundary: PolicySet | None,
        session: PolicySet | None,
    ) -> None:
        sources: list[_Source] = []
        if scp_denies is not None:
            sources.append(_source("scp", -1, scp_denies))
        for i, level in enumerate(scp_levels or ()):
            sources.append(_source("scp", i, level))
        for layer, policies in (("identity", identity), ("boundary", boundary),
                                ("session", session)):  # fmt: skip
            if policies is not None:
                sources.append(_source(layer, -1, policies))
        self._sources = tuple(sources)
        self._levels = None if scp_levels is None else len(scp_levels)
        self._granted = scp_granted
        self._present = (identity is not None, boundary is not None, session is not None)
        # the layers present, as chain's mask (scp 2, identity 8, boundary 16, session 32)
        self.present = (
            (2 if scp_levels is not None else 0)
            | (8 if identity is not None else 0)
            | (16 if boundary is not None else 0)
            | (32 if session is not None else 0)
        )
        services = frozenset().union(*(s.policies.services() for s in sources))
        # Services no set holds statements of its own share the statements for any service:
        # the table grows with the policies, never with what requests name.
        self._by_service = {svc: self._merge(svc) for svc in services}
        self._generic = self._merge("")
        self._verdicts: dict[tuple[CompiledStatement, ...], Verdict] = {}
        # Session policies are the caller's own: a caller could write one whose statements
        # apply in 2^n combinations and send one per request, so a Plan holding them keeps
        # fewer verdicts (a verdict is ~0.7 KB; up to _MAX_SESSION_POLICIES such Plans live).
        self._max_verdicts = _MAX_SESSION_VERDICTS if session is not None else _MAX_VERDICTS

    def _merge(self, service: str) -> Candidates:
        denies: list[CompiledStatement] = []
        allows: list[CompiledStatement] = []
        for source in self._sources:
            d, a = source.policies.candidates(service)
            denies += d
            allows += a
        return tuple(denies), tuple(allows)

    def run(
        self, ctx: RequestContext, action: str, service: str, resource: str, errors: list[str]
    ) -> Verdict:
        """The Verdict for a checked request; statements that cannot be evaluated go to
        `errors` (the chain then fails closed)."""
        denies, allows = self._by_service.get(service, self._generic)
        hits = applying(denies, action, resource, ctx, errors) if denies else []
        if allows and not hits and not errors:
            hits = applying(allows, action, resource, ctx, errors)
        key = tuple(hits)
        found = self._verdicts.get(key)
        if found is None:
            if len(self._verdicts) >= self._max_verdicts:
                self._verdicts.clear()
            found = self._verdicts[key] = self._verdict(key)
        return found

    def _verdict(self, hits: tuple[CompiledStatement, ...]) -> Verdict:
        denied: list[tuple[str, Refs]] = []
        allowed: dict[str, Refs] = {}
        level_hit = [False] * (self._levels or 0)
        unique = tuple(dict.fromkeys(hits))  # a policy in two layers is a candidate twice
        for source in self._sources:
            mine = tuple(s for s in unique if s in source.statements)
            refs = tuple(s.ref for s in mine if s.deny)
            if refs:
                if denied and denied[-1][0] == source.layer:
                    denied[-1] = (source.layer, denied[-1][1] + refs)
                else:
                    denied.append((source.layer, refs))
            refs = tuple(s.ref for s in mine if not s.deny)
            if refs:
                allowed[source.layer] = allowed.get(source.layer, ()) + refs
                if source.layer == "scp":
                    level_hit[source.level] = True
        scp: Refs | None = ()
        if self._levels is not None:
            scp = allowed.get("scp", ()) + self._granted if all(level_hit) else None
        identity, boundary, session = (
            (allowed.get(layer) if present else ())
            for layer, present in zip(
                ("identity", "boundary", "session"), self._present, strict=True
            )
        )
        return Verdict(tuple(denied), scp, identity, boundary, session)


def _source(layer: str, level: int, policies: PolicySet) -> _Source:
    statements = frozenset(s for p in policies.policies for s in p.statements)
    return _Source(layer, level, statements, policies)


_MAX_VERDICTS = 128
_MAX_SESSION_VERDICTS = 64
