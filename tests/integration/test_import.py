"""`pdp import aws-authorization-details`: a realistic export (tests/fixtures/aws/, written from
AWS's documented response shapes) imported through `pdp.cli.main`, then loaded and decided on;
and every refusal, which must name the element and leave the store as it was."""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

import pdp
from pdp.cli import main
from pdp.store import read_version
from pdp.store.activation import load_store
from pdp.store.importer import ImportFailed, import_authorization_details, next_version_name

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "aws"
EXPORT = FIXTURES / "authorization-details.json"
PASSWORD_POLICY = FIXTURES / "password-policy.json"
CREDENTIAL_REPORT = FIXTURES / "credential-report.csv"
ACCOUNT = "123456789012"


def fixture_export() -> dict[str, Any]:
    return json.loads(EXPORT.read_text())


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def run_import(store: Path, export: Path, *extra: str) -> int:
    return main(["import", "aws-authorization-details", str(export), "--store", str(store), *extra])


def import_json(
    capsys: pytest.CaptureFixture[str], store: Path, export: Path, *extra: str
) -> dict[str, Any]:
    capsys.readouterr()
    assert run_import(store, export, "--json", *extra) == 0, capsys.readouterr().err
    answer: dict[str, Any] = json.loads(capsys.readouterr().out)
    return answer


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry below root: file bytes, link targets, directories; to see it untouched."""
    out: dict[str, bytes | str] = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(base) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = path.read_bytes()
    return out


def decide(store: Path, principal: str, action: str, resource: str) -> pdp.Decision:
    with pdp.Authorizer.from_store(store, watch=False) as authz:
        return authz.is_authorized(principal, action, resource)


@pytest.fixture
def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, dict[str, Any]]:
    """The fixture export imported with both extras."""
    export = EXPORT
    store = tmp_path / "store"
    summary = import_json(
        capsys,
        store,
        export,
        "--password-policy",
        str(PASSWORD_POLICY),
        "--credential-report",
        str(CREDENTIAL_REPORT),
    )
    return store, summary


# -- the realistic export ----------------------------------------------------------------------


def test_the_import_is_a_new_version_that_validates(
    imported: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    store, summary = imported
    assert summary["version"] == "0001"
    assert summary["store_created"] is True
    assert summary["serving"] is True  # no current: the greatest version serves
    assert summary["counts"] == {
        "roles": 3,
        "users": 5,  # carol with her permissions boundary
        "groups": 4,
        "policies": 3,
        "aws_managed": 3,
        "inline_policies": 5,
        "policy_versions_not_default": 2,
    }
    assert sorted(os.listdir(store / "versions")) == ["0001"]  # no temporary left
    assert main(["validate", str(store)]) == 0
    assert "version 0001: 5 users, 4 groups, 3 policies" in capsys.readouterr().out


def test_decisions_follow_the_account(imported: tuple[Path, dict[str, Any]]) -> None:
    store, _ = imported
    obj = "arn:aws:s3:::orders-app/src/app.py"
    cases = [
        # alice's group developers attaches S3AppAccess, whose default version v2 allows these
        ("alice", "s3:GetObject", obj, "Allow", "allowed"),
        ("alice", "s3:ListBucket", "arn:aws:s3:::orders-app", "Allow", "allowed"),
        # v3 (the latest, not the default) allows s3:* on the bucket: not in effect
        ("alice", "s3:DeleteBucket", "arn:aws:s3:::orders-app", "Deny", "implicitDeny"),
        # v1 (not the default either) allows s3:* on everything
        ("bob", "s3:DeleteObject", "arn:aws:s3:::other-bucket/a", "Deny", "implicitDeny"),
        # alice's inline Deny beats her group's Allow
        ("alice", "s3:PutObject", "arn:aws:s3:::orders-app/prod/x", "Deny", "explicitDeny"),
        ("bob", "s3:PutObject", "arn:aws:s3:::orders-app/prod/x", "Allow", "allowed"),
        # the group's inline policy
        (
            "bob",
            "logs:FilterLogEvents",
            f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/app/orders",
            "Allow",
            "allowed",
        ),
        # a customer policy with a path, attached by its ARN
        (
            f"arn:aws:iam::{ACCOUNT}:user/engineering/alice",
            "codebuild:StartBuild",
            f"arn:aws:codebuild:eu-west-1:{ACCOUNT}:project/orders",
            "Allow",
            "allowed",
        ),
        (
            "bob",
            "codebuild:StartBuild",
            f"arn:aws:codebuild:eu-west-1:{ACCOUNT}:project/orders",
            "Deny",
            "implicitDeny",
        ),
        # bob's inline policy came URL-encoded, as the IAM API returns it; it uses a variable
        ("bob", "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/bob", "Allow", "allowed"),
        (
            "bob",
            "iam:CreateAccessKey",
            f"arn:aws:iam::{ACCOUNT}:user/dave",
            "Deny",
            "implicitDeny",
        ),
        # AdministratorAccess, and the admins group's inline Deny
        ("dave", "ec2:RunInstances", "*", "Allow", "allowed"),
        ("dave", "iam:DeleteAccountPasswordPolicy", "*", "Deny", "explicitDeny"),
        # carol's group allows S3AppAccess; her boundary (DeveloperBoundary) only s3:GetObject
        ("carol", "s3:GetObject", obj, "Allow", "allowed"),
        ("carol", "s3:ListBucket", "arn:aws:s3:::orders-app", "Deny", "implicitDeny"),
    ]
    with pdp.Authorizer.from_store(store, watch=False) as authz:
        got = [
            (p, a, r, d.decision, d.reason)
            for p, a, r, *_ in cases
            for d in [authz.is_authorized(p, a, r)]
        ]
    assert got == cases


def test_roles_are_imported_and_decide_role_sessions(
    imported: tuple[Path, dict[str, Any]],
) -> None:
    """RoleDetailList -> roles/<Name>.json: trust policy (URL-encoded for deploy, as the IAM
    API returns it), attached and inline policies, boundary, tags, RoleId, MaxSessionDuration,
    the service-linked flag; a role session of each then decides as AWS would."""
    store, _ = imported
    folder = store / "versions/0001/roles"
    assert sorted(p.name for p in folder.iterdir()) == [
        "AWSServiceRoleForAutoScaling.json",
        "app-server.json",
        "deploy.json",
    ]
    app = json.loads((folder / "app-server.json").read_text())
    assert app["path"] == "/service/" and app["role_id"] == "AROA1111111111EXAMPLE"
    assert app["trust_policy"]["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert app["policies"] == ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
    assert list(app["inline_policies"]) == ["AppQueue"]
    assert app["permissions_boundary"] == f"arn:aws:iam::{ACCOUNT}:policy/DeveloperBoundary"
    assert app["tags"] == {"app": "orders"} and "max_session_duration" not in app
    deploy = json.loads((folder / "deploy.json").read_text())
    assert deploy["max_session_duration"] == 7200
    assert deploy["trust_policy"]["Statement"][0]["Condition"] == {
        "Bool": {"aws:MultiFactorAuthPresent": "true"}
    }
    linked = json.loads((folder / "AWSServiceRoleForAutoScaling.json").read_text())
    assert linked["service_linked"] is True
    carol = json.loads((store / "versions/0001/users/carol.json").read_text())
    assert carol["permissions_boundary"] == f"arn:aws:iam::{ACCOUNT}:policy/DeveloperBoundary"

    snapshot = load_store(store)
    obj = "arn:aws:s3:::orders-app/src/app.py"

    def session(role: str, action: str, resource: str) -> pdp.Decision:
        return snapshot.decide(
            pdp.Request(
                principal=f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/i-0abc",
                action=action,
                resource=resource,
                principal_type="role_session",
            )
        )

    allowed = session("app-server", "s3:GetObject", obj)
    assert (allowed.reason, allowed.errors) == ("allowed", ())
    # AmazonS3ReadOnlyAccess allows s3:List*, the boundary does not
    bounded = session("app-server", "s3:ListBucket", "arn:aws:s3:::orders-app")
    assert (bounded.reason, bounded.blocked_by) == ("implicitDeny", ("boundary",))
    queue = session("app-server", "sqs:SendMessage", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:orders")
    assert queue.reason == "implicitDeny"  # the inline policy allows it, the boundary does not
    assert session("deploy", "s3:GetObject", obj).reason == "allowed"  # S3AppAccess, no boundary
    assert session("deploy", "s3:DeleteBucket", "arn:aws:s3:::orders-app").reason == "implicitDeny"


def test_the_non_default_version_is_not_imported(imported: tuple[Path, dict[str, Any]]) -> None:
    store, _ = imported
    document = json.loads((store / "versions/0001/policies/S3AppAccess.json").read_text())
    assert [s.get("Sid") for s in document["Statement"]] == ["AppObjects", "AppBucket"]


def test_users_keep_paths_tags_and_credentials(imported: tuple[Path, dict[str, Any]]) -> None:
    store, _ = imported
    version, problems = read_version("0001", store / "versions" / "0001")
    assert problems == [] and version is not None
    alice = version.users["alice"]
    assert alice.path == "/engineering/"
    assert alice.tags == {"team": "orders", "cost-center": "4711"}
    assert alice.groups == ("developers",)
    assert (alice.console_access, alice.mfa_enabled) == (True, True)
    assert alice.password_last_changed == "2026-09-01T10:00:00+00:00"
    assert [(k.id, k.status, k.created, k.last_used) for k in alice.access_keys] == [
        (None, "Active", "2026-08-15T10:00:00+00:00", "2026-11-30T17:45:00+00:00")
    ]
    bob = version.users["bob"]
    assert (bob.console_access, bob.mfa_enabled, bob.password_last_changed) == (False, False, None)
    assert [(k.status, k.created) for k in bob.access_keys] == [
        ("Active", "2024-01-20T10:00:00+00:00"),
        ("Inactive", "2023-03-05T08:30:00+00:00"),
    ]
    account = version.account
    assert account.account_id == ACCOUNT
    assert account.root_mfa_enabled is True and account.root_access_keys == ()
    assert account.password_policy == {
        "MinimumPasswordLength": 14,
        "RequireSymbols": True,
        "RequireNumbers": True,
        "RequireUppercaseCharacters": True,
        "RequireLowercaseCharacters": True,
        "AllowUsersToChangePassword": True,
        "MaxPasswordAge": 90,
        "PasswordReusePrevention": 24,
        "HardExpiry": False,
    }
    for user in version.users.values():  # no access key id was invented
        assert all(k.id is None for k in user.access_keys)


def test_the_posture_reports_read_keys_without_ids(
    imported: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = imported
    capsys.readouterr()
    assert main(["audit", str(store), "--credential-report"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].startswith(f"<root_account>,arn:aws:iam::{ACCOUNT}:root,")
    # The report pdp writes from the imported store is AWS's, row for row: every column read,
    # and none invented.
    aws = {line.split(",", 1)[0]: line for line in CREDENTIAL_REPORT.read_text().splitlines()}
    assert rows[0] == aws["user"]
    assert [r.split(",", 1)[0] for r in rows[1:]] == [
        "<root_account>",
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
    ]
    for row in rows[1:]:
        assert row == aws[row.split(",", 1)[0]]
    assert main(["audit", str(store), "--format", "json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    old = [f["message"] for f in findings if f["code"] == "access_key_old"]
    assert any(m.startswith("access key 1 is ") for m in old)


def test_what_the_store_cannot_hold_is_reported(imported: tuple[Path, dict[str, Any]]) -> None:
    _, summary = imported
    skipped = {(s["kind"], s["name"]) for s in summary["skipped"]}
    assert skipped == {
        ("instance_profile", "app-server"),  # instance profiles are not modelled
        ("policy_path", "DeveloperTools"),
        ("password_policy_field", "ExpirePasswords"),
    }


def test_the_text_summary_names_what_was_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = EXPORT
    assert run_import(tmp_path / "store", export) == 0
    out = capsys.readouterr().out
    assert "5 users, 4 groups, 3 customer-managed policies" in out
    assert "inline policies, 3 roles" in out and "role (" not in out
    assert "  instance_profile (1):\n    app-server: of role app-server" in out
    assert "serving: the store now serves version 0001" in out


def test_pdp_check_decides_on_the_imported_store(
    imported: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = imported
    base = ["check", "--store", str(store), "--principal", "alice", "--action"]
    assert main([*base, "s3:GetObject", "--resource", "arn:aws:s3:::orders-app/a"]) == 0
    assert main([*base, "s3:DeleteObject", "--resource", "arn:aws:s3:::orders-app/prod/a"]) == 2
    assert "explicitDeny" in capsys.readouterr().out


def test_aws_managed_documents_are_written_in_get_policy_version_shape(
    imported: tuple[Path, dict[str, Any]],
) -> None:
    store, _ = imported
    folder = store / "versions" / "0001" / "aws-managed"
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.json"))
    assert files == [
        "AdministratorAccess.json",
        "AmazonS3ReadOnlyAccess.json",
        "job-function/ViewOnlyAccess.json",
    ]
    shape = json.loads((folder / "job-function" / "ViewOnlyAccess.json").read_text())
    version = shape["PolicyVersion"]
    assert (version["VersionId"], version["IsDefaultVersion"]) == ("v19", True)
    assert version["CreateDate"] == "2024-06-20T19:20:37Z"
    assert version["Document"]["Statement"][0]["Action"][0] == "ec2:DescribeInstances"


def test_aws_managed_policies_decide_with_the_documents_of_the_export(
    imported: tuple[Path, dict[str, Any]],
) -> None:
    store, _ = imported
    any_bucket = "arn:aws:s3:::any-bucket/a"
    cases = [
        # readers attaches AmazonS3ReadOnlyAccess
        ("bob", "s3:GetObject", any_bucket, "Allow"),
        ("bob", "s3:PutObject", any_bucket, "Deny"),
        # auditors attaches job-function/ViewOnlyAccess: the export's document (an excerpt in
        # the fixture) is the one in effect, not the built-in, which allows dynamodb:ListTables
        ("erin", "ec2:DescribeInstances", "*", "Allow"),
        ("erin", "dynamodb:ListTables", "*", "Deny"),
        ("erin", "s3:GetObject", any_bucket, "Deny"),
    ]
    with pdp.Authorizer.from_store(store, watch=False) as authz:
        got = [(p, a, r, authz.is_authorized(p, a, r).decision) for p, a, r, _ in cases]
        matched = authz.is_authorized("erin", "ec2:DescribeInstances", "*").matched
    assert got == cases
    assert matched[0].policy == "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"


def test_an_attached_aws_managed_policy_that_policies_lacks_decides_with_the_built_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An export made with --filter may leave AWS managed documents out: a built-in ARN then
    decides with pdp's copy of AWS's document (docs/import.md)."""
    export = fixture_export()
    export["Policies"].pop(5)  # job-function/ViewOnlyAccess, which auditors attaches
    store = tmp_path / "store"
    summary = import_json(capsys, store, write_json(tmp_path / "e.json", export))
    assert summary["counts"]["aws_managed"] == 2
    # the built-in (AWS's full document) allows what the fixture's excerpt did not
    d = decide(store, "erin", "dynamodb:ListTables", "*")
    assert (d.decision, d.matched[0].policy) == (
        "Allow",
        "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess",
    )
    assert decide(store, "erin", "s3:GetObject", "arn:aws:s3:::b/k").decision == "Deny"


