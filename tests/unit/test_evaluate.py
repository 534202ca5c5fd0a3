"""Evaluation through the public API: the combining rule, fail-closed errors, principal keys."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pdp
from pdp.language.evaluate import applying

ACCOUNT = "123456789012"
ALICE = pdp.Principal.user("alice", account=ACCOUNT, tags={"team": "blue"})


def policy(*statements: dict[str, Any], name: str = "p.json") -> pdp.Policy:
    return pdp.parse_policy({"Version": "2012-10-17", "Statement": list(statements)}, source=name)


def allow(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(
    policies: list[pdp.Policy],
    action: str = "s3:GetObject",
    resource: str = "arn:aws:s3:::b/k",
    context: dict[str, Any] | None = None,
    principal: pdp.Principal = ALICE,
    now: float | None = None,
) -> pdp.Decision:
    return pdp.evaluate(
        policies, principal, action=action, resource=resource, context=context, now=now
    )


def test_public_api_is_pinned() -> None:
    """Other tools call these names: changing them is a breaking change."""
    assert sorted(pdp.__all__) == [
        "Authorizer",
        "Decision",
        "Diagnostic",
        "MatchedStatement",
        "PdpError",
        "Policy",
        "PolicyLoadError",
        "PolicySet",
        "PolicyValidationError",
        "Principal",
        "ReloadResult",
        "Request",
        "RequestError",
        "Session",
        "evaluate",
        "parse_policy",
        "printable",
    ]


def test_readme_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Python example of the README is executed as written, from the repository root."""
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    blocks = re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(), re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_matched_lists_the_deciding_statements() -> None:
    p = policy(allow("s3:*", Sid="Read"), allow("s3:Get*", Sid="Get"), deny("ec2:*", Sid="NoEc2"))
    d = decide([p])
    assert (d.decision, d.reason) == ("Allow", "allowed")
    assert [(m.policy, m.statement, m.sid, m.effect) for m in d.matched] == [
        ("p.json", 0, "Read", "Allow"),
        ("p.json", 1, "Get", "Allow"),
    ]
    d = decide([p], action="ec2:RunInstances")
    assert d.reason == "explicitDeny" and [m.sid for m in d.matched] == ["NoEc2"]
    assert d.to_dict()["matched"] == [
        {"policy": "p.json", "statement": 2, "sid": "NoEc2", "effect": "Deny"}
    ]


def test_no_policies_is_implicit_deny() -> None:
    d = decide([])
    assert (d.decision, d.reason, d.matched, d.errors) == ("Deny", "implicitDeny", (), ())


@pytest.mark.parametrize(
    "key",
    [
        "aws:username",
        "AWS:UserName",
        "aws:userid",
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalType",
        "aws:PrincipalTag/team",
        "aws:principaltag/Other",
    ],
)
def test_context_cannot_forge_principal_keys(key: str) -> None:
    """Keys IAM derives from the principal are not the caller's to set: Deny with the error."""
    p = policy(allow(Condition={"StringEquals": {"aws:username": "admin"}}))
    d = decide([p], context={key: "admin"})
    assert (d.decision, d.reason) == ("Deny", "implicitDeny")
    assert d.errors and "derived from the principal" in d.errors[0]


def test_principal_keys_are_supplied() -> None:
    p = policy(
        allow(
            Condition={
                "StringEquals": {
                    "aws:username": "alice",
                    "aws:PrincipalAccount": ACCOUNT,
                    "aws:PrincipalType": "User",
                    "aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/alice",
                    "aws:PrincipalTag/Team": "blue",
                    "aws:userid": ALICE.user_id,
                }
            }
        )
    )
    assert decide([p]).reason == "allowed"
    assert ALICE.user_id.startswith("AIDA")


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"aws:MultiFactorAuthAge": "recently"}, '"recently" is not a number'),
        ({"aws:MultiFactorAuthAge": True}, "a boolean is not a number"),
        ({"aws:MultiFactorAuthAge": ["1", "x"]}, "needs ForAllValues: or ForAnyValue:"),
    ],
)
def test_malformed_context_value_is_deny_with_error(context: dict[str, Any], message: str) -> None:
    """An error inside evaluation is a Deny listing the error, never an Allow."""
    p = policy(allow(), deny(Condition={"NumericGreaterThan": {"aws:MultiFactorAuthAge": "3600"}}))
    d = decide([p], context=context)
    assert (d.decision, d.reason) == ("Deny", "implicitDeny")
    assert len(d.errors) == 1 and message in d.errors[0]
    assert d.errors[0].startswith("p.json: Statement[1]: NumericGreaterThan")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("aws:SourceIp", "not-an-ip"),
        ("aws:CurrentTime", "yesterday"),
        ("aws:SecureTransport", "maybe"),
        ("x:Blob", "***"),
    ],
)
def test_malformed_values_per_family(key: str, value: str) -> None:
    conditions = {
        "aws:SourceIp": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        "aws:CurrentTime": {"DateLessThan": {"aws:CurrentTime": "2030-01-01"}},
        "aws:SecureTransport": {"Bool": {"aws:SecureTransport": "true"}},
        "x:Blob": {"BinaryEquals": {"x:Blob": "QUJD"}},
    }
    d = decide([policy(allow(Condition=conditions[key]))], context={key: value})
    assert d.decision == "Deny" and d.errors


