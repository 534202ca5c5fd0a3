"""User names ignore case, as in IAM: `BOB` and `arn:aws:iam::<account>:user/BOB` are the user
`bob`, and the decision is made with the name and ARN as stored (docs/store.md, Principals).

IAM User Guide, "IAM and AWS STS quotas, name requirements": user names are not distinguished
by case; you cannot create both "TESTUSER" and "testuser". The identity a request is made with
is the user as created, so `${aws:username}` and `aws:PrincipalArn` carry the stored case.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import pdp
from pdp.cli import main
from tests.integration.servers import EXAMPLE, Server, copy_store, start_server

ARN = "arn:aws:iam::123456789012:user/"
ROOT = "arn:aws:iam::123456789012:root"
GET = "s3:GetObject"
OWN = "arn:aws:s3:::home-bucket/home/bob/report.csv"  # ${aws:username} of bob: lower case
SPELLINGS = ["bob", "BOB", "Bob", f"{ARN}bob", f"{ARN}BOB", "ARN:AWS:IAM::123456789012:USER/BOB"]
ROOTS = [ROOT, "arn:aws:iam::123456789012:ROOT", "ARN:AWS:IAM::123456789012:Root"]


def _root_refusal(errors: object) -> bool:
    return isinstance(errors, (list, tuple)) and 'principal_type "root"' in errors[0]


@pytest.mark.parametrize("cache_size", [0, 1000])
def test_python_api_resolves_a_user_in_any_case(cache_size: int) -> None:
    with pdp.Authorizer.from_store(EXAMPLE, cache_size=cache_size, watch=False) as authz:
        for spelling in SPELLINGS:
            decision = authz.is_authorized(spelling, GET, OWN)
            assert (decision.decision, decision.errors) == ("Allow", ()), spelling
            assert decision.matched[0].sid == "OwnHomeObjects"
            # ${aws:username} is the stored "bob", not the spelling asked with
            upper = authz.is_authorized(spelling, GET, OWN.replace("/bob/", "/BOB/"))
            assert (upper.decision, upper.reason) == ("Deny", "implicitDeny"), spelling
        for spelling in ROOTS:  # the root ARN, in any case, is never a user
            decision = authz.is_authorized(spelling, "iam:CreateUser", "*")
            assert decision.decision == "Deny" and _root_refusal(decision.errors), spelling
            assert not decision.root
        unknown = authz.is_authorized("NOBODY", GET, OWN)
        assert unknown.decision == "Deny"
        assert unknown.errors == (
            'principal: unknown principal "NOBODY" (no such user in store version 0002)',
        )
        assert authz.snapshot.user_policies("CAROL") == authz.snapshot.user_policies("carol") != ()


def test_the_cache_keys_every_spelling_on_the_stored_name() -> None:
    with pdp.Authorizer.from_store(EXAMPLE, cache_size=1000, watch=False) as authz:
        cache = authz.snapshot.cache
        assert cache is not None
        first = authz.is_authorized("bob", GET, OWN)
        hits = cache.hits
        for spelling in SPELLINGS[1:]:
            assert authz.is_authorized(spelling, GET, OWN) == first
        assert cache.hits == hits + len(SPELLINGS) - 1  # one entry for all spellings
        denied = authz.is_authorized("BOB", GET, OWN.replace("/bob/", "/carol/"))
        assert denied.decision == "Deny"  # another request, another key: no wrong hit
        for spelling in ROOTS:  # a root refusal is never cached as bob's, nor bob's as root
            assert _root_refusal(authz.is_authorized(spelling, GET, OWN).errors)


def _version(store: Path, name: str, users: dict[str, object], drop: tuple[str, ...]) -> None:
    version = store / "versions" / name
    shutil.copytree(store / "current", version, symlinks=True)  # follows current: the latest
    for user in drop:
        (version / "users" / f"{user}.json").unlink()
    for user, body in users.items():
        (version / "users" / f"{user}.json").write_text(json.dumps(body))
    link = store / "current.new"
    link.symlink_to(f"versions/{name}")
    link.replace(store / "current")


def test_a_reload_keeps_the_case_insensitive_index(tmp_path: Path) -> None:
    """A user added by an incremental reload resolves in any case; one renamed to another case
    resolves, in every case, to the new name, whose case the decision then carries."""
    store = copy_store(tmp_path / "store")
    arn_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalArn": f"{ARN}Dave"}},
            }
        ],
    }
    dave = {"policies": ["OwnHomePrefix"], "inline_policies": {"ByArn": arn_policy}}
    with pdp.Authorizer.from_store(store, watch=False) as authz:
        before = authz.snapshot.index
        _version(store, "0003", {"Dave": dave}, ())
        authz.reload()
        assert authz.snapshot.version == "0003"
        assert authz.snapshot.index.resolve("ALICE") is before.resolve("alice")  # incremental
        for spelling in ["Dave", "DAVE", "dave", f"{ARN}dAVE"]:
            assert authz.is_authorized(spelling, "sqs:SendMessage", "*").decision == "Allow"
            home = authz.is_authorized(spelling, GET, "arn:aws:s3:::home-bucket/home/Dave/x")
            assert home.decision == "Allow", spelling
        _version(store, "0004", {"dave": dave}, ("Dave",))  # renamed: only the case changed
        authz.reload()
        assert authz.snapshot.version == "0004"
        for spelling in ["Dave", "DAVE", "dave"]:
            # aws:PrincipalArn is now .../user/dave: the Dave-only statement no longer matches
            assert authz.is_authorized(spelling, "sqs:SendMessage", "*").decision == "Deny"
            home = authz.is_authorized(spelling, GET, "arn:aws:s3:::home-bucket/home/dave/x")
            assert home.decision == "Allow", spelling
        _version(store, "0005", {}, ("dave",))
        authz.reload()
        gone = authz.is_authorized("DAVE", GET, "arn:aws:s3:::home-bucket/home/dave/x")
        assert gone.decision == "Deny" and "unknown principal" in gone.errors[0]


def test_pdp_check_resolves_a_user_in_any_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["check", "--store", str(EXAMPLE), "--action", GET, "--resource", OWN, "--json"]
    assert main([*base, "--principal", "BOB"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "Allow"
    assert main([*base, "--principal", "arn:aws:iam::123456789012:ROOT"]) == 2
    assert _root_refusal(json.loads(capsys.readouterr().out)["errors"])
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "".join(
            json.dumps({"principal": p, "action": GET, "resource": OWN}) + "\n" for p in SPELLINGS
        )
    )
    assert main(["check", "--store", str(EXAMPLE), "--requests", str(requests)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["decision"] for d in lines] == ["Allow"] * len(SPELLINGS)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("case"))
    yield srv
    srv.stop()


def test_http_resolves_a_user_in_any_case(server: Server) -> None:
    for spelling in SPELLINGS:
        answer = server.decide(spelling, GET, OWN)
        assert (answer["decision"], answer["errors"]) == ("Allow", []), spelling
        assert server.decide(spelling, GET, OWN.replace("/bob/", "/Bob/"))["decision"] == "Deny"
    for spelling in ROOTS:
        answer = server.decide(spelling, "iam:CreateUser", "*")
        assert answer["decision"] == "Deny" and _root_refusal(answer["errors"]), spelling


@pytest.mark.parametrize("cache_size", [0, 1000])
def test_only_ascii_letters_fold(tmp_path: Path, cache_size: int) -> None:
    """IAM user names are ASCII (`[A-Za-z0-9_+=,.@-]`) and so is their case: Python's
    str.lower() also folds the Kelvin sign (U+212A) to "k", which must not make `\u212aate`
    (or its ARN) the user `kate`."""
    store = copy_store(tmp_path / "store")
    users = store / "versions" / "0002" / "users"
    shutil.copy(users / "bob.json", users / "kate.json")
    with pdp.Authorizer.from_store(store, cache_size=cache_size, watch=False) as authz:
        resource = "arn:aws:s3:::example-bucket/report.csv"
        assert authz.is_authorized("KATE", "s3:GetObject", resource).decision == "Allow"
        for spelling in ("\u212aate", "arn:aws:iam::123456789012:user/\u212aate"):
            decision = authz.is_authorized(spelling, "s3:GetObject", resource)
            assert (decision.decision, decision.reason) == ("Deny", "implicitDeny"), spelling
            assert any("unknown principal" in e for e in decision.errors), decision.errors
