"""`Shards`: a read-only str-keyed map whose next version copies only the parts that changed.

A store version holds tables of a hundred thousand users. Copying such a dict for the next version
is one C call that touches every key and value (their reference counts), scattered over the heap:
measured at 10-20 ms on this project's machine, with the GIL held, so every request of the
process waits that long. A `Shards` map spreads its entries over 256 dicts by key hash, and
`evolve` copies only the dicts that a change touches (a few hundred entries each), sharing the
others with the version it came from.

Iteration is in key order (the order a store's files are read in), so that listings do not
depend on the process's hash seed; `unordered_items` is the cheap scan for code that does not
care.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from typing import TypeVar, overload

__all__ = ["MASK", "Shards"]

V = TypeVar("V")
_T = TypeVar("_T")
MASK = 255  # an entry of key k is in buckets[hash(k) & MASK]


class Shards(Mapping[str, V]):
    """`buckets` is public for hot paths (`buckets[hash(k) & MASK].get(k)` saves a method call);
    it must never be written to: versions share its dicts."""

    __slots__ = ("buckets", "_len")

    def __init__(self, items: Iterable[tuple[str, V]] = ()) -> None:
        shards: list[dict[str, V]] = [{} for _ in range(MASK + 1)]
        for key, value in items:
            shards[hash(key) & MASK][key] = value
        self.buckets = shards
        self._len = sum(map(len, shards))

    @overload
    def get(self, key: str, /) -> V | None: ...
    @overload
    def get(self, key: str, default: V | _T, /) -> V | _T: ...
    def get(self, key: str, default: object = None) -> object:
        return self.buckets[hash(key) & MASK].get(key, default)

    def __getitem__(self, key: str) -> V:
        return self.buckets[hash(key) & MASK][key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.buckets[hash(key) & MASK]

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(chain.from_iterable(self.buckets)))

    def unordered_items(self) -> Iterator[tuple[str, V]]:
        """Every entry, in no particular order (no sort)."""
        return chain.from_iterable(shard.items() for shard in self.buckets)

    def evolve(self, updates: Mapping[str, V], deletions: Iterable[str] = ()) -> Shards[V]:
        """A new map: this one with `updates` set and `deletions` removed (absent keys are
        ignored). Only the shards they touch are copied."""
        new: Shards[V] = Shards.__new__(Shards)
        shards = list(self.buckets)
        copied: set[int] = set()
        size = self._len

        def writable(key: str) -> dict[str, V]:
            i = hash(key) & MASK
            if i not in copied:
                shards[i] = dict(shards[i])
                copied.add(i)
            return shards[i]

        for key in deletions:
            if key in shards[hash(key) & MASK]:
                del writable(key)[key]
                size -= 1
        for key, value in updates.items():
            shard = writable(key)
            size += key not in shard
            shard[key] = value
        new.buckets = shards
        new._len = size
        return new
