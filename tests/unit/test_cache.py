"""The decision cache's key: exact (never two requests IAM tells apart under one key) and bounded
in bytes whatever the request holds. Three kinds of key: the three strings (no context), the
canonical JSON itself (short) and "#" and its digest (long)."""

from __future__ import annotations

import json
import sys
import threading
import tracemalloc
import uuid
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from enum import Enum
from hashlib import sha256
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import pdp
from pdp.model import Decision
from pdp.store.cache import DIRECT_KEY_BYTES, DIRECT_KEY_CHARS, DecisionCache, cache_key

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


def _canonical(principal: str, action: str, resource: str, context: dict[str, Any]) -> bytes:
    return orjson.dumps((principal, action, resource, context), option=orjson.OPT_SORT_KEYS)


def test_short_requests_without_context_keep_their_strings() -> None:
    assert cache_key("bob", "s3:GetObject", "*", None) == ("bob", "s3:GetObject", "*")
    long = "a" * (DIRECT_KEY_CHARS + 1)
    digest = b"#" + sha256(_canonical(long, "s3:GetObject", "*", {})).digest()
    assert cache_key(long, "s3:GetObject", "*", {}) == digest


def test_a_short_canonical_form_is_the_key_and_a_longer_one_is_hashed() -> None:
    """Up to DIRECT_KEY_BYTES the canonical JSON is the key itself (no digest to compute); one
    byte more and the key is "#" and its digest."""
    context = {"x:k": "v"}
    pad = DIRECT_KEY_BYTES - len(_canonical("bob", "s3:GetObject", "", context))
    at_limit = _canonical("bob", "s3:GetObject", "r" * pad, context)
    assert len(at_limit) == DIRECT_KEY_BYTES
    assert cache_key("bob", "s3:GetObject", "r" * pad, context) == at_limit
    over = _canonical("bob", "s3:GetObject", "r" * (pad + 1), context)
    assert cache_key("bob", "s3:GetObject", "r" * (pad + 1), context) == (
        b"#" + sha256(over).digest()
    )


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


def _maximal(i: int) -> tuple[str, str, str, dict[str, Any]]:
    """A request far past any key limit: keyed by its digest."""
    return f"user{i:04d}", "s3:GetObject", BIG, {f"k{j}:{BIG[:200]}": BIG for j in range(64)}


def _longest_direct(i: int) -> tuple[str, str, str, dict[str, Any]]:
    """A request whose canonical JSON is exactly DIRECT_KEY_BYTES: keyed by those bytes."""
    principal, context = f"user{i:04d}", {"x:k": "v"}
    pad = DIRECT_KEY_BYTES - len(_canonical(principal, "s3:GetObject", "", context))
    return principal, "s3:GetObject", "r" * pad, context


@pytest.mark.parametrize("make", [_maximal, _longest_direct])
def test_the_cache_memory_per_entry_is_bounded(
    make: Callable[[int], tuple[str, str, str, dict[str, Any]]],
) -> None:
    """1,000 maximal requests of each kind: the cache holds a few hundred bytes per entry, not
    the request (nor the 4 KiB buffer orjson returns its bytes in)."""
    decision = Decision("Allow", "allowed")
    cache = DecisionCache(maxsize=1000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(1000):
        key = cache_key(*make(i))
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


# Property tests. Strings short and long (past both limits), values of every type the key admits,
# equal in Python but not to IAM ("1", 1, 1.0, True; 0.0, -0.0), and lists of them.
_texts = st.builds(
    lambda char, n: char * n,
    st.sampled_from(["a", "b", "#", "[", "\u00e9"]),
    st.sampled_from([1, 2, 90, 300]),
)
_scalars = st.one_of(
    _texts,
    st.sampled_from(["1", "true", "0", "-0.0", "1.0"]),
    st.sampled_from([0, 1, -1, 2**63 - 1, 10**16]),
    st.booleans(),
    st.sampled_from([0.0, -0.0, 1.0, 1.5, 1e16, -1e-300]),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3), st.tuples(_scalars))
