"""A reload reuses what did not change, and decides exactly as a cold load of the same version.

Each test writes real version directories and reloads through `pdp.Authorizer`, as a user does;
the equivalence test then compares the reloaded snapshot with a cold load of the same directory:
the same refusal (every diagnostic), or the same users, policies and decisions.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

import pdp
from pdp.store.activation import load_directory

ACCOUNT = "123456789012"
SERVICES = ("s3", "ec2", "sqs", "dynamodb")
# aws-managed/ files of the generated versions (M0, job-function/M1), and a built-in they
# may override: users attach them by ARN.
MANAGED = ("M0", "job-function/M1", "SecurityAudit")


def write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


def policy(rng: random.Random, tag: int) -> dict[str, Any]:
    statements = []
    for i in range(rng.randint(1, 3)):
        svc = rng.choice(SERVICES)
        statement: dict[str, Any] = {
            "Sid": f"S{tag}x{i}",
            "Effect": rng.choice(["Allow", "Allow", "Deny"]),
            "Action": [f"{svc}:{rng.choice(['Get', 'Put', 'Delete', 'List'])}*"],
            "Resource": rng.choice(
                ["*", f"arn:aws:{svc}:::b{tag % 3}/*", f"arn:aws:{svc}:::home/${{aws:username}}/*"]
            ),
        }
        if rng.random() < 0.3:
            statement["Condition"] = {"StringEquals": {"aws:PrincipalTag/team": "blue"}}
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def user(rng: random.Random, groups: list[str], policies: list[str]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "groups": rng.sample(groups, rng.randint(0, min(3, len(groups)))),
        "tags": {"team": rng.choice(["blue", "red"])},
    }
    if policies and rng.random() < 0.3:
        name = rng.choice(policies)
        doc["policies"] = [rng.choice([name, f"arn:aws:iam::{ACCOUNT}:policy/{name}"])]
    if rng.random() < 0.2:
        doc["inline_policies"] = {"own": policy(rng, 99)}
    if rng.random() < 0.3:
        doc.setdefault("policies", []).append(f"arn:aws:iam::aws:policy/{rng.choice(MANAGED)}")
    return doc


def managed_file(root: Path, name: str) -> Path:
    return root / "aws-managed" / f"{name}.json"


def write_managed(root: Path, rng: random.Random, name: str) -> None:
    """An AWS managed policy file, in one of the shapes the folder accepts."""
    document = policy(rng, rng.randint(0, 50))
    shape = rng.choice(["bare", "PolicyVersion", "get-policy-version"])
    if shape == "bare":
        write(managed_file(root, name), document)
        return
    body = {"Document": document, "VersionId": f"v{rng.randint(1, 9)}", "IsDefaultVersion": True}
    write(managed_file(root, name), body if shape == "PolicyVersion" else {"PolicyVersion": body})


def make_version(root: Path, rng: random.Random) -> Path:
    write(root / "account.json", {"account_id": ACCOUNT})
    policies = [f"P{i}" for i in range(12)]
    for i, name in enumerate(policies):
        write(root / "policies" / f"{name}.json", policy(rng, i))
    groups = [f"G{i}" for i in range(6)]
    for name in groups:
        write(root / "groups" / f"{name}.json", {"policies": rng.sample(policies, 2)})
    for i in range(30):
        write(root / "users" / f"u{i}.json", user(rng, groups, policies))
    for name in MANAGED[:2]:
        write_managed(root, rng, name)
    return root


def new_name(rng: random.Random, first: str) -> str:
    """A name for an added file: from a small pool, so that some are prefixes of others and sort
    apart as stems and as file names ("N1-a.json" before "N1.json")."""
    return f"{first}{rng.randint(0, 3)}{rng.choice(['', '-a', '+a', ',a', '.a', '_a'])}"


def names(root: Path, folder: str) -> list[str]:
    return sorted(p.stem for p in (root / folder).glob("*.json"))


def mutate(root: Path, rng: random.Random) -> str:
    """One change a publisher makes; returns what it did (for the failure message)."""
    policies, groups, users = names(root, "policies"), names(root, "groups"), names(root, "users")
    kind = rng.choice(
        ["edit policy", "delete policy", "add policy", "edit user", "add user", "delete user",
         "edit group", "delete group", "add group", "account", "break policy",
         "edit managed", "delete managed", "add managed", "break managed"]
    )  # fmt: skip
    if kind == "edit policy" and policies:
        target = rng.choice(policies)
        write(root / "policies" / f"{target}.json", policy(rng, rng.randint(0, 50)))
    elif kind == "delete policy" and policies:
        target = rng.choice(policies)
        (root / "policies" / f"{target}.json").unlink()
    elif kind == "add policy":
        target = new_name(rng, "N")
        write(root / "policies" / f"{target}.json", policy(rng, 7))
    elif kind == "edit user" and users:
        target = rng.choice(users)
        write(root / "users" / f"{target}.json", user(rng, groups, policies))
    elif kind == "add user":
        target = new_name(rng, "n")
        write(root / "users" / f"{target}.json", user(rng, groups, policies))
    elif kind == "delete user" and users:
        target = rng.choice(users)
        (root / "users" / f"{target}.json").unlink()
    elif kind == "edit group" and groups and policies:
        target = rng.choice(groups)
        attached = rng.sample(policies, min(2, len(policies)))
        write(root / "groups" / f"{target}.json", {"policies": attached})
    elif kind == "delete group" and groups:
        target = rng.choice(groups)
        (root / "groups" / f"{target}.json").unlink()
    elif kind == "add group" and policies:
        target = new_name(rng, "H")
        write(root / "groups" / f"{target}.json", {"policies": [rng.choice(policies)]})
    elif kind == "account":
        target = rng.choice(["123456789012", "210987654321"])
        write(root / "account.json", {"account_id": target})
    elif kind == "break policy" and policies:
        target = rng.choice(policies)
        (root / "policies" / f"{target}.json").write_text('{"Version": "2012-10-17"')
    elif kind in ("edit managed", "add managed"):
        target = rng.choice(MANAGED)  # adding the built-in's name overrides it
        write_managed(root, rng, target)
    elif kind == "delete managed" and managed_file(root, target := rng.choice(MANAGED)).exists():
        managed_file(root, target).unlink()
    elif kind == "break managed":
        target = rng.choice(MANAGED)
        write(managed_file(root, target), {"PolicyVersion": {"Document": {"Version": "x"}}})
    else:
        return "nothing"
    return f"{kind} {target}"


def shape(snapshot: pdp.Snapshot) -> list[object]:
    """What the index resolved, in its order: every user's name, ARN and effective policies;
    and the order of the version's own tables (reports list users in it)."""
    source = snapshot.source
    assert source is not None
    users = [
        (e.user.name, e.arn, tuple(p.name for p in e.policies)) for e in snapshot.index.users()
    ]
    tables = [
        list(source.users),
        list(source.groups),
        list(source.policies),
        list(source.aws_managed),
    ]
    return [users, tables, sorted(source.parsed)]


