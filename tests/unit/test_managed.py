"""AWS managed policies: the built-ins pinned to AWS's published versions, a store's
aws-managed/ folder (its three shapes, overriding, paths, limits, errors, reloads), and
`pdp managed list|show`, each through the door a user uses."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import pdp
from pdp.cli import main
from pdp.store import AWS_MANAGED_PREFIX, builtin_managed

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "store"
ACCOUNT = "123456789012"
CAROL = pdp.Principal.user("carol", account=ACCOUNT)
# What AWS publishes for each (the AWS Managed Policy Reference pages give the version and its
# "Edited time"), and the sha256 of the Document as compact JSON with sorted keys
# (scripts/managed_builtins.py prints it). A new copy of a document must change this table.
PINNED = {
    "AdministratorAccess": (
        "v1",
        "2015-02-06T18:39:46+00:00",
        "113496d8f8dd96a266c613bbe29e56385781f6c9323dab4dc33b9b64e27750e8",
    ),
    "PowerUserAccess": (
        "v12",
        "2026-02-12T17:59:14+00:00",
        "7d7c0418e91ec1f2640b715c0875135c7067bc9e4ead04064398e51160c03a0b",
    ),
    "ReadOnlyAccess": (
        "v188",
        "2026-07-21T18:42:30+00:00",
        "7fce8d6f17ea3b40c8f4585ebccf7778f7033cbcdca9d482640408edbdb7d087",
    ),
    "job-function/ViewOnlyAccess": (
        "v45",
        "2026-04-22T18:12:21+00:00",
        "d471be3345454ada75e9c488a48ddecf9307d02038f20243253b40b265ec88ab",
    ),
    "job-function/Billing": (
        "v30",
        "2026-07-30T22:12:16+00:00",
        "c70fb1c840d83b1ec47c0ecb6e1b98c7cfce3ff061a6189825069524e7cfeab6",
    ),
    "SecurityAudit": (
        "v92",
        "2026-08-17T15:27:26+00:00",
        "321cfea831dd39a934ae653c4b4a7d27bc798bf42fb2c98d06295b294a3341a1",
    ),
    "IAMUserChangePassword": (
        "v5",
        "2026-02-12T17:58:57+00:00",
        "df1c7786da13f5d093342738648a6fedb7dc695030dab0345f96f27fe2fa9c30",
    ),
    "AmazonS3FullAccess": (
        "v2",
        "2021-09-27T20:16:37+00:00",
        "d3e0536b1591080d249d770577746fe5744d0bcb0771c1b8d70decaea06bcc77",
    ),
    "AmazonS3ReadOnlyAccess": (
        "v3",
        "2023-08-10T21:31:39+00:00",
        "c3684f94afbc829fdd4ef2aaa1bba4feadff929a98158170806a0dd4e6f91f64",
    ),
    "AmazonEC2FullAccess": (
        "v5",
        "2018-11-27T02:16:56+00:00",
        "e832c7fed7423f2f25777235cb509ecf5aec585d5cb4689f276d6f25f30ea4eb",
    ),
    "AmazonEC2ReadOnlyAccess": (
        "v5",
        "2026-02-12T18:03:17+00:00",
        "2ab433405214bc2c92e99aef465dca3d4449317a4761b110d83d31892f749031",
    ),
}
# Reading secrets and minting credentials: none of AWS's read-only documents grants these.
SECRETS_AND_CREDENTIALS = (
    "secretsmanager:GetSecretValue",
    "sts:GetFederationToken",
    "redshift:GetClusterCredentials",
    "glue:GetConnection",
)


def reason(name: str, action: str, resource: str = "*", **context: Any) -> str:
    policy = builtin_managed()[AWS_MANAGED_PREFIX + name].policy
    return pdp.evaluate([policy], CAROL, action=action, resource=resource, context=context).reason


def test_each_built_in_is_the_published_version_it_says() -> None:
    found = builtin_managed()
    assert sorted(found) == sorted(AWS_MANAGED_PREFIX + name for name in PINNED)
    for name, (version_id, date, digest) in PINNED.items():
        managed = found[AWS_MANAGED_PREFIX + name]
        text = json.dumps(dict(managed.policy.document), sort_keys=True, separators=(",", ":"))
        assert hashlib.sha256(text.encode()).hexdigest() == digest, name
        assert (managed.version_id, managed.create_date) == (version_id, date), name
        assert managed.path == ("/job-function/" if "/" in name else "/"), name
        assert managed.policy.name == managed.arn
        assert managed.source == "built-in" and managed.stand_in is False
        assert managed.origin == (
            "https://docs.aws.amazon.com/aws-managed-policy/latest/reference/"
            f"{name.rpartition('/')[2]}.html"
        )


@pytest.mark.parametrize("name", ["ReadOnlyAccess", "job-function/ViewOnlyAccess", "SecurityAudit"])
@pytest.mark.parametrize("action", SECRETS_AND_CREDENTIALS)
def test_read_only_documents_read_no_secret_and_mint_no_credential(name: str, action: str) -> None:
    assert reason(name, action) == "implicitDeny"


@pytest.mark.parametrize(
    ("name", "action", "resource", "expected"),
    [
        ("AdministratorAccess", "iam:CreateUser", "*", "allowed"),
        ("PowerUserAccess", "ec2:RunInstances", "*", "allowed"),
        ("PowerUserAccess", "iam:CreateUser", "*", "implicitDeny"),
        ("PowerUserAccess", "account:GetGovCloudAccountInformation", "*", "allowed"),  # v12
        ("PowerUserAccess", "organizations:DescribeEffectivePolicy", "*", "allowed"),  # v7+
        ("PowerUserAccess", "organizations:CreateAccount", "*", "implicitDeny"),
        ("ReadOnlyAccess", "ec2:DescribeInstances", "*", "allowed"),
        ("ReadOnlyAccess", "s3:GetObject", "arn:aws:s3:::b/k", "allowed"),
        ("ReadOnlyAccess", "sqs:ReceiveMessage", "*", "allowed"),
        ("ReadOnlyAccess", "logs:FilterLogEvents", "*", "allowed"),
        ("ReadOnlyAccess", "dynamodb:PartiQLSelect", "*", "allowed"),
        ("ReadOnlyAccess", "s3:PutObject", "arn:aws:s3:::b/k", "implicitDeny"),
        ("ReadOnlyAccess", "iam:CreateUser", "*", "implicitDeny"),
        ("job-function/ViewOnlyAccess", "ec2:DescribeInstances", "*", "allowed"),
        ("job-function/ViewOnlyAccess", "s3:GetObject", "arn:aws:s3:::b/k", "implicitDeny"),
        ("job-function/Billing", "aws-portal:ViewBilling", "*", "allowed"),
        ("job-function/Billing", "aws-portal:ModifyPaymentMethods", "*", "allowed"),
        ("job-function/Billing", "ec2:RunInstances", "*", "implicitDeny"),
        ("SecurityAudit", "iam:GetAccountAuthorizationDetails", "*", "allowed"),
        ("SecurityAudit", "s3:GetObject", "arn:aws:s3:::b/k", "implicitDeny"),
        ("AmazonS3FullAccess", "s3:PutObject", "arn:aws:s3:::b/k", "allowed"),
        ("AmazonS3FullAccess", "ec2:RunInstances", "*", "implicitDeny"),
        ("AmazonS3ReadOnlyAccess", "s3:GetObject", "arn:aws:s3:::b/k", "allowed"),
        ("AmazonS3ReadOnlyAccess", "s3:PutObject", "arn:aws:s3:::b/k", "implicitDeny"),
        ("AmazonEC2FullAccess", "ec2:RunInstances", "*", "allowed"),
        ("AmazonEC2FullAccess", "s3:GetObject", "arn:aws:s3:::b/k", "implicitDeny"),
        ("AmazonEC2ReadOnlyAccess", "ec2:DescribeInstances", "*", "allowed"),
        ("AmazonEC2ReadOnlyAccess", "ec2:RunInstances", "*", "implicitDeny"),
    ],
)
def test_built_in_documents_decide_as_aws_writes_them(
    name: str, action: str, resource: str, expected: str
) -> None:
    assert reason(name, action, resource) == expected


def test_iam_user_change_password_is_for_the_callers_own_user_only() -> None:
    """`${aws:username}` is the caller's own name (from the principal, never the request)."""
    change = "iam:ChangePassword"
    assert reason("IAMUserChangePassword", change, f"arn:aws:iam::{ACCOUNT}:user/carol") == (
        "allowed"
    )
    pathed = f"arn:aws:iam::{ACCOUNT}:user/staff/carol"
    assert reason("IAMUserChangePassword", change, pathed) == "allowed"
    other = f"arn:aws:iam::{ACCOUNT}:user/bob"
    assert reason("IAMUserChangePassword", change, other) == "implicitDeny"
    assert reason("IAMUserChangePassword", "iam:GetAccountPasswordPolicy") == "allowed"
    assert reason("IAMUserChangePassword", "iam:CreateLoginProfile", pathed) == "implicitDeny"