BROKEN = {"NumericLessThan": {"x:n": "3"}}  # an EvaluationError when x:n is "three"


def test_explicit_deny_still_wins_when_another_statement_errs() -> None:
    """A Deny that applies decides; a Deny that cannot be evaluated is listed in `errors`."""
    p = policy(deny(Sid="Always"), deny(Sid="Broken", Condition=BROKEN), allow(Condition=BROKEN))
    d = decide([p], context={"x:n": "three"})
    assert d.reason == "explicitDeny" and [m.sid for m in d.matched] == ["Always"]
    assert len(d.errors) == 1 and d.errors[0].startswith("p.json: Statement[1]: NumericLessThan")


def test_allows_are_not_visited_once_a_deny_applies() -> None:
    """Deny statements are evaluated first: after many Allows, the Deny decides, `matched` lists
    every Deny that applies (document order, across policies) and no Allow, and Allows that
    would fail are never evaluated, so no error is reported for them."""
    first = policy(
        *[allow(Sid=f"Read{i}") for i in range(40)],
        *[allow(Sid=f"Broken{i}", Condition=BROKEN) for i in range(10)],
        deny("s3:Get*", Sid="NoGet"),
        deny("ec2:*", Sid="NoEc2"),
        name="first.json",
    )
    second = policy(allow(Sid="More"), deny(Sid="NoAll"), name="second.json")
    d = decide([first, second], context={"x:n": "three"})
    assert (d.decision, d.reason, d.errors) == ("Deny", "explicitDeny", ())
    assert [(m.policy, m.statement, m.sid, m.effect) for m in d.matched] == [
        ("first.json", 50, "NoGet", "Deny"),
        ("second.json", 1, "NoAll", "Deny"),
    ]


def test_an_error_in_a_deny_denies_without_visiting_allows() -> None:
    """Fail closed: a Deny that could not be evaluated might have applied, so the decision is a
    Deny (implicit: no Deny applied) even though an Allow matches; Allows are not evaluated, so
    only the Deny's error is listed."""
    p = policy(allow(Sid="All"), allow(Condition=BROKEN), deny(Sid="Broken", Condition=BROKEN))
    d = decide([p], context={"x:n": "three"})
    assert (d.decision, d.reason, d.matched) == ("Deny", "implicitDeny", ())
    assert len(d.errors) == 1 and d.errors[0].startswith("p.json: Statement[2]: NumericLessThan")


def test_an_error_in_an_allow_denies_with_the_error() -> None:
    """No Deny applies and an Allow cannot be evaluated: an implicit Deny listing the error,
    even though another Allow matches."""
    p = policy(allow(Sid="All"), allow(Condition=BROKEN), deny("ec2:*"))
    d = decide([p], context={"x:n": "three"})
    assert (d.decision, d.reason, d.matched) == ("Deny", "implicitDeny", ())
    assert len(d.errors) == 1 and d.errors[0].startswith("p.json: Statement[1]: NumericLessThan")
    assert decide([p], context={"x:n": "1"}).reason == "allowed"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "GetObject"}, 'action: "GetObject" is not of the form "service:action"'),
        ({"action": ""}, "action: must be a non-empty string"),
        ({"action": None}, "action: must be a non-empty string"),
        ({"resource": ""}, "resource: must be a non-empty string"),
        ({"context": {"k:v": {"nested": 1}}}, 'context: value of "k:v" must be a string'),
        ({"context": {"k:v": None}}, 'context: value of "k:v" must be a string'),
        ({"context": {"k:v": float("nan")}}, 'context: value of "k:v" is not a finite'),
        ({"context": {"a:b": "1", "A:B": "2"}}, 'context: key "A:B" is given twice'),
        ({"context": "aws:SourceIp=1.2.3.4"}, "context: must be an object"),
        ({"principal": "alice"}, "principal: must be a pdp.Principal"),
    ],
)
def test_bad_requests_are_denied_with_the_field_named(kwargs: dict[str, Any], message: str) -> None:
    request: dict[str, Any] = {
        "action": "s3:GetObject",
        "resource": "arn:aws:s3:::b/k",
        "context": None,
        "principal": ALICE,
    }
    request.update(kwargs)
    d = pdp.evaluate([policy(allow())], request.pop("principal"), **request)
    assert (d.decision, d.reason) == ("Deny", "implicitDeny")
    assert d.errors and d.errors[0].startswith(message)