# -- versions and current ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "following"),
    [
        ([], "0001"),
        (["0001", "0002"], "0003"),
        (["0098", "0099"], "0100"),
        (["8", "9"], "10"),
        (["9999"], "10000"),
        (["2026-05"], "2026-06"),
        (["release-7"], "release-8"),
    ],
)
def test_next_version_name(names: list[str], following: str) -> None:
    assert next_version_name(names) == following


def test_next_version_name_needs_a_number() -> None:
    with pytest.raises(ValueError, match="holds no number"):
        next_version_name(["stable"])


def test_a_store_with_current_keeps_serving_until_activate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "store"
    store = tmp_path / "store"
    shutil.copytree(example, store, symlinks=True)
    export = EXPORT
    summary = import_json(capsys, store, export)
    assert (summary["version"], summary["serving"]) == ("0003", False)
    assert summary["current"] == "versions/0002"
    assert os.readlink(store / "current") == "versions/0002"
    assert decide(store, "dave", "ec2:RunInstances", "*").policy_version == "0002"
    summary = import_json(capsys, store, export, "--activate")
    assert (summary["version"], summary["serving"], summary["activated"]) == ("0004", True, True)
    assert os.readlink(store / "current") == "versions/0004"
    decision = decide(store, "dave", "ec2:RunInstances", "*")
    assert (decision.decision, decision.policy_version) == ("Allow", "0004")
    assert sorted(os.listdir(store)) == ["current", "versions"]  # no temporary link left


