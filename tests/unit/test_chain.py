"""decide_chain on hand-built layers: the combination rules of the evaluation chain
(reference_policies_evaluation-logic.html and subpages), one table row per rule."""

from __future__ import annotations

from typing import Any

import pytest

from pdp import Principal, parse_policy
from pdp.language import PolicySet, RequestContext
from pdp.language.chain import Guard, Layers, decide_chain

A, B = "111111111111", "222222222222"
BUCKET = "arn:aws:s3:::b/k"
ALICE = Principal.user("alice", account=A)
SESSION = Principal.session("Deploy", "ci", account=A)
ROOT = Principal.root(account=A)
OTHER_USER = Principal.user("bob", account=B)


def _allow(action: str = "s3:GetObject", **extra: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, **extra}]}


def _deny(action: str = "s3:GetObject", **extra: Any) -> dict[str, Any]:
    doc = _allow(action, **extra)
    doc["Statement"][0]["Effect"] = "Deny"
    return doc


def _set(doc: dict[str, Any] | None) -> PolicySet | None:
    return None if doc is None else PolicySet([parse_policy(doc, "p.json")])


def _resource(principal: Any, effect: str = "Allow") -> tuple[Any, ...]:
    doc = _allow(Principal=principal, Resource="arn:aws:s3:::b/*")
    doc["Statement"][0]["Effect"] = effect
    return (parse_policy(doc, "resources/b.json", kind="resource"),)


IDENTITY = _allow(Resource="*")
NOTHING = _allow("s3:PutObject", Resource="*")
FULL = _allow("*", Resource="*")

