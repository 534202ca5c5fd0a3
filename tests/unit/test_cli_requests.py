"""`pdp check --requests FILE`: a file it cannot read is one line and exit 1, never a traceback,
and each line's fields mean what they mean over HTTP (a null principal_type is "user")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_cli import EXAMPLE, run_pdp

STORE = str(EXAMPLE)
CAROL = {"principal": "carol", "action": "dynamodb:GetItem", "resource": "*"}


def _check(requests: Path) -> tuple[int, list[str], list[str]]:
    result = run_pdp("check", "--store", STORE, "--requests", str(requests))
    return result.returncode, result.stdout.splitlines(), result.stderr.splitlines()


def test_a_missing_requests_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    code, out, err = _check(missing)
    assert (code, out) == (1, [])
    assert err == [f"pdp check: cannot read --requests {missing}: No such file or directory"]


def test_a_directory_as_requests_file_is_one_line(tmp_path: Path) -> None:
    code, out, err = _check(tmp_path)
    assert (code, out) == (1, [])
    assert err == [f"pdp check: cannot read --requests {tmp_path}: Is a directory"]


def test_a_line_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(json.dumps(CAROL).encode() + b'\n{"principal": "\xff\xfe"}\n')
    code, out, err = _check(requests)
    assert code == 1
    assert [json.loads(line)["decision"] for line in out] == ["Allow"]  # the lines before it
    assert err == [f"{requests}:2: invalid request: not UTF-8 text"]


@pytest.mark.parametrize("principal_type", [None, "", "user", "absent"])
def test_a_null_or_empty_principal_type_is_user_as_over_http(
    tmp_path: Path, principal_type: str | None
) -> None:
    request = dict(CAROL)
    if principal_type != "absent":
        request["principal_type"] = principal_type  # type: ignore[assignment]
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps(request) + "\n")
    code, out, err = _check(requests)
    assert (code, err) == (0, [])
    decision = json.loads(out[0])
    assert (decision["decision"], decision["errors"]) == ("Allow", [])


@pytest.mark.parametrize("principal_type", [False, 0, "admin"])
def test_other_principal_types_are_still_refused(tmp_path: Path, principal_type: object) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps({**CAROL, "principal_type": principal_type}) + "\n")
    code, out, _ = _check(requests)
    decision = json.loads(out[0])
    assert code == 0 and decision["decision"] == "Deny"
    assert decision["errors"] == ['principal_type: must be one of "user", "root"']
