"""pdp audit: each finding with a store that triggers it and one that does not; formats; CSV."""

from __future__ import annotations

import copy
import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pdp.audit import credential_report
from pdp.audit.findings import Finding, audit, render
from pdp.store.version import read_version

NOW = time.time()


def iso(days_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - days_ago * 86400))


CLEAN: dict[str, Any] = {
    "account.json": {
        "account_id": "123456789012",
        "root": {"enabled": False},
        "password_policy": {
            "MinimumPasswordLength": 14,
            "RequireUppercaseCharacters": True,
            "RequireLowercaseCharacters": True,
            "RequireNumbers": True,
            "RequireSymbols": True,
            "MaxPasswordAge": 90,
            "PasswordReusePrevention": 5,
        },
    },
    "policies/ReadReports.json": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Read",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"],
            },
            {
                "Sid": "Tag",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": "arn:aws:ec2:*:*:instance/*",
                "Condition": {
                    "StringEquals": {"aws:RequestTag/env": "dev"},
                    "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"},
                },
            },
        ],
    },
    "groups/analysts.json": {"policies": ["ReadReports"]},
    "users/ann.json": {
        "groups": ["analysts"],
        "console_access": True,
        "mfa_enabled": True,
        "password_last_changed": iso(10),
        "access_keys": [
            {
                "id": "AKIAANN0000000000001",
                "status": "Active",
                "created": iso(30),
                "last_used": iso(1),
            }
        ],
    },
}


def with_(path: str, change: Callable[[Any], Any]) -> dict[str, Any]:
    store = copy.deepcopy(CLEAN)
    store[path] = change(store.get(path))
    return store


def set_keys(**values: Any) -> Callable[[Any], Any]:
    def change(doc: Any) -> Any:
        doc.update(values)
        return doc

    return change


def statement(**elements: Any) -> Callable[[Any], Any]:
    def change(doc: Any) -> Any:
        doc["Statement"].append({"Effect": "Allow", **elements})
        return doc

    return change


TRIGGERS: list[tuple[str, dict[str, Any]]] = [
    (
        "root_access_keys",
        with_(
            "account.json",
            set_keys(
                root={
                    "enabled": False,
                    "access_keys": [
                        {"id": "AKIAROOT000000000001", "status": "Active", "created": iso(1)}
                    ],
                }
            ),
        ),
    ),
    ("root_enabled", with_("account.json", set_keys(root={"enabled": True, "mfa_enabled": True}))),
    ("console_without_mfa", with_("users/ann.json", set_keys(mfa_enabled=False))),
    (
        "access_key_old",
        with_(
            "users/ann.json",
            set_keys(
                access_keys=[
                    {
                        "id": "AKIAANN0000000000001",
                        "status": "Active",
                        "created": iso(200),
                        "last_used": iso(1),
                    }
                ]
            ),
        ),
    ),
    (
        "access_key_unused",
        with_(
            "users/ann.json",
            set_keys(
                access_keys=[
                    {
                        "id": "AKIAANN0000000000001",
                        "status": "Active",
                        "created": iso(30),
                        "last_used": None,
                    },
                    {
                        "id": "AKIAANN0000000000002",
                        "status": "Active",
                        "created": iso(120),
                        "last_used": iso(100),
                    },
                ]
            ),
        ),
    ),
    ("password_too_old", with_("users/ann.json", set_keys(password_last_changed=iso(120)))),
    ("policy_on_user", with_("users/ann.json", set_keys(policies=["ReadReports"]))),
    (
        "inline_policy",
        with_(
            "users/ann.json",
            set_keys(
                inline_policies={
                    "Extra": {
                        "Version": "2012-10-17",
                        "Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
                    }
                }
            ),
        ),
    ),
    (
        "inline_policy",
        with_(
            "groups/analysts.json",
            set_keys(
                inline_policies={
                    "Extra": {
                        "Version": "2012-10-17",
                        "Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
                    }
                }
            ),
        ),
    ),
    ("wildcard_action", with_("policies/ReadReports.json", statement(Action="*", Resource="*"))),
    (
        "wildcard_action",
        with_(
            "policies/ReadReports.json",
            statement(Action=["s3:GetObject", "*"], Resource="arn:aws:s3:::x"),
        ),
    ),
    (
        "wildcard_resource_write",
        with_("policies/ReadReports.json", statement(Action=["s3:PutObject"], Resource="*")),
    ),
    (
        "broad_not_action",
        with_("policies/ReadReports.json", statement(NotAction="iam:*", Resource="*")),
    ),
    (
        "allow_with_not",
        with_("policies/ReadReports.json", statement(NotAction="iam:*", Resource="arn:aws:s3:::x")),
    ),
    (
        "allow_with_not",
        with_(
            "policies/ReadReports.json",
            statement(Action="s3:GetObject", NotResource="arn:aws:s3:::x"),
        ),
    ),
    (
        "never_matches",
        with_(
            "policies/ReadReports.json",
            statement(
                Action="s3:GetObject",
                Resource="*",
                Condition={
                    "StringEquals": {"aws:username": "ann"},
                    "StringNotEquals": {"aws:username": "ann"},
                },
            ),
        ),
    ),
    (
        "never_matches",
        with_(
            "policies/ReadReports.json",
            statement(
                Action="s3:GetObject",
                Resource="*",
                Condition={
                    "NumericGreaterThan": {"s3:max-keys": "100"},
                    "NumericLessThan": {"s3:max-keys": "10"},
                },
            ),
        ),
    ),
    (
        "never_matches",
        with_(
            "policies/ReadReports.json",
            statement(
                Action="s3:GetObject",
                Resource="*",
                Condition={
                    "Null": {"aws:TokenIssueTime": "true"},
                    "DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01"},
                },
            ),
        ),
    ),
]


def write_store(root: Path, files: dict[str, Any]) -> Path:
    version = root / "store" / "versions" / "0001"
    for name, doc in files.items():
        (version / name).parent.mkdir(parents=True, exist_ok=True)
        (version / name).write_text(json.dumps(doc))
    return root / "store"


def findings_of(root: Path, files: dict[str, Any], **kwargs: Any) -> list[str]:
    store = write_store(root, files)
    version, problems = read_version("0001", store / "versions" / "0001")
    assert version is not None, problems
    return [f.code for f in audit(version, now=NOW, **kwargs)]


def test_the_clean_store_has_no_findings(tmp_path: Path) -> None:
    assert findings_of(tmp_path, CLEAN) == []
    assert findings_of(tmp_path / "b", CLEAN, activity={"ann": NOW - 86400}) == []


@pytest.mark.parametrize(
    ("code", "files"), TRIGGERS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(TRIGGERS)]
)
def test_each_finding_triggers(tmp_path: Path, code: str, files: dict[str, Any]) -> None:
    assert code in findings_of(tmp_path, files)


def test_inactive_users_come_from_the_access_advisor(tmp_path: Path) -> None:
    assert "inactive_user" in findings_of(tmp_path, CLEAN, activity={})
    assert "inactive_user" in findings_of(
        tmp_path / "b", CLEAN, activity={"ann": NOW - 120 * 86400}
    )


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdp.cli", "audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_formats_and_fail_on(tmp_path: Path) -> None:
    store = write_store(tmp_path, with_("users/ann.json", set_keys(mfa_enabled=False)))
    text = run(str(store))
    assert text.returncode == 0
    assert "HIGH (1)" in text.stdout and "users/ann.json: mfa_enabled: ann signs in" in text.stdout
    assert json.loads(run(str(store), "--format", "json").stdout)[0] == {
        "code": "console_without_mfa",
        "severity": "high",
        "file": "users/ann.json",
        "path": "mfa_enabled",
        "message": "ann signs in to the console without MFA",
    }
    sarif = json.loads(run(str(store), "--format", "sarif").stdout)
    result = sarif["runs"][0]["results"][0]
    assert sarif["version"] == "2.1.0" and result["ruleId"] == "console_without_mfa"
    assert result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(
        "versions/0001/users/ann.json"
    )
    assert run(str(store), "--fail-on", "high").returncode == 3
    assert run(str(store), "--fail-on", "critical").returncode == 0


def test_credential_report(tmp_path: Path) -> None:
    store = write_store(tmp_path, CLEAN)
    version, _ = read_version("0001", store / "versions" / "0001")
    assert version is not None
    rows = list(csv.DictReader(io.StringIO(credential_report(version))))
    assert [r["user"] for r in rows] == ["<root_account>", "ann"]
    ann = rows[1]
    assert ann["arn"] == "arn:aws:iam::123456789012:user/ann"
    assert (ann["password_enabled"], ann["mfa_active"]) == ("true", "true")
    assert (ann["access_key_1_active"], ann["access_key_2_active"]) == ("true", "false")
    assert ann["access_key_1_last_used_date"] == iso(1)
    cli = subprocess.run(
        [sys.executable, "-m", "pdp.cli", "audit", str(store), "--credential-report"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert cli.stdout.splitlines()[0].startswith("user,arn,user_creation_time,password_enabled")


@pytest.mark.parametrize(
    "condition",
    [
        {
            "NumericGreaterThanEquals": {"s3:max-keys": "5"},
            "NumericLessThanEquals": {"s3:max-keys": "5"},
        },
        {
            "DateGreaterThan": {"aws:CurrentTime": "2024-01-01"},
            "DateLessThan": {"aws:CurrentTime": "1800000000"},
        },
        {
            "NumericGreaterThan": {"s3:max-keys": ["100", "1"]},
            "NumericLessThan": {"s3:max-keys": "10"},
        },
    ],
)
def test_satisfiable_conditions_are_not_reported(tmp_path: Path, condition: dict[str, Any]) -> None:
    """Review finding: inclusive equal bounds and mixed date formats can match."""
    files = with_(
        "policies/ReadReports.json",
        statement(Action="s3:GetObject", Resource="*", Condition=condition),
    )
    assert "never_matches" not in findings_of(tmp_path, files)


def test_text_report_escapes_every_field_and_keeps_only_its_own_colours() -> None:
    """A finding's file, path or message cannot clear the screen or forge a severity line."""
    hostile = "\x1b[2J\x1b[H\rLOW (0)\u202e\n"
    finding = Finding("never_matches", "high", f"users/{hostile}", hostile, hostile)
    for colour in (False, True):
        text = render([finding], "text", colour=colour)
        assert "\\x1b[2J\\x1b[H\\rLOW (0)\\u202e\\n" in text
        assert "\r" not in text and "\u202e" not in text and "\x1b[2J" not in text
        assert text.count("\n") == 3  # heading, the finding, the total
        assert text.count("\x1b") == (2 if colour else 0)


# Spellings that grant every resource (each with a write action), next to near misses that do not
EVERY_RESOURCE = ["*", "arn:*", "arn:aws:*", "arn:*:*:*:*:*", "arn:aws:*:*:*:*", "arn:*:?*"]
NOT_EVERY_RESOURCE = [
    "arn:*:*:*:*:*:*",  # six colons: misses arn:aws:s3:::bucket
    "arn:aws:s3:::*",  # one service
    "arn:*:*:?*:*:*",  # a region is required: misses S3 and IAM
    "arn:aws-cn:*",  # another partition
    "arn:aws:*:*:*:${aws:username}",  # one resource per principal
]


def _spelled(resources: list[str], **elements: Any) -> dict[str, Any]:
    files = copy.deepcopy(CLEAN)
    for i, resource in enumerate(resources):
        statement = {"Effect": "Allow", "Resource": resource, **elements}
        files[f"policies/Spelling{i}.json"] = {"Version": "2012-10-17", "Statement": [statement]}
    files["groups/analysts.json"]["policies"] += [f"Spelling{i}" for i in range(len(resources))]
    return files


def _audit_json(root: Path, files: dict[str, Any]) -> dict[str, set[str]]:
    result = run(str(write_store(root, files)), "--format", "json")
    assert result.returncode == 0, result.stderr
    by_file: dict[str, set[str]] = {}
    for finding in json.loads(result.stdout):
        by_file.setdefault(finding["file"], set()).add(finding["code"])
    return by_file


def test_every_resource_is_judged_by_what_the_pattern_matches(tmp_path: Path) -> None:
    """`arn:*`, `arn:*:*:*:*:*` are `*` by another name; `arn:*:*:*:*:*:*` is not."""
    found = _audit_json(tmp_path / "a", _spelled(EVERY_RESOURCE, Action="s3:PutObject"))
    for i, resource in enumerate(EVERY_RESOURCE):
        assert "wildcard_resource_write" in found.get(f"policies/Spelling{i}.json", set()), resource
    clean = _audit_json(tmp_path / "b", _spelled(NOT_EVERY_RESOURCE, Action="s3:PutObject"))
    assert set(clean) == set(), clean


def test_allow_with_not_action_on_every_resource_is_a_broad_grant(tmp_path: Path) -> None:
    """NotAction + Allow on every resource grants all but a few actions: high, like Action *."""
    found = _audit_json(tmp_path / "a", _spelled(["*", "arn:*"], NotAction=["iam:*", "sts:*"]))
    for i in range(2):
        assert found[f"policies/Spelling{i}.json"] == {"broad_not_action"}
    scoped = _audit_json(tmp_path / "b", _spelled(["arn:aws:s3:::x/*"], NotAction="s3:Delete*"))
    assert scoped == {"policies/Spelling0.json": {"allow_with_not"}}
    nothing = _audit_json(tmp_path / "c", _spelled(["*"], NotAction="*"))  # excludes everything
    assert nothing == {}


def test_a_store_spelling_every_action_otherwise_is_refused_by_audit(tmp_path: Path) -> None:
    """`?*:*`, `*:*?` and `*:*` mean every action, but a prefix wildcard is invalid (Action)."""
    for i, action in enumerate(["?*:*", "*:*?", "*:*"]):
        files = _spelled(["arn:*"], Action=action)
        result = run(str(write_store(tmp_path / str(i), files)))
        assert result.returncode == 1
        assert "policies/Spelling0.json: Statement[0].Action: invalid service prefix" in (
            result.stderr
        )


@pytest.mark.parametrize(
    ("pattern", "every"),
    [
        ("*", True),
        ("*:*", True),
        ("?*:*", True),
        ("*:*?", True),
        ("*?:?*", True),
        ("???*", True),  # the shortest action, a:b, has three characters
        ("??*:*", False),  # misses a one-letter service
        ("s3:*", False),
        ("*:*:*", False),
        ("*:?", False),
    ],
)
def test_every_action_is_judged_by_what_the_pattern_matches(pattern: str, every: bool) -> None:
    from pdp.language.coverage import matches_every_action

    assert matches_every_action(pattern) is every


# --- the checklist's items, through `pdp audit` (pdp.cli.main) ---------------------------------


def cli_findings(
    capsys: pytest.CaptureFixture[str], root: Path, files: dict[str, Any]
) -> list[dict[str, Any]]:
    from pdp.cli import main

    store = write_store(root, files)
    code = main(["audit", str(store), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    found: list[dict[str, Any]] = json.loads(out)
    return found


def policy(**changes: Any) -> Callable[[Any], Any]:
    def change(doc: Any) -> Any:
        doc["password_policy"].update(changes)
        for key in [k for k, v in changes.items() if v is None]:
            del doc["password_policy"][key]
        return doc

    return change


def test_a_missing_password_policy_is_a_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = cli_findings(capsys, tmp_path, with_("account.json", set_keys(password_policy={})))
    assert [(f["code"], f["file"], f["path"]) for f in found] == [
        ("password_policy_missing", "account.json", "password_policy")
    ]
    assert "8 characters" in found[0]["message"]


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"MinimumPasswordLength": 13}, "MinimumPasswordLength"),
        ({"MinimumPasswordLength": None}, "MinimumPasswordLength"),  # IAM's default: 8
        ({"RequireSymbols": False}, "RequireSymbols"),
        ({"RequireNumbers": None}, "RequireNumbers"),
        ({"RequireUppercaseCharacters": False}, "RequireUppercaseCharacters"),
        ({"RequireLowercaseCharacters": None}, "RequireLowercaseCharacters"),
        ({"MaxPasswordAge": 91}, "MaxPasswordAge"),
        ({"MaxPasswordAge": 0}, "MaxPasswordAge"),  # never expires
        ({"MaxPasswordAge": None}, "MaxPasswordAge"),
        ({"PasswordReusePrevention": 4}, "PasswordReusePrevention"),
        ({"PasswordReusePrevention": None}, "PasswordReusePrevention"),
    ],
)
def test_each_weak_password_setting_is_a_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any], path: str
) -> None:
    found = cli_findings(capsys, tmp_path, with_("account.json", policy(**changes)))
    assert [(f["code"], f["path"]) for f in found] == [
        ("password_policy_weak", f"password_policy.{path}")
    ]


def test_stronger_than_the_checklist_is_no_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stronger = policy(MinimumPasswordLength=20, MaxPasswordAge=30, PasswordReusePrevention=24)
    assert cli_findings(capsys, tmp_path, with_("account.json", stronger)) == []


def test_a_never_expiring_policy_does_not_age_passwords(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = with_("account.json", policy(MaxPasswordAge=0))
    files["users/ann.json"]["password_last_changed"] = iso(400)
    assert [f["code"] for f in cli_findings(capsys, tmp_path, files)] == ["password_policy_weak"]


def test_aws_managed_policies_attached_are_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    found = cli_findings(
        capsys, tmp_path, with_("groups/analysts.json", set_keys(policies=[admin]))
    )
    assert [(f["code"], f["file"]) for f in found] == [("wildcard_action", "groups/analysts.json")]
    assert found[0]["path"].startswith("policies[0].Statement")
    assert found[0]["message"].startswith("AWS managed policy AdministratorAccess: ")


def test_an_access_key_only_admin_without_mfa_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    files = with_("groups/analysts.json", set_keys(policies=["ReadReports", admin]))
    files["users/ann.json"].update(console_access=False, mfa_enabled=False)
    files["users/ann.json"].pop("password_last_changed")
    codes = [f["code"] for f in cli_findings(capsys, tmp_path, files)]
    assert "access_key_admin_without_mfa" in codes and "console_without_mfa" not in codes
    # with MFA, or without admin rights, or without an active key: not flagged
    files["users/ann.json"]["mfa_enabled"] = True
    codes = [f["code"] for f in cli_findings(capsys, tmp_path / "mfa", files)]
    assert "access_key_admin_without_mfa" not in codes
    files["users/ann.json"]["mfa_enabled"] = False
    files["groups/analysts.json"]["policies"] = ["ReadReports"]
    assert cli_findings(capsys, tmp_path / "plain", files) == []


def test_an_inline_admin_policy_counts_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = copy.deepcopy(CLEAN)
    files["users/ann.json"].update(console_access=False)
    files["users/ann.json"]["mfa_enabled"] = False
    files["users/ann.json"]["inline_policies"] = {
        "All": {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"},
        }
    }
    codes = [f["code"] for f in cli_findings(capsys, tmp_path, files)]
    assert "access_key_admin_without_mfa" in codes


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("BoolIfExists", "true", True),
        ("BoolIfExists", ["true"], True),
        ("BoolIfExists", True, True),
        ("Bool", "true", False),  # absent key: Bool does not match, long-term keys are denied
        ("BoolIfExists", "false", False),
    ],
)
def test_an_allow_relying_on_mfa_if_exists_is_explained(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    operator: str,
    value: Any,
    expected: bool,
) -> None:
    condition = {operator: {"aws:MultiFactorAuthPresent": value}}
    files = with_(
        "policies/ReadReports.json",
        statement(
            Action="ec2:StopInstances", Resource="arn:aws:ec2:*:*:instance/*", Condition=condition
        ),
    )
    found = [f for f in cli_findings(capsys, tmp_path, files) if f["code"] == "mfa_if_exists_allow"]
    assert bool(found) is expected
    if expected:
        assert found[0]["path"] == "Statement[2].Condition"
        assert "long-term access keys" in found[0]["message"]


def test_sarif_rules_have_descriptions_and_help(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pdp.cli import main

    store = write_store(tmp_path, with_("account.json", set_keys(password_policy={})))
    assert main(["audit", str(store), "--format", "sarif"]) == 0
    rules = json.loads(capsys.readouterr().out)["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["password_policy_missing"]
    for key in ("shortDescription", "fullDescription", "help"):
        assert rules[0][key]["text"] and rules[0][key]["text"] != rules[0]["id"]


def test_every_rule_is_documented() -> None:
    from pdp.audit.findings import RULES

    doc = (Path(__file__).parents[2] / "docs" / "audit.md").read_text()
    for code in RULES:
        assert f"| `{code}` |" in doc, code
    assert {code for code, _ in TRIGGERS} <= set(RULES)


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_an_invalid_store_is_a_document_of_its_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    from pdp.cli import main

    bad = statement(Action="GetObject", Resource="arn:aws:s3:::x")  # no service prefix
    store = write_store(tmp_path, with_("policies/ReadReports.json", bad))
    assert main(["audit", str(store), "--format", fmt]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    results = doc if fmt == "json" else doc["runs"][0]["results"]
    assert results, captured
    codes = {r["code"] if fmt == "json" else r["ruleId"] for r in results}
    assert codes == {"store_invalid"}
    text = json.dumps(doc)
    assert "GetObject" in text and "policies/ReadReports.json" in text and "Statement[2]" in text


def test_write_actions_are_judged_by_the_references_access_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    read_only = statement(Action=["athena:Batch*", "cloudformation:Detect*"], Resource="*")
    codes = [
        f["code"]
        for f in cli_findings(capsys, tmp_path, with_("policies/ReadReports.json", read_only))
    ]
    assert "wildcard_resource_write" not in codes  # AWS's reference: Read, whatever the verb
    writes = statement(Action=["athena:Get*"], Resource="*")  # GetSessionEndpoint is Write
    found = cli_findings(capsys, tmp_path / "w", with_("policies/ReadReports.json", writes))
    assert [f["code"] for f in found] == ["wildcard_resource_write"]
