"""What the store derives, the caller cannot forge: organization membership, a known resource's
account and tags, what a session states. And the principal types that must be asked for by name.
Through the real loader and Snapshot.decide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pdp
from pdp.store.activation import load_store
from tests.chain_store import FILES, MEMBER, MGMT, write_store


def _store(tmp_path: Path, files: dict[str, Any]) -> Any:
    return load_store(write_store(tmp_path, files))


ALICE = f"arn:aws:iam::{MEMBER}:user/alice"
SESSION = f"arn:aws:sts::{MEMBER}:assumed-role/App/s1"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _store(tmp_path_factory.mktemp("store"), FILES)


@pytest.mark.parametrize(
    ("resource", "key"),
    [
        ("arn:aws:s3:::elsewhere/x", "aws:PrincipalOrgID"),
        ("arn:aws:s3:::elsewhere/x", "aws:PrincipalOrgPaths"),
        ("arn:aws:s3:::data/x", "aws:ResourceOrgID"),
        ("arn:aws:s3:::data/x", "aws:ResourceTag/owner"),
        ("arn:aws:s3:::data/x", "aws:ResourceTag/env"),
        ("arn:aws:sqs:us-east-1:333333333333:q", "aws:ResourceAccount"),
    ],
)
def test_derived_keys_cannot_be_set(snapshot: Any, resource: str, key: str) -> None:
    decision = snapshot.is_authorized(ALICE, "s3:GetObject", resource, {key: "x"})
    assert decision.decision == "Deny" and "derived from the store" in decision.errors[0]


def test_an_unknown_bucket_org_can_be_stated_but_not_for_a_known_one(snapshot: Any) -> None:
    """The SCP perimeter: a bucket the store does not hold has an unknown organization; the
    caller may state it (as any context). A bucket the store holds is in the organization."""
    outside = snapshot.is_authorized(ALICE, "s3:GetObject", "arn:aws:s3:::elsewhere/x")
    assert (outside.reason, outside.blocked_by) == ("explicitDeny", ("scp",))
    stated = snapshot.is_authorized(
        ALICE, "s3:GetObject", "arn:aws:s3:::elsewhere/x", {"aws:ResourceOrgID": "o-a1b2c3d4e5"}
    )
    assert stated.decision == "Allow"
    inside = snapshot.is_authorized(ALICE, "s3:GetObject", "arn:aws:s3:::data/x")
    assert inside.decision == "Allow" and inside.layers == ("rcp", "scp", "identity")


def test_a_session_states_its_mfa_and_the_context_may_not_restate_it(snapshot: Any) -> None:
    session = pdp.Session.from_dict({"mfa_present": False})
    decision = snapshot.decide(
        pdp.Request(
            SESSION, "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{MEMBER}:q",
            {"aws:MultiFactorAuthPresent": True}, principal_type="role_session", session=session,
        )
    )  # fmt: skip
    assert decision.decision == "Deny" and "derived from the store" in decision.errors[0]


def test_session_tags_override_role_tags(snapshot: Any) -> None:
    role = snapshot.world.role(MEMBER, "App")
    session = pdp.Session.from_dict({"tags": {"Team": "blue"}})
    principal, _ = snapshot.world.session_principal(SESSION, session)
    assert principal.context_keys["aws:principaltag/team"] == "blue"
    plain, _ = snapshot.world.session_principal(SESSION, None)
    assert plain.context_keys["aws:principaltag/team"] == "red"
    assert plain.context_keys["aws:principalarn"] == role.arn
    assert str(plain.context_keys["aws:userid"]).endswith(":s1")


@pytest.mark.parametrize(
    ("principal", "message"),
    [
        (SESSION, 'principal_type "role_session"'),
        (f"arn:aws:iam::{MEMBER}:role/App", "a role does not make requests"),
        (f"arn:aws:iam::{MEMBER}:root", 'principal_type "root"'),
    ],
)
def test_other_principals_are_never_taken_for_users(
    snapshot: Any, principal: str, message: str
) -> None:
    decision = snapshot.is_authorized(principal, "s3:GetObject", "arn:aws:s3:::data/x")
    assert decision.decision == "Deny" and message in decision.errors[0]


def test_an_unknown_role_session_is_an_error(snapshot: Any) -> None:
    decision = snapshot.is_authorized(
        f"arn:aws:sts::{MEMBER}:assumed-role/Nope/s1", "s3:GetObject", "arn:aws:s3:::data/x",
        principal_type="role_session",
    )  # fmt: skip
    assert decision.decision == "Deny" and 'unknown role "Nope"' in decision.errors[0]


def test_a_session_needs_a_role_session(snapshot: Any) -> None:
    decision = snapshot.decide(
        pdp.Request(ALICE, "s3:GetObject", "arn:aws:s3:::data/x", session=pdp.Session())
    )
    assert decision.decision == "Deny" and "only a principal_type" in decision.errors[0]


def test_member_root_is_subject_to_scps_and_management_root_is_not(snapshot: Any) -> None:
    member = snapshot.is_authorized(
        f"arn:aws:iam::{MEMBER}:root",
        "s3:GetObject",
        "arn:aws:s3:::elsewhere/x",
        principal_type="root",
    )
    assert (member.reason, member.blocked_by, member.root) == ("explicitDeny", ("scp",), True)
    mgmt = snapshot.is_authorized(
        f"arn:aws:iam::{MGMT}:root",
        "s3:GetObject",
        "arn:aws:s3:::elsewhere/x",
        principal_type="root",
    )
    assert (mgmt.decision, mgmt.root) == ("Allow", True)