def test_the_text_summary_says_current_did_not_move(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    export = EXPORT
    assert run_import(store, export, "--activate") == 0
    assert run_import(store, export) == 0
    out = capsys.readouterr().out
    assert "not serving: current -> versions/0001 is unchanged" in out
    assert sorted(os.listdir(store / "versions")) == ["0001", "0002"]


# -- refusals: named by element, store untouched -----------------------------------------------


def refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], export: Any, *extra: str
) -> list[str]:
    """Import `export` into a copy of a store holding one imported version; assert it is
    refused and the store unchanged; the problem lines (stderr, indented)."""
    store = tmp_path / "store"
    good = write_json(tmp_path / "good.json", fixture_export())
    if not store.exists():
        assert run_import(store, good) == 0
    before = tree(store)
    path = tmp_path / "bad.json"
    if isinstance(export, bytes):
        path.write_bytes(export)
    else:
        write_json(path, export)
    capsys.readouterr()
    assert run_import(store, path, *extra) == 1
    assert tree(store) == before
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("pdp import: ")
    return [line.strip() for line in lines[1:]]


def test_a_malformed_policy_document_is_named_by_its_element(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = fixture_export()
    export["UserDetailList"][1]["UserPolicyList"][0]["PolicyDocument"] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Permit", "Action": "s3:GetObject", "Resource": "*"}],
    }
    problems = refused(tmp_path, capsys, export)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"{tmp_path / 'bad.json'}: UserDetailList[1].UserPolicyList[0].PolicyDocument"
        ".Statement[0].Effect: "
    )


