"""pdp.language.explain: each element of each statement taken apart, missing keys, nearest
misses, chain layers; and that an explanation never changes the decision it explains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pdp import Principal, parse_policy
from pdp.language import PolicySet, RequestContext
from pdp.language.chain import Guard, Layers, decide_chain
from pdp.language.explain import MAX_STATEMENTS, MAX_VALUE, explain_chain, explain_policies

A = "111111111111"
ALICE = Principal.user("alice", account=A, tags={"team": "blue"})
OBJECT = "arn:aws:s3:::b/k"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(action: Any = "s3:GetObject", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def _explain(
    *statements: dict[str, Any],
    action: str = "s3:GetObject",
    resource: str = OBJECT,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    policies = PolicySet([parse_policy(_doc(*statements), "p.json")], "1")
    ctx = RequestContext(ALICE, context)
    decision = policies.decide_context(ctx, action.lower(), action.split(":")[0].lower(), resource)
    out = explain_policies(policies, RequestContext(ALICE, context), action, resource, decision)
    assert out.decision == decision.decision and out.reason == decision.reason
    return out.to_dict()


def _only(explained: dict[str, Any]) -> dict[str, Any]:
    (layer,) = explained["layers"]
    (statement,) = layer["statements"]
    return statement  # type: ignore[no-any-return]


MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}

# (name, statement, context, expected fields of the one statement's check)
CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any]]] = [
    ("applies", _allow(), None, {"applies": True, "action_matched": True}),
    ("action miss", _allow("s3:PutObject"), None, {"applies": False, "action_matched": False}),
    (
        "notaction admits",
        {"Effect": "Allow", "NotAction": "s3:PutObject", "Resource": "*"},
        None,
        {"applies": True, "action_matched": True},
    ),
    (
        "resource miss",
        _allow(resource="arn:aws:s3:::other/*"),
        None,
        {"applies": False, "action_matched": True, "resource_matched": False},
    ),
    (
        "policy variable resolved in the resource",
        _allow(resource="arn:aws:s3:::b/${aws:username}/*"),
        None,
        {"resource_matched": False, "resources": ["arn:aws:s3:::b/alice/*"]},
    ),
]


@pytest.mark.parametrize(("name", "statement", "context", "expected"), CASES)
def test_statement_elements(
    name: str, statement: dict[str, Any], context: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    got = _only(_explain(statement, context=context))
    assert {k: got[k] for k in expected} == expected


# (operator block, context, matched, needed)
CONDITIONS: list[tuple[dict[str, Any], dict[str, Any] | None, bool, str | None]] = [
    (MFA, {"aws:MultiFactorAuthPresent": True}, True, None),
    (MFA, {"aws:MultiFactorAuthPresent": False}, False, "aws:MultiFactorAuthPresent must be true"),
    (
        {"StringEquals": {"aws:RequestedRegion": ["eu-west-1", "eu-west-3"]}},
        {"aws:RequestedRegion": "us-east-1"},
        False,
        "aws:RequestedRegion must be one of eu-west-1, eu-west-3",
    ),
    (
        {"StringLike": {"s3:prefix": "home/*"}},
        None,
        False,
        "s3:prefix must match home/* (the request lacks it)",
    ),
    (
        {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        {"aws:SourceIp": "203.0.113.9"},
        False,
        "aws:SourceIp must be an address in 10.0.0.0/8",
    ),
    (
        {"NumericLessThan": {"s3:max-keys": "10"}},
        {"s3:max-keys": 50},
        False,
        "s3:max-keys must be less than 10",
    ),
    (
        {"DateLessThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}},
        None,
        False,
        "aws:CurrentTime must be before 2000-01-01T00:00:00Z",
    ),
    ({"Null": {"aws:TokenIssueTime": "true"}}, {"aws:TokenIssueTime": "x"}, False, None),
    (
        {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
        {"aws:TagKeys": ["a", "c"]},
        False,
        "every value of aws:TagKeys must be one of a, b",
    ),
    (
        {"StringNotEquals": {"aws:PrincipalTag/team": "blue"}},
        None,
        False,
        "aws:PrincipalTag/team must not be blue",
    ),
]


@pytest.mark.parametrize(("block", "context", "matched", "needed"), CONDITIONS)
def test_each_condition(
    block: dict[str, Any], context: dict[str, Any] | None, matched: bool, needed: str | None
) -> None:
    got = _only(_explain(_allow(Condition=block), context=context))
    (condition,) = got["conditions"]
    assert condition["matched"] is matched
    assert got["applies"] is matched
    if needed is not None:
        assert condition["needed"] == needed
    elif "Null" in block:
        assert condition["needed"] == "aws:TokenIssueTime must be absent"
    else:
        assert "needed" not in condition


def test_values_compared_and_variable_resolved() -> None:
    block = {"StringEquals": {"s3:prefix": "home/${aws:username}/"}}
    got = _only(_explain(_allow(Condition=block), context={"s3:prefix": "home/bob/"}))
    (condition,) = got["conditions"]
    assert condition["values"] == ["home/alice/"]
    assert condition["context"] == "home/bob/"
    assert condition["present"] is True


def test_missing_keys_only_from_relevant_statements() -> None:
    explained = _explain(
        _allow(Condition={"StringEquals": {"s3:prefix": "a"}}),
        _allow("s3:PutObject", Condition={"StringEquals": {"s3:x-amz-acl": "private"}}),
        _allow(Condition={"Bool": {"aws:SecureTransport": "true"}}),
        context={"aws:SecureTransport": False},
    )
    assert explained["missing_keys"] == ["s3:prefix"]


def test_evaluation_error_is_reported() -> None:
    block = {"StringEquals": {"aws:TagKeys": "a"}}  # a list without a set prefix
    got = _only(_explain(_allow(Condition=block), context={"aws:TagKeys": ["a", "b"]}))
    assert got["applies"] is False
    assert "ForAllValues" in got["conditions"][0]["error"]
    assert "error" in got


def test_nearest_misses_fewest_failures_first() -> None:
    two = {"Bool": {"aws:SecureTransport": "true"}, "StringEquals": {"s3:prefix": "a"}}
    explained = _explain(
        _allow(Sid="Two", Condition=two),
        _allow(Sid="Other", resource="arn:aws:s3:::elsewhere/*"),
        _allow(Sid="One", Condition=MFA),
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*", "Condition": MFA},
        context={"aws:SecureTransport": False, "aws:MultiFactorAuthPresent": False},
    )
    assert explained["reason"] == "implicitDeny"
    misses = explained["nearest_misses"]
    assert [m["sid"] for m in misses] == ["One", "Two"]
    assert misses[0]["needed"] == ["aws:MultiFactorAuthPresent must be true"]
    assert misses[1]["failed"] == 2


def test_no_nearest_misses_unless_implicit_deny() -> None:
    explained = _explain(_allow(Sid="Ok"), _allow(Sid="Miss", Condition=MFA))
    assert explained["reason"] == "allowed"
    assert explained["nearest_misses"] == []


def test_other_services_are_not_examined() -> None:
    explained = _explain(_allow("ec2:*"), _allow("s3:Get*"), _allow("*"))
    statements = explained["layers"][0]["statements"]
    assert [s["statement"] for s in statements] == [1, 2]


def test_bounds() -> None:
    many = [_allow(f"s3:Get{i}") for i in range(MAX_STATEMENTS + 5)]
    explained = _explain(*many, resource="arn:aws:s3:::b/" + "k" * 1000)
    assert explained["examined"] == MAX_STATEMENTS
    assert len(explained["layers"][0]["statements"]) == MAX_STATEMENTS
    assert explained["truncated"] is True
    assert len(explained["resource"]) == MAX_VALUE + 3
    assert any("cut" in note for note in explained["notes"])


def test_chain_layers_explained() -> None:
    def pset(*statements: dict[str, Any]) -> PolicySet:
        return PolicySet([parse_policy(_doc(*statements), "p.json")])

    full = parse_policy(_doc(_allow("*")), "FullAWSAccess")
    region = parse_policy(
        _doc(_allow("s3:*", Condition={"StringEquals": {"aws:RequestedRegion": "eu-west-1"}})),
        "scp-region",
    )
    layers = Layers(
        scp=Guard([[full], [region]]),
        identity=pset(_allow()),
        boundary=pset(_allow("s3:List*")),
    )
    ctx = RequestContext(ALICE, {"aws:RequestedRegion": "us-east-1"})
    decision = decide_chain(layers, ALICE, ctx, "s3:getobject", "s3", OBJECT, "1")
    assert decision.blocked_by == ("scp",)
    fresh = RequestContext(ALICE, {"aws:RequestedRegion": "us-east-1"})
    explained = explain_chain(layers, ALICE, fresh, "s3:GetObject", OBJECT, decision).to_dict()
    assert [layer["layer"] for layer in explained["layers"]] == ["scp", "identity", "boundary"]
    scp = explained["layers"][0]
    assert scp["granted"] == ["FullAWSAccess: Statement[0]"]
    assert scp["statements"][0]["level"] == 0
    assert explained["layers"][1]["statements"][0]["applies"] is True
    assert explained["layers"][2]["statements"][0]["action_matched"] is False
    assert explained["blocked_by"] == ["scp"]
    # only the blocking layers' statements are near misses: the identity Allow already applied
    (miss,) = explained["nearest_misses"]
    assert (miss["layer"], miss["policy"]) == ("scp", "scp-region")
    assert miss["needed"] == ["aws:RequestedRegion must be eu-west-1"]


def test_chain_resource_principal() -> None:
    doc = _doc(
        _allow(Principal={"AWS": "arn:aws:iam::222222222222:root"}, resource="arn:aws:s3:::b/*")
    )
    resource = (parse_policy(doc, "resources/b.json", kind="resource"),)
    layers = Layers(resource=resource, identity=PolicySet([]))
    ctx = RequestContext(ALICE, {})
    decision = decide_chain(layers, ALICE, ctx, "s3:getobject", "s3", OBJECT, "1")
    explained = explain_chain(layers, ALICE, RequestContext(ALICE, {}), "s3:GetObject", OBJECT,
                              decision).to_dict()  # fmt: skip
    (statement,) = explained["layers"][0]["statements"]
    assert statement["principal_matched"] is False
    assert statement["applies"] is False


def test_needed_quotes_values_that_would_not_read_plainly() -> None:
    block = {"StringLike": {"s3:prefix": ["", "home/"]}}
    got = _only(_explain(_allow(Condition=block)))
    assert (
        got["conditions"][0]["needed"]
        == 's3:prefix must match one of "", home/ (the request lacks it)'
    )


def _corpus() -> list[Any]:
    cases = Path(__file__).resolve().parent.parent / "corpus" / "cases"
    out = []
    for path in sorted(cases.glob("*.json")):
        for case in json.loads(path.read_text()):
            if "policy" not in case:
                out.append(pytest.param(case, id=case["id"]))
    return out


@pytest.mark.parametrize("case", _corpus())
def test_the_explanation_agrees_with_the_decision_on_the_corpus(case: dict[str, Any]) -> None:
    """What the explanation says applies is exactly what decided: the Deny statements of an
    explicit deny, the Allow statements of an allow (and no Deny), nothing for an implicit one."""
    policies = PolicySet(
        [parse_policy(p, source=f"{case['id']}-{i}.json") for i, p in enumerate(case["policies"])]
    )
    who = case["principal"]
    principal = Principal.user(who["user"], account=who["account"], tags=who.get("tags") or {})
    request = case["request"]
    context = request.get("context") or {}
    decision = policies.decide(principal, request["action"], request["resource"], context)
    ctx = RequestContext(principal, context)
    explained = explain_policies(policies, ctx, request["action"], request["resource"], decision)
    applying = [s for layer in explained.layers for s in layer.statements if s.applies]
    denies = {(s.policy, s.statement) for s in applying if s.effect == "Deny"}
    allows = {(s.policy, s.statement) for s in applying if s.effect == "Allow"}
    matched = {(m.policy, m.statement) for m in decision.matched}
    if decision.reason == "explicitDeny":
        assert denies == matched
    elif decision.reason == "allowed":
        assert (denies, allows) == (set(), matched)
    else:
        assert denies == allows == set()
