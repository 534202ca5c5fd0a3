"""The `pdp` command line as a shell user meets it: a reader that stops early (`| head -1`),
`--help` with every option explained and examples that parse, PDP_STORE as the default store
of every command, and messages about a principal that name the store they looked in."""

from __future__ import annotations

import argparse
import io
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import EXIT_BROKEN_PIPE, main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "store"


def pdp_command() -> list[str]:
    script = Path(sys.executable).parent / "pdp"
    return [str(script)] if script.exists() else [shutil.which("pdp") or "pdp"]


def _first_line_then_close(*args: str, stdin: bytes | None = None) -> tuple[int, bytes, str]:
    """Run pdp, read one line of its output and close the pipe, as `| head -1` does."""
    process = subprocess.Popen(
        pdp_command() + list(args),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    if stdin is not None:
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()
    first = process.stdout.readline()
    process.stdout.close()
    error = process.stderr.read().decode()
    process.stderr.close()
    return process.wait(timeout=120), first, error


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    code, first, error = _first_line_then_close("actions", "*")
    assert first.strip()
    assert (code, error) == (EXIT_BROKEN_PIPE, "")


def test_check_requests_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    line = '{"principal": "bob", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}\n'
    requests.write_text(line * 3000)  # some 600 KB of decisions: more than a pipe holds
    code, first, error = _first_line_then_close(
        "check", "--store", str(EXAMPLE), "--requests", str(requests)
    )
    assert first.startswith(b"{")
    assert (code, error) == (EXIT_BROKEN_PIPE, "")


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_main_returns_141_when_stdout_is_a_closed_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through main() too, where stdout has no file descriptor to point at devnull."""
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["actions", "s3:Get*"]) == EXIT_BROKEN_PIPE


class _Parsed(Exception):
    """Raised instead of parsing, carrying the parser main() built."""


def _parser(monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        raise _Parsed(self)

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", capture)
        with pytest.raises(_Parsed) as caught:
            main(["validate", "x"])
    parser = caught.value.args[0]
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def _commands(
    parser: argparse.ArgumentParser, name: str = "pdp"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                if sub_name != "serve":  # pdp_server's own parser (pdp serve --help)
                    found += _commands(sub, f"{name} {sub_name}")
    return found


def test_every_option_has_help_and_every_command_examples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PDP_STORE", str(EXAMPLE))  # for `PDP_STORE=examples/store pdp test`
    parser = _parser(monkeypatch)
    commands = _commands(parser)
    assert len(commands) >= 13
    examples = 0
    for name, command in commands:
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            label = "/".join(action.option_strings) or action.dest
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {label}: no help"
        assert command.epilog and command.epilog.startswith("examples:\n"), f"{name}: no example"
        for line in command.epilog.splitlines()[1:]:
            words = shlex.split(line.replace("\\", " "), comments=True)
            while words and "=" in words[0]:
                words.pop(0)  # PDP_ADMIN_TOKEN=... pdp reload
            if words[:1] != ["pdp"] or {"--help", "--version"} & set(words):
                continue
            if ">" in words:
                words = words[: words.index(">")]
            assert name.split()[1:] == words[1 : len(name.split())], f"{name}: {line}"
            parsed = argparse.ArgumentParser.parse_args(parser, words[1:])  # exits if wrong
            assert parsed.command == words[1]
            examples += 1
    assert examples >= len(commands) - 3  # `pdp`, `pdp import` show other commands' examples


def test_help_prints_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["check", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "examples:\n  pdp check --store examples/store --principal bob" in out
    assert "--context KEY=VALUE   a request context key" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["test"], "PASS: 16/16 (version 0002)"),
        (["validate"], "ok (version 0002: 3 users, 3 groups, 5 policies)"),
        (["audit", "--credential-report"], "user,arn,"),
    ],
)
def test_test_validate_and_audit_default_to_pdp_store(
    argv: list[str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PDP_STORE", str(EXAMPLE))
    assert main(argv) == 0
    assert expected in capsys.readouterr().out


def test_an_explicit_path_wins_over_pdp_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PDP_STORE", str(EXAMPLE / "versions" / "0001"))
    assert main(["test", str(EXAMPLE)]) == 0
    assert "(version 0002)" in capsys.readouterr().out
    assert main(["validate", str(EXAMPLE / "current" / "policies" / "OwnHomePrefix.json")]) == 0
    out = capsys.readouterr().out
    assert "OwnHomePrefix.json: ok" in out and "version 0001" not in out


@pytest.mark.parametrize("command", ["test", "validate", "audit"])
def test_without_a_path_or_pdp_store_the_path_is_required(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PDP_STORE", raising=False)
    with pytest.raises(SystemExit) as refused:
        main([command])
    assert refused.value.code == 2
    assert "the following arguments are required" in capsys.readouterr().err


def test_an_unknown_principal_names_the_store_looked_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(EXAMPLE)
    db = str(tmp_path / "advisor.sqlite")
    assert main(["access-advisor", "--store", store, "--principal", "nobody", "--db", db]) == 1
    assert capsys.readouterr().err == (
        f"pdp access-advisor: no user 'nobody' in the store {store} (version 0002)\n"
    )
    argv = ["check", "--store", store, "--principal", "nobody", "--action", "s3:GetObject"]
    assert main([*argv, "--resource", "arn:aws:s3:::b/k"]) == 2
    assert capsys.readouterr().out.splitlines() == [
        "Deny (implicitDeny)  version 0002",
        '  error: principal: unknown principal "nobody" (no such user in store version 0002)',
    ]


def test_pdp_serve_help_names_every_option_with_examples() -> None:
    """pdp serve has its own parser (pdp_server): every flag has help, and --help shows
    examples that its parser accepts."""
    from pdp_server.main import build_parser

    parser = build_parser()
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings
    assert parser.epilog and parser.epilog.startswith("examples:\n")
    shown = 0
    for line in parser.epilog.splitlines()[1:]:
        words = shlex.split(line)
        while words and "=" in words[0]:
            words.pop(0)
        assert words[:2] == ["pdp", "serve"], line
        parser.parse_args(words[2:])  # exits if an example does not parse
        shown += 1
    assert shown >= 3
