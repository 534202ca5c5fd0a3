"""Wildcard matching: IAM's documented examples, and agreement with a plain reference matcher."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.language.wildcard import PatternSet, compile_glob, tokenize


def reference(pattern: str, subject: str, *, dialect: str) -> bool:
    """Textbook O(n*m) dynamic programming over characters; no cleverness, no regex."""
    classes = []
    for i, ch in enumerate(pattern):
        if ch == "*":
            if dialect == "uniform":
                classes.append(("*", True))
            else:
                j = i
                while j < len(pattern) and pattern[j] == "*":
                    j += 1
                ends_segment = j == len(pattern) or pattern[j] == ":"
                classes.append(("*", ends_segment))
        elif ch == "?":
            classes.append(("?", dialect == "uniform"))
        else:
            classes.append((ch, False))
    n = len(subject)
    row = [True] + [False] * n
    for tok, crosses in classes:
        new = [False] * (n + 1)
        if tok == "*":
            new[0] = row[0]
            for j in range(1, n + 1):
                new[j] = row[j] or (new[j - 1] and (crosses or subject[j - 1] != ":"))
        elif tok == "?":
            for j in range(1, n + 1):
                new[j] = row[j - 1] and (crosses or subject[j - 1] != ":")
        else:
            for j in range(1, n + 1):
                new[j] = row[j - 1] and subject[j - 1] == tok
        row = new
    return row[n]


def glob(pattern: str, dialect: str = "uniform") -> bool:
    return compile_glob(tokenize(pattern), dialect=dialect)  # type: ignore[return-value]


# (pattern, subject, expected, rule) for Resource matching
RESOURCE_TABLE = [
    ("*", "arn:aws:s3:::bucket", True, "Resource * alone matches any ARN"),
    ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b.txt", True, "* spans /"),
    ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", False, "bucket/* is not the bucket"),
    ("arn:aws:s3:::b/*/test/*", "arn:aws:s3:::b/1/test/object.jpg", True, "doc test pattern"),
    ("arn:aws:s3:::b/*/test/*", "arn:aws:s3:::b/1///test///object.jpg", True, "doc test pattern"),
    ("arn:aws:s3:::b/*/test/*", "arn:aws:s3:::b/1/test/.jpg", True, "doc test pattern"),
    ("arn:aws:s3:::b/*/test/*", "arn:aws:s3:::b/1/test/", True, "doc test pattern"),
    ("arn:aws:s3:::b/*/test/*", "arn:aws:s3:::b/1/2/test.jpg", False, "doc test pattern"),
    (
        "arn:aws:logs:r:1:log-group:app-*",
        "arn:aws:logs:r:1:log-group:app-web:log-stream:x",
        True,
        "a * ending a segment expands beyond colons",
    ),
    (
        "arn:aws:logs:r:1:log-group:a*b",
        "arn:aws:logs:r:1:log-group:a:x:b",
        False,
        "a * inside a segment stays in it",
    ),
    ("arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:us-east-1:1:instance/i-1", True, "segment stars"),
    ("arn:aws:ec2:us-east-1:*:instance/*", "arn:aws:ec2:us-east-1:1:volume/v-1", False, "type"),
    ("arn:aws:s3:::Bucket", "arn:aws:s3:::bucket", False, "resources are case-sensitive"),
    ("arn:aws:s3:::b?t", "arn:aws:s3:::bat", True, "? is one character"),
    ("arn:aws:s3:::b?t", "arn:aws:s3:::bt", False, "? is exactly one character"),
    ("arn:aws:s3:::a*:b*c", "arn:aws:s3:::a:b:bc", True, "mixed stars: segment matching"),
    ("a*:b*c", "a:b:bc", True, "mixed stars need the later alignment"),
]


@pytest.mark.parametrize(("pattern", "subject", "expected", "rule"), RESOURCE_TABLE)
def test_resource_table(pattern: str, subject: str, expected: bool, rule: str) -> None:
    """Resource matching follows reference_policies_elements_resource.html#..._wildcards."""
    assert bool(glob(pattern, "resource")(subject)) is expected, rule
    assert reference(pattern, subject, dialect="resource") is expected, rule


ACTION_TABLE = [
    ("s3:Get*", "s3:getobject", True),
    ("s3:Get*", "s3:listbucket", False),
    ("iam:*AccessKey*", "iam:createaccesskey", True),
    ("s3:Get?bject", "s3:getobject", True),
    ("s3:Get?", "s3:getobject", False),
    ("*", "anything:atall", True),
]


@pytest.mark.parametrize(("pattern", "action", "expected"), ACTION_TABLE)
def test_action_patterns_ignore_case(pattern: str, action: str, expected: bool) -> None:
    """Action names are case-insensitive and take * and ? (reference_policies_elements_action)."""
    patterns = PatternSet([tokenize(pattern)], dialect="uniform", ignore_case=True)
    assert patterns(action) is expected


ARN_TABLE = [
    (
        "arn:aws:someservice:*:111122223333:finance/*",
        "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
        False,
        "ArnLike matches components between colons (StringLike would match)",
    ),
    ("arn:aws:sns:*:123456789012:topic-*", "arn:aws:sns:us-east-1:123456789012:topic-a", True, ""),
    ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a:b", True, "the sixth component keeps colons"),
    ("arn:aws:s3:::bucket/*", "not-an-arn", False, "a non-ARN value has no components"),
]


@pytest.mark.parametrize(("pattern", "subject", "expected", "rule"), ARN_TABLE)
def test_arn_dialect(pattern: str, subject: str, expected: bool, rule: str) -> None:
    """ArnLike checks the six components separately (Conditions_ARN)."""
    assert bool(compile_glob(tokenize(pattern), dialect="arn")(subject)) is expected, rule


def test_string_like_star_crosses_everything() -> None:
    """StringLike's * matches any run, / and : included."""
    assert glob("arn:*:finance/*")("arn:aws:x:us-east-2:9:store/abc:1:finance/doc")


def test_pathological_pattern_is_fast() -> None:
    """a*a*...*b against a long run of a's must not backtrack exponentially."""
    pattern = "a*" * 12 + "b"
    subject = "a" * 20000
    for dialect in ("uniform", "resource"):
        matcher = glob(pattern, dialect)
        started = time.perf_counter()
        assert not matcher(subject)
        assert time.perf_counter() - started < 3.0  # exponential would take ages, not ~ms


def test_pathological_mixed_pattern_is_fast() -> None:
    """The segment matcher stays polynomial on many colons too."""
    pattern = "a*:" * 6 + "a*b"
    subject = ("a" * 50 + ":") * 400
    matcher = glob(pattern, "resource")
    started = time.perf_counter()
    assert not matcher(subject)
    assert time.perf_counter() - started < 2.0


alphabet = st.sampled_from("ab:/*?")
subjects = st.text(alphabet=st.sampled_from("ab:/"), max_size=14)


@settings(max_examples=600, deadline=None)
@given(pattern=st.text(alphabet=alphabet, max_size=10), subject=subjects)
def test_uniform_agrees_with_reference(pattern: str, subject: str) -> None:
    assert bool(glob(pattern)(subject)) is reference(pattern, subject, dialect="uniform")


@settings(max_examples=1500, deadline=None)
@given(pattern=st.text(alphabet=alphabet, max_size=10), subject=subjects)
def test_resource_agrees_with_reference(pattern: str, subject: str) -> None:
    expected = reference(pattern, subject, dialect="resource")
    assert bool(glob(pattern, "resource")(subject)) is expected
    patterns = PatternSet([tokenize(pattern)], dialect="resource", ignore_case=False)
    assert patterns(subject) is expected
