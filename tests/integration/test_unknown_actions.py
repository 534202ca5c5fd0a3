"""Requests for actions AWS does not have, in a real `pdp serve`: decided exactly as before
(the reference never changes a decision), counted in pdp_unknown_action_requests_total and
marked `"unknown_action": true` in the decision log; the Access Advisor report names services."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

from pdp.audit import DecisionEvent
from tests.integration.servers import copy_store, start_server

OBJECT = "arn:aws:s3:::example-bucket/report.csv"


def _unknown_count(text: str) -> int:
    (value,) = re.findall(
        r"^pdp_unknown_action_requests_total\{worker=\"\d+\"\} (\d+)$", text, re.M
    )
    return int(value)


def test_unknown_actions_are_counted_and_marked_never_decided_otherwise(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    srv = start_server(tmp_path, PDP_DECISION_LOG=str(log))
    try:
        assert _unknown_count(srv.call("/metrics")[1]) == 0
        answers = {}
        for request_id, action, resource in (
            ("known", "s3:GetObject", OBJECT),
            ("typo", "s3:GetObjct", OBJECT),
            ("app", "orders:Read", "arn:app:orders:::order/42"),
            ("case", "S3:getobject", OBJECT),
        ):
            status, body = srv.call(
                "/v1/is-authorized",
                {
                    "principal": "bob",
                    "action": action,
                    "resource": resource,
                    "request_id": request_id,
                },
            )
            assert status == 200, body
            answers[request_id] = (body["decision"], body["reason"])
        # decided as IAM decides: a real action granted, a typo granted by nothing, the
        # application's own action granted by its policy (OrdersApp); the example store's
        # store.json declares "orders" an application service, so only the typo is unknown
        assert answers == {
            "known": ("Allow", "allowed"),
            "typo": ("Deny", "implicitDeny"),
            "app": ("Allow", "allowed"),
            "case": ("Allow", "allowed"),
        }
        assert _unknown_count(srv.call("/metrics")[1]) == 1
        status, advisor = srv.call("/admin/access-advisor/bob", admin=True)
        assert status == 200
        assert advisor["service_names"]["s3"] == "Amazon S3"
        assert "s3:GetObject" not in advisor["actions_unused_for_days"]
        assert "s3:PutObject" in advisor["actions_unused_for_days"]
    finally:
        assert srv.stop(signal.SIGTERM) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    marked = {e["request_id"]: e.get("unknown_action", False) for e in lines}
    assert marked == {"known": False, "typo": True, "app": False, "case": False}
    assert all(e["schema_version"] == 1 for e in lines)  # an optional field: still schema 1
    events = [DecisionEvent.from_dict(e) for e in lines]
    assert [e.unknown_action for e in events] == [False, True, False, False]


def test_without_application_services_an_application_action_is_unknown(tmp_path: Path) -> None:
    """The same application action, in a store whose store.json does not declare "orders":
    still allowed by its policy, now counted and marked as an action AWS does not have."""
    store = copy_store(tmp_path / "store")
    (store / "versions" / "0002" / "store.json").unlink()
    log = tmp_path / "decisions.jsonl"
    srv = start_server(tmp_path, store=store, PDP_DECISION_LOG=str(log))
    try:
        body = srv.decide("bob", "orders:Read", "arn:app:orders:::order/42")
        assert (body["decision"], body["reason"]) == ("Allow", "allowed")
        assert _unknown_count(srv.call("/metrics")[1]) == 1
    finally:
        assert srv.stop(signal.SIGTERM) == 0
    (event,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert event["unknown_action"] is True
