"""`pdp diff OLD NEW`: the statement diff, the permission diff and the command (exit codes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main
from pdp.store import (
    DiffFailed,
    DiffTooLarge,
    PermissionChange,
    VersionDiff,
    diff_versions,
    open_version,
    render_diff,
)

ACCOUNT = "123456789012"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
ANN = f"arn:aws:iam::{ACCOUNT}:user/ann"
BUCKET = "arn:aws:s3:::b/*"


def allow(action: str, resource: str = BUCKET, sid: str | None = None, **extra: Any) -> Any:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    return {**statement, "Sid": sid} if sid else statement


def deny(action: str, resource: str = "*", **extra: Any) -> Any:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def policy(*statements: Any) -> Any:
    return {"Version": "2012-10-17", "Statement": list(statements)}


BASE: dict[str, Any] = {
    "account.json": {"account_id": ACCOUNT},
    "policies/Read.json": policy(allow("s3:GetObject", sid="Read")),
    "policies/Write.json": policy(allow("s3:PutObject", sid="Write")),
    "groups/readers.json": {"policies": ["Read"]},
    "groups/writers.json": {"policies": ["Write"]},
    "users/bob.json": {"groups": ["readers"]},
    "users/ann.json": {"groups": ["readers"]},
}


def version(root: Path, name: str, files: dict[str, Any]) -> Path:
    """A store version directory under root/store/versions/name, from {path: document}."""
    directory = root / "store" / "versions" / name
    shutil.rmtree(directory, ignore_errors=True)
    for rel, doc in files.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_text(json.dumps(doc))
    return directory


def diff(tmp_path: Path, old: dict[str, Any], new: dict[str, Any], **kw: Any) -> VersionDiff:
    a = version(tmp_path, "0001", old)
    b = version(tmp_path, "0002", new)
    return diff_versions(str(a), str(b), **kw)


def changes(result: VersionDiff, principal: str = BOB) -> set[tuple[str, str, str]]:
    return {(p.action, p.resource, p.kind) for p in result.permissions if p.principal == principal}


# -- statements ----------------------------------------------------------------------------------


def test_the_same_version_has_no_change(tmp_path: Path) -> None:
    result = diff(tmp_path, BASE, BASE)
    assert not result.changed
    assert result.statements == () and result.permissions == ()
    assert result.principals_compared == 2 and result.principals_evaluated == 0


def test_statement_order_and_single_values_do_not_count(tmp_path: Path) -> None:
    two = policy(allow("s3:GetObject", sid="A"), allow(["s3:PutObject"], sid="B"))
    swapped = policy(allow(["s3:PutObject"], sid="B"), allow("s3:GetObject", sid="A"))
    result = diff(
        tmp_path, {**BASE, "policies/Read.json": two}, {**BASE, "policies/Read.json": swapped}
    )
    assert not result.changed


def test_statements_added_removed_and_changed_are_named_by_file_and_sid(tmp_path: Path) -> None:
    old = {
        **BASE,
        "policies/Read.json": policy(
            allow("s3:GetObject", sid="Read"), allow("s3:ListBucket", "arn:aws:s3:::b")
        ),
    }
    new = {
        **BASE,
        "policies/Read.json": policy(
            allow("s3:GetObject", "arn:aws:s3:::c/*", sid="Read"), deny("s3:DeleteObject")
        ),
    }
    result = diff(tmp_path, old, new)
    found = {(s.policy, s.change, s.name) for s in result.statements}
    assert found == {
        ("policies/Read.json", "changed", "Sid Read"),
        ("policies/Read.json", "removed", "Statement[1]"),
        ("policies/Read.json", "added", "Statement[1]"),
    }
    changed = next(s for s in result.statements if s.change == "changed")
    assert changed.old is not None and changed.new is not None
    assert changed.old["Resource"] == [BUCKET] and changed.new["Resource"] == ["arn:aws:s3:::c/*"]


def test_a_new_policy_file_lists_its_statements(tmp_path: Path) -> None:
    new = {**BASE, "policies/Extra.json": policy(allow("s3:PutObject", sid="X"))}
    result = diff(tmp_path, BASE, new)
    assert [(s.policy, s.change) for s in result.statements] == [("policies/Extra.json", "added")]
    assert result.permissions == ()  # attached to nobody


# -- permissions ---------------------------------------------------------------------------------


def test_permissions_grew(tmp_path: Path) -> None:
    new = {**BASE, "users/bob.json": {"groups": ["readers", "writers"]}}
    result = diff(tmp_path, BASE, new)
    assert result.statements == ()  # no policy changed: a membership did
    assert changes(result) == {("s3:PutObject", BUCKET, "grew")}
    assert changes(result, ANN) == set()
    assert result.principals_evaluated == 1  # ann's policies did not change: not decided again
    grew = result.permissions[0]
    assert grew.service == "s3" and grew.old == "deny" and grew.new == "allow"


def test_permissions_shrank(tmp_path: Path) -> None:
    new = {**BASE, "users/bob.json": {"groups": []}}
    result = diff(tmp_path, BASE, new)
    assert changes(result) == {("s3:GetObject", BUCKET, "shrank")}


def test_a_deny_added_shrinks(tmp_path: Path) -> None:
    new = {**BASE, "users/bob.json": {"groups": ["readers"], "policies": ["NoGet"]}}
    new["policies/NoGet.json"] = policy(deny("s3:GetObject"))
    result = diff(tmp_path, BASE, new)
    assert changes(result) == {("s3:GetObject", BUCKET, "shrank")}
    assert changes(result, ANN) == set()


def test_a_changed_policy_affects_every_member_of_its_group(tmp_path: Path) -> None:
    new = {**BASE, "policies/Read.json": policy(allow(["s3:GetObject", "s3:GetObjectTagging"]))}
    result = diff(tmp_path, BASE, new)
    want = {("s3:GetObjectTagging", BUCKET, "grew")}
    assert changes(result) == want and changes(result, ANN) == want


def test_a_condition_added_is_reported_as_conditional(tmp_path: Path) -> None:
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    new = {**BASE, "policies/Read.json": policy(allow("s3:GetObject", sid="Read", Condition=mfa))}
    result = diff(tmp_path, BASE, new)
    found = [p for p in result.permissions if p.principal == BOB]
    assert [(p.action, p.kind) for p in found] == [("s3:GetObject", "conditional")]
    assert found[0].old == "allow"
    assert found[0].new.startswith("deny; allow if ") and "MultiFactorAuthPresent" in found[0].new


def test_a_conditional_deny_of_an_allowed_action_is_conditional(tmp_path: Path) -> None:
    ip = {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}
    new = {**BASE, "users/bob.json": {"groups": ["readers"], "policies": ["Office"]}}
    new["policies/Office.json"] = policy(deny("s3:GetObject", Condition=ip))
    result = diff(tmp_path, BASE, new)
    found = [p for p in result.permissions if p.principal == BOB]
    # NotIpAddress holds on a context without aws:SourceIp (as in IAM): denied on an empty
    # context, yet allowed from the office: conditional, never a plain shrink.
    assert [(p.kind, p.old) for p in found] == [("conditional", "allow")]
    assert found[0].new.startswith("deny; deny if ") and "203.0.113.0/24" in found[0].new


def test_an_action_pattern_is_expanded_with_the_service_reference(tmp_path: Path) -> None:
    new = {**BASE, "policies/Write.json": policy(allow("s3:PutObjectT*"))}
    new["users/bob.json"] = {"groups": ["writers"]}
    result = diff(tmp_path, BASE, new)
    grew = {p.action for p in result.permissions if p.principal == BOB and p.kind == "grew"}
    assert grew == {"s3:PutObjectTagging"}  # the only action of s3 that the pattern matches


ORDER = "arn:app:orders:::order/*"


def test_an_application_pattern_is_expanded_with_the_actions_the_versions_name(
    tmp_path: Path,
) -> None:
    app = {
        **BASE,
        "store.json": {"application_services": ["orders"]},
        "policies/Orders.json": policy(allow(["orders:Read", "orders:Rename", "orders:Delete"])),
    }
    new = {**app, "users/bob.json": {"groups": ["readers"], "policies": ["OrdersRe"]}}
    new["policies/OrdersRe.json"] = policy(allow("orders:Re*", ORDER), allow("orders:Zz*", ORDER))
    result = diff(tmp_path, app, new)
    assert changes(result) == {("orders:Read", ORDER, "grew"), ("orders:Rename", ORDER, "grew")}
    assert "orders:Zz*: matches no action of the reference or of the versions" in result.notes


def test_the_principals_variables_are_filled_in_and_others_noted(tmp_path: Path) -> None:
    mine = "arn:aws:s3:::home/${aws:username}/${aws:PrincipalTag/team}/*"
    theirs = "arn:aws:s3:::x/${s3:prefix}/*"
    new = {**BASE, "users/bob.json": {"policies": ["Home"], "tags": {"team": "blue"}}}
    new["policies/Home.json"] = policy(allow("s3:GetObject", [mine, theirs]))
    result = diff(tmp_path, BASE, new)
    assert ("s3:GetObject", "arn:aws:s3:::home/bob/blue/*", "grew") in changes(result)
    assert f"{BOB}: s3:GetObject on {theirs}: a policy variable the diff cannot fill;" in " ".join(
        result.notes
    )


def test_a_user_added_or_removed(tmp_path: Path) -> None:
    new = dict(BASE)
    del new["users/ann.json"]
    new["users/cy.json"] = {"groups": ["writers"]}
    result = diff(tmp_path, BASE, new)
    assert changes(result, ANN) == {("s3:GetObject", BUCKET, "shrank")}
    cy = f"arn:aws:iam::{ACCOUNT}:user/cy"
    assert changes(result, cy) == {("s3:PutObject", BUCKET, "grew")}


def test_only_affected_principals_are_decided_again(tmp_path: Path) -> None:
    many = dict(BASE)
    for n in range(200):
        many[f"users/u{n}.json"] = {"groups": ["readers"]}
    new = {**many, "users/u7.json": {"groups": ["writers"]}}
    result = diff(tmp_path, many, new)
    assert result.principals_compared == 202 and result.principals_evaluated == 1
    assert {p.principal for p in result.permissions} == {f"arn:aws:iam::{ACCOUNT}:user/u7"}


TRUST = policy(
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "sts:AssumeRole",
    }
)


def test_a_role_is_compared_as_a_session_of_it(tmp_path: Path) -> None:
    role = {"trust_policy": TRUST, "policies": ["Read"]}
    old = {**BASE, "roles/Deploy.json": role}
    new = {**BASE, "roles/Deploy.json": {**role, "policies": ["Read", "Write"]}}
    result = diff(tmp_path, old, new)
    deploy = f"arn:aws:iam::{ACCOUNT}:role/Deploy"
    assert changes(result, deploy) == {("s3:PutObject", BUCKET, "grew")}
    assert result.principals_evaluated == 1  # the users' policies did not change


def test_a_role_boundary_added_shrinks(tmp_path: Path) -> None:
    role = {"trust_policy": TRUST, "policies": ["Read", "Write"]}
    old = {**BASE, "roles/Deploy.json": role}
    new = {**BASE, "roles/Deploy.json": {**role, "permissions_boundary": "Read"}}
    result = diff(tmp_path, old, new)
    deploy = f"arn:aws:iam::{ACCOUNT}:role/Deploy"
    assert changes(result, deploy) == {("s3:PutObject", BUCKET, "shrank")}


def test_users_of_every_account_are_compared(tmp_path: Path) -> None:
    member = "210987654321"

    def two(groups: list[str]) -> dict[str, Any]:
        files: dict[str, Any] = {}
        for account in (ACCOUNT, member):
            at = f"accounts/{account}/"
            files[f"{at}account.json"] = {"account_id": account}
            files[f"{at}policies/Read.json"] = BASE["policies/Read.json"]
            files[f"{at}policies/Write.json"] = BASE["policies/Write.json"]
            files[f"{at}groups/readers.json"] = {"policies": ["Read"]}
            files[f"{at}groups/writers.json"] = {"policies": ["Write"]}
            files[f"{at}users/bob.json"] = {"groups": groups if account == member else ["readers"]}
        return files

    result = diff(tmp_path, two(["readers"]), two(["readers", "writers"]))
    assert changes(result, f"arn:aws:iam::{member}:user/bob") == {("s3:PutObject", BUCKET, "grew")}
    assert changes(result) == set() and result.principals_evaluated == 1


def test_an_scp_attached_decides_everybody_again(tmp_path: Path) -> None:
    member = "210987654321"
    org = {
        "id": "o-abcdefghij",
        "management_account": ACCOUNT,
        "root": {"id": "r-abcd", "accounts": [ACCOUNT, member]},
    }
    files: dict[str, Any] = {"organization/organization.json": org}
    files["organization/scps/NoGet.json"] = policy(deny("s3:GetObject"))
    for account in (ACCOUNT, member):
        at = f"accounts/{account}/"
        files[f"{at}account.json"] = {"account_id": account}
        files[f"{at}policies/Read.json"] = BASE["policies/Read.json"]
        files[f"{at}users/bob.json"] = {"policies": ["Read"]}
    attached = {**org, "accounts": {member: {"scps": ["FullAWSAccess", "NoGet"]}}}
    result = diff(tmp_path, files, {**files, "organization/organization.json": attached})
    assert result.statements == ()  # no statement changed: an attachment did
    assert result.principals_evaluated == 2
    assert changes(result, f"arn:aws:iam::{member}:user/bob") == {
        ("s3:GetObject", BUCKET, "shrank")
    }
    assert changes(result) == set()  # the management account is not bound by SCPs


def test_the_work_is_bounded(tmp_path: Path) -> None:
    new = {**BASE, "users/bob.json": {"groups": ["readers", "writers"]}}
    with pytest.raises(DiffTooLarge, match="max_checks"):
        diff(tmp_path, BASE, new, max_checks=1)


def test_a_path_that_is_no_version_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DiffFailed, match="neither a store nor a store version"):
        open_version(str(tmp_path / "empty"))
    with pytest.raises(DiffFailed, match="no such directory"):
        open_version(str(tmp_path / "missing"))
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(DiffFailed, match="not a directory"):
        open_version(str(tmp_path / "file.json"))
    version(tmp_path, "0001", BASE)
    with pytest.raises(DiffFailed, match="no version '0009'"):
        open_version("0009", tmp_path / "store")
    assert open_version("0001", tmp_path / "store").version == "0001"
    version(tmp_path, "0002", BASE)
    assert open_version(str(tmp_path / "store")).version == "0002"  # a store: its newest
    with pytest.raises(DiffFailed, match="is not allowed as a version name"):
        open_version("../0001", tmp_path / "store", names_only=True)  # never a path


def test_a_version_that_does_not_load_is_an_error(tmp_path: Path) -> None:
    broken = version(tmp_path, "0001", {**BASE, "users/bob.json": {"groups": ["nope"]}})
    with pytest.raises(DiffFailed, match="does not load"):
        open_version(str(broken))


def test_text_shortens_a_whole_service() -> None:
    from pdp.reference import default_reference

    sqs = default_reference().service("sqs")
    assert sqs is not None
    rows = [
        PermissionChange(BOB, "sqs", f"sqs:{a.name}", "*", "grew", "deny", "allow")
        for a in sqs.actions.values()
    ]
    result = VersionDiff("1", "2", (), tuple(rows), 1, 1, len(rows))
    assert f"sqs grew on *: sqs:* (all {len(rows)} actions)" in render_diff(result)


# -- the command ---------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["diff", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_exits_1_on_changes_and_prints_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version(tmp_path, "0001", BASE)
    version(tmp_path, "0002", {**BASE, "users/bob.json": {"groups": ["readers", "writers"]}})
    store = str(tmp_path / "store")
    code, out, _ = run(capsys, "--store", store, "0001", "0002")
    assert code == 1
    assert "0001 -> 0002" in out and BOB in out
    assert f"s3 grew on {BUCKET}: s3:PutObject" in out
    code, out, _ = run(capsys, "--store", store, "0001", "0002", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["changed"] is True
    assert [(p["principal"], p["action"], p["kind"]) for p in doc["permissions"]] == [
        (BOB, "s3:PutObject", "grew")
    ]
    code, out, _ = run(capsys, "--store", store, "0001", "0002", "--format", "markdown")
    assert code == 1 and out.startswith("# pdp diff 0001 -> 0002") and "| grew |" in out


def test_the_command_exits_0_without_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = version(tmp_path, "0001", BASE)
    b = version(tmp_path, "0002", BASE)
    code, out, _ = run(capsys, str(a), str(b), "--format", "json")
    assert code == 0 and json.loads(out)["changed"] is False
    code, out, _ = run(capsys, str(a), str(b))
    assert code == 0 and "permissions: no change" in out


def test_the_command_exits_2_on_a_path_that_is_no_store_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = version(tmp_path, "0001", BASE)
    (tmp_path / "other").mkdir()
    code, out, err = run(capsys, str(a), str(tmp_path / "other"))
    assert code == 2 and out == ""
    assert "neither a store nor a store version directory" in err
    code, _, err = run(capsys, str(a), str(a), "--max-checks", "0")
    assert code == 2 and "--max-checks" in err


def test_a_decision_that_fails_fails_the_diff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed decision is a Deny with errors: read as such, it could hide a change."""
    from pdp import Decision
    from pdp.store import Snapshot

    def failing(self: Snapshot, *args: Any, **kwargs: Any) -> Decision:
        return Decision("Deny", "implicitDeny", errors=("boom",))

    monkeypatch.setattr(Snapshot, "is_authorized", failing)
    new = {**BASE, "users/bob.json": {"groups": ["readers", "writers"]}}
    with pytest.raises(DiffFailed, match="could not be decided: boom"):
        diff(tmp_path, BASE, new)


def test_what_could_not_be_decided_is_never_reported_as_no_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """bob joins a group whose only grant names a variable the diff cannot fill: no statement
    changed, and nothing was decided, so the diff must not say (or exit as) "no change"."""
    old = {
        **BASE,
        "policies/Src.json": policy(allow("s3:GetObject", "arn:aws:s3:::x/${s3:prefix}/*")),
        "groups/src.json": {"policies": ["Src"]},
    }
    new = {**old, "users/bob.json": {"groups": ["readers", "src"]}}
    result = diff(tmp_path, old, new)
    assert not result.statements and not result.permissions
    assert result.undecided >= 1 and result.to_dict()["undecided"] == result.undecided
    text = render_diff(result)
    assert "permissions: no change" not in text and "not decided" in text, text
    a, b = tmp_path / "store" / "versions" / "0001", tmp_path / "store" / "versions" / "0002"
    assert main(["diff", str(a), str(b)]) == 1  # "something may have changed", never 0
