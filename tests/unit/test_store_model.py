"""The store's model beyond users: roles, resources, the organization and several accounts
(spec 14, section 1; docs/store.md, "Accounts, roles, resources and the organization").

Every test writes real files below tmp_path and reads them through `read_version` or loads them
through `load_store` / `load_directory`, as a publisher's version is read; each refusal names the
file and the JSON path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import pdp
from pdp.errors import Diagnostic, PolicyLoadError
from pdp.store.activation import load_directory, load_store
from pdp.store.organization import Organization
from pdp.store.version import StoreVersion, read_version, version_stamp
from pdp.store.world import RCP_SERVICES

MANAGEMENT = "111111111111"
MEMBER = "222222222222"
OTHER = "333333333333"
READ = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}
DENY_REGIONS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}},
        }
    ],
}
RCP = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


def trust(principal: Any = None) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": principal or {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def bucket_policy(principal: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": principal,
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::reports-bucket/*",
            }
        ],
    }


def organization(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "o-a1b2c3d4e5",
        "management_account": MANAGEMENT,
        "root": {
            "id": "r-a1b2",
            "accounts": [MANAGEMENT],
            "units": [
                {
                    "id": "ou-a1b2-1111aaaa",
                    "name": "Prod",
                    "scps": ["FullAWSAccess", "DenyRegions"],
                    "rcps": ["SecureOnly"],
                    "accounts": [],
                    "units": [
                        {
                            "id": "ou-a1b2-2222bbbb",
                            "name": "Web",
                            "accounts": [MEMBER],
                        }
                    ],
                }
            ],
        },
        "accounts": {MEMBER: {"scps": ["DenyRegions"], "rcps": []}},
    }
    doc.update(changes)
    return doc


def single(**extra: Any) -> dict[str, Any]:
    """A single-account version: a user with a boundary, a role, a bucket, an organization."""
    files: dict[str, Any] = {
        "account.json": {"account_id": MANAGEMENT},
        "policies/S3Read.json": READ,
        "policies/Bound.json": READ,
        "users/alice.json": {"policies": ["S3Read"], "permissions_boundary": "Bound"},
        "roles/Deploy.json": {
            "path": "/ci/",
            "trust_policy": trust(),
            "policies": ["S3Read", "arn:aws:iam::aws:policy/ReadOnlyAccess"],
            "inline_policies": {"Write": READ},
            "permissions_boundary": f"arn:aws:iam::{MANAGEMENT}:policy/Bound",
            "tags": {"team": "ci"},
            "max_session_duration": 7200,
            "description": "deploys",
        },
        "resources/reports-bucket.json": {
            "arn": ["arn:aws:s3:::reports-bucket", "arn:aws:s3:::reports-bucket/*"],
            "policy": bucket_policy({"AWS": f"arn:aws:iam::{MANAGEMENT}:role/ci/Deploy"}),
            "tags": {"data": "reports"},
        },
        "organization/organization.json": organization(),
        "organization/scps/DenyRegions.json": DENY_REGIONS,
        "organization/rcps/SecureOnly.json": RCP,
    }
    files.update(extra)
    return files


def multi(**extra: Any) -> dict[str, Any]:
    """Two accounts in accounts/<id>/, the organization at the top."""
    files: dict[str, Any] = {
        f"accounts/{MANAGEMENT}/account.json": {"account_id": MANAGEMENT},
        f"accounts/{MANAGEMENT}/policies/S3Read.json": READ,
        f"accounts/{MANAGEMENT}/users/alice.json": {"policies": ["S3Read"]},
        f"accounts/{MEMBER}/account.json": {"account_id": MEMBER},
        f"accounts/{MEMBER}/policies/S3Read.json": READ,
        f"accounts/{MEMBER}/users/bob.json": {"policies": ["S3Read"]},
        f"accounts/{MEMBER}/roles/Deploy.json": {
            "trust_policy": trust(),
            "policies": ["S3Read"],
            "inline_policies": {"Write": READ},
        },
        f"accounts/{MEMBER}/resources/reports-bucket.json": {
            "arn": "arn:aws:s3:::reports-bucket",
            "policy": bucket_policy({"AWS": MANAGEMENT}),
        },
        "organization/organization.json": organization(),
        "organization/scps/DenyRegions.json": DENY_REGIONS,
        "organization/rcps/SecureOnly.json": RCP,
    }
    files.update(extra)
    return files


def write_store(tmp_path: Path, files: dict[str, Any]) -> Path:
    """`files` (path -> JSON, None to leave a file out) as versions/1/ of a store."""
    root = tmp_path / "store" / "versions" / "1"
    root.mkdir(parents=True)
    for rel, content in files.items():
        if content is None:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
    return root


def read(tmp_path: Path, files: dict[str, Any]) -> StoreVersion:
    version, problems = read_version("1", write_store(tmp_path, files))
    assert problems == []
    assert version is not None
    return version


def refused(tmp_path: Path, files: dict[str, Any]) -> list[Diagnostic]:
    version, problems = read_version("1", write_store(tmp_path, files))
    assert version is None
    assert problems
    return problems


def assert_refused(
    tmp_path: Path, files: dict[str, Any], source: str, path: str, words: str
) -> Diagnostic:
    """The version is refused with a problem of `source` at `path` whose message holds `words`."""
    problems = refused(tmp_path, files)
    found = [d for d in problems if d.source == source and d.path == path and words in d.message]
    assert found, [str(d) for d in problems]
    return found[0]


def org_of(version: StoreVersion) -> Organization:
    assert version.organization is not None
    return version.organization


# --- happy paths ---


def test_a_single_account_version_reads_roles_resources_and_the_organization(
    tmp_path: Path,
) -> None:
    version = read(tmp_path, single())
    assert version.accounts == {}
    assert version.users["alice"].permissions_boundary == "Bound"
    role = version.roles["Deploy"]
    assert role.file == "roles/Deploy.json"
    assert role.arn == f"arn:aws:iam::{MANAGEMENT}:role/ci/Deploy"
    assert role.role_id.startswith("AROA") and len(role.role_id) == 21
    assert role.trust_policy.name == "roles/Deploy.json#trust"
    assert [p.name for p in role.inline_policies] == ["roles/Deploy.json#inline/Write"]
    assert role.policies == ("S3Read", "arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert role.permissions_boundary == f"arn:aws:iam::{MANAGEMENT}:policy/Bound"
    assert (role.tags, role.max_session_duration, role.service_linked) == (
        {"team": "ci"},
        7200,
        False,
    )
    assert role.description == "deploys"
    (bucket,) = version.resources
    assert (bucket.name, bucket.file) == ("reports-bucket", "resources/reports-bucket.json")
    assert bucket.arns == ("arn:aws:s3:::reports-bucket", "arn:aws:s3:::reports-bucket/*")
    assert bucket.account == MANAGEMENT  # the ARN has no account: the enclosing one
    assert bucket.policy is not None and bucket.policy.name == "resources/reports-bucket.json"
    assert bucket.tags == {"data": "reports"}
    org = org_of(version)
    assert org.file == "organization/organization.json"
    assert org.scps["DenyRegions"].name == "organization/scps/DenyRegions.json"
    assert org.rcps["SecureOnly"].name == "organization/rcps/SecureOnly.json"


def test_a_role_id_given_is_kept_and_one_derived_is_stable(tmp_path: Path) -> None:
    given = "AROAEXAMPLEID12345678"
    files = single(**{"roles/Given.json": {"trust_policy": trust(), "role_id": given}})
    first = read(tmp_path / "a", files)
    second = read(tmp_path / "b", files)
    assert first.roles["Given"].role_id == given
    assert first.roles["Deploy"].role_id == second.roles["Deploy"].role_id


def test_the_single_account_version_loads_and_decides_as_before(tmp_path: Path) -> None:
    root = write_store(tmp_path, single())
    snapshot = load_store(root.parent.parent)
    decision = snapshot.decide(pdp.Request("alice", "s3:GetObject", "arn:aws:s3:::b/k"))
    assert decision.reason == "allowed"


def test_several_accounts_each_keep_their_files_and_citations(tmp_path: Path) -> None:
    version = read(tmp_path, multi())
    assert sorted(version.accounts) == [MANAGEMENT, MEMBER]
    member = version.accounts[MEMBER]
    assert member.account.account_id == MEMBER
    assert member.policies["S3Read"].name == f"accounts/{MEMBER}/policies/S3Read.json"
    assert member.users["bob"].file == f"accounts/{MEMBER}/users/bob.json"
    role = member.roles["Deploy"]
    assert role.arn == f"arn:aws:iam::{MEMBER}:role/Deploy"
    assert role.trust_policy.name == f"accounts/{MEMBER}/roles/Deploy.json#trust"
    assert role.inline_policies[0].name == f"accounts/{MEMBER}/roles/Deploy.json#inline/Write"
    (bucket,) = member.resources
    assert bucket.file == f"accounts/{MEMBER}/resources/reports-bucket.json"
    assert bucket.account == MEMBER
    # the top carries the management account's sub-version
    assert version.account.account_id == MANAGEMENT
    assert list(version.users) == ["alice"]
    assert version.organization is member.organization is not None


def test_without_the_management_account_the_top_is_the_lowest_account(tmp_path: Path) -> None:
    files = {k: v for k, v in multi().items() if not k.startswith(f"accounts/{MANAGEMENT}/")}
    version = read(tmp_path, files)
    assert list(version.accounts) == [MEMBER]
    assert version.account.account_id == MEMBER
    assert list(version.users) == ["bob"]


def test_several_accounts_load_through_load_directory(tmp_path: Path) -> None:
    snapshot = load_directory(write_store(tmp_path, multi()))
    decision = snapshot.decide(pdp.Request("alice", "s3:GetObject", "arn:aws:s3:::b/k"))
    assert decision.reason == "allowed"


def test_a_reload_reads_roles_again_and_checks_boundaries_of_unchanged_users(
    tmp_path: Path,
) -> None:
    """The single-account reload is a delta for users, groups and policies; roles, resources
    and the organization are read whole, and every boundary is checked again (a policy that
    goes away refuses the unchanged user whose boundary it was)."""
    root = write_store(tmp_path, single())
    store = root.parent.parent
    first = load_store(store)
    role = json.loads((root / "roles/Deploy.json").read_text())
    role["max_session_duration"] = 43200
    (root / "roles/Deploy.json").write_text(json.dumps(role))
    second = load_store(store, previous=first)
    assert second.source is not None
    assert second.source.roles["Deploy"].max_session_duration == 43200
    (root / "policies/Bound.json").unlink()
    with pytest.raises(PolicyLoadError) as caught:
        load_store(store, previous=second)
    problems = {(d.source, d.path) for d in caught.value.diagnostics}
    assert ("users/alice.json", "permissions_boundary") in problems
    assert ("roles/Deploy.json", "permissions_boundary") in problems


def test_a_reload_of_several_accounts_is_a_full_read(tmp_path: Path) -> None:
    root = write_store(tmp_path, multi())
    store = root.parent.parent
    first = load_store(store)
    (root / f"accounts/{MEMBER}/users/carol.json").write_text("{}")
    second = load_store(store, previous=first)
    assert second.source is not None
    assert second.source.changed_users is None
    assert sorted(second.source.accounts[MEMBER].users) == ["bob", "carol"]


# --- the organization's paths and levels ---


def test_ou_paths_run_from_the_organization_to_the_account_s_unit(tmp_path: Path) -> None:
    org = org_of(read(tmp_path, single()))
    path = org.path_of(MEMBER)
    assert path is not None
    assert [n.id for n in path] == ["r-a1b2", "ou-a1b2-1111aaaa", "ou-a1b2-2222bbbb"]
    assert [n.kind for n in path] == ["root", "ou", "ou"]
    assert org.org_paths(MEMBER) == "o-a1b2c3d4e5/r-a1b2/ou-a1b2-1111aaaa/ou-a1b2-2222bbbb/"
    assert org.org_paths(MANAGEMENT) == "o-a1b2c3d4e5/r-a1b2/"
    assert org.path_of(OTHER) is None
    with pytest.raises(KeyError):
        org.org_paths(OTHER)


def test_scp_levels_default_to_full_aws_access_where_scps_are_absent(tmp_path: Path) -> None:
    org = org_of(read(tmp_path, single()))
    levels = [[p.name for p in level] for level in org.scp_levels(MEMBER)]
    full = "organization/scps/FullAWSAccess.json"
    deny = "organization/scps/DenyRegions.json"
    assert levels == [[full], [full, deny], [full], [deny]]  # root, Prod, Web, the account
    assert [[p.name for p in level] for level in org.scp_levels(MANAGEMENT)] == [[full], [full]]
    assert org.scp_levels(OTHER) == ()
    builtin = org.scps["FullAWSAccess"]
    assert builtin.kind == "scp" and builtin.document["Statement"][0]["Action"] == "*"


def test_rcp_levels_always_start_with_rcp_full_aws_access(tmp_path: Path) -> None:
    org = org_of(read(tmp_path, single()))
    full = "organization/rcps/RCPFullAWSAccess.json"
    secure = "organization/rcps/SecureOnly.json"
    levels = [[p.name for p in level] for level in org.rcp_levels(MEMBER)]
    assert levels == [[full], [full, secure], [full], [full]]
    assert org.rcps["RCPFullAWSAccess"].kind == "rcp"


# orgs_manage_policies_rcps.html, "List of AWS services that support RCPs" (service prefixes)
RCP_DOCUMENTED = {
    "s3",
    "sts",
    "kms",
    "sqs",
    "secretsmanager",
    "ecr",
    "aoss",
    "cognito-idp",
    "logs",
    "dynamodb",
}
DENY_ALL_RCP = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}],
}


def test_rcp_services_are_exactly_those_aws_documents() -> None:
    assert set(RCP_SERVICES) == RCP_DOCUMENTED


@pytest.mark.parametrize(
    ("action", "blocked"),
    [*((f"{service}:Anything", True) for service in sorted(RCP_DOCUMENTED))]
    + [("ec2:DescribeInstances", False), ("lambda:InvokeFunction", False), ("sns:Publish", False)],
)
def test_an_rcp_denying_everything_blocks_only_the_services_rcps_govern(
    tmp_path: Path, action: str, blocked: bool
) -> None:
    admin = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    files = multi(
        **{
            f"accounts/{MEMBER}/policies/Admin.json": admin,
            f"accounts/{MEMBER}/users/bob.json": {"policies": ["Admin"]},
            "organization/organization.json": organization(
                accounts={MEMBER: {"rcps": ["Nothing"]}}
            ),
            "organization/rcps/Nothing.json": DENY_ALL_RCP,
        }
    )
    snapshot = load_store(write_store(tmp_path, files).parent.parent)
    bob = f"arn:aws:iam::{MEMBER}:user/bob"
    in_region = {"aws:RequestedRegion": "eu-west-1"}  # DenyRegions, the SCP of Prod, allows it
    decision = snapshot.decide(pdp.Request(bob, action, "*", context=in_region))
    assert decision.allowed is not blocked, decision.reason


def test_a_full_aws_access_file_replaces_the_built_in(tmp_path: Path) -> None:
    files = single(**{"organization/scps/FullAWSAccess.json": READ})
    org = org_of(read(tmp_path, files))
    assert org.scps["FullAWSAccess"].document == READ
    assert org.scp_levels(MANAGEMENT)[0] == (org.scps["FullAWSAccess"],)


def test_organization_json_at_the_top_is_the_same_file(tmp_path: Path) -> None:
    files = single()
    files["organization.json"] = files.pop("organization/organization.json")
    org = org_of(read(tmp_path, files))
    assert org.file == "organization.json"
    assert org.path_of(MEMBER) is not None


# --- roles refused ---


def test_a_bad_role_name_is_refused(tmp_path: Path) -> None:
    files = single(**{"roles/Bad!Name.json": {"trust_policy": trust()}})
    assert_refused(tmp_path, files, "roles/Bad!Name.json", "", 'invalid role name "Bad!Name"')


def test_a_role_name_over_64_characters_is_refused(tmp_path: Path) -> None:
    name = "R" * 65
    files = single(**{f"roles/{name}.json": {"trust_policy": trust()}})
    assert_refused(tmp_path, files, f"roles/{name}.json", "", "invalid role name")


def test_role_names_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    files = single(**{"roles/deploy.json": {"trust_policy": trust()}})
    found = assert_refused(tmp_path, files, "roles/deploy.json", "", "differ only in case")
    assert found.code == "duplicate_name"


def test_the_version_stamp_moves_when_a_role_or_an_account_file_comes(tmp_path: Path) -> None:
    root = write_store(tmp_path, multi())
    before = version_stamp(root)
    (root / f"accounts/{MEMBER}/roles/Second.json").write_text(
        json.dumps({"trust_policy": trust()})
    )
    assert version_stamp(root) != before


def test_a_bad_role_path_is_refused(tmp_path: Path) -> None:
    files = single(**{"roles/R.json": {"trust_policy": trust(), "path": "no-slashes"}})
    assert_refused(tmp_path, files, "roles/R.json", "path", 'path must start and end with "/"')


def test_a_service_linked_role_needs_the_service_role_path(tmp_path: Path) -> None:
    files = single(**{"roles/R.json": {"trust_policy": trust(), "service_linked": True}})
    assert_refused(
        tmp_path, files, "roles/R.json", "path", "/aws-service-role/<service principal>/"
    )


def test_a_service_linked_role_at_its_path_reads(tmp_path: Path) -> None:
    role = {
        "trust_policy": trust({"Service": "autoscaling.amazonaws.com"}),
        "service_linked": True,
        "path": "/aws-service-role/autoscaling.amazonaws.com/",
    }
    version = read(tmp_path, single(**{"roles/AWSServiceRoleForAutoScaling.json": role}))
    assert version.roles["AWSServiceRoleForAutoScaling"].service_linked is True


@pytest.mark.parametrize("duration", [3599, 43201, 0, "3600", True])
def test_max_session_duration_outside_one_to_twelve_hours_is_refused(
    tmp_path: Path, duration: object
) -> None:
    files = single(**{"roles/R.json": {"trust_policy": trust(), "max_session_duration": duration}})
    assert_refused(tmp_path, files, "roles/R.json", "max_session_duration", "3600 to 43200")


@pytest.mark.parametrize("duration", [3600, 43200])
def test_max_session_duration_at_its_bounds_reads(tmp_path: Path, duration: int) -> None:
    files = single(**{"roles/R.json": {"trust_policy": trust(), "max_session_duration": duration}})
    assert read(tmp_path, files).roles["R"].max_session_duration == duration


def test_a_role_without_a_trust_policy_is_refused(tmp_path: Path) -> None:
    files = single(**{"roles/R.json": {"policies": ["S3Read"]}})
    assert_refused(tmp_path, files, "roles/R.json", "trust_policy", "needs a trust_policy")


def test_a_resource_in_a_trust_policy_is_refused(tmp_path: Path) -> None:
    document = trust()
    document["Statement"][0]["Resource"] = "*"
    files = single(**{"roles/R.json": {"trust_policy": document}})
    found = assert_refused(
        tmp_path, files, "roles/R.json", "trust_policy.Statement[0].Resource", "Resource"
    )
    assert found.code == "resource_in_trust_policy"


def test_a_trust_policy_without_a_principal_is_refused(tmp_path: Path) -> None:
    document = trust()
    del document["Statement"][0]["Principal"]
    files = single(**{"roles/R.json": {"trust_policy": document}})
    problems = refused(tmp_path, files)
    assert any(d.source == "roles/R.json" and d.path.startswith("trust_policy.") for d in problems)


def test_a_role_attaching_a_missing_policy_is_refused(tmp_path: Path) -> None:
    files = single(**{"roles/R.json": {"trust_policy": trust(), "policies": ["S3Read", "Nope"]}})
    found = assert_refused(
        tmp_path, files, "roles/R.json", "policies[1]", 'policy "Nope" does not exist in policies/'
    )
    assert found.code == "missing_reference"


def test_a_role_attaching_an_unknown_aws_managed_policy_is_refused(tmp_path: Path) -> None:
    ref = "arn:aws:iam::aws:policy/NoSuchPolicy"
    files = single(**{"roles/R.json": {"trust_policy": trust(), "policies": [ref]}})
    assert_refused(tmp_path, files, "roles/R.json", "policies[0]", "unknown AWS managed policy")


def test_a_role_boundary_naming_a_missing_policy_is_refused(tmp_path: Path) -> None:
    files = single(**{"roles/R.json": {"trust_policy": trust(), "permissions_boundary": "Nope"}})
    assert_refused(
        tmp_path, files, "roles/R.json", "permissions_boundary", 'policy "Nope" does not exist'
    )


def test_a_user_boundary_naming_a_missing_policy_is_refused_at_read_time(tmp_path: Path) -> None:
    files = single(**{"users/bob.json": {"permissions_boundary": "Nope"}})
    found = assert_refused(
        tmp_path, files, "users/bob.json", "permissions_boundary", 'policy "Nope" does not exist'
    )
    assert found.code == "missing_reference"


def test_a_boundary_of_another_account_is_refused(tmp_path: Path) -> None:
    ref = f"arn:aws:iam::{MEMBER}:policy/Bound"
    files = single(**{"users/bob.json": {"permissions_boundary": ref}})
    assert_refused(
        tmp_path, files, "users/bob.json", "permissions_boundary", f"is not in account {MANAGEMENT}"
    )


def test_a_boundary_load_is_refused_through_load_store(tmp_path: Path) -> None:
    root = write_store(tmp_path, single(**{"users/bob.json": {"permissions_boundary": "Nope"}}))
    with pytest.raises(PolicyLoadError) as caught:
        load_store(root.parent.parent)
    assert 'users/bob.json: permissions_boundary: policy "Nope"' in str(caught.value)


def test_customer_policies_resolve_within_their_account(tmp_path: Path) -> None:
    files = multi(
        **{
            f"accounts/{MEMBER}/roles/Deploy.json": {
                "trust_policy": trust(),
                "policies": ["OnlyInManagement"],
            },
            f"accounts/{MANAGEMENT}/policies/OnlyInManagement.json": READ,
        }
    )
    assert_refused(
        tmp_path,
        files,
        f"accounts/{MEMBER}/roles/Deploy.json",
        "policies[0]",
        'policy "OnlyInManagement" does not exist',
    )


# --- accounts refused ---


def test_an_account_folder_not_named_by_12_digits_is_refused(tmp_path: Path) -> None:
    files = multi(**{"accounts/prod/account.json": {"account_id": OTHER}})
    assert_refused(tmp_path, files, "accounts/prod", "", "12-digit id")


def test_an_account_json_naming_another_account_is_refused(tmp_path: Path) -> None:
    files = multi(**{f"accounts/{MEMBER}/account.json": {"account_id": OTHER}})
    assert_refused(
        tmp_path,
        files,
        f"accounts/{MEMBER}/account.json",
        "account_id",
        f"account_id {OTHER} differs from its folder's name {MEMBER}",
    )


@pytest.mark.parametrize("top", ["account.json", "users/carol.json", "roles/R.json"])
def test_a_top_level_account_beside_accounts_is_a_layout_conflict(tmp_path: Path, top: str) -> None:
    content: dict[str, Any] = {"account_id": MANAGEMENT} if top == "account.json" else {}
    if top.startswith("roles/"):
        content = {"trust_policy": trust()}
    found = assert_refused(
        tmp_path, multi(**{top: content}), top.partition("/")[0], "", "never both"
    )
    assert found.code == "layout_conflict"


def test_an_account_folder_holding_aws_managed_is_refused(tmp_path: Path) -> None:
    files = multi(**{f"accounts/{MEMBER}/aws-managed/X.json": READ})
    assert_refused(tmp_path, files, f"accounts/{MEMBER}/aws-managed", "", "holds only account.json")


# --- the organization refused ---


def test_an_unexpected_file_in_organization_is_refused(tmp_path: Path) -> None:
    files = single(**{"organization/DenyAll.json": READ})
    assert_refused(tmp_path, files, "organization/DenyAll.json", "", "holds only organization.json")


def test_an_account_listed_twice_in_the_tree_is_refused(tmp_path: Path) -> None:
    doc = organization()
    doc["root"]["units"][0]["accounts"] = [MEMBER]
    files = single(**{"organization/organization.json": doc})
    found = assert_refused(
        tmp_path,
        files,
        "organization/organization.json",
        "root.units[0].units[0].accounts[0]",
        f"account {MEMBER} is also at root.units[0].accounts[0]",
    )
    assert found.code == "duplicate_account"


def test_an_ou_id_repeated_is_refused(tmp_path: Path) -> None:
    doc = organization()
    doc["root"]["units"][0]["units"][0]["id"] = "ou-a1b2-1111aaaa"
    files = single(**{"organization/organization.json": doc})
    assert_refused(
        tmp_path,
        files,
        "organization/organization.json",
        "root.units[0].units[0].id",
        "ou-a1b2-1111aaaa is also at root.units[0]",
    )


def test_an_unknown_scp_name_is_refused(tmp_path: Path) -> None:
    doc = organization()
    doc["root"]["scps"] = ["FullAWSAccess", "Missing"]
    files = single(**{"organization/organization.json": doc})
    assert_refused(
        tmp_path,
        files,
        "organization/organization.json",
        "root.scps[1]",
        'SCP "Missing" does not exist in organization/scps/',
    )


def test_an_unknown_rcp_name_on_an_account_is_refused(tmp_path: Path) -> None:
    doc = organization(accounts={MEMBER: {"rcps": ["Missing"]}})
    files = single(**{"organization/organization.json": doc})
    assert_refused(
        tmp_path,
        files,
        "organization/organization.json",
        f"accounts.{MEMBER}.rcps[0]",
        'RCP "Missing" does not exist in organization/rcps/',
    )


def test_the_management_account_must_be_in_the_tree(tmp_path: Path) -> None:
    doc = organization(management_account=OTHER)
    files = single(**{"organization/organization.json": doc})
    assert_refused(
        tmp_path,
        files,
        "organization/organization.json",
        "management_account",
        f"management account {OTHER} is not in the tree",
    )


def test_a_store_account_may_stand_outside_the_organization(tmp_path: Path) -> None:
    files = multi(**{f"accounts/{OTHER}/account.json": {"account_id": OTHER}})
    version = read(tmp_path, files)
    assert version.organization is not None and version.organization.path_of(OTHER) is None


def test_attachments_of_an_account_outside_the_tree_are_refused(tmp_path: Path) -> None:
    doc = organization(accounts={OTHER: {"scps": ["DenyRegions"]}})
    files = single(**{"organization/organization.json": doc})
    assert_refused(
        tmp_path, files, "organization/organization.json", f"accounts.{OTHER}", "not in the tree"
    )


@pytest.mark.parametrize(
    ("where", "value", "words"),
    [
        ("id", "o-short", "organization id"),
        ("id", "o-A1B2C3D4E5", "organization id"),
        ("root.id", "r-a1", '"r-" and 4 to 32'),
        ("root.units[0].id", "ou-a1b2-111", '"ou-"'),
        ("root.units[0].id", "ou-a1b2", '"ou-"'),
        ("management_account", "1234", "12 digits"),
    ],
)
def test_bad_organization_ids_are_refused(
    tmp_path: Path, where: str, value: str, words: str
) -> None:
    doc = organization()
    target: dict[str, Any] = doc
    keys = where.replace("[0]", ".0").split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]  # type: ignore[index]
    target[keys[-1]] = value
    files = single(**{"organization/organization.json": doc})
    assert_refused(tmp_path, files, "organization/organization.json", where, words)


def test_scps_without_an_organization_are_refused(tmp_path: Path) -> None:
    files = single(**{"organization/organization.json": None})
    assert_refused(tmp_path, files, "organization/scps/DenyRegions.json", "", "applies to nothing")


def test_both_organization_files_are_refused(tmp_path: Path) -> None:
    files = single(**{"organization.json": organization()})
    found = assert_refused(tmp_path, files, "organization.json", "", "keep one")
    assert found.code == "layout_conflict"


def test_rcp_full_aws_access_cannot_be_replaced(tmp_path: Path) -> None:
    files = single(**{"organization/rcps/RCPFullAWSAccess.json": RCP})
    assert_refused(
        tmp_path, files, "organization/rcps/RCPFullAWSAccess.json", "", "cannot be changed"
    )


def test_an_rcp_with_an_allow_statement_is_refused(tmp_path: Path) -> None:
    allowing = {
        "Version": "2012-10-17",
        "Statement": [
            RCP["Statement"][0],
            {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
        ],
    }
    files = single(**{"organization/rcps/SecureOnly.json": allowing})
    found = assert_refused(
        tmp_path,
        files,
        "organization/rcps/SecureOnly.json",
        "Statement[1].Effect",
        "an RCP may not Allow: only the built-in RCPFullAWSAccess allows",
    )
    assert found.code == "invalid_field"
    assert str(found) == (
        "organization/rcps/SecureOnly.json: Statement[1].Effect: an RCP may not Allow: only the"
        ' built-in RCPFullAWSAccess allows (AWS, "RCP syntax")'
        ' (write "Effect": "Deny" with the conditions under which access is refused)'
    )
    # the RCP is still known by name: Prod attaching it gets no "does not exist" besides
    assert [d.path for d in refused(tmp_path / "again", files)] == ["Statement[1].Effect"]


def test_an_rcp_whose_only_statement_allows_is_refused(tmp_path: Path) -> None:
    allowing = {
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
    }
    files = single(**{"organization/rcps/SecureOnly.json": allowing})
    assert_refused(
        tmp_path, files, "organization/rcps/SecureOnly.json", "Statement.Effect", "may not Allow"
    )


@pytest.mark.parametrize(
    "where",
    ["root", "root.units[0]", "root.units[0].units[0]", f"accounts.{MEMBER}"],
)
def test_an_explicitly_empty_scps_list_is_refused(tmp_path: Path, where: str) -> None:
    doc = organization()
    target: dict[str, Any] = doc
    for key in where.replace("[0]", ".0").split("."):
        target = target[int(key)] if key == "0" else target[key]  # type: ignore[index]
    target["scps"] = []
    files = single(**{"organization/organization.json": doc})
    found = assert_refused(
        tmp_path,
        files,
        "organization/organization.json",
        f"{where}.scps",
        "scps is empty: every root, OU and account has at least one SCP attached (AWS)",
    )
    assert found.code == "invalid_field"
    assert found.hint is not None and 'leave "scps" out for FullAWSAccess' in found.hint


def test_a_missing_scps_is_full_aws_access_and_an_empty_rcps_reads(tmp_path: Path) -> None:
    doc = organization(accounts={MEMBER: {"rcps": []}})
    assert "scps" not in doc["root"]
    org = org_of(read(tmp_path, single(**{"organization/organization.json": doc})))
    full = org.scps["FullAWSAccess"]
    assert org.scp_levels(MEMBER)[0] == (full,) and org.scp_levels(MEMBER)[-1] == (full,)
    assert org.rcp_levels(MEMBER)[-1] == (org.rcps["RCPFullAWSAccess"],)


def test_an_scp_with_a_principal_is_refused(tmp_path: Path) -> None:
    files = single(**{"organization/scps/DenyRegions.json": RCP})
    problems = refused(tmp_path, files)
    assert any(d.source == "organization/scps/DenyRegions.json" for d in problems)


# --- accounts named by policies ---


def test_a_trust_policy_naming_an_unknown_account_is_refused(tmp_path: Path) -> None:
    role = {"trust_policy": trust({"AWS": ["arn:aws:iam::111111111111:root", OTHER]})}
    files = single(**{"roles/R.json": role})
    assert_refused(
        tmp_path,
        files,
        "roles/R.json",
        "trust_policy.Statement[0].Principal.AWS[1]",
        f"names account {OTHER}, which is neither in the store nor in organization.json",
    )


def test_a_resource_policy_may_name_an_account_outside_the_store(tmp_path: Path) -> None:
    bucket = {
        "arn": "arn:aws:s3:::other-bucket",
        "policy": bucket_policy({"AWS": f"arn:aws:sts::{OTHER}:assumed-role/R/s"}),
    }
    assert read(tmp_path, single(**{"resources/other-bucket.json": bucket})).resources


def test_an_account_in_the_tree_but_not_the_store_may_be_named(tmp_path: Path) -> None:
    # the single-account store holds MANAGEMENT; MEMBER is only in the organization's tree
    role = {"trust_policy": trust({"AWS": f"arn:aws:iam::{MEMBER}:role/Caller"})}
    assert read(tmp_path, single(**{"roles/R.json": role})).roles["R"]


def test_without_an_organization_only_store_accounts_may_be_named(tmp_path: Path) -> None:
    files = {
        "account.json": {"account_id": MANAGEMENT},
        "roles/R.json": {"trust_policy": trust({"AWS": MEMBER})},
    }
    assert_refused(
        tmp_path, files, "roles/R.json", "trust_policy.Statement[0].Principal.AWS", MEMBER
    )
    files["roles/R.json"] = {"trust_policy": trust({"AWS": MANAGEMENT})}
    assert read(tmp_path / "ok", files).roles["R"]


# --- resources refused ---


def test_a_resource_arn_of_another_account_is_refused(tmp_path: Path) -> None:
    bucket = {"arn": ["arn:aws:sqs:eu-west-1:111111111111:q", f"arn:aws:sqs:eu-west-1:{MEMBER}:q"]}
    files = single(**{"resources/q.json": bucket})
    found = assert_refused(
        tmp_path,
        files,
        "resources/q.json",
        "arn[1]",
        f"names account {MEMBER}, not the resource's account {MANAGEMENT}",
    )
    assert found.code == "account_mismatch"


def test_a_resource_account_given_must_match_its_arns(tmp_path: Path) -> None:
    bucket = {"arn": "arn:aws:sqs:eu-west-1:111111111111:q", "account": MEMBER}
    assert_refused(
        tmp_path, single(**{"resources/q.json": bucket}), "resources/q.json", "arn", "names account"
    )


def test_a_resource_account_defaults_to_its_arn_s_account(tmp_path: Path) -> None:
    files = single(**{"resources/q.json": {"arn": f"arn:aws:sqs:eu-west-1:{MEMBER}:q"}})
    version = read(tmp_path, files)
    assert [r.account for r in version.resources if r.name == "q"] == [MEMBER]


@pytest.mark.parametrize("arn", ["not-an-arn", [], 7, ["arn:aws:s3:::b", "bucket"]])
def test_a_resource_without_a_valid_arn_is_refused(tmp_path: Path, arn: object) -> None:
    problems = refused(tmp_path, single(**{"resources/x.json": {"arn": arn}}))
    assert any(d.source == "resources/x.json" and d.path.startswith("arn") for d in problems)
