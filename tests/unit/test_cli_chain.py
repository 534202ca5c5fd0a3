"""`pdp check` for the evaluation chain: typed principals (`principal_type`, `--principal-type`),
role sessions (`session`, `--session`) and the layers of a chain decision (`layers`,
`blocked_by`) in the JSON and text outputs. The store is written to tmp_path: one member account
of an organization whose SCP allows only S3 and denies deletes, a role, a user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main
from tests.unit.test_cli import run_pdp

ACCOUNT = "111111111111"
ROLE_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy/ci"
OBJECT = "arn:aws:s3:::reports/q1.csv"
ADMIN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
ONLY_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}
DENY_DELETE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}
    ],
}
TEAM_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Action": "s3:PutObject",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "reports"}},
        }
    ],
}
CHAIN_FILES: dict[str, Any] = {
    "account.json": {"account_id": ACCOUNT},
    "policies/Admin.json": ADMIN,
    "policies/TeamOnly.json": TEAM_ONLY,
    "users/alice.json": {"policies": ["Admin"]},
    "roles/Deploy.json": {
        "trust_policy": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        "policies": ["Admin", "TeamOnly"],
    },
    "organization/organization.json": {
        "id": "o-a1b2c3d4e5",
        "management_account": "999999999999",
        "root": {
            "id": "r-a1b2",
            "scps": ["OnlyS3", "DenyDelete"],
            "accounts": ["999999999999", ACCOUNT],
        },
    },
    "organization/scps/OnlyS3.json": ONLY_S3,
    "organization/scps/DenyDelete.json": DENY_DELETE,
}


def write_files(version: Path, files: dict[str, Any]) -> None:
    for rel, content in files.items():
        path = version / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


def write_chain_store(tmp_path: Path, extra: dict[str, Any] | None = None) -> Path:
    """A store (versions/1, current -> versions/1) of CHAIN_FILES plus `extra`."""
    store = tmp_path / "chain-store"
    write_files(store / "versions" / "1", {**CHAIN_FILES, **(extra or {})})
    (store / "current").symlink_to("versions/1")
    return store


@pytest.fixture
def chain_store(tmp_path: Path) -> Path:
    return write_chain_store(tmp_path)


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def test_request_lines_take_principal_type_and_session(chain_store: Path, tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    lines = [
        {"principal": ROLE_SESSION, "principal_type": "role_session", "action": "s3:PutObject",
         "resource": OBJECT, "session": {"tags": {"team": "reports"}}},
        {"principal": ROLE_SESSION, "principal_type": "role_session", "action": "s3:PutObject",
         "resource": OBJECT, "session": {"tags": {"team": "web"}}},
        {"principal": ROLE_SESSION, "principal_type": "role_session", "action": "s3:PutObject",
         "resource": OBJECT},
        {"principal": "alice", "action": "ec2:RunInstances", "resource": "*"},
    ]  # fmt: skip
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run_pdp("check", "--store", str(chain_store), "--requests", str(requests))
    assert result.returncode == 2, result.stderr
    got = [(d["line"], d["reason"], d["blocked_by"], d["errors"]) for d in _lines(result.stdout)]
    assert got == [
        (1, "allowed", [], []),
        (2, "explicitDeny", ["identity"], []),  # the session's tag overrides nothing: not "reports"
        (3, "explicitDeny", ["identity"], []),  # no session tag: the Deny's StringNotEquals holds
        (4, "implicitDeny", ["scp"], []),
    ]
    first = _lines(result.stdout)[0]
    assert first["layers"] == ["rcp", "scp", "identity"]
    assert result.stderr.splitlines()[-1].endswith("4 lines: 1 allowed, 3 denied, 0 invalid")


def test_a_bad_session_names_its_line_and_field(chain_store: Path, tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    good = {"principal": ROLE_SESSION, "principal_type": "role_session", "action": "s3:GetObject",
            "resource": OBJECT}  # fmt: skip
    requests.write_text(
        json.dumps(good)
        + "\n"
        + json.dumps({**good, "session": {"tags": {"team": 7}}})
        + "\n"
        + json.dumps({**good, "session": {"mfa_presnt": True}})
        + "\n"
        + json.dumps({**good, "session": []})
        + "\n"
    )
    result = run_pdp("check", "--store", str(chain_store), "--requests", str(requests))
    assert result.returncode == 1
    out = _lines(result.stdout)
    assert out[0]["decision"] == "Allow"
    assert [o.get("error", "")[:40] for o in out[1:]] == [
        "invalid request: session.tags.team: the ",
        "invalid request: session.mfa_presnt: unk",
        "invalid request: session: must be an obj",
    ]
    err = result.stderr.splitlines()
    assert err[0].startswith(f"{requests}:2: invalid request: session.tags.team: ")
    assert err[1].startswith(f"{requests}:3: invalid request: session.mfa_presnt: unknown field")
    assert err[2] == f"{requests}:4: invalid request: session: must be an object"


def test_a_session_for_a_user_is_a_deny_naming_the_session(
    chain_store: Path, tmp_path: Path
) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        json.dumps(
            {
                "principal": "alice",
                "action": "s3:GetObject",
                "resource": OBJECT,
                "session": {"tags": {"team": "reports"}},
            }
        )  # fmt: skip
        + "\n"
    )
    result = run_pdp("check", "--store", str(chain_store), "--requests", str(requests))
    (decision,) = _lines(result.stdout)
    assert (result.returncode, decision["decision"]) == (2, "Deny")
    assert any("session" in e for e in decision["errors"]), decision["errors"]


def test_one_request_with_principal_type_and_session_in_text(
    chain_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["check", "--store", str(chain_store), "--principal", ROLE_SESSION,
            "--principal-type", "role_session", "--action", "s3:PutObject",
            "--resource", OBJECT]  # fmt: skip
    assert main([*argv, "--session", '{"tags": {"team": "reports"}}']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Allow (allowed)  version 1"
    assert out[1] == "  layers: rcp, scp, identity"
    assert main([*argv, "--session", '{"tags": {"team": "web"}}']) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Deny (explicitDeny) blocked by identity  version 1"
    assert out[1] == "  layers: rcp, scp, identity"


def test_text_output_says_which_layer_blocked(
    chain_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["check", "--store", str(chain_store), "--principal", "alice", "--resource", OBJECT]
    assert main([*base, "--action", "ec2:RunInstances"]) == 2
    assert (
        capsys.readouterr().out.splitlines()[0] == "Deny (implicitDeny) blocked by scp  version 1"
    )
    assert main([*base, "--action", "s3:DeleteObject"]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Deny (explicitDeny) blocked by scp  version 1"
    assert "  matched: organization/scps/DenyDelete.json Statement[0] Sid NoDeletes (Deny)" in out


def test_json_output_of_one_request_has_the_layers(
    chain_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = tmp_path / "session.json"
    session.write_text(json.dumps({"tags": {"team": "reports"}, "mfa_present": True}))
    argv = ["check", "--store", str(chain_store), "--principal", ROLE_SESSION,
            "--principal-type", "role_session", "--action", "s3:DeleteObject",
            "--resource", OBJECT, "--session", str(session), "--json"]  # fmt: skip
    assert main(argv) == 2
    decision = json.loads(capsys.readouterr().out)
    assert (decision["reason"], decision["layers"], decision["blocked_by"]) == (
        "explicitDeny",
        ["rcp", "scp", "identity"],
        ["scp"],
    )


@pytest.mark.parametrize(
    ("session", "message"),
    [
        ('{"tags": []}', "pdp check: --session: session.tags: must be an object"),
        ("{not json", "pdp check: --session: not JSON: "),
        ("missing.json", "pdp check: --session: [Errno 2] No such file or directory"),
    ],
)
def test_a_bad_session_flag_is_one_line(
    chain_store: Path, capsys: pytest.CaptureFixture[str], session: str, message: str
) -> None:
    argv = ["check", "--store", str(chain_store), "--principal", ROLE_SESSION,
            "--principal-type", "role_session", "--action", "s3:GetObject", "--resource", OBJECT,
            "--session", session]  # fmt: skip
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(message), err


def test_a_session_file_error_names_the_file(
    chain_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = tmp_path / "session.json"
    session.write_text(json.dumps({"role_chain": ["not-a-role"]}))
    argv = ["check", "--store", str(chain_store), "--principal", ROLE_SESSION,
            "--principal-type", "role_session", "--action", "s3:GetObject", "--resource", OBJECT,
            "--session", str(session)]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == f"pdp check: --session: {session}: session.role_chain[0]: must be a role ARN\n"


def test_root_and_another_principal_type_disagree(
    chain_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["check", "--store", str(chain_store), "--principal", "s3.amazonaws.com",
            "--action", "s3:GetObject", "--resource", OBJECT, "--root", "--principal-type",
            "service"]  # fmt: skip
    assert main(argv) == 1
    assert capsys.readouterr().err == (
        "pdp check: --root and --principal-type service disagree: give one\n"
    )
    root = ["check", "--store", str(chain_store), "--principal", f"arn:aws:iam::{ACCOUNT}:root",
            "--action", "ec2:RunInstances", "--resource", "*", "--root", "--principal-type",
            "root"]  # fmt: skip
    assert main(root) == 2  # a member account's root is subject to its SCPs
    assert capsys.readouterr().out.startswith("Deny (implicitDeny) blocked by scp  version 1\n")


@pytest.mark.parametrize("extra", [["--principal-type", "service"], ["--session", "{}"]])
def test_requests_take_no_principal_type_or_session_flag(
    chain_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps({"principal": "alice", "action": "s3:GetObject",
                                    "resource": OBJECT}) + "\n")  # fmt: skip
    argv = ["check", "--store", str(chain_store), "--requests", str(requests), *extra]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"pdp check: --requests reads each request from its lines: drop {extra[0]}\n"


def test_an_identity_only_decision_keeps_its_shape(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_cli import EXAMPLE

    argv = ["check", "--store", str(EXAMPLE), "--principal", "bob", "--action", "s3:GetObject",
            "--resource", "arn:aws:s3:::example-bucket/report.csv", "--json"]  # fmt: skip
    assert main(argv) == 0
    decision = json.loads(capsys.readouterr().out)
    assert "layers" not in decision and "blocked_by" not in decision
    assert main(argv[:-1]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Allow (allowed)  version ") and not any("layers" in o for o in out)