def test_a_url_encoded_document_that_is_not_json_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = fixture_export()
    versions = export["Policies"][0]["PolicyVersionList"]
    versions[1]["Document"] = urllib.parse.quote('{"Version": "2012-10-17", "Statement": [')
    problems = refused(tmp_path, capsys, export)
    assert problems[0].startswith(
        f"{tmp_path / 'bad.json'}: Policies[0].PolicyVersionList[1].Document: not a JSON policy"
    )


def test_a_truncated_export_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = fixture_export()
    export["IsTruncated"] = True
    export["Marker"] = "AAAAAQAAAAAAAAABEXAMPLE"
    (problem,) = refused(tmp_path, capsys, export)
    assert problem.startswith(f"{tmp_path / 'bad.json'}: IsTruncated: the export is one page")
    cli_page = fixture_export()
    cli_page["NextToken"] = "eyJNYXJrZXIiOiBudWxsfQ=="  # the CLI's --max-items output
    (problem,) = refused(tmp_path, capsys, cli_page)
    assert "incomplete" in problem


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda e: e["UserDetailList"][0]["GroupList"].append("operators"),
            'UserDetailList[0].GroupList[1]: group "operators" is not in GroupDetailList',
        ),
        (
            lambda e: e["Policies"].pop(1),  # DeveloperTools, which alice attaches
            "UserDetailList[0].AttachedManagedPolicies[0].PolicyArn:"
            ' "arn:aws:iam::123456789012:policy/teams/DeveloperTools" is not in Policies',
        ),
        (
            lambda e: e["Policies"][0]["PolicyVersionList"][0].update(IsDefaultVersion=True),
            "Policies[0].PolicyVersionList: 2 versions have IsDefaultVersion true",
        ),
        (
            lambda e: e["Policies"][0].update(DefaultVersionId="v3"),
            "Policies[0].PolicyVersionList[1].VersionId: the default version is 'v2',"
            " but DefaultVersionId is 'v3'",
        ),
        (
            lambda e: e["UserDetailList"][3].update(
                UserName="ALICE", Arn="arn:aws:iam::123456789012:user/ALICE"
            ),
            'UserDetailList[3].UserName: "ALICE" and UserDetailList[0] differ only in case',
        ),
        (
            lambda e: e["GroupDetailList"][1].update(Arn="arn:aws:iam::210987654321:group/readers"),
            "GroupDetailList[1].Arn: account 210987654321, but",
        ),
        (
            lambda e: e["UserDetailList"][1].update(Path="engineering"),
            'UserDetailList[1].Path: not an IAM path ("/" or "/.../", printable ASCII)',
        ),
        (
            lambda e: e["UserDetailList"][1].update(Arn="arn:aws:iam::123456789012:user/robert"),
            'UserDetailList[1].Arn: "arn:aws:iam::123456789012:user/robert" does not match',
        ),
        (
            lambda e: e["UserDetailList"][0]["Tags"].append({"Key": "Team", "Value": "x"}),
            'UserDetailList[0].Tags[2].Key: tag "Team" repeats',
        ),
        (
            lambda e: e["Policies"].append(
                {**e["Policies"][4], "PolicyName": "AmazonS3ReadOnlyACCESS"}
                | {"Arn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyACCESS"}
            ),
            'Policies[6].Arn: "arn:aws:iam::aws:policy/AmazonS3ReadOnlyACCESS" and Policies[4]'
            " differ only in case",
        ),
        (
            lambda e: e["Policies"].append(
                {
                    **e["Policies"][4],
                    "PolicyVersionList": [
                        {
                            "Document": {
                                "Version": "2012-10-17",
                                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                            },
                            "VersionId": "v9",
                            "IsDefaultVersion": True,
                        }
                    ],
                    "DefaultVersionId": "v9",
                }
            ),
            'Policies[6].Arn: "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess" repeats Policies[4]',
        ),
        (
            lambda e: e["UserDetailList"][0].update(
                Tags=[{"Key": f"k{i}", "Value": ""} for i in range(10_000)]
            ),
            "UserDetailList[0].Tags: 10000 tags, over IAM's 50 a user",
        ),
        (
            lambda e: e["GroupDetailList"][3]["AttachedManagedPolicies"][0].update(
                PolicyArn="arn:aws:iam::aws:policy/job-function/NetworkAdministrator"
            ),
            "GroupDetailList[3].AttachedManagedPolicies[0].PolicyArn:"
            ' "arn:aws:iam::aws:policy/job-function/NetworkAdministrator" is not in Policies,'
            " and pdp has no built-in of it",
        ),
        (
            lambda e: e["Policies"][4].update(Arn="arn:aws:iam::aws:policy/S3ReadOnly"),
            'Policies[4].Arn: "arn:aws:iam::aws:policy/S3ReadOnly" does not match',
        ),
        (
            lambda e: e.update(UserDetailList={"alice": {}}),
            "UserDetailList: must be a list",
        ),
    ],
)
def test_inconsistent_elements_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, expected: str
) -> None:
    export = fixture_export()
    change(export)
    problems = refused(tmp_path, capsys, export)
    prefix = f"{tmp_path / 'bad.json'}: "
    assert any(p.startswith(prefix + expected) for p in problems), problems


