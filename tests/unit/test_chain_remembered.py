"""What the store and the chain remember between requests stays within its bounds and is never
another request's: adversarial checks of pdp.store.world's and pdp.language.chain's tables."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

import pdp
from pdp import Principal, parse_policy
from pdp.language import MAX_STRING, RequestContext
from pdp.language.chain import Layers, decide_chain
from pdp.language.evaluate import PolicySet
from pdp.language.plan import Plan
from pdp.store import world as world_module
from pdp.store.activation import load_directory

ACCT = "111111111111"
SESSION_ARN = f"arn:aws:sts::{ACCT}:assumed-role/R/s1"


def _doc(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


@pytest.fixture
def snapshot(tmp_path: Path) -> Iterator[Any]:
    files = {
        f"accounts/{ACCT}/account.json": {"account_id": ACCT},
        f"accounts/{ACCT}/policies/P.json": _doc(
            [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]
        ),
        f"accounts/{ACCT}/roles/R.json": {
            "trust_policy": _doc(
                [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            ),
            "policies": ["P"],
        },
    }
    version = tmp_path / "1"
    for rel, content in files.items():
        target = version / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(content))
    yield load_directory(version)


def _live_session_sets() -> int:
    gc.collect()
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, PolicySet) and any(p.name.startswith("session#") for p in o.policies)
    )


def test_session_policy_sets_stay_within_their_bound(
    snapshot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each distinct session policy compiles to a PolicySet; _MAX_SESSION_POLICIES bounds how
    many are kept. No other table (session parts, layers, plans) may keep more alive."""
    bound = 8
    monkeypatch.setattr(world_module, "_MAX_SESSION_POLICIES", bound)
    before = _live_session_sets()
    for i in range(10 * bound):
        resource = f"arn:aws:s3:::b{i}/*"
        statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource}
        session = pdp.Session.from_dict({"policies": [_doc([statement])]})
        decision = snapshot.is_authorized(
            SESSION_ARN, "s3:GetObject", f"arn:aws:s3:::b{i}/k",
            principal_type="role_session", session=session,
        )  # fmt: skip
        assert decision.decision == "Allow", decision
    assert _live_session_sets() - before <= bound


