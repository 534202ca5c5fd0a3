"""Every `pdp` command shown in a ```sh block of README.md and docs/*.md runs, as written, through
`pdp.cli.main`, against temporary copies of examples/store and examples/organization (as
test_evaluate runs the README's Python). A command that needs a running server is in SKIPPED,
with the reason; each entry must still match a shown command, so that the list cannot outlive
what it excuses."""

from __future__ import annotations

import glob
import io
import json
import os
import re
import shlex
import shutil
import time
from contextlib import redirect_stdout
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

import pdp
from pdp.audit import AccessAdvisor, DecisionEvent
from pdp.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAMS = ("pdp", ".venv/bin/pdp")
ENV_ASSIGNMENT = re.compile(r"[A-Z_][A-Z0-9_]*=")
PDP_LINE = re.compile(r"\s*(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:\.venv/bin/)?pdp(?:\s|$)")
SH_BLOCK = re.compile(r"^ *```sh\n(.*?)^ *```", re.S | re.M)

# (subcommand, reason): commands not run here. Keep it short; each reason says where it is tested.
SKIPPED = {
    "serve": "starts a long-running server (tests/integration/test_serving.py starts it)",
    "reload": "asks a running server's admin listener (tests/integration/test_serving.py)",
}
OK_CODES = {0, 2, 3}  # allowed; denied (pdp check); findings at --fail-on (pdp audit)
# Commands whose exit codes mean something else: `pdp diff` exits 1 when the versions differ
# and 2 on an error, which must fail here.
OK_CODES_OF = {"diff": {0, 1}}


@dataclass
class Shown:
    """One command of a ```sh block: where it is, its words, its environment, its redirect."""

    where: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdout_to: str | None = None


def _logical_lines(block: str) -> list[tuple[int, str]]:
    """The block's lines with `\\` continuations joined, each with its offset in the block."""
    lines: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for offset, line in enumerate(block.splitlines()):
        start, text = pending if pending is not None else (offset, "")
        text += line
        if line.rstrip().endswith("\\"):
            pending = (start, text.rstrip()[:-1] + " ")
            continue
        pending = None
        lines.append((start, text))
    return lines


def shown_commands() -> list[Shown]:
    """The `pdp` commands of every ```sh block, in document order (README first)."""
    found: list[Shown] = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for block in SH_BLOCK.finditer(text):
            first = text.count("\n", 0, block.start(1)) + 1
            for offset, line in _logical_lines(block.group(1)):
                if not PDP_LINE.match(line):
                    continue  # another program's line (curl, aws, make) may span lines in quotes
                words = shlex.split(line, comments=True)
                env: dict[str, str] = {}
                while words and ENV_ASSIGNMENT.match(words[0]):
                    key, _, value = words.pop(0).partition("=")
                    env[key] = value
                if not words or words[0] not in PROGRAMS:
                    continue
                where = f"{document.relative_to(ROOT)}:{first + offset}"
                operators = [w for w in words if w in ("|", "||", "&&", ";", "&", "<", ">>")]
                assert not operators, f"{where}: a shown command is one plain command: {line}"
                stdout_to = None
                if ">" in words:
                    at = words.index(">")
                    assert at == len(words) - 2, f"{where}: `> FILE` ends a command: {line}"
                    stdout_to = words[-1]
                    words = words[:at]
                found.append(Shown(where, words[1:], env, stdout_to))
    return found


def _expand(word: str) -> list[str]:
    """A path pattern as the shell expands it (`dir/*.json`); other words as they are."""
    if "/" in word and any(c in word for c in "*?["):
        matches = sorted(glob.glob(word))
        assert matches, f"{word} matches nothing"
        return matches
    return [word]


def _log_requests(workspace: Path) -> list[DecisionEvent]:
    """Decisions of the example store, as `pdp serve --decision-log` logs them."""
    authorizer = pdp.Authorizer.from_directory(str(workspace / "examples/store/current"))
    requests = [
        ("bob", "s3:GetObject", "arn:aws:s3:::example-bucket/report.csv", {}),
        ("bob", "s3:ListBucket", "arn:aws:s3:::example-bucket", {}),
        ("bob", "s3:DeleteObject", "arn:aws:s3:::example-bucket/report.csv", {}),
    ]
    now = time.time()
    return [
        DecisionEvent.of(p, a, r, c, authorizer.is_authorized(p, a, r, c), 0.0, now=now - 60)
        for p, a, r, c in requests
    ]