_contexts = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["x:a", "x:b", "X:A", "x:" + "k" * 200]), _values, max_size=3),
)
_requests = st.tuples(
    st.sampled_from(["bob", "alice", "#bob"]),
    st.sampled_from(["s3:GetObject", "s3:getobject"]),
    _texts,
    _contexts,
)


_LOOKALIKES = [1, True, 1.0, "1", "True", "true", 0, False, 0.0, -0.0, "0", "-0.0", 1e16, 10**16]


def _twins(value: object) -> list[object]:
    """Values Python finds equal to `value`, or that print as it does, that IAM tells apart."""
    return [v for v in _LOOKALIKES if v == value or str(v) == str(value)]


def _form(value: object) -> object:
    """What IAM tells apart in a value: its type and its exact text (so 0.0 is not -0.0); a list
    and a tuple are both a list of values."""
    if isinstance(value, list | tuple):
        return ("list", tuple(_form(v) for v in value))
    return (type(value).__name__, repr(value))


def _request_form(principal: str, action: str, resource: str, context: Any) -> object:
    return principal, action, resource, frozenset((k, _form(v)) for k, v in (context or {}).items())


def _kind(key: Hashable) -> str:
    """Which kind a key is, asserting its shape: the three strings, the canonical JSON (first
    byte "[", at most DIRECT_KEY_BYTES) or "#" and a SHA-256 digest."""
    if isinstance(key, tuple):
        assert len(key) == 3 and sum(map(len, key)) <= DIRECT_KEY_CHARS
        return "strings"
    assert isinstance(key, bytes)
    if key[:1] == b"[":
        assert len(key) <= DIRECT_KEY_BYTES
        return "direct"
    assert key[:1] == b"#" and len(key) == 33, key
    return "digest"


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(_requests, min_size=1, max_size=8))
def test_keys_are_equal_exactly_when_the_requests_are(batch: list[tuple[Any, ...]]) -> None:
    """Over all three kinds of key: one key per request whatever the order of its context, and
    never one key for two requests IAM tells apart, such as a value and its look-alikes (nor
    can a direct key equal a digest key)."""
    reordered = [(p, a, r, dict(reversed(c.items())) if c else c) for p, a, r, c in batch]
    twins = [
        (p, a, r, {**c, k: twin}) for p, a, r, c in batch for k in c or () for twin in _twins(c[k])
    ]
    keys: dict[object, Hashable] = {}
    for request in batch + reordered + twins:
        key = cache_key(*request)
        assert key is not None, request
        _kind(key)
        assert keys.setdefault(_request_form(*request), key) == key, request
    assert len(set(keys.values())) == len(keys)


@pytest.mark.parametrize("kind", ["strings", "direct", "digest"])
def test_the_property_strategy_reaches_every_kind_of_key(kind: str) -> None:
    """The property above is only as good as its requests: they reach all three kinds."""

    def of_kind(request: tuple[Any, ...]) -> bool:
        key = cache_key(*request)
        return key is not None and _kind(key) == kind

    find(_requests, of_kind, settings=settings(database=None))


