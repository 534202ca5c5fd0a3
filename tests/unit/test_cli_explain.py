"""`pdp check --explain`: the tree (text), the JSON object, one per --requests line; and the
plain answer without it keeps its shape."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import pdp
from pdp.cli import main
from pdp.store import load_store

ROOT = Path(__file__).resolve().parents[2]
STORE = str(ROOT / "examples" / "store")
ORGANIZATION = str(ROOT / "examples" / "organization")
BOB_START = [
    "check", "--store", STORE, "--principal", "bob", "--action", "ec2:StartInstances",
    "--resource", "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
    "--context", "aws:SourceIp=203.0.113.9", "--context", "aws:ResourceTag/team=red",
]  # fmt: skip


def test_text_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BOB_START, "--explain"]) == 2
    out = capsys.readouterr().out
    assert "why: Deny (implicitDeny)" in out
    assert "└─ layer identity" in out
    assert 'StringEquals aws:ResourceTag/team: no  request "red" vs policy [blue]' in out
    assert "1. policies/EC2TeamInstances.json Statement[1] Sid ManageTeamInstances" in out
    assert "- aws:ResourceTag/team must be blue" in out
    assert "\033[" not in out  # no colour when not a terminal


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BOB_START, "--explain", "--json"]) == 2
    answer = json.loads(capsys.readouterr().out)
    assert answer["decision"] == "Deny"
    explanation = answer["explanation"]
    (miss,) = explanation["nearest_misses"]
    assert miss["sid"] == "ManageTeamInstances"
    assert miss["needed"] == ["aws:ResourceTag/team must be blue"]


def test_without_explain_no_explanation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BOB_START, "--json"]) == 2
    assert "explanation" not in json.loads(capsys.readouterr().out)
    assert main(BOB_START) == 2
    assert "why:" not in capsys.readouterr().out


def test_chain_layers_text(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([
        "check", "--store", ORGANIZATION, "--principal-type", "role_session",
        "--principal", "arn:aws:sts::222222222222:assumed-role/Deploy/build",
        "--action", "ec2:RunInstances",
        "--resource", "arn:aws:ec2:us-east-1:222222222222:instance/*",
        "--context", "aws:RequestedRegion=us-east-1", "--explain",
    ])  # fmt: skip
    assert code == 2
    out = capsys.readouterr().out
    layers = re.findall(r"^[├└]─ layer (\w+)$", out, re.MULTILINE)
    assert layers == ["scp", "identity", "boundary"]
    assert "Sid DenyEc2OutsideEuWest1 (Deny): applies" in out


def test_requests_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = tmp_path / "r.jsonl"
    lines.write_text(
        json.dumps({"principal": "bob", "action": "s3:GetObject", "resource": "arn:aws:s3:::x/y"})
        + "\n"
        + json.dumps(
            {"principal": "nobody", "action": "s3:GetObject", "resource": "arn:aws:s3:::x"}
        )
        + "\n"
    )
    assert main(["check", "--store", STORE, "--requests", str(lines), "--explain"]) == 2
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["line"] == 1 and first["explanation"]["layers"][0]["layer"] == "identity"
    assert second["errors"] and second["explanation"]["layers"] == []
    assert "not explained: principal" in second["explanation"]["notes"][0]


SESSION = "arn:aws:sts::222222222222:assumed-role/Deploy/build"
TYPED = [
    ("arn:aws:iam::222222222222:root", "root", "s3:GetObject", "arn:aws:s3:::reports/q1.csv"),
    ("s3.amazonaws.com", "service", "s3:GetObject", "arn:aws:s3:::reports/q1.csv"),
    ("anonymous", "anonymous", "s3:GetObject", "arn:aws:s3:::reports/q1.csv"),
    (SESSION, "role_session", "s3:GetObject", "arn:aws:s3:::reports/q1.csv"),
    ("ci", "user", "sts:AssumeRole", "arn:aws:iam::222222222222:role/Deploy"),
    ("nobody", "user", "s3:GetObject", "arn:aws:s3:::reports/q1.csv"),
    ("ci", "user", "not an action", "arn:aws:s3:::reports/q1.csv"),
]


@pytest.mark.parametrize(("principal", "kind", "action", "resource"), TYPED)
def test_every_principal_type_is_explained_without_internal_errors(
    principal: str, kind: str, action: str, resource: str
) -> None:
    snapshot = load_store(ORGANIZATION)
    request = pdp.Request(principal, action, resource, principal_type=kind)
    decision, explanation = snapshot.explain(request)
    assert decision == snapshot.decide(request)  # explaining never changes the answer
    out = explanation.to_dict()
    assert (out["decision"], out["reason"]) == (decision.decision, decision.reason)
    assert not any("internal error" in note for note in out.get("notes", ()))
    if not decision.errors:
        assert out["layers"], out
    else:
        assert out["notes"][0].startswith("not explained:")
