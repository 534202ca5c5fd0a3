"""pdp.language.coverage agrees with the real matcher: a missed string is really missed, and a
pattern called universal really matches every action or ARN it is shown."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.language import coverage
from pdp.language.coverage import _ACTIONS, _RESOURCES, _Grammar, _missed
from pdp.language.wildcard import PatternSet, normalize, tokenize


def _in_grammar(text: str, grammar: _Grammar) -> bool:
    state: int | None = grammar.start
    for ch in text:
        state = grammar.step(state, ch) if state is not None else None
    return state == grammar.accepting


def _matcher(pattern: str, dialect: str, ignore_case: bool) -> PatternSet:
    return PatternSet([tokenize(pattern)], dialect=dialect, ignore_case=ignore_case)


# Patterns near the edge of universality: ARN-shaped runs of wildcard segments, and free text
segments = st.sampled_from(["*", "?*", "*?", "??*", "a*", "*s", "aws", "", "?", "s3", "*a*", "x"])
shaped = st.builds(
    lambda head, parts: head + ":".join(parts),
    st.sampled_from(["", "arn:", "arn:aws:", "a"]),
    st.lists(segments, min_size=1, max_size=7),
)
pieces = st.sampled_from(["arn", ":", "aws", "s3", "*", "?", "a", "/", "x", "-", "aws:", "::"])
dense = st.lists(st.sampled_from(["arn", "aws", ":", "*", "?", "?*"]), min_size=1, max_size=6)
patterns = shaped | dense.map("".join) | st.lists(pieces, max_size=9).map("".join)
segment = st.text(alphabet="asw3x/-rn", max_size=4)
arns = st.builds(
    lambda svc, region, account, head, rest: f"arn:aws:{svc}:{region}:{account}:{head}{rest}",
    st.text(alphabet="asw3x-", min_size=1, max_size=4),
    segment,
    segment,
    st.text(alphabet="asw3x/-", min_size=1, max_size=2),
    st.text(alphabet="asw3x/-:", max_size=5).filter(lambda t: not t.endswith(":")),
)
actions = st.builds(
    lambda svc, name: f"{svc}:{name}",
    st.text(alphabet="as3x-._", min_size=1, max_size=4),
    st.text(alphabet="as3x-._", min_size=1, max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(pattern=patterns, samples=st.lists(arns, min_size=5, max_size=5))
def test_resource_coverage_agrees_with_the_matcher(pattern: str, samples: list[str]) -> None:
    match = _matcher(pattern, "resource", False)
    missed = _missed(normalize(tokenize(pattern)), "resource", _RESOURCES)
    if missed is None:
        assert all(match(s) for s in samples), pattern
    else:
        assert _in_grammar(missed, _RESOURCES) and not match(missed), (pattern, missed)


@settings(max_examples=300, deadline=None)
@given(pattern=patterns, samples=st.lists(actions, min_size=5, max_size=5))
def test_action_coverage_agrees_with_the_matcher(pattern: str, samples: list[str]) -> None:
    match = _matcher(pattern.lower(), "uniform", True)
    missed = _missed(normalize(tokenize(pattern.lower())), "uniform", _ACTIONS)
    if missed is None:
        assert all(match(s) for s in samples), pattern
    else:
        assert _in_grammar(missed, _ACTIONS) and not match(missed), (pattern, missed)


@pytest.mark.parametrize(
    ("pattern", "every"),
    [
        ("*", True),
        ("arn:*", True),
        ("arn:aws:*", True),
        ("arn:*:*:*:*:*", True),
        ("arn:*:?*", True),
        ("arn:a*", True),  # the partition is aws
        ("arn:*:*:*:*:*:*", False),
        ("arn:*:*:*::*", False),  # only resources without an account
        ("arn:aws:s3:::*", False),
        ("arn:aws-us-gov:*", False),
        ("arn:aws:*:*:*:${aws:username}", False),
        ("arn:aws:*:*:*:${*}", False),  # ${*} is a literal *
    ],
)
def test_every_resource_spellings(pattern: str, every: bool) -> None:
    assert coverage.matches_every_resource(pattern) is every


def test_a_malformed_variable_is_no_universal_resource() -> None:
    """The validator refuses it; coverage just answers False instead of raising."""
    assert coverage.matches_every_resource("arn:*${") is False
    assert coverage.matches_every_resource("arn:*${", substitute=False) is False


def test_past_the_state_bound_the_matcher_is_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pathological pattern cannot make the audit search without end."""
    monkeypatch.setattr(coverage, "MAX_STATES", 2)
    assert _missed(normalize(tokenize("arn:*")), "resource", _RESOURCES) is None
    missed = _missed(normalize(tokenize("arn:aws:*:*:*:*a*")), "resource", _RESOURCES)
    assert missed is not None and not _matcher("arn:aws:*:*:*:*a*", "resource", False)(missed)