def requests(rng: random.Random, users: list[str]) -> list[tuple[str, str, str]]:
    out = []
    for _ in range(200):
        svc = rng.choice(SERVICES)
        verb = rng.choice(["GetObject", "PutItem", "DeleteQueue", "ListThings"])
        name = rng.choice(users)
        resource = rng.choice(
            ["*", f"arn:aws:{svc}:::b{rng.randint(0, 2)}/k", f"arn:aws:{svc}:::home/{name}/x"]
        )
        out.append((name, f"{svc}:{verb}", resource))
    return out


def outcome(root: Path, previous: pdp.Snapshot | None) -> tuple[str, Any]:
    try:
        return "loaded", load_directory(root, cache_size=0, previous=previous)
    except pdp.PolicyLoadError as exc:
        return "refused", sorted(str(d) for d in exc.diagnostics)


@pytest.mark.parametrize("seed", range(20))
def test_an_incremental_reload_decides_as_a_cold_load(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root = make_version(tmp_path / "v", rng)
    serving = load_directory(root, cache_size=0)
    done = []
    for _ in range(12):
        done.append(mutate(root, rng))
        kind, warm = outcome(root, serving)
        cold_kind, cold = outcome(root, None)
        assert (kind, warm if kind == "refused" else None) == (
            cold_kind,
            cold if cold_kind == "refused" else None,
        ), done
        if kind == "refused":
            continue  # the serving snapshot stays, as in Authorizer.reload
        assert shape(warm) == shape(cold), done
        for name, action, resource in requests(rng, [e.user.name for e in cold.index.users()]):
            context = {"aws:PrincipalTag/team": "blue"}
            got = warm.is_authorized(name, action, resource, context)
            want = cold.is_authorized(name, action, resource, context)
            assert (got.decision, got.reason, got.matched, got.errors) == (
                want.decision,
                want.reason,
                want.matched,
                want.errors,
            ), (done, name, action, resource)
            assert got.policy_version == want.policy_version
        serving = warm


def store_with(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    version = store / "versions" / "0001"
    write(version / "account.json", {"account_id": ACCOUNT})
    allow = {"Version": "2012-10-17", "Statement": [allow_get("s3")]}
    write(version / "policies" / "Read.json", allow)
    write(version / "policies" / "Other.json", {**allow, "Statement": [allow_get("sqs")]})
    write(version / "groups" / "Readers.json", {"policies": ["Read"]})
    write(version / "users" / "alice.json", {"groups": ["Readers"]})
    write(version / "users" / "bob.json", {"policies": ["Other"]})
    (store / "current").symlink_to("versions/0001")
    return store


def allow_get(service: str) -> dict[str, str]:
    return {"Effect": "Allow", "Action": f"{service}:Get*", "Resource": "*"}


def publish(store: Path, name: str) -> Path:
    """A new version as publishers make one: a copy of the serving one, then `current` swapped."""
    target = store / "versions" / name
    shutil.copytree(os.path.realpath(store / "current"), target)
    return target


def swap(store: Path, name: str) -> None:
    link = store / "current.new"
    link.symlink_to(f"versions/{name}")
    link.replace(store / "current")


def test_a_reload_reuses_unchanged_policies_and_users(tmp_path: Path) -> None:
    store = store_with(tmp_path)
    with pdp.Authorizer.from_store(store, watch=False) as authz:
        before = authz.snapshot.index
        version = publish(store, "0002")
        write(version / "users" / "bob.json", {"policies": ["Other"], "tags": {"a": "b"}})
        swap(store, "0002")
        authz.reload()
        after = authz.snapshot.index
        alice, old_alice = after.resolve("alice"), before.resolve("alice")
        assert alice is old_alice  # nothing under alice changed: her entry is reused
        bob, old_bob = after.resolve("bob"), before.resolve("bob")
        assert bob is not old_bob and bob.policies[0] is old_bob.policies[0]  # type: ignore[union-attr]
        decision = authz.is_authorized("alice", "s3:GetObject", "arn:aws:s3:::b/k")
        assert (decision.decision, decision.policy_version) == ("Allow", "0002")


def test_a_policy_edited_in_place_to_the_same_size_is_picked_up(tmp_path: Path) -> None:
    store = store_with(tmp_path)
    with pdp.Authorizer.from_store(store, watch=False) as authz:
        assert authz.is_authorized("alice", "s3:GetObject", "*").decision == "Allow"
        path = store / "versions" / "0001" / "policies" / "Read.json"
        text = path.read_text()
        edited = text.replace("s3:Get*", "s3:Put*")
        assert len(edited) == len(text)
        stat = path.stat()
        with open(path, "r+") as handle:  # in place: same inode, same size
            handle.write(edited)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even the same mtime
        authz.reload()
        assert authz.is_authorized("alice", "s3:GetObject", "*").decision == "Deny"
        assert authz.is_authorized("alice", "s3:PutObject", "*").decision == "Allow"


def test_a_reference_to_a_deleted_policy_still_refuses_the_version(tmp_path: Path) -> None:
    store = store_with(tmp_path)
    with pdp.Authorizer.from_store(store, watch=False) as authz:
        version = publish(store, "0002")
        (version / "policies" / "Other.json").unlink()  # bob.json, unchanged, still names it
        swap(store, "0002")
        with pytest.raises(pdp.PolicyLoadError) as refused:
            authz.reload()
        assert 'users/bob.json: policies[0]: policy "Other" does not exist' in str(refused.value)
        assert authz.version == "0001"
        assert authz.is_authorized("bob", "sqs:GetQueueUrl", "*").decision == "Allow"


def test_a_reference_to_a_deleted_group_still_refuses_the_version(tmp_path: Path) -> None:
    store = store_with(tmp_path)
    with pdp.Authorizer.from_store(store, watch=False) as authz:
        version = publish(store, "0002")
        (version / "groups" / "Readers.json").unlink()
        swap(store, "0002")
        with pytest.raises(pdp.PolicyLoadError, match='group "Readers" does not exist'):
            authz.reload()


def test_the_policy_tests_of_the_new_version_run_on_a_reload(tmp_path: Path) -> None:
    store = store_with(tmp_path)
    with pdp.Authorizer.from_store(store, watch=False) as authz:
        version = publish(store, "0002")
        case = {"principal": "alice", "action": "s3:GetObject", "resource": "*", "expect": "Deny"}
        write(version / "tests" / "alice.json", [case])  # wrong: alice may read
        swap(store, "0002")
        with pytest.raises(pdp.PolicyLoadError, match="policy_test_failed|expected Deny"):
            authz.reload()
        assert authz.version == "0001"


def test_a_name_added_by_a_reload_takes_its_place_in_file_name_order(tmp_path: Path) -> None:
    # "a-b.json" sorts before "a.json" ("-" < "."), though the stem "a" sorts before "a-b": a cold
    # read lists policies and groups in file name order, and so must a reload that adds one.
    root = tmp_path / "v"
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}],
    }
    write(root / "policies" / "a.json", deny)
    write(root / "groups" / "a.json", {"policies": ["a"]})
    serving = load_directory(root, cache_size=0)
    write(root / "policies" / "a-b.json", deny)
    write(root / "groups" / "a-b.json", {"policies": ["a-b"]})
    warm, cold = load_directory(root, previous=serving), load_directory(root)
    assert warm.source is not None and cold.source is not None
    assert list(cold.source.policies) == list(cold.source.groups) == ["a-b", "a"]
    assert list(warm.source.policies) == list(cold.source.policies)
    assert list(warm.source.groups) == list(cold.source.groups)


def test_a_refused_reload_leaves_the_next_one_exact(tmp_path: Path) -> None:
    store = store_with(tmp_path)
    with pdp.Authorizer.from_store(store, watch=False) as authz:
        version = publish(store, "0002")
        (version / "policies" / "Read.json").write_text("{")
        swap(store, "0002")
        with pytest.raises(pdp.PolicyLoadError):
            authz.reload()
        write(
            version / "policies" / "Read.json",
            {"Version": "2012-10-17", "Statement": [allow_get("sqs")]},
        )
        authz.reload()
        assert authz.is_authorized("alice", "s3:GetObject", "*").decision == "Deny"
