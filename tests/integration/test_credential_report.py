"""`pdp audit --credential-report`: AWS's columns, order and placeholders ("Getting credential
reports for your AWS account", IAM User Guide), through the CLI, and the store fields behind
them (docs/store.md, docs/audit.md)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main

ACCOUNT = "123456789012"
HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
    "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
    "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
    "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
    "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)
NO_KEYS = ["false", "N/A", "N/A", "N/A", "N/A"] * 2
NO_CERTS = ["false", "N/A", "false", "N/A"]

USERS: dict[str, dict[str, Any]] = {
    # A console user: password used, policy expiry counted from the last change, MFA by device.
    "ann": {
        "created": "2023-02-01T10:00:00+00:00",
        "console_access": True,
        "password_last_used": "2026-11-29T09:12:00+00:00",
        "password_last_changed": "2026-09-01T10:00:00+00:00",
        "mfa_devices": [{"type": "virtual", "serial": f"arn:aws:iam::{ACCOUNT}:mfa/ann"}],
    },
    # No password at all; two keys, one used (with region and service), one never.
    "bot": {
        "created": "2024-05-05T08:00:00+00:00",
        "access_keys": [
            {
                "id": "AKIAEXAMPLE000000001",
                "status": "Active",
                "created": "2026-08-15T10:00:00+00:00",
                "last_used": "2026-11-30T17:45:00+00:00",
                "last_used_region": "eu-west-1",
                "last_used_service": "s3",
            },
            {"status": "Inactive", "created": "2025-01-02T03:04:05+00:00"},
        ],
    },
    # Signing certificates (the second inactive); a password never used; no creation time known.
    "cert": {
        "console_access": True,
        "signing_certificates": [
            {"status": "Active", "uploaded": "2023-03-05T08:30:00+00:00"},
            {
                "id": "ASCACKCEVSQ6C2EXAMPLE0000",
                "status": "Inactive",
                "uploaded": "2024-03-05T08:30:00+00:00",
            },
        ],
        "mfa_enabled": True,
    },
}


def write_store(root: Path, users: dict[str, Any], account: dict[str, Any]) -> Path:
    version = root / "store" / "versions" / "0001"
    (version / "users").mkdir(parents=True)
    (version / "account.json").write_text(json.dumps(account))
    for name, doc in users.items():
        (version / "users" / f"{name}.json").write_text(json.dumps(doc))
    return root / "store"


ACCOUNT_DOC = {
    "account_id": ACCOUNT,
    "root": {
        "mfa_enabled": True,
        "created": "2019-01-01T00:00:00+00:00",
        "password_last_used": "2026-10-02T08:00:00+00:00",
        "access_keys": [{"status": "Active", "created": "2020-01-01T00:00:00+00:00"}],
    },
    "password_policy": {"MaxPasswordAge": 90},
}


def report(tmp_path: Path, capsys: pytest.CaptureFixture[str], **account: Any) -> list[str]:
    store = write_store(tmp_path, USERS, {**ACCOUNT_DOC, **account})
    capsys.readouterr()
    assert main(["audit", str(store), "--credential-report"]) == 0
    return capsys.readouterr().out.splitlines()


def test_the_header_is_awss_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = report(tmp_path, capsys)
    assert lines[0] == HEADER
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    assert all(len(row) == 22 for row in rows)
    assert [row[0] for row in rows[1:]] == ["<root_account>", "ann", "bot", "cert"]


def test_the_rows_follow_awss_conventions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {r[0]: r for r in csv.reader(io.StringIO("\n".join(report(tmp_path, capsys)[1:])))}
    assert rows["<root_account>"] == [
        "<root_account>",
        f"arn:aws:iam::{ACCOUNT}:root",
        "2019-01-01T00:00:00+00:00",
        "not_supported",
        "2026-10-02T08:00:00+00:00",
        "not_supported",
        "not_supported",
        "true",
        *["true", "2020-01-01T00:00:00+00:00", "N/A", "N/A", "N/A"],
        *["false", "N/A", "N/A", "N/A", "N/A"],
        *NO_CERTS,
    ]
    assert rows["ann"] == [
        "ann",
        f"arn:aws:iam::{ACCOUNT}:user/ann",
        "2023-02-01T10:00:00+00:00",
        "true",
        "2026-11-29T09:12:00+00:00",
        "2026-09-01T10:00:00+00:00",
        "2026-11-30T10:00:00+00:00",  # 90 days after the change
        "true",  # from mfa_devices
        *NO_KEYS,
        *NO_CERTS,
    ]
    assert rows["bot"] == [
        "bot",
        f"arn:aws:iam::{ACCOUNT}:user/bot",
        "2024-05-05T08:00:00+00:00",
        "false",
        "N/A",
        "N/A",
        "N/A",
        "false",
        *["true", "2026-08-15T10:00:00+00:00", "2026-11-30T17:45:00+00:00", "eu-west-1", "s3"],
        *["false", "2025-01-02T03:04:05+00:00", "N/A", "N/A", "N/A"],
        *NO_CERTS,
    ]
    assert rows["cert"] == [
        "cert",
        f"arn:aws:iam::{ACCOUNT}:user/cert",
        "no_information",
        "true",
        "no_information",
        "no_information",
        "N/A",  # no change date to count from
        "true",
        *NO_KEYS,
        *["true", "2023-03-05T08:30:00+00:00", "false", "2024-03-05T08:30:00+00:00"],
    ]


def test_passwords_that_never_expire_have_no_next_rotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for policy in ({"MaxPasswordAge": 0}, {}):
        lines = report(tmp_path / str(len(policy)), capsys, password_policy=policy)
        ann = next(r for r in csv.reader(io.StringIO("\n".join(lines))) if r[0] == "ann")
        assert ann[6] == "N/A"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {
                "access_keys": [
                    {"status": "Active", "created": f"202{n}-01-01T00:00:00+00:00"}
                    for n in range(3)
                ]
            },
            "users/x.json: access_keys: 3 access keys; IAM allows 2 a user",
        ),
        (
            {"signing_certificates": [{"uploaded": "2020-01-01"}] * 3},
            "users/x.json: signing_certificates: 3 signing certificates; IAM allows 2",
        ),
        ({"password": "hunter2"}, "pdp never stores secrets"),
        ({"secret_access_key": "x"}, "pdp never stores secrets"),
        ({"mfa_devices": [{"type": "sms", "serial": "GAHT12345678"}]}, "mfa_devices[0].type"),
        ({"mfa_devices": [{"type": "hardware", "serial": "x"}]}, "mfa_devices[0].serial"),
        (
            {"mfa_enabled": False, "mfa_devices": [{"type": "fido", "serial": "GAHT12345678"}]},
            "users/x.json: mfa_enabled: mfa_enabled is false but mfa_devices lists a device",
        ),
        ({"password_last_used": "yesterday"}, "password_last_used must be an ISO 8601 date"),
        (
            {"access_keys": [{"created": "2020-01-01", "last_used_region": "EU West"}]},
            "access_keys[0].last_used_region must be a region",
        ),
    ],
)
def test_what_the_store_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: dict[str, Any], message: str
) -> None:
    store = write_store(tmp_path, {"x": doc}, {"account_id": ACCOUNT})
    capsys.readouterr()
    assert main(["validate", str(store)]) != 0
    captured = capsys.readouterr()
    assert message in captured.out + captured.err


def test_dates_of_use_are_not_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"console_access": True, "password_last_used": "2026-01-01T00:00:00Z"}
    store = write_store(tmp_path, {"x": doc}, {"account_id": ACCOUNT})
    assert main(["validate", str(store)]) == 0


def test_a_multi_account_store_reports_every_account_or_the_one_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """AWS writes one report per account: a store of several accounts reports each (the arn
    column names the account), never only the first one; --account selects one."""
    from tests.chain_store import FILES, MEMBER, MGMT
    from tests.chain_store import write_store as write_org

    store = write_org(tmp_path / "org", FILES)
    capsys.readouterr()
    assert main(["audit", str(store), "--credential-report"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:]
    assert [(r[0], r[1]) for r in rows] == [
        ("<root_account>", f"arn:aws:iam::{MGMT}:root"),
        ("<root_account>", f"arn:aws:iam::{MEMBER}:root"),
        ("alice", f"arn:aws:iam::{MEMBER}:user/alice"),
    ]
    assert main(["audit", str(store), "--credential-report", "--account", MEMBER]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:]
    assert [r[0] for r in rows] == ["<root_account>", "alice"]
    assert main(["audit", str(store), "--credential-report", "--account", "999999999999"]) == 1
    err = capsys.readouterr().err
    assert "999999999999" in err and MEMBER in err