# --- a store's aws-managed/ folder -------------------------------------------------------------


@pytest.fixture
def version(tmp_path: Path) -> Path:
    """A private copy of the example store's version 0002, served by a store of its own."""
    store = tmp_path / "store"
    shutil.copytree(EXAMPLE, store, symlinks=True)
    return store / "versions" / "0002"


def write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document if isinstance(document, str) else json.dumps(document))


def statement(action: str, effect: str = "Allow") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": action, "Resource": "*"}],
    }


def attach(version: Path, user: str, *arns: str) -> None:
    write(version / "users" / f"{user}.json", {"policies": list(arns)})


def problems_of(version: Path) -> list[str]:
    with pytest.raises(pdp.PolicyLoadError) as caught:
        pdp.Authorizer.from_directory(version)
    return [str(d) for d in caught.value.diagnostics]


def test_the_seed_arns_attach_and_decide_as_awss_documents(version: Path) -> None:
    attach(
        version,
        "erin",
        "arn:aws:iam::aws:policy/AmazonS3FullAccess",
        "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess",
        "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess",
    )
    authz = pdp.Authorizer.from_directory(version)
    d = authz.is_authorized("erin", "s3:PutObject", "arn:aws:s3:::b/k")
    assert d.reason == "allowed"
    assert d.matched[0].policy == "arn:aws:iam::aws:policy/AmazonS3FullAccess"
    assert authz.is_authorized("erin", "ec2:DescribeInstances", "*").reason == "allowed"
    assert authz.is_authorized("erin", "ec2:RunInstances", "*").reason == "implicitDeny"
    d = authz.is_authorized("erin", "backup:DescribeBackupJob", "*")
    assert d.matched[0].policy == "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"


