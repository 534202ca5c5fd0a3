"""`pdp check --requests FILE`, a batch tool: one JSON result per request line with its line
number, bad lines reported and counted without stopping the run, `-` for stdin, and the exit
code of docs/store.md ("Command line"): 0 all allowed, 2 one denied, 1 a bad line or no run.
A file it cannot read is one line and exit 1, never a traceback, and each line's fields mean
what they mean over HTTP (a null principal_type is "user")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdp.cli import MAX_REQUEST_LINE, main
from tests.unit.test_cli import EXAMPLE, run_pdp

STORE = str(EXAMPLE)
CAROL = {"principal": "carol", "action": "dynamodb:GetItem", "resource": "*"}


def _check(requests: Path | str, stdin: str | None = None) -> tuple[int, list[str], list[str]]:
    result = run_pdp("check", "--store", STORE, "--requests", str(requests), stdin=stdin)
    return result.returncode, result.stdout.splitlines(), result.stderr.splitlines()


def _summary(name: object, lines: int, allowed: int, denied: int, invalid: int) -> str:
    counted = f"{allowed} allowed, {denied} denied, {invalid} invalid"
    return f"pdp check: {name}: {lines} line{'s' if lines != 1 else ''}: {counted}"


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
    assert [json.loads(line) for line in out][1] == {
        "line": 2,
        "error": "invalid request: not UTF-8 text",
    }
    assert err == [f"{requests}:2: invalid request: not UTF-8 text", _summary(requests, 2, 1, 0, 1)]


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
    assert (code, err) == (0, [_summary(requests, 1, 1, 0, 0)])
    decision = json.loads(out[0])
    assert (decision["decision"], decision["errors"]) == ("Allow", [])


@pytest.mark.parametrize("principal_type", [False, 0, "admin"])
def test_other_principal_types_are_still_refused(tmp_path: Path, principal_type: object) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps({**CAROL, "principal_type": principal_type}) + "\n")
    code, out, _ = _check(requests)
    decision = json.loads(out[0])
    assert code == 2 and decision["decision"] == "Deny"
    assert decision["errors"] == [
        'principal_type: must be one of "user", "root", "role_session", "service",'
        ' "federated", "anonymous"'
    ]


def test_every_line_is_answered_with_its_number_and_bad_lines_are_counted(tmp_path: Path) -> None:
    """Through main(): a bad line in the middle does not stop the run; blank lines are skipped;
    a request_id is echoed; the engine's own refusals are Deny results (exit 2 without bad lines,
    1 with one)."""
    lines = [
        json.dumps({**CAROL, "request_id": "r-1"}),
        "",
        "not json",
        "[1]",
        json.dumps({**CAROL, "contxt": {"aws:MultiFactorAuthPresent": False}}),
        json.dumps({**CAROL, "context": "aws:MultiFactorAuthPresent=false"}),
        json.dumps({**CAROL, "request_id": 7}),
        '{"principal": "nobody", "action": "s3:GetObject", "resource": "*"}',
        "   ",
        json.dumps(CAROL),
    ]
    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join(lines) + "\n")
    code, out, err = _check(requests)
    assert code == 1
    results = [json.loads(line) for line in out]
    assert [(r["line"], r.get("decision"), r.get("error")) for r in results] == [
        (1, "Allow", None),
        (3, None, "invalid request: not JSON: Expecting value: line 1 column 1 (char 0)"),
        (4, None, "invalid request: must be a JSON object"),
        (
            5,
            None,
            "invalid request: contxt: unknown field (known: principal, principal_type, action,"
            " resource, context, request_id, session)",
        ),
        (6, None, "invalid request: context: must be a JSON object"),
        (7, None, "invalid request: request_id: must be a string of at most 4096 characters"),
        (8, "Deny", None),
        (10, "Allow", None),
    ]
    assert results[0]["request_id"] == "r-1" and "request_id" not in results[-1]
    assert results[6]["errors"] == [
        'principal: unknown principal "nobody" (no such user in store version 0002)'
    ]
    assert err[0] == f"{requests}:3: {results[1]['error']}"
    assert err[-1] == _summary(requests, 8, 2, 1, 5)

    (tmp_path / "denied.jsonl").write_text("\n".join([lines[0], lines[7]]))  # no final newline
    code, out, err = _check(tmp_path / "denied.jsonl")
    assert (code, len(out), err) == (2, 2, [_summary(tmp_path / "denied.jsonl", 2, 1, 1, 0)])


def test_dash_reads_the_requests_from_stdin() -> None:
    code, out, err = _check("-", stdin=json.dumps(CAROL) + "\n" + json.dumps(CAROL) + "\n")
    assert (code, err) == (0, [_summary("<stdin>", 2, 2, 0, 0)])
    assert [json.loads(line)["line"] for line in out] == [1, 2]
    code, out, err = _check("-", stdin="{}\n")
    assert code == 2 and json.loads(out[0])["decision"] == "Deny"


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_no_request_at_all_is_not_a_success(tmp_path: Path, content: str) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(content)
    assert _check(requests) == (1, [], [f"pdp check: {requests}: no request (nothing decided)"])


def test_a_line_past_the_limit_is_refused_unread_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requests = tmp_path / "requests.jsonl"
    huge = json.dumps({**CAROL, "resource": "x" * MAX_REQUEST_LINE})
    requests.write_text(huge + "\n" + json.dumps(CAROL) + "\n" + "[" * 100_000 + "\n")
    assert main(["check", "--store", STORE, "--requests", str(requests)]) == 1
    out, err = capsys.readouterr()
    assert [json.loads(line) for line in out.splitlines()][::2] == [
        {"line": 1, "error": f"invalid request: longer than {MAX_REQUEST_LINE} bytes"},
        {"line": 3, "error": "invalid request: not JSON: nested too deep"},
    ]
    assert err.splitlines()[-1] == _summary(requests, 3, 1, 0, 2)


@pytest.mark.parametrize(
    "extra",
    [["--principal", "bob"], ["--root"], ["--context", "a=b", "--action", "s3:GetObject"]],
)
def test_requests_and_the_one_request_options_do_not_mix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps(CAROL) + "\n")
    assert main(["check", "--store", STORE, "--requests", str(requests), *extra]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("pdp check: --requests reads each request from its lines")


def test_the_documented_batch_output_is_what_pdp_prints(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "store.md").read_text()
    block = docs.split("**Batches (`--requests FILE`).**", 1)[1].split("```json\n", 1)[1]
    shown = [json.loads(line) for line in block.split("```", 1)[0].splitlines()]
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps({**CAROL, "request_id": "r-1"}) + "\n\nnot json\n")
    code, out, err = _check(requests)
    assert (code, [json.loads(line) for line in out]) == (1, shown)
    assert err[-1] == _summary(requests, 2, 1, 0, 1)
