"""Policy kinds: the grammar of resource-based, trust, SCP and RCP documents
(reference_policies_elements_principal.html, reference_policies_elements_notprincipal.html,
orgs_manage_policies_scps_syntax.html, orgs_manage_policies_rcps_syntax.html)."""

from __future__ import annotations

from typing import Any

import pytest

from pdp import PolicyValidationError, parse_policy


def _doc(**statement: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]}


ACCOUNT = "arn:aws:iam::111122223333:root"


@pytest.mark.parametrize(
    ("principal", "aws", "everyone"),
    [
        ("*", set(), True),
        ({"AWS": "*"}, set(), True),
        ({"AWS": "111122223333"}, {ACCOUNT}, False),
        ({"AWS": ACCOUNT}, {ACCOUNT}, False),
        (
            {"AWS": "arn:aws:iam::111122223333:user/Alice"},
            {"arn:aws:iam::111122223333:user/alice"},
            False,
        ),
        (
            {"AWS": ["arn:aws:sts::111122223333:assumed-role/Deploy/ci", "111122223333"]},
            {"arn:aws:sts::111122223333:assumed-role/deploy/ci", ACCOUNT},
            False,
        ),
    ],
)
def test_resource_policy_principals(principal: Any, aws: set[str], everyone: bool) -> None:
    policy = parse_policy(_doc(Principal=principal, Action="s3:GetObject"), kind="resource")
    spec = policy.statements[0].principal
    assert spec is not None and (set(spec.aws), spec.everyone) == (aws, everyone)
    assert policy.kind == "resource"


@pytest.mark.parametrize(
    ("kind", "statement", "message"),
    [
        (
            "identity",
            {"Principal": "*", "Action": "s3:*", "Resource": "*"},
            "Principal is not allowed",
        ),
        ("resource", {"Action": "s3:*", "Resource": "*"}, "missing Principal"),
        ("resource", {"NotPrincipal": {"AWS": ACCOUNT}, "Action": "s3:*"}, "must be used with"),
        (
            "resource",
            {"Principal": {"AWS": "arn:aws:iam::111122223333:user/a*"}, "Action": "s3:*"},
            "wildcard",
        ),
        ("resource", {"Principal": {"AWS": "alice"}, "Action": "s3:*"}, "not an AWS principal"),
        ("resource", {"Principal": {"Users": "x"}, "Action": "s3:*"}, "unknown principal type"),
        ("resource", {"Principal": {"Service": "s3"}, "Action": "s3:*"}, "not a service principal"),
        (
            "trust",
            {"Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole", "Resource": "*"},
            "not allowed in a role's trust policy",
        ),
        (
            "trust",
            {"NotPrincipal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"},
            "NotPrincipal is not allowed",
        ),
        ("scp", {"Principal": "*", "Action": "*", "Resource": "*"}, "service control policy"),
        (
            "rcp",
            {"Principal": {"AWS": ACCOUNT}, "Action": "s3:*", "Resource": "*"},
            '"Principal": "*" only',
        ),
        ("rcp", {"Action": "s3:*", "Resource": "*"}, "missing Principal"),
    ],
)
def test_kind_grammar_refuses(kind: str, statement: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyValidationError) as caught:
        parse_policy(_doc(**statement), "p.json", kind=kind)
    assert message in str(caught.value), str(caught.value)
    assert "p.json: Statement[0]" in str(caught.value)


def test_resource_policy_without_resource_means_its_own_resource() -> None:
    policy = parse_policy(_doc(Principal="*", Action="s3:GetObject"), kind="resource")
    assert policy.statements[0].match_resource("arn:aws:s3:::b/k")


def test_trust_policy_reads_identity_provider_keys() -> None:
    doc = _doc(
        Principal={"Federated": "accounts.google.com"},
        Action="sts:AssumeRoleWithWebIdentity",
        Condition={"StringEquals": {"accounts.google.com:aud": "my-app"}},
    )
    assert parse_policy(doc, kind="trust").statements[0].principal is not None
    with pytest.raises(PolicyValidationError, match="invalid condition key"):
        parse_policy(_doc(Action="s3:*", Resource="*", Condition=doc["Statement"][0]["Condition"]))


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        parse_policy(_doc(Action="s3:*", Resource="*"), kind="session")
