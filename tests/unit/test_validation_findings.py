"""Validation findings through `pdp validate`: one case per issue code (docs/validation.md),
the formats (text, JSON, SARIF 2.1.0), and a store's opt-in refusal (store.json).

Each case is a statement that triggers exactly its code, and a near miss that must not; the
cases come from the IAM User Guide's "IAM policy validation check reference" where AWS has the
check (its examples: iam:PassRole on "*", `iam:Get*` beside `iam:GetCredentialReport`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main
from pdp.reference import CHECKS, FINDING_TYPES

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "store"
BUCKET = "arn:aws:s3:::example-bucket/*"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(action: Any, resource: Any = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


# code -> (document that triggers it, the JSON path of the finding, a near miss without it)
CASES: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {
    "INVALID_SERVICE_IN_ACTION": (
        _doc(_allow(["s3:GetObject", "s4:GetObject"], BUCKET)),
        "Statement[0].Action[1]",
        _doc(_allow(["s3:GetObject"], BUCKET)),
    ),
    "INVALID_ACTION": (
        _doc(_allow("s3:GetObjct", BUCKET)),
        "Statement[0].Action",
        _doc(_allow("S3:getobject", BUCKET)),  # names ignore case
    ),
    "ACTION_PATTERN_MATCHES_NOTHING": (
        _doc(_allow("s3:Gte*", BUCKET)),
        "Statement[0].Action",
        _doc(_allow("s3:Get*", BUCKET)),
    ),
    "INVALID_SERVICE": (
        _doc(_allow("s3:GetObject", BUCKET, Condition={"StringEquals": {"s33:prefix": "a"}})),
        "Statement[0].Condition.StringEquals.s33:prefix",
        _doc(_allow("s3:GetObject", BUCKET, Condition={"StringEquals": {"s3:prefix": "a"}})),
    ),
    "INVALID_GLOBAL_CONDITION_KEY": (
        _doc(_allow("s3:GetObject", BUCKET, Condition={"IpAddress": {"aws:SourceIpp": "1.2.3.4"}})),
        "Statement[0].Condition.IpAddress.aws:SourceIpp",
        _doc(_allow("s3:GetObject", BUCKET, Condition={"IpAddress": {"aws:sourceip": "1.2.3.4"}})),
    ),
    "INVALID_SERVICE_CONDITION_KEY": (
        _doc(_allow("s3:ListBucket", "*", Condition={"StringLike": {"s3:prefixes": "home/"}})),
        "Statement[0].Condition.StringLike.s3:prefixes",
        _doc(
            _allow(
                "s3:ListBucket",
                "*",
                Condition={"StringLike": {"s3:prefix": "home/", "s3:ExistingObjectTag/team": "a"}},
            )
        ),
    ),
    "TYPE_MISMATCH": (
        _doc(
            _allow(
                "s3:GetObject",
                BUCKET,
                Condition={
                    "NumericEquals": {"aws:username": "1"},
                    "Bool": {"aws:PrincipalArn": "true"},
                },
            )
        ),
        "Statement[0].Condition.NumericEquals.aws:username",
        _doc(
            _allow(
                "s3:GetObject",
                BUCKET,
                Condition={
                    "StringEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/a"},
                    "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"},
                    "DateGreaterThan": {"aws:EpochTime": "1700000000"},
                    "NumericGreaterThan": {"aws:EpochTime": "1700000000"},
                    "Null": {"aws:username": "false"},
                },
            )
        ),
    ),
    "RESOURCE_MATCHES_NO_RESOURCE_TYPE": (
        _doc(
            _allow("s3:GetObject", ["arn:aws:s3:::example-bucket/*", "arn:aws:s3:::example-bucket"])
        ),
        "Statement[0].Resource[1]",
        _doc(
            _allow(
                ["s3:GetObject", "s3:ListBucket"],
                ["arn:aws:s3:::b/${aws:username}/*", "arn:aws:s3:::b"],
            ),
            _allow("s3:ListAllMyBuckets", "*"),
        ),
    ),
    "PASS_ROLE_WITH_STAR_IN_RESOURCE": (
        _doc(_allow("iam:PassRole", "*")),
        "Statement[0].Resource",
        _doc(
            _allow("iam:PassRole", "arn:aws:iam::111122223333:role/app-*"),
            _allow(
                "iam:PassRole",
                "*",
                Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            ),
        ),
    ),
    "PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE": (
        _doc(_allow("iam:Pass*", "arn:aws:iam::*:role/*")),
        "Statement[0].Resource",
        _doc(_allow("iam:Get*", "*")),
    ),
    "PASS_ROLE_WITH_STAR_IN_RESOURCE_AND_NOT_ACTION": (
        _doc({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}),
        "Statement[0].Resource",
        _doc({"Effect": "Allow", "NotAction": ["s3:*", "iam:*"], "Resource": "*"}),
    ),
    "ALLOW_WITH_NOT_ACTION": (
        _doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
        "Statement[0].NotAction",
        _doc({"Effect": "Deny", "NotAction": "iam:*", "Resource": "*"}),
    ),
    "REDUNDANT_ACTION": (
        # the IAM User Guide's example
        _doc(_allow(["iam:Get*", "iam:List*", "iam:GetCredentialReport"], "*")),
        "Statement[0].Action[2]",
        _doc(_allow(["iam:Get*", "iam:List*", "iam:*CredentialReport"], "*")),
    ),
    "REDUNDANT_STATEMENT": (
        _doc(
            _allow("s3:GetObject", BUCKET),
            {**_allow(["s3:getobject"], [BUCKET]), "Sid": "Again"},
        ),
        "Statement[1]",
        _doc(_allow("s3:GetObject", BUCKET), _allow("s3:PutObject", BUCKET)),
    ),
}


def test_every_code_has_a_case() -> None:
    assert sorted(CASES) == sorted(CHECKS)
    assert all(kind in FINDING_TYPES for kind, _ in CHECKS.values())


def _validate_json(tmp_path: Path, doc: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> Any:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    assert main(["validate", "--format", "json", str(path)]) == 0  # findings refuse nothing
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_code_through_pdp_validate(
    code: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, path, near_miss = CASES[code]
    out = _validate_json(tmp_path, doc, capsys)
    assert out["problems"] == []
    hits = [f for f in out["findings"] if f["code"] == code]
    assert [f["path"] for f in hits][:1] == [path], out["findings"]
    assert hits[0]["finding_type"] == CHECKS[code][0]
    assert hits[0]["file"].endswith("policy.json") and hits[0]["message"]
    missed = _validate_json(tmp_path, near_miss, capsys)
    assert [f for f in missed["findings"] if f["code"] == code] == [], missed["findings"]


def test_a_clean_policy_has_no_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _doc(
        _allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::example-bucket/${aws:username}/*"),
        _allow("ec2:DescribeInstances", "*", Condition={"Bool": {"aws:SecureTransport": "true"}}),
    )
    assert _validate_json(tmp_path, doc, capsys)["findings"] == []


def test_text_output_names_file_path_type_and_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_doc(_allow("s3:GetObjct", BUCKET))))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}: ok (1 statements)"
    assert out[1].startswith(f"{path}: Statement[0].Action: ERROR INVALID_ACTION: ")
    assert 'Did you mean "s3:GetObject"?' in out[1]
    assert out[-1] == "1 finding"


def test_sarif_is_2_1_0_with_rules_levels_and_locations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(CASES["PASS_ROLE_WITH_STAR_IN_RESOURCE"][0]))
    bad = tmp_path / "bad.json"
    bad.write_text('{"Version": "2012-10-17", "Statement": []}')
    assert main(["validate", "--format", "sarif", str(good), str(bad)]) == 1  # bad is refused
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-2.1.0.json")
    (run,) = doc["runs"]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert "PASS_ROLE_WITH_STAR_IN_RESOURCE" in rules
    by_rule = {r["ruleId"]: r for r in run["results"]}
    finding = by_rule["PASS_ROLE_WITH_STAR_IN_RESOURCE"]
    assert finding["level"] == "warning"  # a SECURITY_WARNING
    assert rules[finding["ruleIndex"]] == finding["ruleId"]
    (location,) = finding["locations"]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == str(good)
    assert location["logicalLocations"] == [
        {"fullyQualifiedName": "Statement[0].Resource", "kind": "member"}
    ]
    refused = [r for r in run["results"] if r["level"] == "error"]
    assert refused and refused[0]["locations"][0]["physicalLocation"]["artifactLocation"][
        "uri"
    ] == str(bad)


def _store(tmp_path: Path, settings: dict[str, Any] | None) -> Path:
    store = tmp_path / "store"
    shutil.copytree(EXAMPLE, store, symlinks=True)
    version = store / "versions" / "0002"
    (version / "policies" / "Typo.json").write_text(json.dumps(CASES["INVALID_ACTION"][0]))
    (version / "policies" / "Suggest.json").write_text(json.dumps(CASES["REDUNDANT_ACTION"][0]))
    if settings is not None:
        (version / "store.json").write_text(json.dumps(settings))
    return store


def test_a_store_version_reports_findings_and_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(tmp_path, None)
    assert main(["validate", "--format", "json", str(store)]) == 0
    found = json.loads(capsys.readouterr().out)["findings"]
    codes = {(Path(f["file"]).name, f["code"]) for f in found}
    assert ("Typo.json", "INVALID_ACTION") in codes
    assert ("Suggest.json", "REDUNDANT_ACTION") in codes
    # the example's store.json declares its applications' own services (orders, app)
    assert not any(name == "OrdersApp.json" for name, _ in codes)


_APP = _doc(
    _allow(
        ["orders:Read", "s3:GetObjct"],
        "*",
        Condition={"StringEquals": {"app:OrderTeam": "blue", "s33:prefix": "x"}},
    )
)


@pytest.mark.parametrize(
    ("settings", "codes"),
    [
        (None, {"INVALID_SERVICE_IN_ACTION", "INVALID_ACTION", "INVALID_SERVICE"}),
        (
            {"application_services": []},
            {"INVALID_SERVICE_IN_ACTION", "INVALID_ACTION", "INVALID_SERVICE"},
        ),
        ({"application_services": ["orders", "app"]}, {"INVALID_ACTION", "INVALID_SERVICE"}),
    ],
)
def test_application_services_are_not_judged_against_aws(
    settings: dict[str, Any] | None,
    codes: set[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """orders:Read and app:OrderTeam are the store's own once store.json declares them; the s3
    typo and the s33 key are still found (INVALID_SERVICE stays for s33:prefix)."""
    store = _small_store(tmp_path, settings, _APP)
    assert main(["validate", "--format", "json", str(store)]) == 0
    found = json.loads(capsys.readouterr().out)["findings"]
    assert {f["code"] for f in found} == codes
    paths = {f["path"] for f in found}
    declared = settings is not None and "orders" in settings["application_services"]
    assert ("Statement[0].Action[0]" in paths) != declared
    assert ("Statement[0].Condition.StringEquals.app:OrderTeam" in paths) != declared


@pytest.mark.parametrize(
    ("services", "message"),
    [
        (["s3"], 'application_services[0]: "s3" is an AWS service prefix'),
        (["IAM"], "application_services[0]: must be a service prefix"),
        (["orders", 5], "application_services[1]: must be a service prefix"),
        (["orders", "orders"], 'application_services[1]: "orders" is listed twice'),
        (["ord*"], "application_services[0]: must be a service prefix"),
        ("orders", "application_services: must be a list of at most 256"),
        ([f"app{i}" for i in range(257)], "application_services: must be a list of at most 256"),
    ],
)
def test_application_services_are_checked(
    services: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _small_store(tmp_path, {"application_services": services}, _APP)
    assert main(["validate", str(store)]) == 1
    assert f"store.json: {message}" in capsys.readouterr().err


def _small_store(tmp_path: Path, settings: dict[str, Any] | None, *docs: dict[str, Any]) -> Path:
    """A store of one user holding one policy per document: only these findings exist."""
    version = tmp_path / "small" / "versions" / "1"
    (version / "policies").mkdir(parents=True)
    (version / "users").mkdir()
    for i, doc in enumerate(docs):
        (version / "policies" / f"P{i}.json").write_text(json.dumps(doc))
    user = {"policies": [f"P{i}" for i in range(len(docs))]}
    (version / "users" / "alice.json").write_text(json.dumps(user))
    if settings is not None:
        (version / "store.json").write_text(json.dumps(settings))
    return tmp_path / "small"


# a SUGGESTION (REDUNDANT_ACTION) and a SECURITY_WARNING (PASS_ROLE_WITH_STAR_IN_RESOURCE)
_MIXED = (CASES["REDUNDANT_ACTION"][0], CASES["PASS_ROLE_WITH_STAR_IN_RESOURCE"][0])


@pytest.mark.parametrize(
    ("level", "refused"),
    [
        (None, ()),
        ("ERROR", ()),
        ("SECURITY_WARNING", ("PASS_ROLE_WITH_STAR_IN_RESOURCE",)),
        ("WARNING", ("PASS_ROLE_WITH_STAR_IN_RESOURCE",)),
        ("SUGGESTION", ("PASS_ROLE_WITH_STAR_IN_RESOURCE", "REDUNDANT_ACTION")),
    ],
)
def test_store_json_refuses_findings_at_or_above_its_level(
    level: str | None,
    refused: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = None if level is None else {"refuse_findings": level}
    store = _small_store(tmp_path, settings, *_MIXED)
    assert main(["validate", str(store)]) == (1 if refused else 0)
    captured = capsys.readouterr()
    lines = {
        "PASS_ROLE_WITH_STAR_IN_RESOURCE": (
            "policies/P1.json: Statement[0].Resource: SECURITY_WARNING:"
        ),
        "REDUNDANT_ACTION": "policies/P0.json: Statement[0].Action[2]: SUGGESTION:",
    }
    for code, line in lines.items():
        assert (line in captured.err) == (code in refused), captured.err
    if refused:
        assert f"store.json refuses findings of type {level} and above" in captured.err
    else:
        assert "ok (version 1: 1 users" in captured.out


def test_store_json_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(tmp_path, {"refuse_findings": "LOUD", "other": 1})
    assert main(["validate", str(store)]) == 1
    err = capsys.readouterr().err
    assert "store.json: refuse_findings: must be one of SUGGESTION" in err
    assert 'store.json: other: unknown field "other"' in err


def test_findings_never_change_a_decision(tmp_path: Path) -> None:
    """A policy full of findings decides exactly as IAM would: its typo'd action is simply a
    name no request matches, its real action still allowed."""
    from pdp import Authorizer

    store = _store(tmp_path, None)
    policy = _doc(_allow(["s3:GetObjct", "s3:PutObject", "s3:PutObject"], BUCKET))
    version = store / "versions" / "0002"
    (version / "policies" / "Typo.json").write_text(json.dumps(policy))
    user = json.loads((version / "users" / "bob.json").read_text())
    user["policies"] = [*user.get("policies", []), "Typo"]
    (version / "users" / "bob.json").write_text(json.dumps(user))
    authz = Authorizer.from_store(store, cache_size=0)
    object_arn = "arn:aws:s3:::example-bucket/x"
    assert authz.is_authorized("bob", "s3:PutObject", object_arn).decision == "Allow"
    assert authz.is_authorized("bob", "s3:GetObjct", object_arn).decision == "Allow"
    assert authz.is_authorized("bob", "s3:DeleteObject", object_arn).decision == "Deny"


def test_pdp_audit_includes_the_validation_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _small_store(tmp_path, None, *_MIXED, CASES["INVALID_ACTION"][0])
    assert main(["audit", "--format", "json", str(store)]) == 0
    found = {
        (f["file"], f["path"], f["code"], f["severity"])
        for f in json.loads(capsys.readouterr().out)
    }
    assert ("policies/P0.json", "Statement[0].Action[2]", "REDUNDANT_ACTION", "low") in found
    assert (
        "policies/P1.json",
        "Statement[0].Resource",
        "PASS_ROLE_WITH_STAR_IN_RESOURCE",
        "high",
    ) in found
    assert ("policies/P2.json", "Statement[0].Action", "INVALID_ACTION", "medium") in found
    assert main(["audit", "--fail-on", "high", str(store)]) == 3  # the security warning


def test_arn_operators_fit_string_keys_as_aws_documents_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CloudWatch Logs' KMS key policy ("Encrypt log data in CloudWatch Logs using AWS KMS")
    compares the String key kms:EncryptionContext:aws:logs:arn with ArnEquals/ArnLike."""
    arn = "arn:aws:logs:us-east-1:111122223333:log-group:/app/*"
    for operator in ("ArnEquals", "ArnLike", "ArnNotLikeIfExists"):
        key = "kms:EncryptionContext:aws:logs:arn"
        doc = _doc(_allow("kms:Decrypt", "*", Condition={operator: {key: arn}}))
        assert _validate_json(tmp_path, doc, capsys)["findings"] == []
    doc = _doc(_allow("s3:GetObject", BUCKET, Condition={"NumericEquals": {"aws:username": "1"}}))
    (finding,) = _validate_json(tmp_path, doc, capsys)["findings"]
    assert finding["code"] == "TYPE_MISMATCH"
    assert finding["message"].startswith('use String operators, not "NumericEquals"')