@pytest.mark.parametrize("shape", ["get-policy-version", "PolicyVersion", "document", "encoded"])
def test_each_shape_of_a_store_file_makes_its_arn_attachable(version: Path, shape: str) -> None:
    document = statement("sqs:SendMessage")
    body: dict[str, Any] = {
        "Document": quote(json.dumps(document)) if shape == "encoded" else document,
        "VersionId": "v3",
        "IsDefaultVersion": True,
        "CreateDate": "2024-05-01T10:00:00Z",
    }
    content: Any = {
        "get-policy-version": {"PolicyVersion": body},
        "encoded": {"PolicyVersion": body},
        "PolicyVersion": body,
        "document": document,
    }[shape]
    write(version / "aws-managed" / "service-role" / "AWSQueueThing.json", content)
    arn = "arn:aws:iam::aws:policy/service-role/AWSQueueThing"
    attach(version, "erin", arn)
    authz = pdp.Authorizer.from_directory(version)
    d = authz.is_authorized("erin", "sqs:SendMessage", "*")
    assert (d.reason, d.matched[0].policy) == ("allowed", arn)
    assert authz.is_authorized("erin", "sqs:DeleteQueue", "*").reason == "implicitDeny"


def test_a_version_id_with_a_suffix_is_one_iam_allows(version: Path) -> None:
    """IAM's VersionId pattern is v[1-9][0-9]*(\\.[A-Za-z0-9-]*)? (API_PolicyVersion)."""
    write(
        version / "aws-managed" / "AWSThing.json",
        {"Document": statement("sqs:SendMessage"), "VersionId": "v12.beta-1"},
    )
    attach(version, "erin", "arn:aws:iam::aws:policy/AWSThing")
    authz = pdp.Authorizer.from_directory(version)
    assert authz.is_authorized("erin", "sqs:SendMessage", "*").reason == "allowed"


