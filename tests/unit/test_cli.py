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