def test_malformed_json_and_oversized_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (problem,) = refused(tmp_path, capsys, b'{"UserDetailList": [')
    assert "malformed JSON" in problem
    monkeypatch.setattr("pdp.store.importer.MAX_EXPORT_BYTES", 1000)
    (problem,) = refused(tmp_path, capsys, fixture_export())
    assert problem.endswith("over the 1000 byte limit of an authorization details export")


def test_a_version_the_loader_refuses_leaves_nothing_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = fixture_export()
    big = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": f"s3:GetObject{'x' * 40}{i}", "Resource": "*"}
            for i in range(150)
        ],
    }  # over IAM's 6,144 characters for a customer-managed policy
    export["Policies"][0]["PolicyVersionList"][1]["Document"] = big
    problems = refused(tmp_path, capsys, export)
    assert problems[0].startswith("policies/S3AppAccess.json: ")
    assert "over IAM's 6144 for a managed policy" in problems[0]
    fresh = tmp_path / "fresh"
    bad = write_json(tmp_path / "big.json", export)
    assert run_import(fresh, bad) == 1
    assert not fresh.exists()  # the store it would have created is not left half-made


def test_extra_inputs_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = fixture_export()
    policy = write_json(tmp_path / "pp.json", {"PasswordPolicy": {"MaxPasswordAge": "90"}})
    problems = refused(tmp_path, capsys, good, "--password-policy", str(policy))
    assert problems == [
        f"{policy}: PasswordPolicy.MaxPasswordAge: MaxPasswordAge must be a whole number"
    ]
    policy = write_json(tmp_path / "pp2.json", {"PasswordPolicy": {"MinimumPasswordLength": 5}})
    problems = refused(tmp_path, capsys, good, "--password-policy", str(policy))
    assert problems == [
        f"{policy}: PasswordPolicy.MinimumPasswordLength: MinimumPasswordLength must be 6 to 128"
        " characters, as in AWS; got 5"
    ]
    inner = write_json(tmp_path / "inner.json", {"MinimumPasswordLength": 8})
    (problem,) = refused(tmp_path, capsys, good, "--password-policy", str(inner))
    assert problem.startswith(f'{inner}: PasswordPolicy: must be {{"PasswordPolicy": {{...}}}}')
    report = CREDENTIAL_REPORT.read_text().splitlines()
    other = tmp_path / "other.csv"
    other.write_text("\n".join([report[0], report[2].replace(ACCOUNT, "210987654321")]) + "\n")
    (problem,) = refused(tmp_path, capsys, good, "--credential-report", str(other))
    assert problem.startswith(f"{other}: line 2.arn: account 210987654321, but ")
    dated = tmp_path / "dated.csv"
    dated.write_text("\n".join([report[0], report[2].replace("2026-08-15T10", "15/08/2026")]))
    (problem,) = refused(tmp_path, capsys, good, "--credential-report", str(dated))
    assert problem.startswith(f"{dated}: line 2.access_key_1_last_rotated: ")
    assert "is not an ISO 8601 date" in problem
    columns = tmp_path / "columns.csv"
    columns.write_text("name,arn\nalice,x\n")
    (problem,) = refused(tmp_path, capsys, good, "--credential-report", str(columns))
    assert problem == (
        f"{columns}: line 1: not a credential report: no column user, password_enabled, mfa_active"
    )