def test_a_store_file_overrides_the_built_in_of_its_arn(version: Path) -> None:
    write(version / "aws-managed" / "SecurityAudit.json", statement("s3:ListBucket"))
    attach(version, "erin", "arn:aws:iam::aws:policy/SecurityAudit")
    authz = pdp.Authorizer.from_directory(version)
    assert authz.is_authorized("erin", "s3:ListBucket", "*").reason == "allowed"
    assert authz.is_authorized("erin", "ec2:DescribeInstances", "*").reason == "implicitDeny"


def test_aws_managed_documents_are_not_held_to_the_customer_managed_size_limit(
    version: Path,
) -> None:
    actions = [f"ec2:Describe{'X' * 40}{i}" for i in range(400)]  # ~20,000 characters
    big = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions}]}
    big["Statement"][0]["Resource"] = "*"
    write(version / "aws-managed" / "AWSBig.json", big)
    attach(version, "erin", "arn:aws:iam::aws:policy/AWSBig")
    authz = pdp.Authorizer.from_directory(version)
    assert authz.is_authorized("erin", actions[-1], "*").reason == "allowed"
    write(version / "policies" / "Big.json", big)  # customer-managed: still 6,144
    assert any("over IAM's 6144" in p for p in problems_of(version))


@pytest.mark.parametrize(
    ("rel", "content", "expected"),
    [
        (
            "job-function/Bad.json",
            {
                "PolicyVersion": {
                    "Document": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}],
                    }
                }
            },
            "aws-managed/job-function/Bad.json: PolicyVersion.Document.Statement[0].Effect:",
        ),
        (
            "Old.json",
            {"PolicyVersion": {"Document": statement("s3:*"), "IsDefaultVersion": False}},
            "aws-managed/Old.json: PolicyVersion.IsDefaultVersion: IAM decides with a policy's"
            " default version only",
        ),
        (
            "Encoded.json",
            {"Document": "%7B%22Version%22", "VersionId": "v1"},
            "aws-managed/Encoded.json: Document: the Document string is not JSON",
        ),
        (
            "Extra.json",
            {"PolicyVersion": {"Document": statement("s3:*"), "Color": "red"}},
            'aws-managed/Extra.json: PolicyVersion.Color: unknown field "Color"',
        ),
        (
            "Null.json",  # was dropped without a word: the built-in or nothing decided
            {"PolicyVersion": {"Document": None, "VersionId": "v1"}},
            "aws-managed/Null.json: PolicyVersion.Document: ",
        ),
        (
            "Latin1.json",  # was "cannot load: UnicodeDecodeError", with no file or path
            {"Document": "%FF%FE", "VersionId": "v1"},
            "aws-managed/Latin1.json: Document: the URL-encoded Document is not UTF-8",
        ),
        (
            "Dated.json",
            {"Document": statement("s3:*"), "CreateDate": "yesterday"},
            "aws-managed/Dated.json: CreateDate: CreateDate must be an ISO 8601 date",
        ),
        (
            "Digits.json",  # IAM's pattern is ASCII: v[1-9][0-9]*(\.[A-Za-z0-9-]*)?
            {"Document": statement("s3:*"), "VersionId": "v\u0663"},
            "aws-managed/Digits.json: VersionId: ",
        ),
        ("Bad Name.json", statement("s3:*"), "aws-managed/Bad Name.json: invalid AWS managed"),
        # meant to override a built-in, but it would sit beside it (ARNs compare exactly)
        (
            "administratoraccess.json",
            statement("s3:GetObject"),
            'aws-managed/administratoraccess.json: "arn:aws:iam::aws:policy/administratoraccess"'
            ' and the built-in "arn:aws:iam::aws:policy/AdministratorAccess" differ only in case',
        ),
        (
            "Job-Function/Billing.json",
            statement("s3:GetObject"),
            'aws-managed/Job-Function/Billing.json: "arn:aws:iam::aws:policy/Job-Function/Billing"'
            " and the built-in",
        ),
        ("notes.txt", "hello", "aws-managed/notes.txt: only .json files belong here"),
    ],
)
def test_a_bad_store_file_is_refused_naming_the_file_and_json_path(
    version: Path, rel: str, content: Any, expected: str
) -> None:
    write(version / "aws-managed" / rel, content)
    found = problems_of(version)
    assert any(p.startswith(expected) for p in found), found


