"""The decision cache of one snapshot: an LRU (cachetools) that can never change a decision.

The key holds the request exactly as given: principal, action, resource and the whole context.
Whatever a decision depends on is therefore in the key, except the clock, and decisions that
read the clock are not stored (the snapshot checks that), nor are decisions that carry errors.
A snapshot owns its cache, so a reload starts cold.

Memory is bounded per entry, whatever a caller sends. A request without context whose three
strings together hold at most `DIRECT_KEY_CHARS` characters is keyed by those strings. Any other
request is keyed by its canonical JSON (orjson, keys sorted) when that holds at most
`DIRECT_KEY_BYTES` bytes, and otherwise by "#" and the SHA-256 digest of it, 33 bytes. The kinds
never meet: a tuple never equals bytes, and canonical JSON of a request starts with "[". So an
entry costs at most a few hundred bytes (docs/serving.md, "Decision cache memory", has the
measured figure), never the size of the request. The canonical form keeps apart what IAM keeps
apart: "1", 1, 1.0 and true; 0.0 and -0.0. A value it cannot encode exactly (a datetime, UUID or
Enum, which orjson would write as a plain string or number; an integer past 64 bits; a non-finite
float; a non-string key) leaves the request uncached.

The hit path is what a cached decision costs: the key (a tuple, or orjson alone up to
`DIRECT_KEY_BYTES`), a lock, one LRU lookup and a counter.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from hashlib import sha256
from threading import Lock

import orjson
from cachetools import LRUCache

from pdp.model import Decision

__all__ = ["DIRECT_KEY_BYTES", "DIRECT_KEY_CHARS", "DecisionCache", "cache_key"]

DIRECT_KEY_CHARS = 256
DIRECT_KEY_BYTES = 256
_DIGEST = b"#"  # canonical JSON of a tuple starts with "[", so no direct key starts with "#"
_SORTED = orjson.OPT_SORT_KEYS
_EXACT = frozenset({str, bool, int})


def _encodable(value: object, nested: bool = False) -> bool:
    """True for the values whose canonical JSON is theirs alone: str, int, bool, finite float
    and (once) a list or tuple of those.

    Invariant: orjson also writes datetime, UUID, Enum and dataclass values (as their string or
    object forms) and NaN and the infinities as null, so such a value could share a key with
    a string or null that the engine decides otherwise; they are refused before hashing."""
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        return True
    if kind is float:
        return math.isfinite(value)  # type: ignore[arg-type]
    if (kind is list or kind is tuple) and not nested:
        return all(_encodable(v, True) for v in value)  # type: ignore[attr-defined]
    return False


def cache_key(
    principal: str, action: str, resource: str, context: Mapping[str, object] | None
) -> Hashable | None:
    """The key for a request, or None when it cannot be keyed exactly (then it is not cached):
    a tuple of the three strings, the canonical JSON itself (first byte "[") or `_DIGEST` and
    the digest of it."""
    if type(principal) is not str or type(action) is not str or type(resource) is not str:
        return None  # the engine refuses the request; nothing to cache
    if not context:
        if len(principal) + len(action) + len(resource) <= DIRECT_KEY_CHARS:
            return (principal, action, resource)
        context = {}
    else:
        for value in context.values():  # a loop beats map() over the few values of a context
            if type(value) not in _EXACT and not _encodable(value):
                return None
    try:
        canonical = orjson.dumps((principal, action, resource, context), option=_SORTED)
    except TypeError:  # an integer past 64 bits, a key that is not a string, an odd value
        return None
    if len(canonical) <= DIRECT_KEY_BYTES:
        return canonical
    return _DIGEST + sha256(canonical).digest()


class DecisionCache:
    """A thread-safe LRU of decisions with hit and miss counters."""

    __slots__ = ("_lru", "_lock", "hits", "misses")

    def __init__(self, maxsize: int) -> None:
        self._lru: LRUCache[Hashable, Decision] = LRUCache(maxsize=maxsize)
        self._lock = Lock()  # cachetools caches are not thread-safe
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Decision | None:
        lock = self._lock
        lock.acquire()  # not `with`: on a hit the lock is a good part of the cost, `with` more so
        try:
            decision = self._lru[key]  # one lookup, and it marks the entry as recent
        except KeyError:
            self.misses += 1
            return None
        else:
            self.hits += 1
            return decision
        finally:
            lock.release()

    def put(self, key: Hashable, decision: Decision) -> None:
        if type(key) is bytes:
            key = bytes(memoryview(key))  # orjson's bytes hold a 4 KiB buffer; a copy holds its own
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
