"""pdp audit's findings of the evaluation-chain model (roles, resources, boundaries, SCPs), each
through the `pdp audit` CLI door on real files, with a near miss that is not reported."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_audit import CLEAN, write_store

ACCOUNT = "123456789012"
OTHER = "210987654321"
V = "2012-10-17"


def trust(**statement: Any) -> dict[str, Any]:
    return {
        "trust_policy": {
            "Version": V,
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", **statement}],
        }
    }


def audit_json(
    capsys: pytest.CaptureFixture[str], root: Path, extra: dict[str, Any], **changes: Any
) -> list[dict[str, Any]]:
    from pdp.cli import main

    files = copy.deepcopy(CLEAN)
    files["account.json"].update(changes)
    files.update(extra)
    code = main(["audit", str(write_store(root, files)), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    found: list[dict[str, Any]] = json.loads(out)
    return found


def codes(found: list[dict[str, Any]], code: str) -> list[tuple[str, str]]:
    return [(f["file"], f["path"]) for f in found if f["code"] == code]


@pytest.mark.parametrize(
    ("statement", "public"),
    [
        ({"Principal": "*"}, True),
        ({"Principal": {"AWS": "*"}}, True),
        ({"Principal": {"AWS": ["arn:aws:iam::123456789012:role/X", "*"]}}, True),
        (
            {
                "Principal": {"AWS": "*"},
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            },
            True,
        ),
        (
            {
                "Principal": "*",
                "Condition": {"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
            },
            True,  # absent key: IfExists is true, so it restricts nothing
        ),
        (
            {
                "Principal": "*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
            },
            False,
        ),
        ({"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Ci"}}, False),
        ({"Principal": {"Service": "ec2.amazonaws.com"}}, False),
    ],
)
def test_a_trust_policy_open_to_everyone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], statement: dict[str, Any], public: bool
) -> None:
    found = audit_json(capsys, tmp_path, {"roles/Deploy.json": trust(**statement)})
    hits = codes(found, "trust_policy_public")
    assert bool(hits) is public, found
    if public:
        assert hits == [("roles/Deploy.json", "trust_policy.Statement[0].Principal")]
        assert [f["severity"] for f in found if f["code"] == "trust_policy_public"] == ["critical"]


@pytest.mark.parametrize(
    ("statement", "reported"),
    [
        ({"Principal": {"AWS": OTHER}}, True),
        ({"Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}}, True),
        ({"Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", OTHER]}}, True),
        ({"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}, False),  # own account: delegation
        (
            {"Principal": {"AWS": OTHER}, "Condition": {"StringEquals": {"sts:ExternalId": "x-1"}}},
            False,
        ),
        (
            {"Principal": {"AWS": f"arn:aws:iam::{OTHER}:role/Ci"}},
            False,
        ),  # one role, not the account
    ],
)
def test_a_trust_policy_trusting_a_whole_other_account_without_conditions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], statement: dict[str, Any], reported: bool
) -> None:
    extra = {"roles/Deploy.json": trust(**statement), "organization/organization.json": ORG}
    found = audit_json(capsys, tmp_path, extra)
    hits = codes(found, "trust_account_unconditioned")
    assert hits == (
        [("roles/Deploy.json", "trust_policy.Statement[0].Principal")] if reported else []
    )
    if reported:
        message = next(f["message"] for f in found if f["code"] == "trust_account_unconditioned")
        assert OTHER in message and ACCOUNT not in message and "sts:ExternalId" in message


def bucket(**statement: Any) -> dict[str, Any]:
    return {
        "arn": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"],
        "account": ACCOUNT,
        "policy": {
            "Version": V,
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::reports/*",
                    **statement,
                }
            ],
        },
    }


@pytest.mark.parametrize(
    ("statement", "public"),
    [
        ({"Principal": "*"}, True),
        ({"Principal": {"AWS": "*"}}, True),
        (
            {"Principal": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}},
            True,
        ),
        (
            {"Principal": "*", "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}},
            False,
        ),
        ({"Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}, False),
        ({"Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}}, False),
        ({"Principal": "*", "Condition": {"StringLike": {"aws:SourceVpce": "vpce-*"}}}, True),
        ({"Principal": "*", "Condition": {"StringLike": {"aws:SourceVpce": "vpce-1a2b"}}}, False),
    ],
)
def test_a_resource_policy_open_to_anonymous(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], statement: dict[str, Any], public: bool
) -> None:
    extra = {"resources/reports.json": bucket(**statement), "organization/organization.json": ORG}
    found = audit_json(capsys, tmp_path, extra)
    hits = codes(found, "resource_policy_public")
    assert hits == ([("resources/reports.json", "policy.Statement[0].Principal")] if public else [])


def test_a_deny_for_everyone_is_not_public(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = bucket(Principal="*")
    doc["policy"]["Statement"][0]["Effect"] = "Deny"
    found = audit_json(capsys, tmp_path, {"resources/reports.json": doc})
    assert codes(found, "resource_policy_public") == []


def test_roles_and_users_without_the_required_boundary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    boundary = {"Version": V, "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}
    extra = {
        "policies/Boundary.json": boundary,
        "roles/Deploy.json": trust(Principal={"Service": "ec2.amazonaws.com"}),
        "roles/Bounded.json": {
            **trust(Principal={"Service": "ec2.amazonaws.com"}),
            "permissions_boundary": "Boundary",
        },
        "roles/AWSServiceRoleForAutoScaling.json": {
            **trust(Principal={"Service": "autoscaling.amazonaws.com"}),
            "path": "/aws-service-role/autoscaling.amazonaws.com/",
            "service_linked": True,
        },
    }
    found = audit_json(capsys, tmp_path / "a", extra, require_permissions_boundary=True)
    assert codes(found, "missing_permissions_boundary") == [
        ("roles/Deploy.json", "permissions_boundary"),
        ("users/ann.json", "permissions_boundary"),
    ]
    # the account does not ask for boundaries: nothing reported
    found = audit_json(capsys, tmp_path / "b", extra)
    assert codes(found, "missing_permissions_boundary") == []
    found = audit_json(capsys, tmp_path / "c", extra, require_permissions_boundary=False)
    assert codes(found, "missing_permissions_boundary") == []


def test_require_permissions_boundary_must_be_a_boolean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pdp.cli import main

    files = copy.deepcopy(CLEAN)
    files["account.json"]["require_permissions_boundary"] = "yes"
    assert main(["audit", str(write_store(tmp_path, files))]) == 1
    assert "account.json: require_permissions_boundary" in capsys.readouterr().err


def organization(root_scps: list[str], unit_scps: list[str] | None = None) -> dict[str, Any]:
    unit: dict[str, Any] = {"id": "ou-a1b2-1111aaaa", "name": "Prod", "accounts": [ACCOUNT]}
    if unit_scps is not None:
        unit["scps"] = unit_scps
    return {
        "id": "o-a1b2c3d4e5",
        "management_account": "111111111111",
        "root": {"id": "r-a1b2", "scps": root_scps, "accounts": ["111111111111"], "units": [unit]},
    }


ORG = organization(["FullAWSAccess"])  # OTHER is known to the store through it
ORG["root"]["accounts"].append(OTHER)
ALLOW_S3 = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
DENY_REGIONS = {
    "Version": V,
    "Statement": [
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}},
        }
    ],
}


def test_an_allow_only_scp_next_to_full_aws_access_denies_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = {
        "organization/organization.json": organization(
            ["FullAWSAccess"], ["FullAWSAccess", "AllowS3", "DenyRegions"]
        ),
        "organization/scps/AllowS3.json": ALLOW_S3,
        "organization/scps/DenyRegions.json": DENY_REGIONS,
    }
    found = audit_json(capsys, tmp_path / "a", extra)
    assert codes(found, "scp_denies_nothing") == [
        ("organization/organization.json", "root.units[0].scps[1]")
    ]
    # without FullAWSAccess at the OU, AllowS3 is its allow list: it matters
    extra["organization/organization.json"] = organization(
        ["FullAWSAccess"], ["AllowS3", "DenyRegions"]
    )
    found = audit_json(capsys, tmp_path / "b", extra)
    assert codes(found, "scp_denies_nothing") == []


def test_an_scp_deny_of_no_known_action(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    typo = {
        "Version": V,
        "Statement": [
            {"Effect": "Deny", "Action": ["s3:DeleteBuckets", "iam:CreateUsr*"], "Resource": "*"},
            {"Effect": "Deny", "Action": ["s3:DeleteBuckets", "s3:DeleteBucket"], "Resource": "*"},
        ],
    }
    extra = {
        "organization/organization.json": organization(["FullAWSAccess", "Guard"]),
        "organization/scps/Guard.json": typo,
    }
    found = audit_json(capsys, tmp_path, extra)
    assert codes(found, "scp_deny_matches_nothing") == [
        ("organization/scps/Guard.json", "Statement[0].Action")
    ]
    # an application's own service (store.json) is not AWS's: not judged against the reference
    typo["Statement"][0]["Action"] = ["orders:Delete*"]
    extra["store.json"] = {"application_services": ["orders"]}
    found = audit_json(capsys, tmp_path / "own", extra)
    assert codes(found, "scp_deny_matches_nothing") == []


def test_every_account_of_a_multi_account_store_is_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pdp.cli import main

    files: dict[str, Any] = {}
    for account in (ACCOUNT, OTHER):
        prefix = f"accounts/{account}/"
        files[f"{prefix}account.json"] = {
            **copy.deepcopy(CLEAN["account.json"]),
            "account_id": account,
            "require_permissions_boundary": True,
        }
    files[f"accounts/{OTHER}/roles/Deploy.json"] = trust(
        Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    )
    files[f"accounts/{OTHER}/resources/reports.json"] = {**bucket(Principal="*"), "account": OTHER}
    files[f"accounts/{ACCOUNT}/users/bob.json"] = {}
    files[f"accounts/{ACCOUNT}/account.json"]["password_policy"] = {}
    assert main(["audit", str(write_store(tmp_path, files)), "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    got = {(f["code"], f["file"]) for f in found}
    assert got == {
        ("password_policy_missing", f"accounts/{ACCOUNT}/account.json"),
        ("missing_permissions_boundary", f"accounts/{ACCOUNT}/users/bob.json"),
        ("missing_permissions_boundary", f"accounts/{OTHER}/roles/Deploy.json"),
        ("trust_account_unconditioned", f"accounts/{OTHER}/roles/Deploy.json"),
        ("resource_policy_public", f"accounts/{OTHER}/resources/reports.json"),
    }, found


def test_a_roles_own_policies_are_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    role = {
        **trust(Principal={"Service": "ec2.amazonaws.com"}),
        "policies": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        "inline_policies": {
            "Write": {
                "Version": V,
                "Statement": {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"},
            },
            "Read": {
                "Version": V,
                "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            },
        },
    }
    found = audit_json(capsys, tmp_path, {"roles/App.json": role})
    assert codes(found, "wildcard_action") == [
        ("roles/App.json", "policies[0].Statement[0].Action")
    ]
    assert codes(found, "wildcard_resource_write") == [
        ("roles/App.json", "inline_policies.Write.Statement.Resource")
    ]
