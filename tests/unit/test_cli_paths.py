"""The commands that take a store or version path never report success on a path that is
neither (docs/store.md, "Command line"): a missing path, a file, or a directory that holds none
of a version's entries is one line naming it and exit 1, with nothing on stdout; a version with
no test cases is not a pass."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pdp.cli import main
from pdp.store import VERSION_ENTRIES
from tests.unit.test_cli import EXAMPLE, run_pdp

NEITHER = (
    "neither a store (no versions/) nor a version directory (none of account.json, store.json,"
    " policies/, groups/, users/, tests/, aws-managed/, roles/, resources/, organization/,"
    " accounts/)"
)
COMMANDS = (
    ["test"],
    ["audit"],
    ["audit", "--credential-report"],
    ["audit", "--format", "json"],
    ["validate"],
    ["managed", "list", "--store"],
    ["check", "--principal", "bob", "--action", "s3:GetObject", "--resource", "*", "--store"],
)


def _not_a_version(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A path of each kind that is no store or version, and what the commands say of it."""
    if kind == "missing":
        return tmp_path / "nonexistent", "no such directory"
    if kind == "file":
        path = tmp_path / "notes.txt"
        path.write_text("hello\n")
        return path, "not a directory"
    path = tmp_path / "tmp-like"
    path.mkdir()
    if kind == "other files":  # as /tmp: files and folders, none a version's, dot-names too
        (path / "notes.txt").write_text("hello\n")
        (path / "build").mkdir()
        (path / ".users").mkdir()
    return path, NEITHER


@pytest.mark.parametrize("kind", ["missing", "file", "empty", "other files"])
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_path_that_is_no_store_or_version_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, command: list[str]
) -> None:
    path, why = _not_a_version(tmp_path, kind)
    if command == ["validate"] and kind in ("missing", "file"):
        pytest.skip("validate reads a file as a policy, covered in test_cli.py")
    code = main([*command, str(path)])
    out, err = capsys.readouterr()
    if command == ["validate"]:
        assert (code, out) == (1, "")
        assert err == f"{path}: {why}\n"
        return
    assert (code, out) == (1, "")
    assert err.splitlines()[-1].endswith(f"{path}: {why}"), err
    assert len(err.splitlines()) == 1


def test_the_user_facing_commands_from_the_issue(tmp_path: Path) -> None:
    """As the issue tried them: `pdp test /nonexistent`, `pdp audit /nonexistent`, `pdp validate
    /tmp` (here a directory like it)."""
    missing = tmp_path / "nonexistent"
    tested = run_pdp("test", str(missing))
    assert (tested.returncode, tested.stdout) == (1, "")
    assert tested.stderr == f"pdp test: {missing}: no such directory\n"
    audited = run_pdp("audit", str(missing))
    assert (audited.returncode, audited.stdout) == (1, "")
    assert audited.stderr == f"{missing}: no such directory\n"
    like_tmp, _ = _not_a_version(tmp_path, "other files")
    validated = run_pdp("validate", str(like_tmp))
    assert (validated.returncode, validated.stdout) == (1, "")
    assert validated.stderr == f"{like_tmp}: {NEITHER}\n"


def test_validate_as_json_reports_the_path_as_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _not_a_version(tmp_path, "empty")
    assert main(["validate", "--format", "json", str(path)]) == 1
    document = json.loads(capsys.readouterr().out)
    assert [(p["code"], p["message"]) for p in document["problems"]] == [
        ("store_unresolved", f"{path}: {NEITHER}")
    ]


@pytest.mark.parametrize("entry", VERSION_ENTRIES)
def test_any_one_entry_makes_a_version_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str
) -> None:
    version = tmp_path / "v1"
    version.mkdir()
    if entry.endswith(".json"):
        (version / entry).write_text("{}")
    else:
        (version / entry).mkdir()
    assert main(["validate", str(version)]) == 0
    assert capsys.readouterr().out.startswith(f"{version}: ok (version v1: 0 users")


def test_a_store_with_no_version_is_named_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    (store / "versions").mkdir(parents=True)
    assert main(["test", str(store)]) == 1
    assert capsys.readouterr() == ("", f"pdp test: {store}: versions/ holds no version\n")


@pytest.mark.parametrize("tests", [None, "[]"])
def test_a_version_with_no_test_cases_is_not_a_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tests: str | None
) -> None:
    """`pdp test` on a version without tests said PASS: 0/0 and exit 0; nothing was tested."""
    version = tmp_path / "0001"
    shutil.copytree(EXAMPLE / "versions" / "0001", version)
    shutil.rmtree(version / "tests")
    if tests is not None:
        (version / "tests").mkdir()
        (version / "tests" / "empty.json").write_text(tests)
    assert main(["test", str(version)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"pdp test: {version}: version 0001 has no test cases (tests/*.json): nothing tested\n"
    )
    shutil.copytree(EXAMPLE / "versions" / "0001" / "tests", version / "tests", dirs_exist_ok=True)
    assert main(["test", str(version)]) == 0
    assert capsys.readouterr().out == "PASS: 2/2 (version 0001)\n"