def test_non_policy_in_list_fails_closed() -> None:
    d = pdp.evaluate(["not a policy"], ALICE, action="s3:GetObject", resource="*")  # type: ignore[list-item]
    assert d.decision == "Deny" and d.errors


def test_clock_supplies_current_time_unless_the_request_does() -> None:
    """aws:CurrentTime/aws:EpochTime come from the clock, or from the request ("as of")."""
    p = policy(allow(Condition={"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}))
    assert decide([p]).reason == "implicitDeny"  # it is later than 2020 now
    assert decide([p], context={"aws:CurrentTime": "2019-06-01T00:00:00Z"}).reason == "allowed"
    assert decide([p], now=1500000000).reason == "allowed"  # 2017
    epoch = policy(allow(Condition={"NumericLessThan": {"aws:EpochTime": "1600000000"}}))
    assert decide([epoch], now=1500000000).reason == "allowed"
    assert decide([epoch], now=1700000000).reason == "implicitDeny"
    date = policy(allow(Condition={"DateGreaterThan": {"aws:EpochTime": "2017-01-01T00:00:00Z"}}))
    assert decide([date], now=1500000000).reason == "allowed"


def test_dates_accept_w3c_forms() -> None:
    for value in (
        "2020",
        "2020-06",
        "2020-06-15",
        "2020-06-15T10:00Z",
        "2020-06-15T10:00:00+02:00",
        "2020-06-15T10:00:00.5Z",
        "1592215200",
    ):
        p = policy(allow(Condition={"DateGreaterThan": {"aws:CurrentTime": value}}))
        assert decide([p], context={"aws:CurrentTime": "2021-01-01T00:00:00Z"}).reason == "allowed"


def test_policy_set_index_agrees_with_a_full_scan() -> None:
    """Looking up statements by service gives the same decision as visiting all of them."""
    p = policy(
        allow("s3:Get*"),
        allow("iam:List*"),
        deny("ec2:*", "arn:aws:ec2:*:*:instance/i-1"),
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        allow("S3:PutObject", Sid="Upper"),
    )
    policy_set = pdp.PolicySet([p])
    for action in (
        "s3:GetObject",
        "s3:ListBucket",
        "ec2:RunInstances",
        "iam:ListUsers",
        "s3:PutObject",
        "sqs:SendMessage",
        "iam:CreateUser",
    ):
        indexed = policy_set.decide(ALICE, action, "arn:aws:ec2:r:1:instance/i-1")
        full = [
            s.ref
            for s in p.statements
            if applying((s,), action.lower(), "arn:aws:ec2:r:1:instance/i-1", _ctx(), [])
        ]
        assert set(indexed.matched) <= set(full)
        assert bool(full) == bool(indexed.matched)


def _ctx() -> Any:
    from pdp.language.context import RequestContext

    return RequestContext(ALICE, {})


actions = st.sampled_from(
    [
        "s3:GetObject",
        "s3:PutObject",
        "ec2:RunInstances",
        "iam:ListUsers",
        "sqs:SendMessage",
        "S3:getobject",
    ]
)
patterns = st.sampled_from(
    [
        "*",
        "s3:*",
        "s3:Get*",
        "iam:Get*",
        "ec2:Run?nstances",
        "iam:List*",
        "sqs:*Message",
        "s3:PutObject",
    ]
)
resources = st.sampled_from(
    [
        "*",
        "arn:aws:s3:::b/*",
        "arn:aws:ec2:*:*:instance/*",
        "arn:aws:iam::123456789012:user/${aws:username}",
        "arn:aws:sqs:*:*:q",
    ]
)
statements = st.builds(
    lambda effect, not_action, acts, not_resource, res, condition: {
        "Effect": effect,
        ("NotAction" if not_action else "Action"): acts,
        ("NotResource" if not_resource else "Resource"): res,
        **({"Condition": {"NumericLessThan": {"x:n": condition}}} if condition else {}),
    },
    st.sampled_from(["Allow", "Deny"]),
    st.booleans(),
    st.lists(patterns, min_size=1, max_size=3),
    st.booleans(),
    st.lists(resources, min_size=1, max_size=2),
    st.sampled_from([None, None, "3", "10"]),
)


@settings(max_examples=500, deadline=None)
@given(
    stmts=st.lists(statements, min_size=1, max_size=8),
    split=st.integers(min_value=0, max_value=8),
    action=actions,
    resource=st.sampled_from(
        [
            "arn:aws:s3:::b/k",
            "arn:aws:ec2:us-east-1:1:instance/i-1",
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:sqs:r:1:q",
        ]
    ),
    n=st.sampled_from([None, 1, 5, "three"]),
)
def test_decision_matches_a_naive_model(
    stmts: list[dict[str, Any]], split: int, action: str, resource: str, n: int | str | None
) -> None:
    """Index, Deny-first evaluation and compiled matchers agree with a naive model of IAM's
    combining rule (fnmatch-style globs, every statement visited), errors included: x:n holds
    a number, nothing, or a word that NumericLessThan cannot read (an EvaluationError)."""
    docs = [stmts[:split], stmts[split:]]
    policies = [policy(*d, name=f"p{i}.json") for i, d in enumerate(docs) if d]
    d = decide(policies, action=action, resource=resource, context={"x:n": n} if n else None)

    def glob(pattern: str, subject: str, ignore_case: bool) -> bool:
        pattern = pattern.replace("${aws:username}", "alice")
        if ignore_case:
            pattern, subject = pattern.lower(), subject.lower()
        rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        return re.fullmatch(rx, subject, re.S) is not None

    applies: dict[str, list[tuple[str, int]]] = {"Allow": [], "Deny": []}
    erred: dict[str, list[tuple[str, int]]] = {"Allow": [], "Deny": []}
    for name, doc in ((f"p{i}.json", doc) for i, doc in enumerate(docs) if doc):
        for index, s in enumerate(doc):
            acts = s.get("Action", s.get("NotAction"))
            hit = any(glob(a, action, True) for a in acts)
            if "NotAction" in s:
                hit = not hit
            res = s.get("Resource", s.get("NotResource"))
            in_resource = any(glob(r, resource, False) for r in res)
            if not hit or in_resource is ("NotResource" in s):
                continue
            condition = s.get("Condition", {}).get("NumericLessThan", {}).get("x:n")
            if condition is not None and n == "three":
                erred[s["Effect"]].append((name, index))
            elif condition is None or (n is not None and int(n) < int(condition)):
                applies[s["Effect"]].append((name, index))
    # The rule: a Deny that applies or fails decides (Allows unseen); then an Allow that fails
    # is an implicit Deny; then the Allows that apply.
    if applies["Deny"] or erred["Deny"]:
        reason = "explicitDeny" if applies["Deny"] else "implicitDeny"
        expected = ("Deny", reason, applies["Deny"], erred["Deny"])
    elif erred["Allow"]:
        expected = ("Deny", "implicitDeny", [], erred["Allow"])
    elif applies["Allow"]:
        expected = ("Allow", "allowed", applies["Allow"], [])
    else:
        expected = ("Deny", "implicitDeny", [], [])
    got = (
        d.decision,
        d.reason,
        [(m.policy, m.statement) for m in d.matched],
        [(e.partition(":")[0], int(e.split("[")[1].split("]")[0])) for e in d.errors],
    )
    assert got == expected, json.dumps(stmts)


def test_a_list_cannot_switch_a_negated_deny_off() -> None:
    """Review finding: one in-range value in a list must not lift a NotIpAddress Deny."""
    p = policy(allow(), deny(Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    assert decide([p], context={"aws:SourceIp": "203.0.113.9"}).reason == "explicitDeny"
    d = decide([p], context={"aws:SourceIp": ["10.0.0.1", "203.0.113.9"]})
    assert d.decision == "Deny" and d.errors


@pytest.mark.parametrize("key", ["aws:PrincipalIsAWSService", "AWS:principalisawsservice"])
def test_principal_is_aws_service_is_the_principals(key: str) -> None:
    """Review finding: aws:PrincipalIsAWSService=true would lift the data-perimeter Deny."""
    p = policy(
        allow(),
        deny(
            Condition={
                "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
                "NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"},
            }
        ),
    )
    d = decide([p], context={"aws:SourceIp": "203.0.113.9", key: True})
    assert d.decision == "Deny" and "derived from the principal" in d.errors[0]
    assert decide([p], context={"aws:SourceIp": "203.0.113.9"}).reason == "explicitDeny"


def test_principal_keys_pdp_does_not_know_come_from_the_caller() -> None:
    """aws:PrincipalOrgID is not in the store: the caller supplies it, as for other keys."""
    p = policy(allow(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}))
    assert decide([p], context={"aws:PrincipalOrgID": "o-abc"}).reason == "allowed"
    assert decide([p], context={"aws:PrincipalOrgID": "o-xyz"}).reason == "implicitDeny"


@pytest.mark.parametrize(
    "action",
    [
        "s3:DeleteObject ",
        "s3:DeleteObject\u0000",
        "s3:Delete*",
        "s3:Delete?bject",
        "s3 :DeleteObject",
    ],
)
def test_requested_actions_follow_the_grammar(action: str) -> None:
    """Review finding: odd spellings must not slip past an exact Deny."""
    p = policy(allow("s3:*"), deny("s3:DeleteObject"))
    d = decide([p], action=action)
    assert d.decision == "Deny" and d.errors[0].startswith("action:")
