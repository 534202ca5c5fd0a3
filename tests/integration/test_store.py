"""The store: real directories, real symlink swaps, real reloads, through pdp.Authorizer."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import pdp

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "store"
ACCOUNT = "123456789012"
BUCKET_OBJECT = "arn:aws:s3:::example-bucket/report.csv"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A private copy of the bundled example store (current -> versions/0002)."""
    target = tmp_path / "store"
    shutil.copytree(EXAMPLE, target, symlinks=True)
    return target


def write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document if isinstance(document, str) else json.dumps(document))


def new_version(store: Path, name: str, base: str = "0002") -> Path:
    """Copy a version to a new name (as a publisher would, before making it visible)."""
    target = store / "versions" / name
    shutil.copytree(store / "versions" / base, target)
    return target


def point_current(store: Path, name: str) -> None:
    """Swap `current` atomically: a new link renamed over the old one."""
    tmp = store / "current.tmp"
    tmp.symlink_to(f"versions/{name}")
    os.replace(tmp, store / "current")


def open_store(store: Path, **kwargs: Any) -> pdp.Authorizer:
    kwargs.setdefault("watch", False)
    return pdp.Authorizer.from_store(store, **kwargs)


def test_serves_current_with_version_and_matched(store: Path) -> None:
    with open_store(store) as authz:
        d = authz.is_authorized("bob", "s3:GetObject", BUCKET_OBJECT)
        assert (d.decision, d.reason, d.policy_version) == ("Allow", "allowed", "0002")
        assert d.matched[0].policy == "policies/S3BucketSpecificAccess.json"
        assert d.matched[0].sid == "ReadWriteObjects"


@pytest.mark.parametrize(
    "principal", ["bob", f"arn:aws:iam::{ACCOUNT}:user/bob"], ids=["name", "arn"]
)
def test_principal_by_name_or_arn(store: Path, principal: str) -> None:
    with open_store(store) as authz:
        assert authz.is_authorized(principal, "s3:GetObject", BUCKET_OBJECT).decision == "Allow"


def test_unknown_principal_is_denied_with_an_error(store: Path) -> None:
    with open_store(store) as authz:
        for who in (
            "mallory",
            f"arn:aws:iam::{ACCOUNT}:user/mallory",
            "arn:aws:iam::999999999999:user/bob",
            "arn:aws:iam::999999999999:root",
            "",
        ):
            d = authz.is_authorized(who, "s3:GetObject", BUCKET_OBJECT)
            assert (d.decision, d.reason) == ("Deny", "implicitDeny")
            assert d.errors and d.errors[0].startswith("principal:")


def test_root_is_unrestricted_and_flagged(store: Path) -> None:
    with open_store(store) as authz:
        root = f"arn:aws:iam::{ACCOUNT}:root"
        d = authz.is_authorized(root, "iam:DeleteUser", "*", principal_type="root")
        assert (d.decision, d.reason, d.root, d.matched) == ("Allow", "allowed", True, ())
        assert not authz.is_authorized("bob", "s3:GetObject", BUCKET_OBJECT).root


def test_root_can_be_locked_away(store: Path) -> None:
    account = store / "versions" / "0002" / "account.json"
    doc = json.loads(account.read_text())
    doc["root"]["enabled"] = False
    write(account, doc)
    tests = store / "versions" / "0002" / "tests" / "smoke.json"
    write(tests, [c for c in json.loads(tests.read_text()) if "root" not in c["principal"]])
    with open_store(store) as authz:
        root = f"arn:aws:iam::{ACCOUNT}:root"
        d = authz.is_authorized(root, "s3:GetObject", "*", principal_type="root")
        assert (d.decision, d.root) == ("Deny", True)
        assert "root is disabled" in d.errors[0]


def test_groups_inline_and_aws_managed_policies(store: Path) -> None:
    v = store / "versions" / "0002"
    write(v / "groups" / "power.json", {"policies": ["arn:aws:iam::aws:policy/PowerUserAccess"]})
    write(
        v / "users" / "dave.json",
        {
            "groups": ["power", "readers"],
            "inline_policies": {
                "NoLogs": {
                    "Version": "2012-10-17",
                    "Statement": {"Effect": "Deny", "Action": "logs:*", "Resource": "*"},
                }
            },
        },
    )
    with open_store(store) as authz:
        decide = authz.is_authorized
        assert decide("dave", "ec2:RunInstances", "*").decision == "Allow"  # PowerUser
        assert decide("dave", "iam:CreateUser", "*").reason == "implicitDeny"  # NotAction iam:*
        assert decide("dave", "iam:ListUsers", "*").reason == "allowed"  # ReadOnly via readers
        d = decide("dave", "logs:GetLogEvents", "*")
        assert d.reason == "explicitDeny" and d.matched[0].policy == "users/dave.json#NoLogs"
        carol = decide("carol", "s3:PutObject", BUCKET_OBJECT)
        assert carol.reason == "implicitDeny"  # ReadOnlyAccess does not write