def test_a_layers_shared_by_two_callers_on_two_threads_decides_each_as_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """decide_chain prepares a Layers for the caller it decides (the resource statements that
    name it, ...). A thread that has found the Layers prepared for its caller must keep using
    that preparation while another thread prepares the same Layers for another caller: here
    the other thread's preparation runs in the middle of the first decision (in Plan.run,
    where a thread switch can happen), as it can with the gRPC server's threads."""
    alice = Principal.user("alice", account=ACCT)
    carol = Principal.user("carol", account=ACCT)
    grant = _doc(
        [
            {
                "Effect": "Allow",
                "Principal": {"AWS": alice.arn},
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/*",
            }
        ]
    )
    nothing = _doc([{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}])
    layers = Layers(
        resource=(parse_policy(grant, "resources/b.json", kind="resource"),),
        identity=PolicySet([parse_policy(nothing, "p.json")]),
    )

    def decide(caller: Principal) -> pdp.Decision:
        ctx = RequestContext(caller, {})
        return decide_chain(layers, caller, ctx, "s3:getobject", "s3", "arn:aws:s3:::b/k", "1")

    assert decide(carol).decision == "Deny"  # prepared for carol
    run = Plan.run
    switched: list[pdp.Decision] = []

    def run_then_switch(self: Plan, ctx: RequestContext, *args: Any) -> Any:
        verdict = run(self, ctx, *args)
        if not switched and ctx.values["aws:username"] == "carol":
            switched.append(decide(alice))  # the other thread, between two steps of carol's
        return verdict

    monkeypatch.setattr(Plan, "run", run_then_switch)
    assert decide(carol).decision == "Deny"
    assert switched[0].decision == "Allow"
    assert decide(alice).decision == "Allow"


@pytest.mark.parametrize("principal_type", ["service", "federated"])
def test_a_principal_past_max_string_is_refused_not_remembered(
    snapshot: Any, principal_type: str
) -> None:
    """pdp/limits.py: the engine refuses a principal longer than MAX_STRING, as the doors do;
    the World's table of callers (8,192 entries) would otherwise hold any length."""
    long = "a" * MAX_STRING + (".amazonaws.com" if principal_type == "service" else ".example.com")
    decision = snapshot.is_authorized(
        long, "s3:GetObject", "arn:aws:s3:::b/k", principal_type=principal_type
    )
    assert decision.decision == "Deny"
    assert any(f"at most {MAX_STRING}" in e for e in decision.errors), decision.errors
    assert not any(len(key[1]) > MAX_STRING for key in snapshot.world._callers)


def test_a_session_built_in_python_is_decided_not_refused_at_construction(
    snapshot: Any,
) -> None:
    """Session's fields are Mappings (a MappingProxyType is one) and any tags; what the store
    derives from them to remember sessions must not make building one raise: a bad value is
    the decision's error (a Deny), as before sessions were remembered (3984f90)."""
    doc = _doc([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])
    session = pdp.Session(policies=(MappingProxyType(doc),))
    decision = snapshot.is_authorized(
        SESSION_ARN, "s3:GetObject", "arn:aws:s3:::b/k", principal_type="role_session",
        session=session,
    )  # fmt: skip
    # parse_policy takes dicts (and JSON text): the document is refused, in the decision
    assert decision.decision == "Deny" and "must be a JSON object" in decision.errors[0]
    bad = pdp.Session(tags=MappingProxyType({"team": 1}))  # type: ignore[dict-item]
    decision = snapshot.is_authorized(
        SESSION_ARN, "s3:GetObject", "arn:aws:s3:::b/k", principal_type="role_session",
        session=bad,
    )  # fmt: skip
    # decided as before sessions were remembered (Principal.session takes the session's tags)
    assert decision.decision == "Allow", decision


def test_sessions_with_equal_but_differently_typed_values_are_not_one_remembered_session() -> None:
    """True == 1 in Python; a condition tells them apart (Bool "true" against 1 does not
    match), so the store's key of a session's principal keeps them apart."""
    assert (
        pdp.Session(mfa_present=True).principal_key
        != pdp.Session(
            mfa_present=1  # type: ignore[arg-type]
        ).principal_key
    )
    assert (
        pdp.Session(mfa_age=1).principal_key
        != pdp.Session(
            mfa_age=True  # type: ignore[arg-type]
        ).principal_key
    )


def test_a_plan_with_session_policies_keeps_few_verdicts() -> None:
    """A caller writes its session policies: ten statements whose conditions it satisfies at
    will make 1,024 sets of applying statements, each a remembered Verdict (~0.7 KB) in every
    one of up to _MAX_SESSION_POLICIES Plans. Such a Plan keeps _MAX_SESSION_VERDICTS."""
    session = Principal.session("R", "s1", account=ACCT)
    statements = [
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"StringEquals": {f"aws:k{j}": "a"}},
        }
        for j in range(10)
    ]
    own = PolicySet([parse_policy(_doc(statements), "session#policies[0]")])
    identity = PolicySet([parse_policy(_doc(statements[:1]), "p.json")])
    plan = Plan(None, None, (), identity, None, own)
    for bits in range(1024):
        ctx = RequestContext(session, {f"aws:k{j}": "a" for j in range(10) if bits >> j & 1})
        plan.run(ctx, "s3:getobject", "s3", "arn:aws:s3:::b/k", [])
    assert len(plan._verdicts) <= 64


def test_a_session_too_large_to_remember_leaves_no_layers_behind(snapshot: Any) -> None:
    """A session stating more than _MAX_SESSION_REMEMBERED characters is decided without being
    remembered, so that the tables stay within _MAX_SESSIONS x that size: its principal is
    built for the request, and the Layers keyed by that principal must not keep it (~40 KB
    each, up to _MAX_SESSIONS of them) either."""
    before = len(snapshot.world._layers)
    for i in range(20):
        tags = {f"{j:03d}" + "k" * 125: f"{i}" + "v" * 250 for j in range(50)}
        session = pdp.Session.from_dict({"tags": tags})
        assert session.size > world_module._MAX_SESSION_REMEMBERED
        decision = snapshot.is_authorized(
            SESSION_ARN, "s3:GetObject", "arn:aws:s3:::b/k", principal_type="role_session",
            session=session,
        )  # fmt: skip
        assert decision.decision == "Allow", decision
    assert len(snapshot.world._layers) - before <= 1


def test_remembered_sessions_stay_within_a_byte_budget(
    snapshot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session of 50 two-character tags states ~150 characters, under
    _MAX_SESSION_REMEMBERED, yet its principal, parts and Layers take ~20 KB: counting
    entries alone let 8,192 of them hold ~160 MB. The World's tables that callers fill with
    sessions keep to a byte budget (here 2 MB)."""
    import tracemalloc

    budget = 2 * 2**20
    monkeypatch.setattr(world_module, "_SESSION_BUDGET", budget, raising=False)
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for i in range(600):
            raw = {"tags": {f"{j:02d}": "" for j in range(50)}, "source_identity": f"id{i}"}
            session = pdp.Session.from_dict(raw)
            assert world_module.remembers(session)
            decision = snapshot.is_authorized(
                SESSION_ARN, "s3:GetObject", "arn:aws:s3:::b/k", principal_type="role_session",
                session=session,
            )  # fmt: skip
            assert decision.decision == "Allow", decision
        del session
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert kept < 2 * budget, kept