def test_credential_report_rows_are_checked_against_who_they_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = fixture_export()
    report = CREDENTIAL_REPORT.read_text().splitlines()
    root_as_user = tmp_path / "root.csv"
    root_as_user.write_text(
        "\n".join([report[0], report[1].replace(f"{ACCOUNT}:root", f"{ACCOUNT}:user/bob")])
    )
    (problem,) = refused(tmp_path, capsys, good, "--credential-report", str(root_as_user))
    assert problem.startswith(
        f'{root_as_user}: line 2.arn: "arn:aws:iam::{ACCOUNT}:user/bob", but the root row'
    )
    twice = tmp_path / "twice.csv"  # the second row of a user silently replaced the first
    twice.write_text(
        "\n".join([report[0], report[2], report[2].replace(",true,true,", ",true,false,")])
    )
    (problem,) = refused(tmp_path, capsys, good, "--credential-report", str(twice))
    assert problem == f"{twice}: line 3.user: a second row for alice (line 2)"


def test_a_directory_that_is_not_a_store_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "notes"
    target.mkdir()
    (target / "todo.txt").write_text("keep me")
    export = EXPORT
    assert run_import(target, export) == 1
    assert "has files but no versions/: not a store" in capsys.readouterr().err
    assert os.listdir(target) == ["todo.txt"]