BROKEN: list[tuple[str, Any, str]] = [
    ("users/bob.json", '{"groups": ["developers"', "malformed JSON"),
    ("policies/S3BucketSpecificAccess.json", "dir", "not a regular file"),
    ("users/bob.json", "dangling-link", "cannot read"),
    ("users/bob.json", {"groups": ["developers", "ghosts"]}, 'group "ghosts" does not exist'),
    ("users/bob.json", {"policies": ["NoSuchPolicy"]}, 'policy "NoSuchPolicy" does not exist'),
    ("users/bob.json", {"policies": ["arn:aws:iam::aws:policy/Nope"]}, "unknown AWS managed"),
    ("users/bob.json", {"secret_access_key": "x"}, "pdp never stores secrets"),
    (
        "users/bob.json",
        {"access_keys": [{"id": "AKIA1", "created": "2020-01-01"}]},
        "access key id",
    ),
    ("groups/developers.json", {"policies": "S3BucketSpecificAccess"}, "list of names"),
    (
        "policies/S3BucketSpecificAccess.json",
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "*",
                    "Condition": {"StringEqual": {"aws:username": "x"}},
                }
            ]
        },
        "policies/S3BucketSpecificAccess.json: Statement[0].Condition: unknown operator",
    ),
    (
        "users/bob.json",
        {"inline_policies": {"X": {"Statement": {"Effect": "Allow", "Action": "s3:*"}}}},
        "users/bob.json: inline_policies.X.Statement: missing Resource/NotResource",
    ),
    ("account.json", {"account_id": "12"}, "account_id must be 12 digits"),
    (
        "tests/smoke.json",
        [
            {
                "principal": "bob",
                "action": "s3:GetObject",
                "resource": BUCKET_OBJECT,
                "expect": "Deny",
            }
        ],
        "expected Deny, got Allow",
    ),
    ("users/Bob.json", {"groups": []}, "differ only in case"),
    ("notes.txt", "hello", ""),  # a stray file at the top is ignored: not a problem
]


@pytest.mark.parametrize(("file", "content", "message"), BROKEN)
def test_broken_version_is_refused_and_old_keeps_serving(
    store: Path, file: str, content: Any, message: str
) -> None:
    with open_store(store) as authz:
        broken = new_version(store, "0003")
        target = broken / file
        if content == "dir":
            target.unlink()
            target.mkdir()
        elif content == "dangling-link":
            target.unlink()
            target.symlink_to(broken / "nowhere.json")
        else:
            write(target, content)
        point_current(store, "0003")
        if not message:
            assert authz.reload().version == "0003"
            return
        with pytest.raises(pdp.PolicyLoadError) as caught:
            authz.reload()
        assert any(message in str(d) for d in caught.value.diagnostics), caught.value
        assert authz.version == "0002"
        assert authz.is_authorized("bob", "s3:GetObject", BUCKET_OBJECT).policy_version == "0002"
        status = authz.status()
        assert status["version"] == "0002" and message in status["last_reload_error"]
        assert status["reloads"] == {"ok": 0, "failed": 1}


def test_every_problem_of_a_version_is_listed(store: Path) -> None:
    broken = new_version(store, "0003")
    write(broken / "users" / "bob.json", {"groups": ["ghosts"], "tags": "blue"})
    write(broken / "users" / "carol.json", "{")
    write(broken / "policies" / "OwnHomePrefix.json", {"Statement": {"Effect": "Maybe"}})
    with pytest.raises(pdp.PolicyLoadError) as caught:
        pdp.Authorizer.from_store(store, version="0003", watch=False)
    text = [str(d) for d in caught.value.diagnostics]
    assert any(t.startswith("policies/OwnHomePrefix.json: Statement: ") for t in text)
    assert any(t.startswith("users/bob.json: tags: ") for t in text)
    assert any(t.startswith("users/carol.json: malformed JSON") for t in text)


