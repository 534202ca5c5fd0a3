"""Session.from_dict: the wire shape of a role session's attributes, bounded and named."""

from __future__ import annotations

from typing import Any

import pytest

from pdp import RequestError, Session

DOC = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


def test_a_full_session_round_trips() -> None:
    raw = {
        "policies": [DOC],
        "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
        "tags": {"team": "red"},
        "transitive_tag_keys": ["team"],
        "mfa_present": True,
        "mfa_age": 30,
        "source_identity": "alice",
        "issued_at": "2026-12-01T10:00:00Z",
        "role_chain": ["arn:aws:iam::111111111111:role/First"],
    }
    session = Session.from_dict(raw)
    assert session.to_dict() == raw
    assert session.context_keys() == {
        "aws:multifactorauthpresent": True,
        "aws:multifactorauthage": 30,
        "aws:sourceidentity": "alice",
        "aws:tokenissuetime": "2026-12-01T10:00:00Z",
    }


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ([], "session: must be an object"),
        ({"policy": DOC}, "session.policy: unknown field"),
        ({"policies": [DOC, DOC]}, "session.policies: AWS accepts one"),
        ({"policies": ["x"]}, "session.policies[0]: must be a policy document"),
        ({"policies": [{"Statement": "x" * 3000}]}, "session.policies[0]: longer than 2048"),
        ({"policy_arns": ["arn:aws:s3:::b"]}, "session.policy_arns[0]"),
        ({"policy_arns": ["arn:aws:iam::aws:policy/X"] * 11}, "session.policy_arns: at most 10"),
        ({"tags": {"k": 1}}, "session.tags.k: the value must be a string"),
        ({"tags": {"k" * 129: "v"}}, "session.tags: a tag key must be 1 to 128"),
        ({"tags": {"K": "a", "k": "b"}}, "session.tags.k: repeats"),
        (
            {"tags": {f"k{i}": "v" for i in range(51)}},
            "session.tags: must be an object of at most 50",
        ),
        ({"transitive_tag_keys": ["team"]}, "session.transitive_tag_keys[0]"),
        ({"mfa_present": "yes"}, "session.mfa_present"),
        ({"mfa_age": -1}, "session.mfa_age"),
        ({"source_identity": "a"}, "session.source_identity"),
        ({"issued_at": "yesterday"}, "session.issued_at"),
        ({"role_chain": ["arn:aws:iam::1:role/x"]}, "session.role_chain[0]"),
        ({"role_chain": ["arn:aws:iam::111111111111:role/x"] * 11}, "session.role_chain: at most"),
    ],
)
def test_a_bad_field_is_named(raw: Any, where: str) -> None:
    with pytest.raises(RequestError) as caught:
        Session.from_dict(raw)
    assert str(caught.value).startswith(where), str(caught.value)