def test_a_store_that_cannot_be_written_is_an_import_failed_through_the_python_api(
    tmp_path: Path,
) -> None:
    """docs/import.md: the API returns an ImportResult or raises ImportFailed, whose
    diagnostics name the problem; an OSError of the file system is one of them."""
    (tmp_path / "file").write_text("not a directory")
    store = tmp_path / "file" / "store"
    with pytest.raises(ImportFailed) as caught:
        import_authorization_details(EXPORT, store)
    (problem,) = caught.value.diagnostics
    assert problem.code == "store_unusable"
    assert problem.source == str(store)
    assert "Not a directory" in problem.message or "File exists" in problem.message


def test_a_failure_to_activate_says_the_version_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pdp.store.importer.os.symlink", no_links)
    store = tmp_path / "store"
    with pytest.raises(ImportFailed) as caught:
        import_authorization_details(EXPORT, store, activate=True)
    assert caught.value.headline == f"{store}: versions/0001 written, not activated"
    assert "No space left on device" in caught.value.diagnostics[0].message
    assert sorted(os.listdir(store / "versions")) == ["0001"]
    assert not os.path.lexists(store / "current")


def test_the_json_summary_of_a_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = fixture_export()
    export["IsTruncated"] = True
    path = write_json(tmp_path / "export.json", export)
    assert run_import(tmp_path / "store", path, "--json") == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["problems"][0]["path"] == "IsTruncated"
    assert answer["problems"][0]["code"] == "truncated_export"
    assert not (tmp_path / "store").exists()