def test_fifty_megabyte_policy_is_refused_without_reading_it(store: Path) -> None:
    broken = new_version(store, "0003")
    with open(broken / "policies" / "Huge.json", "wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    with pytest.raises(pdp.PolicyLoadError, match="over the 1048576 byte limit"):
        pdp.Authorizer.from_store(store, version="0003", watch=False)


def test_fifo_is_not_read(store: Path) -> None:
    """A FIFO in place of a file must not block the loader."""
    broken = new_version(store, "0003")
    (broken / "users" / "bob.json").unlink()
    os.mkfifo(broken / "users" / "bob.json")
    with pytest.raises(pdp.PolicyLoadError, match="not a regular file"):
        pdp.Authorizer.from_store(store, version="0003", watch=False)


def test_dangling_current_and_symlink_loop(store: Path) -> None:
    with open_store(store) as authz:
        (store / "current").unlink()
        (store / "current").symlink_to("versions/0099")
        with pytest.raises(pdp.PolicyLoadError, match="does not resolve"):
            authz.reload()
        (store / "current").unlink()
        (store / "loop").symlink_to("current")
        (store / "current").symlink_to("loop")
        with pytest.raises(pdp.PolicyLoadError, match="does not resolve"):
            authz.reload()
        assert authz.is_authorized("bob", "s3:GetObject", BUCKET_OBJECT).decision == "Allow"


def test_without_current_the_greatest_version_serves(store: Path) -> None:
    (store / "current").unlink()
    new_version(store, "9")
    new_version(store, "10")
    with open_store(store) as authz:
        assert authz.version == "10"  # natural sort: 9 < 10


def test_pin_rollback_and_unpin(store: Path) -> None:
    with open_store(store) as authz:
        result = authz.reload(version="0001")
        assert (result.version, result.previous) == ("0001", "0002") and result.seconds >= 0
        assert authz.is_authorized("bob", "s3:GetObject", BUCKET_OBJECT).policy_version == "0001"
        with pytest.raises(pdp.PolicyLoadError, match="no version 'nope'"):
            authz.reload(version="nope")
        assert authz.version == "0001"
        assert authz.reload().version == "0002"


def test_from_directory_serves_one_version() -> None:
    authz = pdp.Authorizer.from_directory(EXAMPLE / "versions" / "0001")
    assert authz.version == "0001"
    assert authz.is_authorized("bob", "s3:GetObject", BUCKET_OBJECT).decision == "Allow"
    assert authz.reload().version == "0001"
    with pytest.raises(pdp.PolicyLoadError, match="no versions to pin"):
        authz.reload(version="0002")


def wait_for(predicate: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_watcher_follows_a_symlink_swap_and_skips_a_broken_one(store: Path) -> None:
    with pdp.Authorizer.from_store(store, interval=0.05) as authz:
        new_version(store, "0003")
        point_current(store, "0003")
        assert wait_for(lambda: authz.version == "0003")
        broken = new_version(store, "0004")
        write(broken / "users" / "bob.json", "{")
        point_current(store, "0004")
        assert wait_for(lambda: authz.last_error is not None)
        assert authz.version == "0003"
        assert authz.is_authorized("bob", "s3:GetObject", BUCKET_OBJECT).policy_version == "0003"


def test_reload_under_concurrent_decisions_never_fails_or_mixes(store: Path) -> None:
    """4 threads decide while versions swap: every answer is right for the version it names."""
    new_version(store, "0003")
    with open_store(store) as authz:
        stop = threading.Event()
        bad: list[Any] = []
        counts = {"0002": 0, "0003": 0}

        def worker() -> None:
            while not stop.is_set():
                batch = authz.batch_is_authorized(
                    [
                        {"principal": "bob", "action": "s3:GetObject", "resource": BUCKET_OBJECT},
                        {
                            "principal": "bob",
                            "action": "s3:DeleteObject",
                            "resource": BUCKET_OBJECT,
                        },
                    ]
                )
                versions = {d.policy_version for d in batch}
                if len(versions) != 1 or [d.reason for d in batch] != ["allowed", "explicitDeny"]:
                    bad.append(batch)
                counts[batch[0].policy_version or ""] = counts.get(batch[0].policy_version, 0) + 1

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for name in ("0003", "0002", "0003", "0002", "0003"):
            authz.reload(version=name)
            time.sleep(0.02)
        stop.set()
        for t in threads:
            t.join()
        assert not bad
        assert counts["0002"] > 0 and counts["0003"] > 0


def test_a_number_past_pythons_digit_limit_is_a_refused_version(store: Path) -> None:
    """Review finding: json raised a bare ValueError that killed the watcher."""
    with pdp.Authorizer.from_store(store, interval=0.05) as authz:
        broken = new_version(store, "0003")
        write(
            broken / "policies" / "Big.json",
            '{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*",'
            ' "Condition": {"NumericLessThan": {"s3:max-keys": ' + "9" * 5000 + "}}}}",
        )
        point_current(store, "0003")
        assert wait_for(lambda: authz.last_error is not None)
        assert "malformed JSON" in str(authz.last_error)
        new_version(store, "0004")
        point_current(store, "0004")
        assert wait_for(lambda: authz.version == "0004")  # the watcher is still alive


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("users/bób.json", {"groups": []}, 'invalid user name "bób"'),
        ("users/" + "n" * 65 + ".json", {"groups": []}, "invalid user name"),
        ("groups/" + "G" * 129 + ".json", {"policies": []}, "invalid group name"),
        ("users/carol.json", {"path": "/" + "p" * 511 + "/"}, "at most 512 characters"),
        ("groups/Ops.json", {"path": "//"}, 'path must start and end with "/"'),
        ("groups/Developers.json", {"policies": []}, "differ only in case"),
        (
            "policies/s3bucketspecificaccess.json",
            {"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}},
            "differ only in case",
        ),
        (
            "policies/Huge.json",
            {
                "Statement": [
                    {"Effect": "Allow", "Action": f"s3:Get{i}", "Resource": "*"} for i in range(200)
                ]
            },
            "over IAM's 6144 for a managed policy",
        ),
        (
            "users/bob.json",
            {
                "inline_policies": {
                    "Big": {
                        "Statement": [
                            {"Effect": "Allow", "Action": f"s3:Get{i}", "Resource": "*"}
                            for i in range(60)
                        ]
                    }
                }
            },
            "over IAM's 2048",
        ),
    ],
)
def test_what_iam_refuses_the_store_refuses(
    store: Path, file: str, content: Any, message: str
) -> None:
    broken = new_version(store, "0003")
    write(broken / file, content)
    with pytest.raises(pdp.PolicyLoadError) as caught:
        pdp.Authorizer.from_store(store, version="0003", watch=False)
    assert any(message in str(d) for d in caught.value.diagnostics), caught.value


def test_batches_with_a_non_object_are_denied(store: Path) -> None:
    with open_store(store) as authz:
        decisions = authz.batch_is_authorized(
            [None, {"principal": "bob", "action": "s3:GetObject", "resource": BUCKET_OBJECT}]
        )  # type: ignore[list-item]
        assert [d.decision for d in decisions] == ["Deny", "Allow"]
        assert decisions[0].errors[0].startswith("request: must be an object")


# --- version names (hardening item 14) ----------------------------------------------------------


@pytest.mark.parametrize("name", ['0003"} 1\nevil{x="', "0003 ", "-0003", "0003\\"])
def test_a_version_with_an_unsafe_name_is_refused(store: Path, name: str) -> None:
    new_version(store, name)
    with pytest.raises(pdp.PolicyLoadError) as caught:
        pdp.Authorizer.from_store(store, version=name, watch=False)
    (problem,) = caught.value.diagnostics
    assert problem.code == "invalid_version_name" and "\n" not in str(problem)
    point_current(store, name)
    with pytest.raises(pdp.PolicyLoadError, match="not allowed as a version name"):
        pdp.Authorizer.from_store(store, watch=False)


def test_pdp_validate_refuses_an_unsafe_version_name_in_one_line(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pdp.cli import main

    new_version(store, 'bad"\nname')
    point_current(store, 'bad"\nname')
    assert main(["validate", str(store)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and '"bad\\"\\nname" is not allowed as a version' in err, err


# --- fallback at a cold start (hardening item 19) -----------------------------------------------


def test_a_broken_current_falls_back_to_the_newest_version_that_loads(store: Path) -> None:
    new_version(store, "0003")
    write(store / "versions" / "0003" / "users" / "bob.json", "{")
    new_version(store, "0004")
    write(store / "versions" / "0004" / "users" / "bob.json", "{")
    point_current(store, "0004")
    with pytest.raises(pdp.PolicyLoadError):
        pdp.Authorizer.from_store(store, watch=False)  # no fallback unless asked
    with pdp.Authorizer.from_store(store, fallback=True, interval=0.05) as authz:
        assert authz.version == "0002"  # 0004 and 0003 are refused
        status = authz.status()
        assert status["fallback_from"] == "0004"
        assert "malformed JSON" in status["last_reload_error"]
        new_version(store, "0005")
        point_current(store, "0005")
        assert wait_for(lambda: authz.version == "0005")
        assert authz.status()["fallback_from"] is None


def test_a_dangling_current_falls_back_too(store: Path) -> None:
    (store / "current").unlink()
    (store / "current").symlink_to("versions/0099")
    with pdp.Authorizer.from_store(store, fallback=True, watch=False) as authz:
        assert (authz.version, authz.status()["fallback_from"]) == ("0002", "current")


def test_the_fallback_never_serves_a_version_newer_than_current(store: Path) -> None:
    """0003 granted too much and was rolled back (current -> 0002); when 0002 is then refused
    at a cold start, 0001 serves, never the withdrawn 0003."""
    new_version(store, "0003")
    bob = store / "versions" / "0003" / "users" / "bob.json"
    doc = json.loads(bob.read_text())
    doc["policies"] = [*doc.get("policies", []), "arn:aws:iam::aws:policy/AdministratorAccess"]
    write(bob, doc)
    point_current(store, "0002")
    write(store / "versions" / "0002" / "users" / "bob.json", "{")
    with pdp.Authorizer.from_store(store, fallback=True, watch=False) as authz:
        assert (authz.version, authz.status()["fallback_from"]) == ("0001", "0002")
        assert authz.is_authorized("bob", "iam:CreateUser", "*").decision == "Deny"
    (store / "current").unlink()
    (store / "current").symlink_to("versions/0002.gone")
    with pdp.Authorizer.from_store(store, fallback=True, watch=False) as authz:
        assert authz.version == "0001"  # "0002.gone" sorts after 0002, before 0003
    (store / "current").unlink()
    (store / "current").symlink_to("versions/0000")
    with pytest.raises(pdp.PolicyLoadError):
        pdp.Authorizer.from_store(store, fallback=True, watch=False)  # nothing older loads


def test_when_nothing_loads_the_fallback_raises_why_current_was_refused(store: Path) -> None:
    for name in ("0001", "0002"):
        write(store / "versions" / name / "users" / "bob.json", "{")
    with pytest.raises(pdp.PolicyLoadError, match="version '0002' refused"):
        pdp.Authorizer.from_store(store, fallback=True, watch=False)


# --- symlinks (hardening item 20) ---------------------------------------------------------------


@pytest.mark.parametrize("link", ["users/bob.json", "users", "account.json"])
def test_a_link_out_of_the_version_directory_is_refused(
    store: Path, tmp_path: Path, link: str
) -> None:
    version = new_version(store, "0003")
    outside = tmp_path / "outside"
    shutil.copytree(version, outside)
    target = version / link
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.symlink_to(outside / link)
    with pytest.raises(pdp.PolicyLoadError) as caught:
        pdp.Authorizer.from_store(store, version="0003", watch=False)
    codes = {(d.code, d.source) for d in caught.value.diagnostics}
    assert ("link_outside_version", link) in codes, caught.value
    assert "outside the version directory" in str(caught.value)


def test_links_that_stay_in_the_version_directory_and_above_it_are_followed(
    store: Path, tmp_path: Path
) -> None:
    """A ConfigMap-like version (`users -> ..data/users`), a linked version directory
    (`versions/0003 -> ..data/0003`) and a linked store root all load."""
    data = store / "versions" / "..2026_01_01" / "0003"
    shutil.copytree(store / "versions" / "0002", data / "..payload")
    for name in ("account.json", "policies", "groups", "users", "tests"):
        (data / name).symlink_to(f"..payload/{name}")
    (data / "..payload" / "users" / "bob2.json").symlink_to("bob.json")
    (store / "versions" / "..data").symlink_to("..2026_01_01")
    (store / "versions" / "0003").symlink_to("..data/0003")
    point_current(store, "0003")
    root_link = tmp_path / "store-link"
    root_link.symlink_to(store)
    with pdp.Authorizer.from_store(root_link, watch=False) as authz:
        assert authz.version == "0003"
        assert authz.is_authorized("bob2", "s3:GetObject", BUCKET_OBJECT).decision == "Allow"