def test_an_unknown_aws_managed_arn_is_refused_and_says_where_to_put_it(version: Path) -> None:
    attach(version, "erin", "arn:aws:iam::aws:policy/job-function/NetworkAdministrator")
    (problem,) = problems_of(version)
    assert 'unknown AWS managed policy "arn:aws:iam::aws:policy/job-function/NetworkAdm' in problem
    assert "aws-managed/<path>/<Name>.json" in problem


def test_a_reload_picks_up_an_added_changed_and_deleted_aws_managed_file(version: Path) -> None:
    store = version.parents[1]
    arn = "arn:aws:iam::aws:policy/job-function/AWSThing"
    attach(version, "erin", arn, "arn:aws:iam::aws:policy/SecurityAudit")
    file = version / "aws-managed" / "job-function" / "AWSThing.json"
    write(file, statement("sqs:SendMessage"))
    with pdp.Authorizer.from_store(store, watch=False) as authz:
        assert authz.is_authorized("erin", "sqs:SendMessage", "*").reason == "allowed"
        write(file, statement("sqs:SendMessage", "Deny"))
        authz.reload()
        assert authz.is_authorized("erin", "sqs:SendMessage", "*").reason == "explicitDeny"
        override = version / "aws-managed" / "SecurityAudit.json"
        write(override, statement("s3:ListBucket"))
        authz.reload()
        assert authz.is_authorized("erin", "ec2:DescribeInstances", "*").reason == "implicitDeny"
        override.unlink()
        authz.reload()
        assert authz.is_authorized("erin", "ec2:DescribeInstances", "*").reason == "allowed"
        source = authz.snapshot.source
        assert source is not None and "aws-managed/SecurityAudit.json" not in source.parsed
        file.unlink()
        with pytest.raises(pdp.PolicyLoadError, match="unknown AWS managed policy"):
            authz.reload()
        assert authz.is_authorized("erin", "sqs:SendMessage", "*").reason == "explicitDeny"
    with pytest.raises(pdp.PolicyLoadError, match="unknown AWS managed policy"):
        pdp.Authorizer.from_directory(version)  # a cold load agrees: the ARN is gone


def test_the_version_stamp_sees_a_file_added_below_an_aws_path(version: Path) -> None:
    from pdp.store import version_stamp

    (version / "aws-managed" / "job-function").mkdir(parents=True)
    before = version_stamp(version)
    write(version / "aws-managed" / "job-function" / "New.json", statement("s3:*"))
    assert version_stamp(version) != before


# --- pdp managed list / show -------------------------------------------------------------------


def test_managed_list_shows_built_ins_and_a_stores_own(
    version: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["managed", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(PINNED)
    assert any(line.split() == ["ReadOnlyAccess", "built-in", "v188", "2026-07-21", "full"]
               for line in lines)  # fmt: skip
    write(
        version / "aws-managed" / "job-function" / "Billing.json",
        {"PolicyVersion": {"Document": statement("aws-portal:ViewBilling"), "VersionId": "v31",
                           "CreateDate": "2026-11-01T00:00:00Z"}},
    )  # fmt: skip
    assert main(["managed", "list", "--store", str(version.parents[1]), "--json"]) == 0
    rows = {row["arn"]: row for row in json.loads(capsys.readouterr().out)}
    billing = rows["arn:aws:iam::aws:policy/job-function/Billing"]
    assert (billing["source"], billing["version_id"], billing["overrides_builtin"]) == (
        "store",
        "v31",
        True,
    )
    assert billing["file"] == "aws-managed/job-function/Billing.json"
    assert rows["arn:aws:iam::aws:policy/SecurityAudit"]["source"] == "built-in"


def test_managed_show_prints_the_document(
    version: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["managed", "show", "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]) == 0
    out = capsys.readouterr().out
    assert "# version_id: v3" in out
    document = json.loads(out[out.index("{") :])
    assert document["Statement"][0]["Action"][0] == "s3:Get*"
    assert main(["managed", "show", "job-function/ViewOnlyAccess", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["version_id"], shown["path"]) == ("v45", "/job-function/")
    assert shown["document"]["Statement"][0]["Sid"] == "GeneralViewOnlyAccessStatement"
    assert main(["managed", "show", "AWSNope"]) == 1
    assert "no AWS managed policy arn:aws:iam::aws:policy/AWSNope" in capsys.readouterr().err
    write(version / "aws-managed" / "AWSMine.json", statement("sqs:*"))
    assert main(["managed", "show", "AWSMine", "--store", str(version), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "store"
