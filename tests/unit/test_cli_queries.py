"""`pdp who-can` and `pdp what-can` on the shipped example store: text, --json, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdp.cli import main

STORE = str(Path(__file__).resolve().parents[2] / "examples" / "store")
HOME = "arn:aws:s3:::home-bucket/home/bob/x"


def test_who_can_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["who-can", "s3:DeleteObject", HOME, "--store", STORE]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"who can s3:DeleteObject on {HOME}:")
    assert "bob: allowed if" in out and "DenyDeletesWithoutMFA" in out


def test_who_can_json_with_context(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["who-can", "s3:DeleteObject", HOME, "--context", "aws:MultiFactorAuthPresent=true"]
    assert main([*argv, "--store", STORE, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [i["principal"] for i in answer["allowed"]] == ["alice", "bob"]
    assert answer["allowed_if"] == []


def test_who_can_limit(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["who-can", "s3:GetObject", "arn:aws:s3:::example-bucket/r", "--limit", "1"]
    assert main([*argv, "--store", STORE, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert len(answer["allowed"]) == 1 and answer["next_page_token"]


def test_what_can_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["what-can", "bob", "--service", "s3", "--store", STORE]) == 0
    out = capsys.readouterr().out
    assert "s3:GetObject on arn:aws:s3:::example-bucket/* " in out
    assert main(["what-can", "bob", "--service", "ec2", "--store", STORE, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["principal"] == "bob"
    assert all(i["action"].startswith("ec2:") for i in answer["allowed"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["who-can", "s3:GetObject", "*", "--context", "novalue"], "--context takes key=value"),
        (["who-can", "GetObject", "*"], "action: required"),
        (["who-can", "s3:GetObject", "*", "--limit", "5000"], "limit: must be"),
        (["what-can", "nobody"], "principal: no user"),
    ],
)
def test_errors_exit_1_naming_the_field(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, "--store", STORE]) == 1
    assert message in capsys.readouterr().err
