"""Who-can and what-can (pdp.store.queries) against the forward decision.

Examples on the shipped store, then hypothesis properties on small random identity stores
written to tmp dirs and loaded with `pdp.store.activation.load_directory`:
1. who-can lists exactly the users the forward decision allows, for every (action, resource,
   context) of the alphabet, and its allowed-if users are never among them;
2. pages joined equal the whole answer;
3. what-can never omits an action the decision allows the user, and an unconditional entry on a
   concrete action and resource is one the decision allows.
Shown to fail with the confirmation step removed (a Deny-listed user appears) and with the
index reporting no candidates for a service.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pdp.language.wildcard import glob_matcher
from pdp.store import QueryError, load_store, query_index, what_can, who_can
from pdp.store.activation import load_directory

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "store"
ACTIONS = ["s3:GetObject", "s3:PutObject", "ec2:StartInstances"]
ACTION_PATTERNS = [*ACTIONS, "s3:*", "*", "s3:Get*"]
RESOURCES = ["arn:aws:s3:::b/k", "arn:aws:s3:::b/u0", "arn:aws:s3:::b/u1"]
RESOURCE_PATTERNS = [*RESOURCES, "arn:aws:s3:::b/*", "*", "arn:aws:s3:::b/${aws:username}"]
CONTEXTS: list[dict[str, Any]] = [{}, {"aws:MultiFactorAuthPresent": True}]
MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}

_statement = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow"] * 3 + ["Deny"]),
        "Action": st.sampled_from(ACTION_PATTERNS),
        "Resource": st.sampled_from(RESOURCE_PATTERNS),
    },
    optional={"Condition": st.just(MFA)},
)
_store = st.fixed_dictionaries(
    {
        "policies": st.lists(st.lists(_statement, min_size=1, max_size=3), min_size=1, max_size=3),
        "users": st.lists(st.lists(st.integers(0, 2), max_size=2), min_size=1, max_size=4),
    }
)
SETTINGS = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _load(store: dict[str, Any]) -> Any:
    root = Path(tempfile.mkdtemp(prefix="whocan-"))
    (root / "users").mkdir()
    (root / "policies").mkdir()
    (root / "account.json").write_text(json.dumps({"account_id": "123456789012"}))
    count = len(store["policies"])
    for i, statements in enumerate(store["policies"]):
        doc = {"Version": "2012-10-17", "Statement": statements}
        (root / "policies" / f"P{i}.json").write_text(json.dumps(doc))
    for j, refs in enumerate(store["users"]):
        names = sorted({f"P{r % count}" for r in refs})
        (root / "users" / f"u{j}.json").write_text(json.dumps({"policies": names}))
    return load_directory(root, cache_size=0)


# Pinned: an Allow on any service (Action "*": in no service's own list), and a policy variable
# in Resource (matched per user).
ANY_SERVICE = {"policies": [[{"Effect": "Allow", "Action": "*", "Resource": "*"}]], "users": [[0]]}
OWN_OBJECT = {
    "policies": [[{"Effect": "Allow", "Action": "s3:*", "Resource": RESOURCE_PATTERNS[-1]}]],
    "users": [[0], [0], []],
}


@SETTINGS
@given(_store)
@example(ANY_SERVICE)
@example(OWN_OBJECT)
def test_who_can_is_exactly_the_forward_decision(store: dict[str, Any]) -> None:
    snapshot = _load(store)
    users = [e.user.name for e in snapshot.index.users()]
    for action in ACTIONS:
        for resource in RESOURCES:
            for context in CONTEXTS:
                answer = who_can(snapshot, action, resource, context, limit=1000)
                listed = {item["principal"] for item in answer.allowed}
                truth = {
                    u
                    for u in users
                    if snapshot.is_authorized(u, action, resource, context).decision == "Allow"
                }
                assert listed == truth, (action, resource, context)
                assert not listed & {item["principal"] for item in answer.allowed_if}


@SETTINGS
@given(_store)
def test_pages_join_into_the_whole_answer(store: dict[str, Any]) -> None:
    snapshot = _load(store)
    whole = who_can(snapshot, "s3:GetObject", RESOURCES[0], limit=1000)
    seen: list[str] = []
    token = None
    for _ in range(20):
        page = who_can(snapshot, "s3:GetObject", RESOURCES[0], limit=1, page_token=token)
        seen += [item["principal"] for item in page.allowed]
        token = page.next_page_token
        if token is None:
            break
    assert seen == [item["principal"] for item in whole.allowed]


def _covers(entry: dict[str, Any], action: str) -> bool:
    pattern = str(entry["action"])
    return glob_matcher(pattern, ignore_case=True)(action.lower()) or pattern == action


@SETTINGS
@given(_store)
def test_what_can_agrees_with_the_forward_decision(store: dict[str, Any]) -> None:
    snapshot = _load(store)
    for entry in snapshot.index.users():
        user = entry.user.name
        answer = what_can(snapshot, user).allowed
        for action in ACTIONS:
            for resource in RESOURCES:
                if snapshot.is_authorized(user, action, resource).decision == "Allow":
                    assert any(_covers(item, action) for item in answer), (user, action)
        for item in answer:
            if item["condition"] or item["not_resource"] or item["action"] not in ACTIONS:
                continue
            for resource in item["resources"]:
                if resource in RESOURCES:
                    decision = snapshot.is_authorized(user, item["action"], resource)
                    assert decision.decision == "Allow", (user, item)


# --- examples on the shipped store ----------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Any:
    return load_store(EXAMPLES)


def test_who_can_on_the_example_store(shipped: Any) -> None:
    answer = who_can(shipped, "s3:GetObject", "arn:aws:s3:::example-bucket/report.csv")
    assert [i["principal"] for i in answer.allowed] == ["alice", "bob", "carol"]
    assert answer.allowed[1]["matched"][0]["sid"] == "ReadWriteObjects"


def test_a_deny_with_a_condition_is_reported_as_allowed_if(shipped: Any) -> None:
    resource = "arn:aws:s3:::home-bucket/home/bob/x"
    answer = who_can(shipped, "s3:DeleteObject", resource)
    assert "bob" not in {i["principal"] for i in answer.allowed}
    bob = next(i for i in answer.allowed_if if i["principal"] == "bob")
    assert bob["unless"][0]["sid"] == "DenyDeletesWithoutMFA"
    with_mfa = who_can(shipped, "s3:DeleteObject", resource, {"aws:MultiFactorAuthPresent": True})
    assert "bob" in {i["principal"] for i in with_mfa.allowed}


def test_an_allow_with_a_condition_is_reported_as_allowed_if(shipped: Any) -> None:
    answer = who_can(shipped, "s3:ListBucket", "arn:aws:s3:::home-bucket")
    bob = next(i for i in answer.allowed_if if i["principal"] == "bob")
    assert "s3:prefix" in json.dumps(bob["allowed_if"])


def test_what_can_expands_patterns_through_the_reference(shipped: Any) -> None:
    answer = what_can(shipped, "alice", service="s3")
    actions = {item["action"] for item in answer.allowed}
    assert "s3:GetObject" in actions and "s3:PutBucketPolicy" in actions
    assert all(a.lower().startswith("s3:") for a in actions)


def test_index_skips_groups_without_an_allow_for_the_service(shipped: Any) -> None:
    index = query_index(shipped)
    assert not index.confirm_all
    assert index.candidates("nosuchservice") == ["alice"]  # AdministratorAccess: Action "*"
    assert query_index(shipped) is index


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"action": "GetObject", "resource": "*"}, "action"),
        ({"action": "s3:GetObject", "resource": ""}, "resource"),
        ({"action": "s3:GetObject", "resource": "*", "limit": 0}, "limit"),
        ({"action": "s3:GetObject", "resource": "*", "limit": 1001}, "limit"),
        ({"action": "s3:GetObject", "resource": "*", "page_token": "x!"}, "page_token"),
    ],
)
def test_bad_questions_name_the_field(shipped: Any, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(QueryError, match=field):
        who_can(shipped, **kwargs)


def test_what_can_of_no_user_is_refused(shipped: Any) -> None:
    with pytest.raises(QueryError, match="principal"):
        what_can(shipped, "nobody")


ORGANIZATION = EXAMPLES.parent / "organization"


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("s3:GetObject", "arn:aws:s3:::reports/q1.csv"),
        ("ec2:RunInstances", "arn:aws:ec2:us-east-1:222222222222:instance/x"),
        ("s3:PutObject", "arn:aws:s3:::reports/q1.csv"),
    ],
)
def test_roles_of_a_world_store_agree_with_their_sessions(action: str, resource: str) -> None:
    snapshot = load_store(ORGANIZATION)
    context = {"aws:RequestedRegion": "us-east-1"}
    answer = who_can(snapshot, action, resource, context)
    listed = {item["principal"]: item for item in answer.allowed}
    index = query_index(snapshot)
    assert index.roles  # the example has a role
    for arn, (session, _) in index.role_sessions.items():
        decision = snapshot.is_authorized(
            session, action, resource, context, principal_type="role_session"
        )
        assert (arn in listed) == (decision.decision == "Allow"), (arn, decision)
    for entry in (e for idx in snapshot.world.indexes.values() for e in idx.users()):
        decision = snapshot.is_authorized(entry.arn, action, resource, context)
        assert (entry.arn in listed) == (decision.decision == "Allow")
    assert all(item["type"] in ("user", "role") for item in answer.allowed)


def test_a_passed_deadline_ends_the_page_early_with_a_token(shipped: Any) -> None:
    answer = who_can(shipped, "s3:GetObject", "arn:aws:s3:::example-bucket/r", deadline_seconds=-1)
    assert answer.partial and answer.allowed == [] and answer.next_page_token
    rest = who_can(shipped, "s3:GetObject", "arn:aws:s3:::example-bucket/r",
                   page_token=answer.next_page_token)  # fmt: skip
    assert [i["principal"] for i in rest.allowed] == ["alice", "bob", "carol"]


def test_a_page_token_of_another_version_is_refused(shipped: Any) -> None:
    from pdp.store.queries import _token

    with pytest.raises(QueryError, match="page_token: from store version"):
        who_can(shipped, "s3:GetObject", "*", page_token=_token(0, "9999"))


def test_a_bad_context_is_the_askers_error(shipped: Any) -> None:
    with pytest.raises(QueryError, match="aws:SourceIp"):
        who_can(shipped, "s3:GetObject", "*", {"aws:SourceIp": {"a": 1}})


def test_the_index_goes_with_its_snapshot() -> None:
    import gc

    from pdp.store.queries import _INDEXES

    snapshot = load_store(EXAMPLES)
    query_index(snapshot)
    assert snapshot in _INDEXES
    before = len(_INDEXES)
    del snapshot
    gc.collect()
    assert len(_INDEXES) == before - 1


def test_a_multi_account_store_lists_the_users_of_every_account_by_arn(tmp_path: Path) -> None:
    """Who-can must not leave out anyone the decision allows: in a store of several accounts
    that is every account's users (named by ARN, as names repeat across accounts), not only
    the top-level account's; what-can answers for a member account's user and for a role."""
    from tests.chain_store import FILES, MEMBER
    from tests.chain_store import write_store as write_org

    snapshot = load_store(write_org(tmp_path / "org", FILES))
    action, resource = "ec2:DescribeInstances", "*"
    listed = {item["principal"] for item in who_can(snapshot, action, resource).allowed}
    world = snapshot.world
    users = [e.arn for idx in world.indexes.values() for e in idx.users()]
    assert f"arn:aws:iam::{MEMBER}:user/alice" in users
    for arn in users:
        allowed = snapshot.is_authorized(arn, action, resource).decision == "Allow"
        assert (arn in listed) == allowed, arn
    assert f"arn:aws:iam::{MEMBER}:user/alice" in listed
    member = what_can(snapshot, f"arn:aws:iam::{MEMBER}:user/alice", service="ec2")
    assert member.allowed and member.principal == f"arn:aws:iam::{MEMBER}:user/alice"
    role = what_can(snapshot, f"arn:aws:iam::{MEMBER}:role/App", service="ec2")
    assert role.allowed and role.principal == f"arn:aws:iam::{MEMBER}:role/App"
    with pytest.raises(QueryError, match="principal: "):
        what_can(snapshot, f"arn:aws:iam::{MEMBER}:role/Nobody")


def test_a_not_resource_with_a_policy_variable_is_not_taken_for_a_miss() -> None:
    """NotResource b/${aws:username} allows every other object: who-can must list the user
    (the filter once took the variable for a match, and a NotResource match for a miss)."""
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": RESOURCE_PATTERNS[-1]}
    snapshot = _load({"policies": [[statement]], "users": [[0], []]})
    for resource in RESOURCES:
        truth = {
            u
            for u in ("u0", "u1")
            if snapshot.is_authorized(u, "s3:GetObject", resource).decision == "Allow"
        }
        listed = {i["principal"] for i in who_can(snapshot, "s3:GetObject", resource).allowed}
        assert listed == truth, (resource, truth)
        assert truth == ({"u0"} if resource == "arn:aws:s3:::b/k" else truth)


def test_the_account_root_the_decision_allows_is_listed() -> None:
    """The root is allowed what no user is: an answer without it would overstate safety."""
    snapshot = _load(
        {"policies": [[{"Effect": "Deny", "Action": "*", "Resource": "*"}]], "users": [[0]]}
    )
    root = "arn:aws:iam::123456789012:root"
    assert snapshot.is_authorized(root, "s3:GetObject", "*", principal_type="root").decision == (
        "Allow"
    )
    answer = who_can(snapshot, "s3:GetObject", "arn:aws:s3:::b/k")
    assert answer.allowed == [], answer.allowed
    assert answer.roots == [{"principal": root, "type": "root", "matched": []}], answer.roots
    assert answer.to_dict()["roots"] == answer.roots
