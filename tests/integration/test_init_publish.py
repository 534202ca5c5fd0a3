"""`pdp init DIR` and `pdp publish WORKDIR --store DIR` through the command line (docs/store.md,
"Publishing a version"): a new store validates and passes its tests; a publish writes the next
version and moves `current` atomically; every refusal names the problem and leaves the store
byte for byte as it was."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main

Tree = dict[str, tuple[str, bytes | str]]


def tree(root: Path) -> Tree:
    """Every entry below root, hidden ones included: its kind and its bytes or link target."""
    out: Tree = {}
    for here, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(here) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", b"")
            else:
                out[rel] = ("file", path.read_bytes())
    return out


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "store"
    assert run(capsys, "init", str(path))[0] == 0
    return path


def workdir(store: Path, tmp_path: Path, name: str = "work") -> Path:
    work = tmp_path / name
    shutil.copytree(store / "versions" / "0001", work)
    return work


def write(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc))


def test_init_makes_a_store_that_validates_and_passes_its_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "new" / "store"
    code, out, _ = run(capsys, "init", str(path))
    assert code == 0
    assert f"created {path}: versions/0001, current -> versions/0001" in out
    assert os.readlink(path / "current") == "versions/0001"
    assert sorted(os.listdir(path / "versions")) == ["0001"]  # no temporary left
    version = path / "versions" / "0001"
    for rel in ("account.json", "users/example-user.json", "groups/example-readers.json"):
        assert (version / rel).is_file()
    assert (version / "policies" / "ExampleBucketRead.json").is_file()
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 0 and "1 users, 1 groups, 1 policies" in out
    code, out, _ = run(capsys, "test", "-v", str(path))
    assert code == 0 and "PASS: 2/2 (version 0001)" in out
    assert run(capsys, "audit", str(path), "--fail-on", "low")[0] == 0  # an example to copy
    allowed = ("--action", "s3:GetObject", "--resource", "arn:aws:s3:::example-bucket/a")
    check = ("check", "--store", str(path), "--principal", "example-user")
    assert run(capsys, *check, *allowed)[0] == 0


@pytest.mark.parametrize("entry", ["notes.txt", ".hidden", "versions"])
def test_init_refuses_a_directory_that_is_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str
) -> None:
    target = tmp_path / "dir"
    target.mkdir()
    (target / entry).write_text("keep me")
    before = tree(target)
    code, _, err = run(capsys, "init", str(target))
    assert code == 1
    assert f"pdp init: {target}: nothing created" in err
    assert f"not empty (1 entries: {entry})" in err
    assert tree(target) == before


def test_init_refuses_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = run(capsys, "init", str(target))
    assert code == 1 and "not a directory" in err
    assert target.read_text() == "x"


def test_publish_writes_the_next_version_and_moves_current(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = workdir(store, tmp_path)
    write(work / "users" / "carol.json", {"groups": ["example-readers"]})
    (work / "README.md").write_text("notes of the editor")
    (work / "users" / ".carol.json.swp").write_text("an editor's swap file")
    code, out, err = run(capsys, "publish", str(work), "--store", str(store))
    assert code == 0, err
    assert f"published {work} as {store}/versions/0002: 2 users, 1 groups" in out
    assert "2 policy tests passed" in out
    assert "left out (the loader does not read them): README.md" in out
    assert "serving: current -> versions/0002" in out
    assert os.readlink(store / "current") == "versions/0002"
    assert sorted(os.listdir(store / "versions")) == ["0001", "0002"]
    assert sorted(os.listdir(store)) == ["current", "versions"]
    published = store / "versions" / "0002"
    assert not (published / "README.md").exists()
    assert not (published / "users" / ".carol.json.swp").exists()
    assert (published / "users" / "carol.json").read_bytes() == (
        work / "users" / "carol.json"
    ).read_bytes()
    resource = ("--action", "s3:GetObject", "--resource", "arn:aws:s3:::example-bucket/a")
    assert run(capsys, "check", "--store", str(store), "--principal", "carol", *resource)[0] == 0
    code, out, _ = run(capsys, "publish", str(work), "--store", str(store))
    assert code == 0 and "versions/0003" in out


def test_publish_into_a_store_without_current_leaves_it_without(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = workdir(store, tmp_path)
    (store / "current").unlink()
    code, out, _ = run(capsys, "publish", str(work), "--store", str(store))
    assert code == 0
    assert "no current: the store serves it (the greatest version is served)" in out
    assert not os.path.lexists(store / "current")
    assert sorted(os.listdir(store / "versions")) == ["0001", "0002"]


def _bad_policy(work: Path) -> None:
    write(
        work / "policies" / "ExampleBucketRead.json",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Permit", "Action": "s3:*"}]},
    )


def _failing_test(work: Path) -> None:
    cases = json.loads((work / "tests" / "example.json").read_text())
    cases[1]["expect"] = "Allow"
    write(work / "tests" / "example.json", cases)


def _missing_group(work: Path) -> None:
    write(work / "users" / "dave.json", {"groups": ["nobody-has-this"]})


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_bad_policy, "policies/ExampleBucketRead.json: Statement[0].Effect"),
        (_failing_test, "expected Allow (implicitDeny), got Deny (implicitDeny)"),
        (_missing_group, "users/dave.json"),
    ],
)
def test_publish_refuses_a_version_that_does_not_load_or_fails_its_tests(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, expected: str
) -> None:
    work = workdir(store, tmp_path)
    edit(work)
    before = tree(store)
    code, out, err = run(capsys, "publish", str(work), "--store", str(store))
    assert code == 1
    assert f"pdp publish: {work}: does not load; nothing published" in err
    assert expected in err
    assert out == ""
    assert tree(store) == before


def test_publish_refuses_what_is_not_a_version_or_not_a_store(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(store)
    missing = tmp_path / "missing"
    code, _, err = run(capsys, "publish", str(missing), "--store", str(store))
    assert code == 1 and f"{missing}: not a directory" in err
    code, _, err = run(capsys, "publish", str(store), "--store", str(store))
    assert code == 1 and "a store, not a version directory" in err
    assert tree(store) == before
    work = workdir(store, tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    code, _, err = run(capsys, "publish", str(work), "--store", str(plain))
    assert code == 1 and "no versions/: not a store (pdp init makes one)" in err
    assert os.listdir(plain) == []
    code, _, err = run(capsys, "publish", str(work), "--store", str(tmp_path / "nowhere"))
    assert code == 1 and "no such directory" in err
    assert not (tmp_path / "nowhere").exists()


def test_publish_refuses_a_current_that_is_not_a_link(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = workdir(store, tmp_path)
    (store / "current").unlink()
    shutil.copytree(store / "versions" / "0001", store / "current")
    before = tree(store)
    code, _, err = run(capsys, "publish", str(work), "--store", str(store))
    assert code == 1 and "current is not a link: it cannot be moved" in err
    assert tree(store) == before


def test_publish_refuses_while_another_publisher_holds_the_store(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import fcntl

    work = workdir(store, tmp_path)
    before = tree(store)
    fd = os.open(store / "versions", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code, _, err = run(capsys, "publish", str(work), "--store", str(store))
    finally:
        os.close(fd)
    assert code == 1 and "another pdp import or pdp publish is writing this store" in err
    assert tree(store) == before


def test_a_failure_to_move_current_withdraws_the_version(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    work = workdir(store, tmp_path)
    before = tree(store)
    monkeypatch.setattr("pdp.store.publish.os.symlink", no_links)
    code, _, err = run(capsys, "publish", str(work), "--store", str(store))
    assert code == 1
    assert f"pdp publish: {store}: nothing published" in err
    assert "No space left on device" in err
    assert tree(store) == before


def test_the_bytes_published_are_the_bytes_checked(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """WORKDIR edited between its check and its copy: the copy is loaded again in the store,
    and refused there."""
    import pdp.store.authoring as authoring

    collect = authoring._collect

    def edited_meanwhile(root: Path, source: str) -> dict[str, bytes]:
        files = collect(root, source)
        files["users/example-user.json"] = b'{"groups": ["gone"]}'
        return files

    work = workdir(store, tmp_path)
    before = tree(store)
    monkeypatch.setattr(authoring, "_collect", edited_meanwhile)
    code, _, err = run(capsys, "publish", str(work), "--store", str(store))
    assert code == 1
    assert f"{store}: the copy of {work} does not load; nothing published" in err
    assert "users/example-user.json" in err
    assert tree(store) == before


def test_current_moves_atomically_while_a_reader_follows_it(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reader resolving `current` in a loop never finds it missing, nor a version directory
    that is not complete, while versions are published one after another."""
    work = workdir(store, tmp_path)
    stop = threading.Event()
    seen: set[str] = set()
    broken: list[str] = []

    def follow() -> None:
        while not stop.is_set():
            try:
                target = os.readlink(store / "current")
            except OSError as exc:
                broken.append(f"current: {exc}")
                continue
            seen.add(target)
            if not (store / target / "tests" / "example.json").is_file():
                broken.append(f"{target} is not complete")
            for name in os.listdir(store / "versions"):
                complete = (store / "versions" / name / "tests" / "example.json").is_file()
                if not name.startswith(".") and not complete:
                    broken.append(f"versions/{name} visible before it is complete")

    reader = threading.Thread(target=follow)
    reader.start()
    try:
        for _ in range(5):
            assert run(capsys, "publish", str(work), "--store", str(store))[0] == 0
        deadline = time.monotonic() + 10  # let the reader see the last link too
        while "versions/0006" not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        reader.join()
    assert broken == []
    assert os.readlink(store / "current") == "versions/0006"
    assert "versions/0006" in seen
    assert sorted(os.listdir(store)) == ["current", "versions"]  # no temporary link left
    assert all(not name.startswith(".") for name in os.listdir(store / "versions"))
