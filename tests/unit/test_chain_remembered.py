"""What the store and the chain remember between requests stays within its bounds and is never
another request's: adversarial checks of pdp.store.world's and pdp.language.chain's tables."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pdp
from pdp.language.evaluate import PolicySet
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
