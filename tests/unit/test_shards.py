"""`Shards` behaves as a dict of the same entries; a new version shares what it did not touch."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pdp.store.shards import Shards

KEYS = st.text(max_size=4)


@given(
    st.dictionaries(KEYS, st.integers()),
    st.dictionaries(KEYS, st.integers()),
    st.lists(KEYS),
)
def test_evolve_is_a_dict_update(
    start: dict[str, int], updates: dict[str, int], gone: list[str]
) -> None:
    before = Shards(start.items())
    after = before.evolve(updates, gone)
    want = {k: v for k, v in start.items() if k not in gone} | updates
    assert dict(after) == want and len(after) == len(want)
    assert list(after) == sorted(want)  # key order, whatever the hash seed
    assert dict(before) == start  # the old version is untouched
    for key in want:
        assert key in after and after[key] == want[key] and after.get(key) == want[key]
    assert dict(after.unordered_items()) == want


def test_evolve_copies_only_the_buckets_it_touches() -> None:
    before = Shards((f"u{i}", i) for i in range(10_000))
    after = before.evolve({"u1": -1}, ["u2"])
    shared = sum(a is b for a, b in zip(before.buckets, after.buckets, strict=True))
    assert shared >= len(before.buckets) - 2
