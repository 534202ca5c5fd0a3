"""A version whose store.json declares an impact gate is activated only if a replay of the
server's own decision log shows no change the gate refuses: through the admin door and the
store watcher, on a real `pdp serve`."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from tests.integration.servers import Server, start_server

OBJECT = "arn:aws:s3:::example-bucket/a"
DENY_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}],
}


def gated_version(store: Path, name: str, gate: dict[str, object]) -> None:
    """0002, but carol may no longer read S3, and store.json declares `gate`."""
    target = store / "versions" / name
    shutil.copytree(store / "versions" / "0002", target)
    carol = json.loads((target / "users" / "carol.json").read_text())
    carol["inline_policies"]["NoS3"] = DENY_S3
    (target / "users" / "carol.json").write_text(json.dumps(carol))
    settings = json.loads((target / "store.json").read_text())
    (target / "store.json").write_text(json.dumps({**settings, "impact_gate": gate}))


def logged_lines(path: Path, wanted: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_bytes().splitlines()) >= wanted:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path}: fewer than {wanted} logged lines")


def serving(server: Server) -> str:
    return str(server.decide("bob", "s3:GetObject", OBJECT)["policy_version"])


def test_the_gate_refuses_through_the_watcher_and_the_admin_door(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    server = start_server(tmp_path, PDP_DECISION_LOG=str(log))
    try:
        assert server.decide("carol", "s3:GetObject", OBJECT)["decision"] == "Allow"
        assert server.decide("bob", "s3:GetObject", OBJECT)["decision"] == "Allow"
        logged_lines(log, 2)
        store = server.store
        gated_version(store, "0003", {"refuse": ["allow_to_deny"]})
        gated_version(
            store,
            "0004",
            {"refuse": ["allow_to_deny"], "expected": [{"principal": "carol", "action": "s3:*"}]},
        )
        # the watcher: current moves to 0003, which would deny carol what the log shows allowed
        (store / "current.tmp").symlink_to("versions/0003")
        os.replace(store / "current.tmp", store / "current")
        deadline = time.monotonic() + 10
        while "impact_gate" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "store watch: version '0003' refused" in server.log.read_text()
        assert serving(server) == "0002"
        status, info = server.call("/admin/status", admin=True)
        assert status == 200 and "impact_gate" in info["last_reload_error"]
        # the admin door: the same refusal, in the reload-failure shape, with what would change
        status, body = server.call("/admin/reload", {"version": "0003"}, admin=True)
        assert status == 422 and body["error"]["code"] == "reload_refused", body
        problems = body["error"]["problems"]
        assert all(p["code"] == "impact_gate" for p in problems), problems
        assert problems[0]["source"] == "store.json"
        assert "would change as the gate refuses" in problems[0]["message"]
        assert "1 allow_to_deny" in problems[0]["message"]
        assert problems[1]["message"].startswith(
            f"allow_to_deny: carol s3:GetObject {OBJECT}: Allow (allowed) -> Deny (explicitDeny)"
        ), problems
        assert serving(server) == "0002"
        # a gate that expects the change lets the version in
        status, body = server.call("/admin/reload", {"version": "0004"}, admin=True)
        assert status == 200 and body["version"] == "0004", body
        assert server.decide("carol", "s3:GetObject", OBJECT)["decision"] == "Deny"
        assert "impact gate of 0004: " in server.log.read_text()
        # what-if through the admin door: the same replay, as a report
        status, body = server.call("/admin/impact", {"candidate": "0003"}, admin=True)
        assert status == 200, body
        assert (body["candidate"], body["baseline"], body["serving"]) == ("0003", "logged", "0004")
        assert body["changes"]["allow_to_deny"] >= 1 and body["gate"]["refuses"] is True
        assert body["groups"][0]["principal"] == "carol", body["groups"]
        status, body = server.call(
            "/admin/impact", {"candidate": "0002", "baseline": "current"}, admin=True
        )
        assert status == 200 and body["gate"] is None and body["baseline"] == "version 0004"
        assert body["changes"]["deny_to_allow"] >= 1  # 0004 denies carol, 0002 allows her
        status, body = server.call("/admin/impact", {"candidate": "../x"}, admin=True)
        assert status == 400 and body["error"]["message"].startswith("candidate: "), body
        status, body = server.call("/admin/impact", {"candidate": "0003"}, admin=True, token="no")
        assert status == 401
    finally:
        server.stop()


def test_a_gated_version_is_refused_without_a_log_file_to_replay(tmp_path: Path) -> None:
    server = start_server(tmp_path)  # no decision log
    try:
        gated_version(server.store, "0003", {"refuse": ["deny_to_allow"]})
        status, body = server.call("/admin/reload", {"version": "0003"}, admin=True)
        assert status == 422, body
        assert "no decision-log file" in body["error"]["problems"][0]["message"]
        assert serving(server) == "0002"
    finally:
        server.stop()


def test_a_restart_does_not_activate_a_version_the_gate_refuses(tmp_path: Path) -> None:
    """The baseline is the decision as logged, so a first load can be checked as a reload is:
    a gated version that became current (refused by the watcher, or while the server was down)
    must not start serving because the server restarted."""
    log = tmp_path / "decisions.jsonl"
    server = start_server(tmp_path, PDP_DECISION_LOG=str(log))
    try:
        assert server.decide("carol", "s3:GetObject", OBJECT)["decision"] == "Allow"
        logged_lines(log, 1)
        store = server.store
    finally:
        server.stop()
    gated_version(store, "0003", {"refuse": ["allow_to_deny"]})
    (store / "current.tmp").symlink_to("versions/0003")
    os.replace(store / "current.tmp", store / "current")
    server = start_server(tmp_path, store=store, PDP_DECISION_LOG=str(log))
    try:
        assert serving(server) == "0002", server.log.read_text()
        assert server.decide("carol", "s3:GetObject", OBJECT)["decision"] == "Allow"
        assert "impact_gate" in server.log.read_text()
    finally:
        server.stop()


def test_a_log_of_nothing_replayable_refuses_a_gated_version(tmp_path: Path) -> None:
    """Lines were logged but none could be replayed: the gate checked nothing, and an
    unchecked gate is never a pass (the refusal says why)."""
    log = tmp_path / "decisions.jsonl"
    log.write_bytes(b'{"torn": \n{"principal": "carol"}\n')
    server = start_server(tmp_path, PDP_DECISION_LOG=str(log))
    try:
        gated_version(server.store, "0003", {"refuse": ["allow_to_deny"]})
        status, body = server.call("/admin/reload", {"version": "0003"}, admin=True)
        assert status == 422, body
        message = body["error"]["problems"][0]["message"]
        assert "none of the 2 logged lines could be replayed" in message, message
        assert "unparseable" in message and "not_an_event" in message, message
        status, info = server.call("/admin/status", admin=True)
        assert info["version"] == "0002", info
    finally:
        server.stop()


def test_a_what_if_says_when_older_lines_were_left_unread(tmp_path: Path) -> None:
    """The replay reads the newest GATE_MAX_EVENTS lines only: a longer log must say so, never
    read as if every logged decision had been replayed."""
    log = tmp_path / "decisions.jsonl"
    log.write_bytes(b"x\n" * 100_001)
    server = start_server(tmp_path, PDP_DECISION_LOG=str(log))
    try:
        status, body = server.call("/admin/impact", {"candidate": "0001"}, admin=True)
        assert status == 200, body
        assert body["lines"] == 100_000 and "older lines were not replayed" in body["window"]
    finally:
        server.stop()
