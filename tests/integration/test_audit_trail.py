"""The decision log and Access Advisor in a real `pdp serve`: flushed on SIGTERM, never blocking."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import grpc

from pdp.v1 import authorizer_pb2 as pb
from pdp.v1 import authorizer_pb2_grpc as pb_grpc
from tests.integration.servers import start_server

OBJECT = "arn:aws:s3:::example-bucket/report.csv"


def test_every_decision_is_logged_and_flushed_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    srv = start_server(tmp_path, PDP_DECISION_LOG=str(log))
    for i in range(200):
        srv.call(
            "/v1/is-authorized",
            {
                "principal": "bob",
                "action": "s3:GetObject",
                "resource": OBJECT,
                "request_id": f"r{i}",
            },
        )
    srv.call(
        "/v1/is-authorized", {"principal": "bob", "action": "s3:DeleteObject", "resource": OBJECT}
    )
    srv.call(
        "/v1/is-authorized",
        {
            "principal": "arn:aws:iam::123456789012:root",
            "principal_type": "root",
            "action": "iam:CreateUser",
            "resource": "*",
        },
    )
    with grpc.insecure_channel(srv.grpc) as channel:
        pb_grpc.AuthorizerStub(channel).IsAuthorized(
            pb.IsAuthorizedRequest(
                principal="carol", action="dynamodb:GetItem", resource="*", request_id="g1"
            ),
            timeout=10,
        )
    status, advisor = srv.call("/admin/access-advisor/bob", admin=True)
    assert status == 200 and advisor["principal"] == "bob"
    assert [u["service"] for u in advisor["services_used"]] == ["s3"]
    assert advisor["unused_for_days"] == ["ec2", "orders"]
    assert srv.call("/admin/access-advisor/nobody", admin=True)[0] == 404
    status, text = srv.call("/metrics")
    assert "pdp_decision_log_written_total" in text and "pdp_decision_log_dropped_total" in text
    assert srv.stop(signal.SIGTERM) == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(events) == 203  # nothing lost on a clean shutdown
    ids = {e["request_id"] for e in events}
    assert {f"r{i}" for i in range(200)} <= ids and "g1" in ids
    assert [e["reason"] for e in events if e["action"] == "s3:DeleteObject"] == ["explicitDeny"]
    assert [e["root"] for e in events if e["principal"].endswith(":root")] == [True]
    assert Path(f"{log}.advisor.sqlite").exists()


def test_a_stalled_log_never_slows_decisions(tmp_path: Path) -> None:
    fifo = tmp_path / "stalled"
    os.mkfifo(fifo)
    srv = start_server(tmp_path, PDP_DECISION_LOG=str(fifo), PDP_DECISION_LOG_QUEUE="50")
    try:
        slowest = 0.0
        for _ in range(300):
            started = time.perf_counter()
            status, body = srv.call(
                "/v1/is-authorized",
                {"principal": "bob", "action": "s3:GetObject", "resource": OBJECT},
            )
            slowest = max(slowest, time.perf_counter() - started)
            assert status == 200 and body["decision"] == "Allow"
        assert slowest < 1.0
        status, info = srv.call("/admin/status", admin=True)
        assert info["decision_log"]["dropped"] >= 300 - 51
    finally:
        srv.stop(signal.SIGTERM, timeout=60)