def _write_store(root: Path) -> Path:
    """Policies whose decisions turn on the value types the key keeps apart, and on long values
    (keyed by digest)."""
    version = root / "store" / "versions" / "0001"

    def allow(sid: str, action: str, condition: dict[str, Any]) -> dict[str, Any]:
        return {
            "Sid": sid,
            "Effect": "Allow",
            "Action": action,
            "Resource": "*",
            "Condition": condition,
        }

    statements = [
        allow("StrOne", "s3:GetObject", {"StringEquals": {"x:a": "1"}}),
        allow("BoolTrue", "s3:PutObject", {"Bool": {"x:a": "true"}}),
        allow("Long", "s3:ListBucket", {"StringLike": {"x:b": "aaa*"}}),
        allow("Many", "s3:ListBucket", {"ForAllValues:StringEquals": {"x:b": ["1", "a"]}}),
        {
            "Sid": "Negative",
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"StringLike": {"x:a": "-*"}},
        },
        {
            "Sid": "Low",
            "Effect": "Deny",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"NumericLessThan": {"x:b": "5"}},
        },
        {
            "Sid": "Own",
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": "arn:aws:s3:::b/${aws:username}/*",
        },
    ]
    docs = {
        "policies/P.json": {"Version": "2012-10-17", "Statement": statements},
        "users/ann.json": {"policies": ["P"]},
        "users/ben.json": {"policies": ["P"]},
    }
    for name, doc in docs.items():
        (version / name).parent.mkdir(parents=True, exist_ok=True)
        (version / name).write_text(json.dumps(doc))
    return root / "store"


@pytest.fixture(scope="module")
def authorizers(tmp_path_factory: pytest.TempPathFactory) -> tuple[pdp.Authorizer, pdp.Authorizer]:
    store = _write_store(tmp_path_factory.mktemp("cache"))
    cached = pdp.Authorizer.from_store(store, watch=False, cache_size=4096)
    uncached = pdp.Authorizer.from_store(store, watch=False, cache_size=0)
    return cached, uncached


_decided_values = st.one_of(
    _values,
    st.sampled_from(["1", "true", "-0.0", "a" * 300, "aaa", "b" * 300, float("nan"), 2**64]),
    st.sampled_from([datetime(2026, 1, 1, tzinfo=UTC), uuid.UUID(int=1), None, [["1"]]]),
)
_decided = st.tuples(
    st.sampled_from(["ann", "ben", "arn:aws:iam::000000000000:user/ann"]),
    st.sampled_from(["s3:GetObject", "s3:PutObject", "s3:ListBucket"]),
    st.sampled_from(["*", "arn:aws:s3:::b/ann/k", "arn:aws:s3:::b/ann/" + "k" * 300]),
    st.one_of(st.none(), st.dictionaries(st.sampled_from(["x:a", "x:b"]), _decided_values)),
)


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(_decided, min_size=1, max_size=6))
def test_a_cached_decision_equals_the_uncached_one(
    authorizers: tuple[pdp.Authorizer, pdp.Authorizer], batch: list[tuple[Any, ...]]
) -> None:
    """Through Authorizer.is_authorized, with keys of every kind: the second time a request is
    asked it is a hit whenever it could be cached, and it is the decision the engine makes, also
    for the look-alikes of its values asked after it."""
    cached, uncached = authorizers
    cache = cached.snapshot.cache
    assert cache is not None
    twins = [
        (p, a, r, {**c, k: twin}) for p, a, r, c in batch for k in c or () for twin in _twins(c[k])
    ]
    for request in batch + twins:
        first = cached.is_authorized(*request)
        hits = cache.stats()["hits"]
        again = cached.is_authorized(*request)
        expected = uncached.is_authorized(*request)
        assert first == expected and again == expected, request
        if cache_key(*request) is not None and not expected.errors:
            assert cache.stats()["hits"] == hits + 1, request
            assert again is first


def test_concurrent_hits_and_puts_keep_the_lru_consistent() -> None:
    """A hit reorders the LRU and a put evicts from it: from many threads at once (switching
    every microsecond), every lookup is counted, no entry is lost or kept past maxsize, and no
    thread sees an error."""
    cache = DecisionCache(maxsize=8)
    decision = Decision("Allow", "allowed")
    keys = [cache_key("bob", "s3:GetObject", f"r{i}", {"x:k": i}) for i in range(12)]
    errors: list[BaseException] = []
    rounds = 2000

    def work(offset: int) -> None:
        try:
            for n in range(rounds):
                key = keys[(n + offset) % len(keys)]
                assert key is not None
                if cache.get(key) is None:
                    cache.put(key, decision)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[:3]
    stats = cache.stats()
    assert stats["hits"] + stats["misses"] == 8 * rounds
    order = cache._lru._LRUCache__order  # type: ignore[attr-defined]  # cachetools' recency list
    assert stats["size"] == len(order) <= 8 and set(order) == set(cache._lru)
