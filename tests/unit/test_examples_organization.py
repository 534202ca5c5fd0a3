"""examples/organization (docs/evaluation.md's worked example) decides as the documents say:
a cross-account AssumeRole gated by the trust policy's external id, then the Deploy role's
session limited by the SCP of its OU and by its permissions boundary. Through the real loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pdp
from pdp.store.activation import load_store

STORE = Path(__file__).resolve().parents[2] / "examples/organization"
CI = "arn:aws:iam::111111111111:user/ci"
DEPLOY = "arn:aws:iam::222222222222:role/Deploy"
SESSION = "arn:aws:sts::222222222222:assumed-role/Deploy/build"


@pytest.fixture(scope="module")
def snapshot() -> Any:
    return load_store(STORE)


def test_the_store_loads_with_its_tests_passing(snapshot: Any) -> None:
    """load_store runs tests/smoke.json and refuses the version on a failing case."""
    assert snapshot.version == "1"


@pytest.mark.parametrize(
    ("context", "decision", "reason", "blocked_by"),
    [
        ({"sts:ExternalId": "build-7f3a"}, "Allow", "allowed", ()),
        ({}, "Deny", "implicitDeny", ("resource",)),
        ({"sts:ExternalId": "other"}, "Deny", "implicitDeny", ("resource",)),
    ],
)
def test_ci_assumes_deploy_only_with_the_external_id(
    snapshot: Any, context: dict[str, Any], decision: str, reason: str, blocked_by: tuple[str, ...]
) -> None:
    got = snapshot.decide(pdp.Request(CI, "sts:AssumeRole", DEPLOY, context))
    assert (got.decision, got.reason, got.blocked_by) == (decision, reason, blocked_by)


@pytest.mark.parametrize(
    ("action", "resource", "region", "decision", "reason", "blocked_by"),
    [
        ("s3:GetObject", "arn:aws:s3:::reports/q1.csv", None, "Allow", "allowed", ()),
        ("s3:ListBucket", "arn:aws:s3:::reports", None, "Allow", "allowed", ()),
        (
            "ec2:RunInstances",
            "arn:aws:ec2:us-east-1:222222222222:instance/*",
            "us-east-1",
            "Deny",
            "explicitDeny",
            ("scp",),
        ),
        (
            "ec2:RunInstances",
            "arn:aws:ec2:eu-west-1:222222222222:instance/*",
            "eu-west-1",
            "Deny",
            "implicitDeny",
            ("boundary",),
        ),
        ("ec2:DescribeInstances", "*", "eu-west-1", "Allow", "allowed", ()),
    ],
)
def test_the_deploy_session(
    snapshot: Any,
    action: str,
    resource: str,
    region: str | None,
    decision: str,
    reason: str,
    blocked_by: tuple[str, ...],
) -> None:
    context = {"aws:RequestedRegion": region} if region else {}
    got = snapshot.decide(
        pdp.Request(SESSION, action, resource, context, principal_type="role_session")
    )
    assert (got.decision, got.reason, got.blocked_by) == (decision, reason, blocked_by)
    assert got.errors == ()


def test_the_bucket_read_passes_every_layer(snapshot: Any) -> None:
    got = snapshot.decide(
        pdp.Request(
            SESSION,
            "s3:GetObject",
            "arn:aws:s3:::reports/q1.csv",
            {},
            principal_type="role_session",
        )
    )
    assert got.layers == ("rcp", "scp", "resource", "identity", "boundary")
