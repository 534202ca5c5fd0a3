"""The admin listener answers JSON whatever goes wrong: a bad `days` is a 400 naming it, an
unknown route its 404 or 405, and an internal failure a logged 500 "internal error"."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.integration.servers import Server, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("admin-errors")
    srv = start_server(
        tmp, PDP_DECISION_LOG=str(tmp / "decisions.jsonl"), PDP_RUN_DIR=str(tmp / "run")
    )
    srv.decide("bob", "s3:GetObject", "arn:aws:s3:::example-bucket/a")
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    "days",
    ["9" * 4400, "99999999999999999999", "0", "36501", "-1", "1.5", "abc", "", "%D9%A1"],
)
def test_days_out_of_range_is_400_naming_it(server: Server, days: str) -> None:
    status, body = server.call(f"/admin/access-advisor/bob?days={days}", admin=True)
    assert status == 400, body
    message = "days: must be a whole number from 1 to 36500"
    assert body == {"error": {"code": "invalid_request", "message": message}}


@pytest.mark.parametrize("days", ["1", "90", "36500"])
def test_days_within_range_is_answered(server: Server, days: str) -> None:
    status, body = server.call(f"/admin/access-advisor/bob?days={days}", admin=True)
    assert status == 200 and body["days"] == int(days), body


def test_unknown_routes_and_methods_are_json(server: Server) -> None:
    status, body = server.call("/admin/nothing-here", admin=True)
    assert status == 404 and body["error"]["code"] == "not_found", body
    assert "not found" in body["error"]["message"], body
    status, body = server.call("/admin/reload", admin=True, method="GET")
    assert status == 405 and body["error"]["code"] == "method_not_allowed", body
    assert "not allowed" in body["error"]["message"], body


def test_an_internal_failure_is_a_logged_json_500(server: Server) -> None:
    """A run directory removed under a running server (a /tmp cleaner) breaks a reload."""
    shutil.rmtree(server.store.parent / "run")
    status, body = server.call("/admin/reload", {}, admin=True)
    assert (status, body) == (500, {"error": {"code": "internal", "message": "internal error"}})
    log = server.log.read_text()
    assert "pdp.server.admin internal error" in log and "FileNotFoundError" in log, log[-3000:]
    assert server.call("/admin/status", admin=True)[0] == 200  # and the admin keeps serving


def test_a_bad_token_is_still_refused_first(server: Server) -> None:
    status, body = server.call("/admin/access-advisor/bob?days=0", admin=True, token="wrong")
    assert status == 401 and body["error"]["code"] == "unauthenticated", body
    assert "bearer token" in body["error"]["message"], body
