"""The `pdp` command line: through the installed console script, as a user runs it, and through
`main()` where many text paths are checked at once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import unicodedata
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main


def run_pdp(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "pdp"
    command = [str(script)] if script.exists() else [shutil.which("pdp") or "pdp"]
    return subprocess.run(
        command + list(args), capture_output=True, text=True, timeout=60, input=stdin
    )


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
    assert result.returncode == 0 and result.stdout.strip() == "PASS: 16/16 (version 0002)"
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
    assert many.returncode == 2  # one denied (docs/store.md, "Command line")
    lines = [json.loads(line) for line in many.stdout.splitlines()]
    assert [(d["line"], d["decision"]) for d in lines] == [(1, "Allow"), (2, "Deny")]
    assert lines[1]["errors"] == [
        'principal: unknown principal "nobody" (no such user in store version 0002)'
    ]


def test_validate_refuses_an_escape_sequence_in_a_condition_key(tmp_path: Path) -> None:
    """A condition key that would clear the reviewer's screen is refused, shown escaped."""
    version = tmp_path / "store" / "versions" / "0001"
    (version / "policies").mkdir(parents=True)
    key = "aws:username\x1b[2J\x1b[H"
    (version / "policies" / "x.json").write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "*",
                    "Condition": {"StringEquals": {key: "ann"}},
                },
            }
        )
    )
    result = run_pdp("validate", str(tmp_path / "store"))
    assert result.returncode == 1
    shown = "aws:username\\x1b[2J\\x1b[H"
    assert result.stderr.splitlines() == [
        f"policies/x.json: Statement.Condition.StringEquals.{shown}: condition key"
        f' "{shown}" holds a control or bidirectional-override character'
        " (condition keys are printable text)"
    ]
    assert "\x1b" not in result.stdout + result.stderr


# ESC sequences (clear screen, cursor home, CSI as C1), CR, BEL, a bidi override, a fake line
HOSTILE = "\x1b[2J\x1b[H\rHIGH (0)\u202e\x9b31m\x07\n"


def _raw_controls(text: str) -> list[str]:
    """Characters a terminal would act on, other than the newlines that end lines."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert _raw_controls(out) == [] and _raw_controls(err) == [], (out, err)
    assert "HIGH (0)" not in out.splitlines() + err.splitlines()  # no forged line either
    return code, out + err


def test_no_cli_text_output_passes_control_characters_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every text path of the CLI escapes what the store, the files or the caller supplied."""
    doc = {"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}
    named = tmp_path / f"p{HOSTILE.strip()}.json"
    named.write_text(json.dumps(doc))
    assert _run(capsys, "validate", str(named))[0] == 0
    assert _run(capsys, "validate", str(tmp_path / f"gone{HOSTILE}"))[0] == 1

    # store problems (an unknown field and an inline policy name the store echoes raw)
    broken = tmp_path / "broken"
    shutil.copytree(EXAMPLE / "versions" / "0002", broken)
    carol = json.loads((broken / "users" / "carol.json").read_text())
    carol[HOSTILE] = 1
    carol["inline_policies"][f"X{HOSTILE}"] = doc
    (broken / "users" / "carol.json").write_text(json.dumps(carol))
    for command in ("validate", "test", "audit"):
        code, text = _run(capsys, command, str(broken))
        assert code == 1 and "\\x1b[2J" in text, command
    assert _run(capsys, "check", "--store", str(broken), "--principal", "bob")[0] == 1

    # policy tests: a case name and the request strings in its failure
    tested = tmp_path / "tested"
    shutil.copytree(EXAMPLE / "versions" / "0002", tested)
    case = {"name": HOSTILE, "principal": f"bob{HOSTILE}", "action": "s3:GetObject"}
    case.update(resource=f"arn:aws:s3:::b/{HOSTILE}", expect="Allow")
    (tested / "tests" / "smoke.json").write_text(json.dumps([case]))
    code, text = _run(capsys, "test", "-v", str(tested))
    assert code == 1 and "FAIL: tests/smoke.json[0] \\x1b[2J" in text

    # pdp check: the decision's errors echo the caller's action and principal
    store = str(EXAMPLE)
    common = ["check", "--store", store, "--resource", "*"]
    code, text = _run(capsys, *common, "--principal", HOSTILE, "--action", f"s3:Get{HOSTILE}")
    assert code == 2 and "error: " in text
    assert (
        _run(capsys, *common, "--principal", "bob", "--action", "s3:Get", "--context", HOSTILE)[0]
        == 1
    )
    requests = tmp_path / f"r{HOSTILE.strip()}.jsonl"
    requests.write_text("[1]\n")
    assert _run(capsys, "check", "--store", store, "--requests", str(requests))[0] == 1

    # access advisor, suggest-policy
    advisor = ["access-advisor", "--store", store, "--db", str(tmp_path / "a.db")]
    assert _run(capsys, *advisor, "--principal", HOSTILE)[0] == 1
    suggest = ["suggest-policy", "--store", store, "--principal", "bob", "--log", HOSTILE]
    assert _run(capsys, *suggest)[0] == 1


def test_reload_escapes_what_the_server_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pdp reload` prints the admin server's error, problems and version names escaped."""
    problem = {k: HOSTILE for k in ("code", "source", "path", "message", "hint")}
    error = {"code": HOSTILE, "message": HOSTILE, "problems": [problem]}
    answers: list[tuple[int, dict[str, Any]]] = [
        (422, {"error": error, "version": HOSTILE}),
        (400, {"error": HOSTILE, "problems": [f"users/x.json: {HOSTILE}"]}),  # an older server
        (200, {"version": HOSTILE, "previous": HOSTILE, "load_seconds": 0.1}),
    ]

    class Admin(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            status, body = answers.pop(0)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Admin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        address = f"127.0.0.1:{server.server_address[1]}"
        code, text = _run(capsys, "reload", "--admin", address)
        assert code == 1 and text.startswith("pdp reload: 422 (\\x1b[2J"), text
        assert text.count("\\x1b[2J") == 7, text  # code, message, and each field of the problem
        code, text = _run(capsys, "reload", "--admin", address)
        assert code == 1 and text.startswith("pdp reload: 400: \\x1b[2J"), text
        assert "  users/x.json: \\x1b[2J" in text, text
        code, text = _run(capsys, "reload", "--admin", address)
        assert code == 0 and text.startswith("reloaded: version \\x1b[2J")
    finally:
        server.shutdown()
        server.server_close()