CASES: list[tuple[str, Principal, dict[str, Any], str, tuple[str, ...]]] = [
    # A level whose SCPs only deny (FullAWSAccess detached) allows nothing: it blocks, even for
    # actions its Deny does not name (orgs_manage_policies_scps_evaluation.html)
    (
        "scp level with only a deny blocks",
        ALICE,
        {"identity": IDENTITY, "scp": [FULL, _deny("ec2:*", Resource="*")]},
        "implicitDeny",
        ("scp",),
    ),
    # (name, caller, layers, expected reason, blocked_by)
    ("identity alone", ALICE, {"identity": IDENTITY}, "allowed", ()),
    ("no allow anywhere", ALICE, {"identity": NOTHING}, "implicitDeny", ("identity",)),
    (
        "scp level without allow",
        ALICE,
        {"identity": IDENTITY, "scp": [FULL, NOTHING]},
        "implicitDeny",
        ("scp",),
    ),
    (
        "scp deny beats everything",
        ALICE,
        {"identity": IDENTITY, "scp": [FULL, _deny(Resource="*")]},
        "explicitDeny",
        ("scp",),
    ),
    (
        "rcp first",
        ALICE,
        {"identity": IDENTITY, "rcp": [NOTHING], "scp": [NOTHING]},
        "implicitDeny",
        ("rcp",),
    ),
    (
        "boundary limits identity",
        ALICE,
        {"identity": IDENTITY, "boundary": NOTHING},
        "implicitDeny",
        ("boundary",),
    ),
    (
        "boundary alone grants nothing",
        ALICE,
        {"identity": NOTHING, "boundary": IDENTITY},
        "implicitDeny",
        ("identity",),
    ),
    (
        "same-account user named in resource policy",
        ALICE,
        {"identity": NOTHING, "resource": f"arn:aws:iam::{A}:user/alice"},
        "allowed",
        (),
    ),
    (
        "resource grant to user ignores boundary",
        ALICE,
        {"identity": NOTHING, "boundary": NOTHING, "resource": f"arn:aws:iam::{A}:user/alice"},
        "allowed",
        (),
    ),
    (
        "resource grant to account delegates",
        ALICE,
        {"identity": NOTHING, "resource": A},
        "implicitDeny",
        ("identity",),
    ),
    (
        "resource grant to account plus identity",
        ALICE,
        {"identity": IDENTITY, "resource": A},
        "allowed",
        (),
    ),
    (
        "session ARN named ignores session policy",
        SESSION,
        {
            "identity": NOTHING,
            "session": NOTHING,
            "resource": f"arn:aws:sts::{A}:assumed-role/Deploy/ci",
        },
        "allowed",
        (),
    ),
    (
        "role ARN named: session policy limits",
        SESSION,
        {"identity": NOTHING, "session": NOTHING, "resource": f"arn:aws:iam::{A}:role/Deploy"},
        "implicitDeny",
        ("session",),
    ),
    (
        "role ARN named: boundary limits",
        SESSION,
        {"identity": NOTHING, "boundary": NOTHING, "resource": f"arn:aws:iam::{A}:role/Deploy"},
        "implicitDeny",
        ("boundary",),
    ),
    (
        "role ARN named, no limits",
        SESSION,
        {"identity": NOTHING, "resource": f"arn:aws:iam::{A}:role/Deploy"},
        "allowed",
        (),
    ),
    (
        "session policy intersects",
        SESSION,
        {"identity": IDENTITY, "session": NOTHING},
        "implicitDeny",
        ("session",),
    ),
    (
        "cross account needs resource side",
        OTHER_USER,
        {"identity": IDENTITY, "same_account": False},
        "implicitDeny",
        ("resource",),
    ),
    (
        "cross account needs identity side",
        OTHER_USER,
        {"identity": NOTHING, "resource": f"arn:aws:iam::{B}:user/bob", "same_account": False},
        "implicitDeny",
        ("identity",),
    ),
    (
        "cross account both sides",
        OTHER_USER,
        {"identity": IDENTITY, "resource": B, "same_account": False},
        "allowed",
        (),
    ),
    (
        "resource deny on account",
        ALICE,
        {"identity": IDENTITY, "resource": ({"AWS": A}, "Deny")},
        "explicitDeny",
        ("resource",),
    ),
    (
        "mandatory resource policy",
        ALICE,
        {"identity": IDENTITY, "required": True},
        "implicitDeny",
        ("resource",),
    ),
    ("root needs nothing in its account", ROOT, {}, "allowed", ()),
    ("root of member account under scp", ROOT, {"scp": [NOTHING]}, "implicitDeny", ("scp",)),
    ("anonymous public", Principal.anonymous(), {"resource": "*"}, "allowed", ()),
    ("anonymous not named", Principal.anonymous(), {"resource": A}, "implicitDeny", ("resource",)),
    (
        "service named",
        Principal.service("s3.amazonaws.com"),
        {"resource": {"Service": "s3.amazonaws.com"}},
        "allowed",
        (),
    ),
]


@pytest.mark.parametrize(
    ("name", "caller", "spec", "reason", "blocked"), CASES, ids=[c[0] for c in CASES]
)
def test_chain_rule(
    name: str, caller: Principal, spec: dict[str, Any], reason: str, blocked: tuple[str, ...]
) -> None:
    resource: tuple[Any, ...] = ()
    if "resource" in spec:
        value = spec["resource"]
        resource = (
            _resource(*value)
            if isinstance(value, tuple)
            else _resource(value if not isinstance(value, str) or value == "*" else {"AWS": value})
        )
    layers = Layers(
        rcp=Guard([parse_policy(d, "rcp.json")] for d in spec["rcp"]) if "rcp" in spec else None,
        scp=Guard([parse_policy(d, "scp.json")] for d in spec["scp"]) if "scp" in spec else None,
        resource=resource,
        resource_required=spec.get("required", False),
        identity=_set(spec.get("identity")),
        boundary=_set(spec.get("boundary")),
        session=_set(spec.get("session")),
        same_account=spec.get("same_account", True),
    )
    ctx = RequestContext(caller, {})
    decision = decide_chain(layers, caller, ctx, "s3:getobject", "s3", BUCKET, "1")
    assert (decision.reason, decision.blocked_by, decision.errors) == (reason, blocked, ())
    assert decision.decision == ("Allow" if reason == "allowed" else "Deny")
