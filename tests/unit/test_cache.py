"""The decision cache's key: exact (never two requests IAM tells apart under one key) and bounded
in bytes whatever the request holds."""

from __future__ import annotations

import sys
import tracemalloc
import uuid
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

import pytest

import pdp
from pdp.cache import DIRECT_KEY_CHARS, DecisionCache, cache_key
from pdp.model import Decision

BIG = "x" * 4096


def _size(key: object) -> int:
    if isinstance(key, tuple):
        return sys.getsizeof(key) + sum(sys.getsizeof(k) for k in key)
    return sys.getsizeof(key)


@pytest.mark.parametrize(
    "request_",
    [
        (BIG, BIG, BIG, None),
        ("bob", "s3:GetObject", "*", {f"k{i}:{BIG[:200]}": BIG for i in range(128)}),
        ("bob", "s3:GetObject", "*", {"k:list": [BIG] * 256}),
        ("bob", "s3:GetObject", "*", {"k:n": 2**63 - 1, "k:b": True, "k:f": 1.5}),
    ],
)
def test_a_key_is_small_whatever_the_request(request_: tuple) -> None:  # type: ignore[type-arg]
    key = cache_key(*request_)
    assert key is not None and _size(key) <= 200


def test_short_requests_without_context_keep_their_strings() -> None:
    assert cache_key("bob", "s3:GetObject", "*", None) == ("bob", "s3:GetObject", "*")
    long = "a" * (DIRECT_KEY_CHARS + 1)
    assert isinstance(cache_key(long, "s3:GetObject", "*", {}), bytes)


@pytest.mark.parametrize(
    "values",
    [
        ["1", 1, 1.0, True, [1], ["1"], [True]],
        [0.0, -0.0, 0, "0", False],
        [["a", "b"], ["b", "a"], ["a"], "a", ["a", "a"]],
        [1e16, 10**16, "1e16"],
    ],
)
def test_values_iam_tells_apart_are_other_keys(values: list[object]) -> None:
    keys = {cache_key("bob", "s3:GetObject", "*", {"x:k": v}) for v in values}
    assert len(keys) == len(values)


def test_key_order_does_not_matter_but_fields_do() -> None:
    a = cache_key("bob", "s3:GetObject", "*", {"x:a": "1", "x:b": "2"})
    assert a == cache_key("bob", "s3:GetObject", "*", {"x:b": "2", "x:a": "1"})
    assert a != cache_key("bob", "s3:GetObject*", "", {"x:a": "1", "x:b": "2"})
    assert a != cache_key("bob", "s3:GetObject", "*", {"x:a": "12", "x:b": ""})


@pytest.mark.parametrize(
    "context",
    [
        {"x:f": float("nan")},
        {"x:f": float("inf")},
        {"x:f": [1.0, float("-inf")]},
        {"x:n": 2**64},
        {1: "not a string key"},
        {"x:d": datetime(2026, 1, 1, tzinfo=UTC)},
        {"x:u": uuid.UUID(int=1)},
        {"x:e": Enum("E", {"A": "a"}).A},
        {"x:l": [["nested"]]},
        {"x:s": {"set"}},
    ],
)
def test_values_without_an_exact_encoding_are_not_cached(context: dict[object, object]) -> None:
    assert cache_key("bob", "s3:GetObject", "*", context) is None  # type: ignore[arg-type]


def test_the_cache_memory_per_entry_is_bounded() -> None:
    """1,000 maximal requests: the cache holds a few hundred bytes per entry, not the request."""
    decision = Decision("Allow", "allowed")
    cache = DecisionCache(maxsize=1000)
    context = {f"k{i}:{BIG[:200]}": BIG for i in range(64)}
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(1000):
        key = cache_key(f"user{i}", "s3:GetObject", BIG, context)
        assert key is not None
        cache.put(key, decision)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert cache.stats()["size"] == 1000
    assert used / 1000 < 600, used / 1000


def test_a_value_the_engine_refuses_never_borrows_a_strings_decision() -> None:
    """A datetime is refused by the engine (Deny); its ISO string is allowed: the cache must
    not hand the string's Allow to the datetime once the string was decided."""
    store = Path(__file__).resolve().parents[2] / "examples" / "store"
    when = datetime(2026, 1, 1, tzinfo=UTC)
    with pdp.Authorizer.from_store(store, watch=False) as authz:
        assert authz.is_authorized("alice", "s3:GetObject", "*", {"x:k": when}).decision == "Deny"
        text = authz.is_authorized("alice", "s3:GetObject", "*", {"x:k": when.isoformat()})
        assert text.decision == "Allow"
        again = authz.is_authorized("alice", "s3:GetObject", "*", {"x:k": when})
        assert again.decision == "Deny" and again.errors