def test_repeated_keys_are_named_where_they_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """IAM refuses a document that repeats a key, and a last-wins parser would hide it: the
    raw API's URL-encoded documents are read strictly, and so is the export itself."""
    export = fixture_export()
    text = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Effect":"Deny","Action":"s3:*","Resource":"*"}]}'  # noqa: E501
    export["GroupDetailList"][0]["GroupPolicyList"][0]["PolicyDocument"] = urllib.parse.quote(text)
    raw = json.dumps(export).replace('"UserName": "dave"', '"UserName": "dave", "UserName": "dave"')
    problems = refused(tmp_path, capsys, raw.encode())
    source = tmp_path / "bad.json"
    assert problems == [
        f'{source}: GroupDetailList[0].GroupPolicyList[0].PolicyDocument.Statement[0]: duplicate key "Effect"',  # noqa: E501
        f'{source}: UserDetailList[3].UserName: duplicate key "UserName"',
    ]


def _move_aws_managed(export: dict[str, Any], path: str) -> None:
    """Give the export's AmazonS3ReadOnlyAccess (Policies[4]) another path, consistently."""
    policy = export["Policies"][4]
    policy["Path"] = path
    policy["Arn"] = f"arn:aws:iam::aws:policy{path}AmazonS3ReadOnlyAccess"


@pytest.mark.parametrize(
    "path",
    ["/../../../", "/../", "/./", "/a/../b/", "/a///b/", "///", "/.hidden/", "/" + "a" * 300 + "/"],
)
def test_an_aws_managed_path_the_store_cannot_hold_as_folders_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    """IAM's path pattern allows `..`, `.`, empty and dot-named segments; as folders below
    aws-managed/ they would write outside the version (`..`), land on another policy's file,
    or be skipped by the loader. Nothing is written, anywhere."""
    export = fixture_export()
    _move_aws_managed(export, path)
    work = tmp_path / "work"
    work.mkdir()
    outside = tree(tmp_path)
    problems = refused(work, capsys, export)
    assert any(
        p.startswith(f"{work / 'bad.json'}: Policies[4].Path: ") and "folder" in p for p in problems
    ), problems
    after = tree(tmp_path)
    new = {k for k in after if k not in outside and not k.startswith("work")}
    assert new == set(), new


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda e: e["UserDetailList"][1].update(
                UserName=".bob", Arn="arn:aws:iam::123456789012:user/.bob"
            ),
            "UserDetailList[1].UserName",
        ),
        (
            lambda e: e["Policies"][0].update(
                PolicyName=".S3AppAccess", Arn="arn:aws:iam::123456789012:policy/.S3AppAccess"
            ),
            "Policies[0].PolicyName",
        ),
        (
            lambda e: e["GroupDetailList"][3].update(
                GroupName=".auditors", Arn="arn:aws:iam::123456789012:group/.auditors"
            ),
            "GroupDetailList[3].GroupName",
        ),
    ],
)
def test_a_name_that_would_be_a_hidden_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, expected: str
) -> None:
    """IAM allows a name that starts with "."; the store's loader skips dot-files, so written
    as `users/.bob.json` the user would vanish from the version without a word."""
    export = fixture_export()
    change(export)
    problems = refused(tmp_path, capsys, export)
    prefix = f"{tmp_path / 'bad.json'}: {expected}: "
    assert any(p.startswith(prefix) and "hidden" in p for p in problems), problems


@pytest.mark.parametrize("entity", ["UserDetailList", "RoleDetailList"])
def test_a_boundary_not_in_the_export_refuses_the_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entity: str
) -> None:
    """An identity is never imported without its boundary: the import is refused, by path."""
    export = fixture_export()
    index = next(i for i, e in enumerate(export[entity]) if e.get("PermissionsBoundary"))
    missing = f"arn:aws:iam::{ACCOUNT}:policy/NoSuchBoundary"
    export[entity][index]["PermissionsBoundary"]["PermissionsBoundaryArn"] = missing
    store = tmp_path / "store"
    assert run_import(store, write_json(tmp_path / "export.json", export)) == 1
    err = capsys.readouterr().err
    assert f"{entity}[{index}].PermissionsBoundary.PermissionsBoundaryArn" in err
    assert "NoSuchBoundary" in err
    assert not (store / "versions").exists() or not os.listdir(store / "versions")


def test_a_trust_policy_with_a_resource_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = fixture_export()
    statement = export["RoleDetailList"][0]["AssumeRolePolicyDocument"]["Statement"][0]
    statement["Resource"] = "*"
    assert run_import(tmp_path / "store", write_json(tmp_path / "export.json", export)) == 1
    assert "RoleDetailList[0].AssumeRolePolicyDocument.Statement[0]" in capsys.readouterr().err