def _prepare(workspace: Path, shown: Shown) -> None:
    """Create what a command reads that a running server would have written: the decision log
    (--log) and the Access Advisor database (--db, --advisor-db)."""
    for option, value in zip(shown.argv, shown.argv[1:], strict=False):
        if os.path.exists(value):
            continue
        if option == "--log":
            lines = [json.dumps(e.to_dict()) for e in _log_requests(workspace)]
            Path(value).write_text("\n".join(lines) + "\n", encoding="utf-8")
        elif option in ("--db", "--advisor-db"):
            advisor = AccessAdvisor(value)
            for event in _log_requests(workspace):
                advisor.observe(event)
            advisor.close()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory laid out as the checkout the documents speak of, with what they read."""
    shutil.copytree(ROOT / "examples/store", tmp_path / "examples/store", symlinks=True)
    # docs/evaluation.md's worked example (a multi-account store with its requests.jsonl)
    shutil.copytree(
        ROOT / "examples/organization", tmp_path / "examples/organization", symlinks=True
    )
    fixtures = ROOT / "tests/fixtures/aws"
    shutil.copy(fixtures / "authorization-details.json", tmp_path / "details.json")
    shutil.copy(fixtures / "password-policy.json", tmp_path / "password-policy.json")
    shutil.copy(fixtures / "credential-report.csv", tmp_path / "report.csv")
    (tmp_path / "requests.jsonl").write_text(
        '{"principal": "bob", "action": "s3:GetObject",'
        ' "resource": "arn:aws:s3:::example-bucket/report.csv"}\n'
        '{"principal": "carol", "action": "dynamodb:GetItem", "resource": "*"}\n',
        encoding="utf-8",
    )
    # the version being edited that `pdp publish work` publishes (docs/store.md: a copy)
    shutil.copytree(ROOT / "examples/store/versions/0002", tmp_path / "work")
    (tmp_path / "logs").mkdir()
    monkeypatch.setenv("LOGS", str(tmp_path / "logs"))  # README: LOGS=$(mktemp -d)
    monkeypatch.chdir(tmp_path)
    for name in ("PDP_STORE", "PDP_ADMIN", "PDP_ADMIN_TOKEN", "PDP_ADMIN_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_the_documents_show_commands() -> None:
    commands = shown_commands()
    assert len(commands) >= 30
    shown = {c.argv[0] for c in commands if c.argv and not c.argv[0].startswith("-")}
    assert {"validate", "test", "check", "audit", "import", "managed", "actions"} <= shown
    assert set(SKIPPED) <= shown, "a SKIPPED entry matches no shown command: drop it"


def test_every_shown_command_runs(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = 0
    for shown in shown_commands():
        if shown.argv and shown.argv[0] in SKIPPED:
            continue
        with monkeypatch.context() as env:
            for key, value in shown.env.items():
                env.setenv(key, value)
            shown = replace(shown, argv=[os.path.expandvars(w) for w in shown.argv])
            _prepare(workspace, shown)
            argv = [word for w in shown.argv for word in _expand(w)]
            out = io.StringIO()
            try:
                with redirect_stdout(out):
                    code = main(argv)
            except SystemExit as exc:  # --help, --version: argparse exits; 0 is success
                code = 1 if exc.code not in (0, None) else 0
        err = capsys.readouterr().err
        ok = OK_CODES_OF.get(argv[0] if argv else "", OK_CODES)
        assert code in ok, f"{shown.where}: pdp {shlex.join(argv)} exited {code}:\n{err}"
        if shown.stdout_to is not None:
            Path(shown.stdout_to).write_text(out.getvalue(), encoding="utf-8")
        else:
            assert out.getvalue() or code != 0, f"{shown.where}: pdp {shlex.join(argv)}: no output"
        ran += 1
    assert ran >= 25
