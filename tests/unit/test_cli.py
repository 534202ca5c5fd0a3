"""`pdp validate` through the installed console script, as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path


def run_pdp(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "pdp"
    command = [str(script)] if script.exists() else [shutil.which("pdp") or "pdp"]
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=60)


def test_validate_reports_every_problem_with_file_and_path(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            }
        )
    )
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "*",
                        "Condition": {"StringEqual": {"aws:username": "bob"}},
                    },
                    {"Effect": "Deny", "Action": "*"},
                ],
            }
        )
    )
    result = run_pdp("validate", str(good), str(bad))
    assert result.returncode == 1
    assert f"{good}: ok (1 statements)" in result.stdout
    assert result.stderr.splitlines() == [
        f'{bad}: Statement[0].Condition: unknown operator "StringEqual"'
        ' (did you mean "StringEquals"?)',
        f"{bad}: Statement[1]: missing Resource/NotResource",
    ]


def test_validate_accepts_valid_files(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"Statement": [{"Effect": "Deny", "NotAction": "iam:*", "Resource": "*"}]}')
    result = run_pdp("validate", str(good))
    assert result.returncode == 0, result.stderr


def test_validate_names_an_unreadable_file(tmp_path: Path) -> None:
    result = run_pdp("validate", str(tmp_path / "missing.json"))
    assert result.returncode == 1
    assert "missing.json: cannot read" in result.stderr


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "store"


def test_validate_a_store_and_a_version_directory() -> None:
    result = run_pdp("validate", str(EXAMPLE), str(EXAMPLE / "versions" / "0001"))
    assert result.returncode == 0, result.stderr
    assert "version 0002: 3 users, 3 groups, 5 policies" in result.stdout


def test_validate_lists_every_problem_of_a_store(tmp_path: Path) -> None:
    version = tmp_path / "store" / "versions" / "0001"
    (version / "users").mkdir(parents=True)
    (version / "users" / "ann.json").write_text('{"groups": ["ghosts"], "tags": 1}')
    (version / "policies").mkdir()
    (version / "policies" / "P.json").write_text('{"Statement": []}')
    result = run_pdp("validate", str(tmp_path / "store"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "policies/P.json: Statement: empty Statement: a policy needs a statement",
        "users/ann.json: tags: tags must map names to strings",
    ]


def test_validate_refuses_a_wildcard_service_prefix_in_a_store(tmp_path: Path) -> None:
    """`*:Describe*` names no service: the store is refused and the element is named."""
    version = tmp_path / "store" / "versions" / "0001"
    (version / "policies").mkdir(parents=True)
    (version / "policies" / "x.json").write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["ec2:DescribeInstances", "*:Describe*"],
                        "Resource": "*",
                    }
                ],
            }
        )
    )
    result = run_pdp("validate", str(tmp_path / "store"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        'policies/x.json: Statement[0].Action[1]: invalid service prefix in action "*:Describe*":'
        " a service prefix cannot hold wildcards"
        ' (name the service, e.g. "ec2:Describe*", or use "*" for every action)'
    ]


def test_test_runs_the_policy_tests(tmp_path: Path) -> None:
    result = run_pdp("test", str(EXAMPLE))
    assert result.returncode == 0 and result.stdout.strip() == "PASS: 15/15 (version 0002)"
    failing = tmp_path / "v1"
    shutil.copytree(EXAMPLE / "versions" / "0001", failing)
    (failing / "tests" / "smoke.json").write_text(
        json.dumps(
            [
                {
                    "name": "wrong on purpose",
                    "principal": "bob",
                    "action": "s3:GetObject",
                    "resource": "arn:aws:s3:::example-bucket/a",
                    "expect": "Deny",
                }
            ]
        )
    )
    result = run_pdp("test", str(failing))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "FAIL: tests/smoke.json[0] wrong on purpose: bob s3:GetObject on"
        " arn:aws:s3:::example-bucket/a: expected Deny, got Allow (allowed)",
        "FAIL: 0/1 (version v1)",
    ]


def test_check_is_the_policy_simulator_at_a_prompt(tmp_path: Path) -> None:
    store = str(EXAMPLE)
    args = [
        "check",
        "--store",
        store,
        "--principal",
        "bob",
        "--action",
        "s3:DeleteObject",
        "--resource",
        "arn:aws:s3:::home-bucket/home/bob/x",
    ]
    denied = run_pdp(*args)
    assert denied.returncode == 2
    assert denied.stdout.splitlines() == [
        "Deny (explicitDeny)  version 0002",
        "  matched: policies/RequireMFAForDeletes.json Statement[0] Sid DenyDeletesWithoutMFA"
        " (Deny)",
    ]
    allowed = run_pdp(*args, "--context", "aws:MultiFactorAuthPresent=true", "--json")
    assert allowed.returncode == 0
    assert json.loads(allowed.stdout)["matched"][0]["sid"] == "OwnHomeObjects"
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        '{"principal": "carol", "action": "dynamodb:GetItem", "resource": "*"}\n'
        '{"principal": "nobody", "action": "s3:GetObject", "resource": "*"}\n'
    )
    many = run_pdp("check", "--store", store, "--requests", str(requests))
    assert many.returncode == 0
    lines = [json.loads(line) for line in many.stdout.splitlines()]
    assert [d["decision"] for d in lines] == ["Allow", "Deny"]
    assert lines[1]["errors"] == ['principal: unknown principal "nobody"']
