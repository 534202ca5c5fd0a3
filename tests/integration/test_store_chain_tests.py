"""A version's policy tests (`tests/*.json`) for the evaluation chain: cases with a typed
principal, a role session and the layers that must have denied (`blocked_by`), run by `pdp test`
and by every load; a case whose session or blocked_by does not read refuses the version, with the
file and the JSON path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main
from pdp.store import read_version
from tests.unit.test_cli_chain import OBJECT, ROLE_SESSION, write_chain_store

SESSION_CASE: dict[str, Any] = {
    "principal": ROLE_SESSION,
    "principal_type": "role_session",
    "action": "s3:PutObject",
    "resource": OBJECT,
    "session": {"tags": {"team": "reports"}, "mfa_present": True},
    "expect": "Allow",
    "blocked_by": [],
}
SCP_CASE: dict[str, Any] = {
    "name": "no ec2 in the org",
    "principal": "alice",
    "action": "ec2:RunInstances",
    "resource": "*",
    "expect": "Deny",
    "reason": "implicitDeny",
    "blocked_by": ["scp"],
}


def _store(tmp_path: Path, cases: list[Any]) -> Path:
    return write_chain_store(tmp_path, {"tests/chain.json": cases})


def test_cases_with_sessions_and_blocked_by_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(tmp_path, [SESSION_CASE, SCP_CASE])
    assert main(["test", str(store), "-v"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "PASS: tests/chain.json[0]",
        "PASS: tests/chain.json[1] no ec2 in the org",
        "PASS: 2/2 (version 1)",
    ]


def test_a_different_blocked_by_fails_the_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = {**SCP_CASE, "blocked_by": ["identity"]}
    other_session = {**SESSION_CASE, "session": {"tags": {"team": "web"}}}
    store = _store(tmp_path, [wrong, other_session])
    assert main(["test", str(store)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "FAIL: tests/chain.json[0] no ec2 in the org: alice ec2:RunInstances on *: expected Deny"
        " (implicitDeny) blocked_by [identity], got Deny (implicitDeny) blocked_by [scp]",
        f"FAIL: tests/chain.json[1]: {ROLE_SESSION} s3:PutObject on {OBJECT}: expected Allow"
        " blocked_by [], got Deny (explicitDeny) blocked_by [identity]",
        "FAIL: 0/2 (version 1)",
    ]


@pytest.mark.parametrize(
    ("case", "path", "message"),
    [
        (
            {**SESSION_CASE, "session": {"tags": {"team": 7}}},
            "[1].session.tags.team",
            "the value must be a string of at most 256 characters",
        ),
        (
            {**SESSION_CASE, "session": {"mfa": True}},
            "[1].session.mfa",
            "unknown field (known: policies, policy_arns, tags, transitive_tag_keys,"
            " mfa_present, mfa_age, source_identity, issued_at, role_chain)",
        ),
        (
            {**SESSION_CASE, "principal_type": "user", "principal": "alice"},
            "[1].session",
            'a session needs principal_type "role_session", not "user"',
        ),
        (
            {**SCP_CASE, "blocked_by": ["scp", "scps"]},
            "[1].blocked_by[1]",
            'unknown layer "scps" (layers: rcp, scp, resource, identity, boundary, session)',
        ),
        ({**SCP_CASE, "blocked_by": "scp"}, "[1].blocked_by", "blocked_by is a list of layers"),
        ({**SCP_CASE, "blocked_by": ["scp", "scp"]}, "[1].blocked_by[1]", "scp twice"),
        (
            {**SCP_CASE, "principal_type": "robot"},
            "[1].principal_type",
            'principal_type is one of "user", "root", "role_session", "service", "federated",'
            ' "anonymous"',
        ),
    ],
)
def test_a_case_that_does_not_read_refuses_the_version(
    tmp_path: Path, case: dict[str, Any], path: str, message: str
) -> None:
    store = _store(tmp_path, [SCP_CASE, case])
    version, problems = read_version("1", store / "versions" / "1")
    assert version is None
    assert [(p.source, p.path, p.code, p.message) for p in problems] == [
        ("tests/chain.json", path, "invalid_test", message)
    ]


def test_blocked_by_in_any_order_and_other_principal_types(tmp_path: Path) -> None:
    service = {"principal": "s3.amazonaws.com", "principal_type": "service",
               "action": "s3:GetObject", "resource": OBJECT, "expect": "Deny",
               "blocked_by": ["resource"]}  # fmt: skip
    store = _store(tmp_path, [service])
    version, problems = read_version("1", store / "versions" / "1")
    assert problems == [] and version is not None
    assert version.tests[0].principal_type == "service"
    assert version.tests[0].blocked_by == ("resource",)
    (store / "versions" / "1" / "tests" / "chain.json").write_text(
        json.dumps([{**SCP_CASE, "blocked_by": ["identity", "scp"]}])
    )
    version, _ = read_version("1", store / "versions" / "1")
    assert version is not None and version.tests[0].blocked_by == ("scp", "identity")
