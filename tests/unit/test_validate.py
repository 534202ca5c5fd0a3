"""The validator: every problem of a document, each with its file, JSON path and a clear message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pdp


def problems(document: Any, source: str | None = "p.json") -> list[str]:
    with pytest.raises(pdp.PolicyValidationError) as caught:
        pdp.parse_policy(document, source=source)
    return [str(d) for d in caught.value.diagnostics]


def statement(**elements: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    base.update(elements)
    return {"Version": "2012-10-17", "Statement": [base]}


def test_unknown_operator_names_file_path_and_suggestion() -> None:
    """The message format promised in the README: file, JSON path, message, hint."""
    doc = statement(Condition={"StringEqual": {"aws:username": "bob"}})
    assert problems(doc, "policies/s3.json") == [
        'policies/s3.json: Statement[0].Condition: unknown operator "StringEqual"'
        ' (did you mean "StringEquals"?)'
    ]


def test_every_problem_is_reported_not_only_the_first() -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "allow", "Action": "s3GetObject", "Resource": "bucket"},
            {"Sid": "has-dash", "Effect": "Deny", "Action": "*"},
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "soon"}},
            },
        ],
    }
    found = problems(doc)
    assert found == [
        'p.json: Statement[0].Action: invalid action "s3GetObject"'
        ' (an action is "*" or "service:action", e.g. "s3:GetObject")',
        'p.json: Statement[0].Effect: invalid Effect "allow" (Effect is "Allow" or "Deny"'
        " (case-sensitive))",
        'p.json: Statement[0].Resource: invalid resource "bucket" (a resource is "*" or an ARN:'
        " arn:partition:service:region:account:resource)",
        "p.json: Statement[1]: missing Resource/NotResource",
        'p.json: Statement[1].Sid: Sid "has-dash" must be alphanumeric'
        " (only A-Z, a-z and 0-9 are allowed in IAM policies)",
        "p.json: Statement[2].Condition.NumericLessThan.aws:MultiFactorAuthAge:"
        ' NumericLessThan: "soon" is not a number',
    ]


# (document, expected fragment of a diagnostic, rule)
INVALID = [
    (
        "{",
        "malformed JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        "policies are JSON documents",
    ),
    (
        '{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}',
        'duplicate key "Version"',
        "no element twice (reference_policies_grammar)",
    ),
    (
        '{"Statement": {"Effect": "Allow", "Effect": "Deny", "Action": "*", "Resource": "*"}}',
        'Statement: duplicate key "Effect"',
        "no element twice, with its path",
    ),
    (
        '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",'
        ' "Condition": {"Bool": {"aws:SecureTransport": NaN}}}]}',
        "NaN is not a JSON value",
        "NaN is not JSON",
    ),
    (
        statement(Principal={"AWS": "*"}),
        "Statement[0].Principal: Principal is not allowed in an identity-based policy",
        "no Principal in identity policies",
    ),
    (statement(NotPrincipal={"AWS": "*"}), "NotPrincipal is not allowed", "nor NotPrincipal"),
    (
        {"Version": "2012-10-18", "Statement": statement()["Statement"]},
        'Version: unsupported Version "2012-10-18"',
        "two versions exist",
    ),
    (statement(Effect="Permit"), 'invalid Effect "Permit"', "Allow or Deny"),
    (statement(Action=[]), "empty Action", "an Action list names an action"),
    (statement(Resource="arn:aws:s3"), 'invalid resource "arn:aws:s3"', "ARNs have six fields"),
    (
        statement(Resource=["*", 7]),
        "Statement[0].Resource[1]: Resource must be a string",
        "Resource holds strings",
    ),
    (
        statement(Condition={"StringEquals": {"username": "bob"}}),
        'invalid condition key "username"',
        "condition keys have a service prefix",
    ),
    (
        statement(Condition={"StringEquals": {"aws:username": {"a": 1}}}),
        "a condition value must be a string, number or boolean",
        "no objects as values",
    ),
    (statement(Condition={"StringEquals": {"aws:username": []}}), "no values", "values needed"),
    (
        statement(Condition={"StringEquals": {"aws:username": "a", "AWS:UserName": "b"}}),
        'condition key "AWS:UserName" repeats "aws:username"',
        "key names ignore case",
    ),
    (
        statement(Condition={"NullIfExists": {"aws:TokenIssueTime": "true"}}),
        "Null takes no IfExists",
        "IfExists is for every operator except Null",
    ),
    (
        statement(Condition={"ForAnyValues:StringEquals": {"aws:TagKeys": "a"}}),
        'unknown operator "ForAnyValues:StringEquals"',
        "two set operators only",
    ),
    (
        statement(Condition={"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}}),
        "is not an IP address or CIDR range",
        "CIDR values",
    ),
    (
        statement(Condition={"DateLessThan": {"aws:CurrentTime": "tomorrow"}}),
        "is not an ISO 8601 date or epoch time",
        "dates",
    ),
    (
        statement(Condition={"Bool": {"aws:SecureTransport": "yes"}}),
        "is not true or false",
        "Bool values",
    ),
    (statement(Condition={"BinaryEquals": {"x:Key": "%%%"}}), "is not base64", "base64"),
    (
        statement(Condition={"Null": {"aws:TokenIssueTime": "maybe"}}),
        "is not true or false",
        "Null takes true or false",
    ),
    (
        statement(Condition={"NumericEquals": {"s3:max-keys": "${aws:username}"}}),
        "policy variables can only be used with String, ARN and Bool operators",
        "variables in string and ARN conditions only (reference_policies_variables)",
    ),
    (
        statement(Resource="arn:aws:s3:::${aws:username"),
        "unterminated policy variable",
        "variables are closed",
    ),
    (statement(Resource="arn:aws:s3:::${}"), 'malformed policy variable "${}"', "named variables"),
    (
        {
            "Version": "2012-10-17",
            "Statement": [statement()["Statement"][0]] * 1
            + [
                dict(statement()["Statement"][0], Sid="A"),
                dict(statement()["Statement"][0], Sid="A"),
            ],
        },
        'duplicate Sid "A"',
        "Sid values are unique within a policy",
    ),
    (
        {"Version": "2012-10-17", "Statement": [dict(statement()["Statement"][0], effect="Allow")]},
        'unknown element "effect" (did you mean "Effect"?)',
        "element names are case-sensitive",
    ),
    (
        {"Version": "2012-10-17", "Statement": "Allow everything"},
        "Statement must be an object or a list of objects",
        "Statement shape",
    ),
    ([], "a policy document must be a JSON object", "documents are objects"),
]


@pytest.mark.parametrize(("document", "fragment", "rule"), INVALID)
def test_invalid_documents(document: Any, fragment: str, rule: str) -> None:
    assert any(fragment in p for p in problems(document)), rule


def test_bytes_and_dicts_are_accepted() -> None:
    doc = statement()
    for form in (doc, json.dumps(doc), json.dumps(doc).encode()):
        policy = pdp.parse_policy(form, source="ok.json")
        assert policy.name == "ok.json" and len(policy.statements) == 1


def test_statement_object_form_and_unquoted_values() -> None:
    policy = pdp.parse_policy(
        '{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*",'
        ' "Condition": {"Bool": {"aws:SecureTransport": true},'
        ' "NumericLessThan": {"s3:max-keys": 10}}}}'
    )
    assert policy.version is None and len(policy.statements) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "Version",
                    "Statement",
                    "Effect",
                    "Action",
                    "NotAction",
                    "Resource",
                    "NotResource",
                    "Condition",
                    "Sid",
                    "StringLike",
                    "ForAllValues:StringEquals",
                    "aws:username",
                    "Null",
                    "IpAddress",
                    "aws:SourceIp",
                    "DateLessThan",
                    "x",
                    "Principal",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(document=json_values)
def test_validation_only_raises_its_own_error(document: Any) -> None:
    """Random JSON either parses or raises PolicyValidationError, never anything else."""
    try:
        pdp.parse_policy(document)
    except pdp.PolicyValidationError:
        pass


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60))
def test_random_text_only_raises_its_own_error(text: str) -> None:
    try:
        pdp.parse_policy(text)
    except pdp.PolicyValidationError:
        pass


def test_short_arns_need_a_final_wildcard() -> None:
    """arn:aws:s3:* names every S3 resource (a final * crosses colons); arn:aws:s3 names none."""
    policy = pdp.parse_policy(statement(Resource="arn:aws:s3:*"))
    who = pdp.Principal.user("bob", account="123456789012")
    decision = pdp.evaluate([policy], who, action="s3:GetObject", resource="arn:aws:s3:::b/k")
    assert decision.allowed
    assert any("invalid resource" in p for p in problems(statement(Resource="arn:aws:s3")))


@pytest.mark.parametrize(
    "action", ["*:Describe*", "s3*:Get*", "?3:GetObject", "*:*", "?*:*", "s?s:SendMessage"]
)
def test_a_wildcard_in_the_service_prefix_is_refused(action: str) -> None:
    """Access Analyzer: "Invalid service in action"; `*` alone stays the all-actions form."""
    doc = statement(Action=["s3:GetObject", action])
    assert problems(doc, "policies/x.json") == [
        f'policies/x.json: Statement[0].Action[1]: invalid service prefix in action "{action}":'
        " a service prefix cannot hold wildcards"
        ' (name the service, e.g. "ec2:Describe*", or use "*" for every action)'
    ]
    not_action = statement(NotAction=action)
    del not_action["Statement"][0]["Action"]
    assert problems(not_action)[0].startswith("p.json: Statement[0].NotAction: invalid service")
    for fine in ("*", "s3:*", "s3:Get?bject", "iam:*AccessKey*"):
        pdp.parse_policy(statement(Action=fine))


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("aws:\x1b[2JUser", "aws:\\x1b[2JUser"),
        ("aws:user\x7fname", "aws:user\\x7fname"),
        ("aws:user\x9b2Jname", "aws:user\\x9b2Jname"),
        ("aws:PrincipalTag/team\u202e", "aws:PrincipalTag/team\\u202e"),
        ("aws:Principal\u2066Tag", "aws:Principal\\u2066Tag"),
        ("aws:user\x00name", "aws:user\\x00name"),
    ],
)
def test_control_and_bidi_characters_in_a_condition_key_are_refused(key: str, shown: str) -> None:
    """A key that could rewrite a reviewer's terminal is refused, and the message is escaped."""
    found = problems(statement(Condition={"StringEquals": {key: "x"}}), "policies/x.json")
    assert found == [
        f"policies/x.json: Statement[0].Condition.StringEquals.{shown}: condition key"
        f' "{shown}" holds a control or bidirectional-override character'
        " (condition keys are printable text)"
    ]
