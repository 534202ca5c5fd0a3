"""The decision cache of one snapshot: an LRU (cachetools) that can never change a decision.

The key is the request exactly as given: principal, action, resource and the whole context
(`frozenset` of its items). Whatever a decision depends on is therefore in the key, except the
clock, and decisions that read the clock are not stored (the snapshot checks that), nor are
decisions that carry errors. A snapshot owns its cache, so a reload starts cold.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from threading import Lock

from cachetools import LRUCache

from pdp.model import Decision

__all__ = ["DecisionCache", "cache_key"]


_STR = frozenset({str})


def _typed(value: object) -> object:
    # Invariant: 1, 1.0 and True are equal in Python but not to IAM ("1" vs "true"), and so are
    # 0.0 and -0.0 ("0.0" vs "-0.0"): every non-string value enters the key as its type and repr.
    if isinstance(value, list | tuple):
        return tuple((type(v), repr(v)) for v in value)
    return (type(value), repr(value))


def cache_key(
    principal: str, action: str, resource: str, context: Mapping[str, object] | None
) -> Hashable | None:
    """The key for a request, or None when it cannot be hashed (then it is not cached)."""
    if not context:
        return (principal, action, resource)
    try:
        if _STR.issuperset(map(type, context.values())):
            items = frozenset(context.items())
        else:
            items = frozenset((k, _typed(v)) for k, v in context.items())
    except (TypeError, AttributeError):
        return None
    return (principal, action, resource, items)


class DecisionCache:
    """A thread-safe LRU of decisions with hit and miss counters."""

    __slots__ = ("_lru", "_lock", "hits", "misses")

    def __init__(self, maxsize: int) -> None:
        self._lru: LRUCache[Hashable, Decision] = LRUCache(maxsize=maxsize)
        self._lock = Lock()  # cachetools caches are not thread-safe
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Decision | None:
        with self._lock:
            try:
                decision = self._lru[key]  # one lookup, and it marks the entry as recent
            except KeyError:
                self.misses += 1
                return None
            self.hits += 1
            return decision

    def put(self, key: Hashable, decision: Decision) -> None:
        with self._lock:
            self._lru[key] = decision

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "size": len(self._lru),
                "maxsize": int(self._lru.maxsize),
            }