def test_resources_are_not_judged_beside_an_action_of_no_known_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An application's own action (the example store's orders:Read) may act on any resource:
    a statement that holds one cannot be said to name a resource that fits none of its actions."""
    doc = _doc(_allow(["s3:GetObject", "orders:Read"], ["arn:app:orders:::order/*", BUCKET]))
    codes = [f["code"] for f in _validate_json(tmp_path, doc, capsys)["findings"]]
    assert codes == ["INVALID_SERVICE_IN_ACTION"]


MANAGEMENT, MEMBER = "111111111111", "222222222222"
_TRUST = _doc(
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"},
        "Action": "sts:AssumeRole",
    }
)
# An SCP with a typo in a Deny (INVALID_ACTION) and an Allow of iam:PassRole on "*": a grant
# in an identity policy (PASS_ROLE_WITH_STAR_IN_RESOURCE), nothing granted in an SCP.
_SCP = _doc(
    {"Effect": "Deny", "Action": "s3:DeleteBuckt", "Resource": "*"},
    _allow(["iam:PassRole", "s3:*"], "*"),
)
_RCP = _doc({"Effect": "Deny", "Principal": "*", "Action": "sqs:SendMesage", "Resource": "*"})


def _write(root: Path, files: dict[str, Any]) -> None:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(content))


def _organization(accounts: list[str]) -> dict[str, Any]:
    return {
        "id": "o-a1b2c3d4e5",
        "management_account": MANAGEMENT,
        "root": {"id": "r-a1b2", "scps": ["FullAWSAccess", "Guard"], "accounts": accounts},
        "accounts": {MANAGEMENT: {"rcps": ["Perimeter"]}},
    }


def _findings(store: Path, capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str, str]]:
    assert main(["validate", "--format", "json", str(store)]) == 0  # findings refuse nothing
    found = json.loads(capsys.readouterr().out)["findings"]
    base = str(store / "versions" / "1")
    return [(os.path.relpath(f["file"], base), f["path"], f["code"]) for f in found]


def test_pdp_validate_judges_role_inline_policies_and_organization_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = tmp_path / "store" / "versions" / "1"
    _write(
        version,
        {
            "account.json": {"account_id": MANAGEMENT},
            "roles/Deploy.json": {
                "trust_policy": _TRUST,
                "inline_policies": {"Write": CASES["INVALID_ACTION"][0]},
            },
            "organization/organization.json": _organization([MANAGEMENT]),
            "organization/scps/Guard.json": _SCP,
            "organization/rcps/Perimeter.json": _RCP,
        },
    )
    assert _findings(tmp_path / "store", capsys) == [
        ("roles/Deploy.json", "inline_policies.Write.Statement[0].Action", "INVALID_ACTION"),
        ("organization/scps/Guard.json", "Statement[0].Action", "INVALID_ACTION"),
        ("organization/rcps/Perimeter.json", "Statement[0].Action", "INVALID_ACTION"),
    ]  # no PASS_ROLE_WITH_STAR_IN_RESOURCE for the SCP: it grants nothing
    assert main(["validate", str(tmp_path / "store")]) == 0
    text = capsys.readouterr().out
    assert "roles/Deploy.json: inline_policies.Write.Statement[0].Action: ERROR INVALID_ACTION" in (
        text
    )
    assert "organization/scps/Guard.json: Statement[0].Action: ERROR INVALID_ACTION" in text


def test_pdp_validate_judges_every_account_of_a_multi_account_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = tmp_path / "store" / "versions" / "1"
    member = f"accounts/{MEMBER}"
    _write(
        version,
        {
            f"accounts/{MANAGEMENT}/account.json": {"account_id": MANAGEMENT},
            f"{member}/account.json": {"account_id": MEMBER},
            f"{member}/policies/Typo.json": CASES["INVALID_ACTION"][0],
            f"{member}/users/bob.json": {"policies": ["Typo"]},
            f"{member}/roles/Deploy.json": {
                "trust_policy": _TRUST,
                "inline_policies": {"Write": CASES["REDUNDANT_ACTION"][0]},
            },
            "organization/organization.json": _organization([MANAGEMENT, MEMBER]),
            "organization/scps/Guard.json": _SCP,
            "organization/rcps/Perimeter.json": _RCP,
        },
    )
    found = _findings(tmp_path / "store", capsys)
    assert (f"{member}/policies/Typo.json", "Statement[0].Action", "INVALID_ACTION") in found
    assert (f"{member}/roles/Deploy.json", "REDUNDANT_ACTION") in {(f, c) for f, _, c in found}
    assert ("organization/scps/Guard.json", "Statement[0].Action", "INVALID_ACTION") in found
    assert len(found) == 4, found  # the SCP's and the RCP's once, not once per account
