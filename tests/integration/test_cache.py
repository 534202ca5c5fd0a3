"""The decision cache can never change a decision: cached == uncached, on random requests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pdp

NOW = int(time.time())


def make_store(root: Path) -> Path:
    version = root / "store" / "versions" / "0001"
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + 2))
    docs = {
        "policies/Conditions.json": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "StrOne",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"x:flag": "1"}},
                },
                {
                    "Sid": "BoolTrue",
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": "*",
                    "Condition": {"Bool": {"x:flag": "true"}},
                },
                {
                    "Sid": "Tags",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": "*",
                    "Condition": {"ForAllValues:StringEquals": {"x:tags": ["a", "b"]}},
                },
                {
                    "Sid": "Soon",
                    "Effect": "Allow",
                    "Action": "s3:DeleteObject",
                    "Resource": "*",
                    "Condition": {"DateLessThan": {"aws:CurrentTime": soon}},
                },
                {
                    "Sid": "Epoch",
                    "Effect": "Deny",
                    "Action": "s3:DeleteObject",
                    "Resource": "*",
                    "Condition": {"NumericGreaterThan": {"aws:EpochTime": str(NOW + 1)}},
                },
                {
                    "Sid": "Num",
                    "Effect": "Deny",
                    "Action": "s3:GetObject",
                    "Resource": "*",
                    "Condition": {"NumericLessThan": {"x:n": "5"}},
                },
                {
                    "Sid": "Own",
                    "Effect": "Allow",
                    "Action": "s3:*",
                    "Resource": "arn:aws:s3:::b/${aws:username}/*",
                },
            ],
        },
        "users/ann.json": {"policies": ["Conditions"], "tags": {"team": "a"}},
        "users/ben.json": {"policies": ["Conditions"]},
    }
    for name, doc in docs.items():
        (version / name).parent.mkdir(parents=True, exist_ok=True)
        (version / name).write_text(json.dumps(doc))
    return root / "store"


values = st.one_of(
    st.sampled_from(["1", "true", "a", "b", "x", "4", "9"]),
    st.sampled_from([1, True, False, 1.0, 4, 9, 0]),
    st.lists(st.sampled_from(["a", "b", "c", 1, True]), max_size=3),
)
contexts = st.dictionaries(
    st.sampled_from(["x:flag", "X:Flag", "x:tags", "x:n", "aws:CurrentTime", "aws:username"]),
    values,
    max_size=3,
)
requests = st.tuples(
    st.sampled_from(["ann", "ben", "arn:aws:iam::000000000000:user/ann", "nobody"]),
    st.sampled_from(
        ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject", "S3:getobject"]
    ),
    st.sampled_from(["arn:aws:s3:::b/ann/k", "arn:aws:s3:::b/ben/k", "*"]),
    contexts,
)


@pytest.fixture(scope="module")
def authorizers(tmp_path_factory: pytest.TempPathFactory) -> tuple[pdp.Authorizer, pdp.Authorizer]:
    store = make_store(tmp_path_factory.mktemp("cache"))
    cached = pdp.Authorizer.from_store(store, watch=False, cache_size=64)
    uncached = pdp.Authorizer.from_store(store, watch=False, cache_size=0)
    return cached, uncached


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(requests, min_size=1, max_size=6))
def test_cached_equals_uncached(
    authorizers: tuple[pdp.Authorizer, pdp.Authorizer], batch: list[tuple[Any, ...]]
) -> None:
    """Repeated random requests (types mixed: 1, 1.0, True, "1") decide alike with and without
    the cache, including policies that read the clock."""
    cached, uncached = authorizers
    for principal, action, resource, context in batch + batch:
        a = cached.is_authorized(principal, action, resource, context)
        b = uncached.is_authorized(principal, action, resource, context)
        assert a == b, (principal, action, resource, context)


@pytest.mark.parametrize(("first", "second"), [(1, True), ("1", True), (1.0, 1), ([1], [True])])
def test_equal_python_values_of_other_types_are_other_keys(
    authorizers: tuple[pdp.Authorizer, pdp.Authorizer], first: Any, second: Any
) -> None:
    """1 == True == 1.0 in Python, but "1", "true" and "1.0" differ to IAM."""
    cached, uncached = authorizers
    for value in (first, second):
        for action in ("s3:GetObject", "s3:PutObject"):
            context = {"x:flag": value}
            a = cached.is_authorized("ben", action, "*", context)
            assert a == uncached.is_authorized("ben", action, "*", context)


def test_hits_misses_and_what_is_not_cached(tmp_path: Path) -> None:
    authz = pdp.Authorizer.from_store(make_store(tmp_path), watch=False, cache_size=16)
    stats = authz.snapshot.cache.stats  # type: ignore[union-attr]
    get = ("ann", "s3:GetObject", "arn:aws:s3:::b/ann/k", {"x:flag": "1"})
    first = authz.is_authorized(*get)
    assert authz.is_authorized(*get) is first
    assert stats() == {"hits": 1, "misses": 1, "size": 1, "maxsize": 16}
    # an error is never cached
    bad = ("ann", "s3:GetObject", "*", {"x:n": "many"})
    assert authz.is_authorized(*bad).errors
    authz.is_authorized(*bad)
    assert stats()["size"] == 1
    # a decision that read the clock is never cached
    clock = ("ann", "s3:DeleteObject", "*", None)
    authz.is_authorized(*clock)
    authz.is_authorized(*clock)
    assert stats()["size"] == 1
    # ... but the same request "as of" a given time is
    as_of = (
        "ann",
        "s3:DeleteObject",
        "*",
        {"aws:CurrentTime": "2020-01-01T00:00:00Z", "aws:EpochTime": 1577836800},
    )
    assert authz.is_authorized(*as_of).decision == "Allow"
    assert stats()["size"] == 2


def test_time_dependent_decision_changes_with_the_clock(tmp_path: Path) -> None:
    """'Soon' allows until NOW+2 s and 'Epoch' denies after NOW+1 s: a cache must not hide it."""
    authz = pdp.Authorizer.from_store(make_store(tmp_path), watch=False, cache_size=16)
    request = ("ann", "s3:DeleteObject", "*")
    if time.time() < NOW + 1:
        assert authz.is_authorized(*request).decision == "Allow"
    while time.time() < NOW + 3:
        time.sleep(0.05)
    assert authz.is_authorized(*request).decision == "Deny"


def test_reload_starts_with_a_cold_cache(tmp_path: Path) -> None:
    authz = pdp.Authorizer.from_store(make_store(tmp_path), watch=False)
    authz.is_authorized("ann", "s3:GetObject", "*", {"x:flag": "1"})
    authz.reload()
    assert authz.snapshot.cache.stats()["size"] == 0  # type: ignore[union-attr]


def test_zero_and_negative_zero_are_other_keys(tmp_path: Path) -> None:
    """Review finding: (float, 0.0) == (float, -0.0), but "0.0" and "-0.0" differ to IAM."""
    version = tmp_path / "store" / "versions" / "0001"
    (version / "policies").mkdir(parents=True)
    (version / "users").mkdir()
    (version / "policies" / "P.json").write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "orders:*", "Resource": "*"},
                    {
                        "Effect": "Deny",
                        "Action": "orders:Refund",
                        "Resource": "*",
                        "Condition": {"StringLike": {"orders:Amount": "-*"}},
                    },
                ],
            }
        )
    )
    (version / "users" / "bob.json").write_text('{"policies": ["P"]}')
    authz = pdp.Authorizer.from_store(tmp_path / "store", watch=False)
    assert authz.is_authorized("bob", "orders:Refund", "*", {"orders:Amount": 0.0}).allowed
    assert not authz.is_authorized("bob", "orders:Refund", "*", {"orders:Amount": -0.0}).allowed
