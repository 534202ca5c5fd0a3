"""account.json's password_policy, as AWS defines it (IAM API Reference, PasswordPolicy and
UpdateAccountPasswordPolicy; User Guide, "Permit IAM users to change their own passwords"):
AWS's types and ranges, MaxPasswordAge 0 or absent as passwords that never expire, and the
account-level grant of AllowUsersToChangePassword. Through `pdp validate`, `pdp audit` and
`pdp check`, as a user runs them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main

ACCOUNT = "123456789012"
NOW = time.time()


def iso(days_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - days_ago * 86400))


def write_store(root: Path, password_policy: Any, extra: dict[str, Any] | None = None) -> Path:
    version = root / "store" / "versions" / "0001"
    files: dict[str, Any] = {
        "account.json": {
            "account_id": ACCOUNT,
            "root": {"enabled": False},
            "password_policy": password_policy,
        },
        "users/ann.json": {
            "console_access": True,
            "mfa_enabled": True,
            "password_last_changed": iso(120),
        },
        "users/bob.json": {"path": "/staff/"},
        **(extra or {}),
    }
    for name, doc in files.items():
        (version / name).parent.mkdir(parents=True, exist_ok=True)
        (version / name).write_text(json.dumps(doc))
    return root / "store"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# (password_policy, the problem `pdp validate` reports, or None when it is valid)
VALIDATE: list[tuple[dict[str, Any], str | None]] = [
    ({}, None),
    (
        {
            "MinimumPasswordLength": 14,
            "RequireSymbols": True,
            "RequireNumbers": True,
            "RequireUppercaseCharacters": True,
            "RequireLowercaseCharacters": True,
            "AllowUsersToChangePassword": True,
            "MaxPasswordAge": 90,
            "PasswordReusePrevention": 5,
            "HardExpiry": False,
        },
        None,
    ),
    ({"MinimumPasswordLength": 6}, None),
    ({"MinimumPasswordLength": 128}, None),
    (
        {"MinimumPasswordLength": 5},
        "MinimumPasswordLength: MinimumPasswordLength must be 6 to 128 characters, as in AWS;"
        " got 5",
    ),
    (
        {"MinimumPasswordLength": 129},
        "MinimumPasswordLength: MinimumPasswordLength must be 6 to 128 characters, as in AWS;"
        " got 129",
    ),
    ({"MaxPasswordAge": 0}, None),
    ({"MaxPasswordAge": 1}, None),
    ({"MaxPasswordAge": 1095}, None),
    (
        {"MaxPasswordAge": 1096},
        "MaxPasswordAge: MaxPasswordAge must be 1 to 1095 days (or 0: passwords never expire),"
        " as in AWS; got 1096",
    ),
    (
        {"MaxPasswordAge": -1},
        "MaxPasswordAge: MaxPasswordAge must be 1 to 1095 days (or 0: passwords never expire),"
        " as in AWS; got -1",
    ),
    ({"PasswordReusePrevention": 1}, None),
    ({"PasswordReusePrevention": 24}, None),
    (
        {"PasswordReusePrevention": 0},
        "PasswordReusePrevention: PasswordReusePrevention must be 1 to 24 passwords, as in AWS;"
        " got 0",
    ),
    (
        {"PasswordReusePrevention": 25},
        "PasswordReusePrevention: PasswordReusePrevention must be 1 to 24 passwords, as in AWS;"
        " got 25",
    ),
    ({"MaxPasswordAge": 90.0}, "MaxPasswordAge: MaxPasswordAge must be a whole number"),
    ({"MaxPasswordAge": True}, "MaxPasswordAge: MaxPasswordAge must be a whole number"),
    (
        {"MinimumPasswordLength": "14"},
        "MinimumPasswordLength: MinimumPasswordLength must be a whole number",
    ),
    ({"RequireSymbols": 1}, "RequireSymbols: RequireSymbols must be true or false"),
    ({"RequireNumbers": "true"}, "RequireNumbers: RequireNumbers must be true or false"),
    (
        {"RequireUppercaseCharacters": None},
        "RequireUppercaseCharacters: RequireUppercaseCharacters must be true or false",
    ),
    (
        {"RequireLowercaseCharacters": 0},
        "RequireLowercaseCharacters: RequireLowercaseCharacters must be true or false",
    ),
    (
        {"AllowUsersToChangePassword": "yes"},
        "AllowUsersToChangePassword: AllowUsersToChangePassword must be true or false",
    ),
    ({"HardExpiry": 1}, "HardExpiry: HardExpiry must be true or false"),
    (
        {"ExpirePasswords": True},
        'ExpirePasswords: unknown field "ExpirePasswords" (IAM\'s fields: MinimumPasswordLength,'
        " RequireSymbols, RequireNumbers, RequireUppercaseCharacters,"
        " RequireLowercaseCharacters, AllowUsersToChangePassword, MaxPasswordAge,"
        " PasswordReusePrevention, HardExpiry)",
    ),
]


@pytest.mark.parametrize(("policy", "problem"), VALIDATE)
def test_validate_checks_types_and_aws_ranges(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    policy: dict[str, Any],
    problem: str | None,
) -> None:
    store = write_store(tmp_path, policy)
    code, out, err = run(capsys, "validate", str(store))
    if problem is None:
        assert code == 0, err
        assert err == ""
    else:
        assert code == 1
        assert err.splitlines() == [f"account.json: password_policy.{problem}"]


# (password_policy, whether ann's 120-day-old password is reported as too old)
EXPIRY: list[tuple[dict[str, Any], bool]] = [
    ({}, False),  # no MaxPasswordAge: passwords never expire
    ({"MaxPasswordAge": 0}, False),  # 0: the same (ExpirePasswords is false)
    ({"MaxPasswordAge": 90}, True),
    ({"MaxPasswordAge": 120}, False),
    ({"MaxPasswordAge": 119}, True),
    ({"MaxPasswordAge": 1095}, False),
]


@pytest.mark.parametrize(("policy", "too_old"), EXPIRY)
def test_password_too_old_only_when_passwords_expire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: dict[str, Any], too_old: bool
) -> None:
    store = write_store(tmp_path, policy)
    code, out, err = run(capsys, "audit", str(store), "--format", "json")
    assert code == 0, err
    found = [f for f in json.loads(out) if f["code"] == "password_too_old"]
    assert bool(found) is too_old
    if too_old:
        assert found[0]["file"] == "users/ann.json"
        assert found[0]["message"] == (
            f"password is 120 days old; the account's MaxPasswordAge is {policy['MaxPasswordAge']}"
        )


ANN = f"arn:aws:iam::{ACCOUNT}:user/ann"
BOB = f"arn:aws:iam::{ACCOUNT}:user/staff/bob"
GRANT = {"policy": "account.json", "statement": 0, "sid": "AllowUsersToChangePassword"}
DENY_IAM = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "NoIam", "Effect": "Deny", "Action": "iam:ChangePassword", "Resource": "*"}
    ],
}
# (AllowUsersToChangePassword, principal, action, resource, extra files, decision, reason, sid)
CHECK: list[tuple[bool | None, str, str, str, dict[str, Any], str, str, str | None]] = [
    (True, "ann", "iam:ChangePassword", ANN, {}, "Allow", "allowed", GRANT["sid"]),
    (True, ANN, "iam:changepassword", ANN, {}, "Allow", "allowed", GRANT["sid"]),
    (True, "bob", "iam:ChangePassword", BOB, {}, "Allow", "allowed", GRANT["sid"]),
    (True, "bob", "iam:GetAccountPasswordPolicy", "*", {}, "Allow", "allowed", GRANT["sid"]),
    (True, "ann", "iam:GetAccountPasswordPolicy", "*", {}, "Allow", "allowed", GRANT["sid"]),
    # only the user's own ARN: not another user's, not a wildcard, not another account's
    (True, "ann", "iam:ChangePassword", BOB, {}, "Deny", "implicitDeny", None),
    (True, "ann", "iam:ChangePassword", "*", {}, "Deny", "implicitDeny", None),
    (
        True,
        "ann",
        "iam:ChangePassword",
        "arn:aws:iam::*:user/ann",
        {},
        "Deny",
        "implicitDeny",
        None,
    ),
    (
        True,
        "ann",
        "iam:ChangePassword",
        "arn:aws:iam::210987654321:user/ann",
        {},
        "Deny",
        "implicitDeny",
        None,
    ),
    (
        True,
        "bob",
        "iam:ChangePassword",
        f"arn:aws:iam::{ACCOUNT}:user/bob",
        {},
        "Deny",
        "implicitDeny",
        None,
    ),
    # nothing else: not the other password and credential actions
    (True, "ann", "iam:UpdateLoginProfile", ANN, {}, "Deny", "implicitDeny", None),
    (True, "ann", "iam:GetUser", ANN, {}, "Deny", "implicitDeny", None),
    (True, "ann", "iam:UpdateAccountPasswordPolicy", "*", {}, "Deny", "implicitDeny", None),
    (True, "ann", "iam:CreateAccessKey", ANN, {}, "Deny", "implicitDeny", None),
    # the setting off or absent: no grant
    (False, "ann", "iam:ChangePassword", ANN, {}, "Deny", "implicitDeny", None),
    (None, "ann", "iam:ChangePassword", ANN, {}, "Deny", "implicitDeny", None),
    (False, "ann", "iam:GetAccountPasswordPolicy", "*", {}, "Deny", "implicitDeny", None),
    # an explicit Deny still wins
    (
        True,
        "ann",
        "iam:ChangePassword",
        ANN,
        {"policies/NoIam.json": DENY_IAM, "users/ann.json": {"policies": ["NoIam"]}},
        "Deny",
        "explicitDeny",
        "NoIam",
    ),
]


@pytest.mark.parametrize(
    ("setting", "principal", "action", "resource", "extra", "decision", "reason", "sid"), CHECK
)
def test_allow_users_to_change_password_is_an_account_level_grant(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setting: bool | None,
    principal: str,
    action: str,
    resource: str,
    extra: dict[str, Any],
    decision: str,
    reason: str,
    sid: str | None,
) -> None:
    policy = {} if setting is None else {"AllowUsersToChangePassword": setting}
    store = write_store(tmp_path, policy, extra)
    argv = ["check", "--store", str(store), "--principal", principal]
    code, out, err = run(capsys, *argv, "--action", action, "--resource", resource, "--json")
    answer = json.loads(out)
    assert (answer["decision"], answer["reason"], answer["errors"]) == (decision, reason, [])
    assert [m["sid"] for m in answer["matched"]] == ([sid] if sid else [])
    if sid == GRANT["sid"]:
        assert answer["matched"] == [{**GRANT, "effect": "Allow"}]
    assert code == (0 if decision == "Allow" else 2), err


def test_the_grant_is_named_in_text_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = write_store(tmp_path, {"AllowUsersToChangePassword": True})
    argv = ["check", "--store", str(store), "--principal", "ann"]
    code, out, _ = run(capsys, *argv, "--action", "iam:ChangePassword", "--resource", ANN)
    assert code == 0
    assert out.splitlines() == [
        "Allow (allowed)  version 0001",
        "  matched: account.json password_policy.AllowUsersToChangePassword (Allow):"
        " IAM's account-level grant, not a policy",
    ]
