"""`GET /admin/diff?old=&new=` on a real admin listener: the diff of two version names of the
served store as JSON, version names only (never a path), every bad parameter a 400 naming it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.servers import Server, start_server

BOB = "arn:aws:iam::123456789012:user/bob"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("admin-diff"))
    yield srv
    srv.stop()


def test_the_diff_of_two_versions(server: Server) -> None:
    status, body = server.call("/admin/diff?old=0001&new=0002", admin=True)
    assert status == 200, body
    assert body["old"] == "0001" and body["new"] == "0002" and body["changed"] is True
    assert {s["policy"] for s in body["statements"]} >= {"policies/OrdersApp.json"}
    grew = {(p["action"], p["resource"]) for p in body["permissions"] if p["principal"] == BOB}
    assert ("orders:Read", "arn:app:orders:::order/*") in grew
    assert body["principals_evaluated"] == 2  # alice's policies did not change


def test_the_same_version_has_no_change(server: Server) -> None:
    status, body = server.call("/admin/diff?old=0002&new=0002", admin=True)
    assert status == 200 and body["changed"] is False and body["permissions"] == [], body


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("new=0002", "old: required"),
        ("old=0001", "new: required"),
        ("old=0001&new=0009", "new: 0009: "),
        ("old=..%2F..%2Fetc&new=0002", "old: ../../etc: "),
        ("old=%2Ftmp&new=0002", "old: /tmp: "),
        ("old=0001&new=0002&max_checks=0", "max_checks: must be a whole number"),
        ("old=0001&new=0002&max_checks=" + "9" * 4400, "max_checks: must be a whole number"),
        ("old=0001&new=0002&max_checks=1", "more than 1 checks"),
    ],
)
def test_bad_parameters_are_400_naming_them(server: Server, query: str, message: str) -> None:
    status, body = server.call(f"/admin/diff?{query}", admin=True)
    assert status == 400, body
    assert body["error"]["code"] == "invalid_request" and message in body["error"]["message"]


def test_the_token_is_required(server: Server) -> None:
    status, _ = server.call("/admin/diff?old=0001&new=0002", admin=True, token="wrong")
    assert status == 401


def test_one_diff_at_a_time() -> None:
    """A second diff while one runs is Busy (503 with Retry-After), not a second pair of loads."""
    from pdp_server.config import Config
    from pdp_server.errors import Busy
    from pdp_server.service import Service
    from tests.integration.servers import EXAMPLE

    service = Service(Config(store=str(EXAMPLE)))
    assert service.diff("0001", "0001")["changed"] is False
    with service._diff_lock, pytest.raises(Busy, match="another diff is running"):
        service.diff("0001", "0002")
    assert service.diff("0001", "0002")["changed"] is True  # the lock is released after
