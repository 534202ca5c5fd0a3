"""AuthZEN 1.0 through a real `pdp serve` on examples/authzen-todo: the Todo scenario's rules
(written from the published scenario: five users, four roles, five permissions), the batch
semantics, the metadata document, the searches, and the errors."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import Server, start_server

TODO_STORE = Path(__file__).resolve().parents[2] / "examples" / "authzen-todo"
KEY = "interop-key"

# The scenario's subjects (their ids are the PIDs of its table) and roles.
PID = {
    "rick": "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
    "morty": "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
    "summer": "CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
    "beth": "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
    "jerry": "CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
}
EMAIL = {
    "rick": "rick@the-citadel.com",
    "morty": "morty@the-citadel.com",
    "summer": "summer@the-smiths.com",
    "beth": "beth@the-smiths.com",
    "jerry": "jerry@the-smiths.com",
}
ROLES = {
    "rick": {"admin", "evil_genius"},
    "morty": {"editor"},
    "summer": {"editor"},
    "beth": {"viewer"},
    "jerry": {"viewer"},
}
EDITORS = {"editor", "admin", "evil_genius"}  # admin and evil_genius are editor + more


def expected(user: str, action: str, owner: str) -> bool:
    """The scenario's rules, as its payload document states them."""
    roles = ROLES[user]
    owns = EMAIL[owner] == EMAIL[user]
    if action in ("can_read_user", "can_read_todos"):
        return True
    if action == "can_create_todo":
        return bool(roles & EDITORS)
    if action == "can_update_todo":
        return "evil_genius" in roles or (bool(roles & EDITORS) and owns)
    if action == "can_delete_todo":
        return "admin" in roles or (bool(roles & EDITORS) and owns)
    raise AssertionError(action)


def subject(user: str) -> dict[str, str]:
    return {"type": "user", "id": PID[user]}


def todo(owner: str, todo_id: str = "7240d0db-8ff0-41ec-98b2-34a096273b9f") -> dict[str, Any]:
    return {"type": "todo", "id": todo_id, "properties": {"ownerID": EMAIL[owner]}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("authzen")
    store = tmp / "store"
    shutil.copytree(TODO_STORE, store, symlinks=True)
    running = start_server(tmp, store=store, PDP_AUTHZEN_TOKEN=KEY)
    yield running
    running.stop()


def post(
    server: Server,
    path: str,
    body: Any,
    headers: dict[str, str] | None = None,
    *,
    key: str | None = KEY,
) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(
        f"http://{server.http}{path}", data=json.dumps(body).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    if key is not None:
        request.add_header("Authorization", key)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return (
                response.status,
                response.read(),
                {k.lower(): v for k, v in response.headers.items()},
            )
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), {k.lower(): v for k, v in exc.headers.items()}


def evaluate(server: Server, body: Any) -> Any:
    status, payload, _ = post(server, "/access/v1/evaluation", body)
    assert status == 200, payload
    return json.loads(payload)


CASES = [
    (user, action, owner)
    for user in PID
    for action in (
        "can_read_user",
        "can_read_todos",
        "can_create_todo",
        "can_update_todo",
        "can_delete_todo",
    )
    for owner in ("rick", "morty", "beth")
]


@pytest.mark.parametrize(("user", "action", "owner"), CASES)
def test_the_todo_scenario_decides_as_published(
    server: Server, user: str, action: str, owner: str
) -> None:
    resource = {"type": "user", "id": EMAIL[owner]} if action == "can_read_user" else todo(owner)
    body = {"subject": subject(user), "action": {"name": action}, "resource": resource}
    status, payload, headers = post(server, "/access/v1/evaluation", body)
    assert status == 200
    assert headers["content-type"] == "application/json"
    want = expected(user, action, owner)
    # byte for byte the specification's Decision: no context unless asked
    assert payload == (b'{"decision":true}' if want else b'{"decision":false}')


def test_the_published_boxcar_for_morty(server: Server) -> None:
    body = {
        "subject": subject("morty"),
        "action": {"name": "can_update_todo"},
        "resource": {},
        "context": {},
        "evaluations": [{"resource": todo("rick")}, {"resource": todo("morty")}],
    }
    status, payload, _ = post(server, "/access/v1/evaluations", body)
    assert status == 200
    assert payload == b'{"evaluations":[{"decision":false},{"decision":true}]}'


def test_item_values_override_the_top_level_defaults(server: Server) -> None:
    body = {
        "subject": subject("beth"),
        "action": {"name": "can_delete_todo"},
        "evaluations": [
            {"resource": todo("beth")},  # beth is a viewer: no
            {"subject": subject("summer"), "resource": todo("summer")},  # her own: yes
            {"action": {"name": "can_read_todos"}, "resource": todo("rick")},  # viewers read
        ],
    }
    status, payload, _ = post(server, "/access/v1/evaluations", body)
    assert status == 200
    assert [e["decision"] for e in json.loads(payload)["evaluations"]] == [False, True, True]


BOXCAR = [todo("rick"), todo("morty"), todo("summer"), todo("morty")]  # morty: F T F T


@pytest.mark.parametrize(
    ("semantic", "want"),
    [
        (None, [False, True, False, True]),
        ("execute_all", [False, True, False, True]),
        ("deny_on_first_deny", [False]),
        ("permit_on_first_permit", [False, True]),
    ],
)
def test_evaluations_semantics(server: Server, semantic: str | None, want: list[bool]) -> None:
    body: dict[str, Any] = {
        "subject": subject("morty"),
        "action": {"name": "can_update_todo"},
        "evaluations": [{"resource": r} for r in BOXCAR],
    }
    if semantic is not None:
        body["options"] = {"evaluations_semantic": semantic}
    status, payload, _ = post(server, "/access/v1/evaluations", body)
    assert status == 200
    assert [e["decision"] for e in json.loads(payload)["evaluations"]] == want


def test_deny_on_first_deny_answers_all_when_all_allow(server: Server) -> None:
    body = {
        "subject": subject("rick"),
        "action": {"name": "can_update_todo"},
        "options": {"evaluations_semantic": "deny_on_first_deny"},
        "evaluations": [{"resource": r} for r in BOXCAR],
    }
    status, payload, _ = post(server, "/access/v1/evaluations", body)
    assert [e["decision"] for e in json.loads(payload)["evaluations"]] == [True] * 4


def test_evaluations_without_a_boxcar_is_one_evaluation(server: Server) -> None:
    for extra in ({}, {"evaluations": []}):
        body = {
            "subject": subject("jerry"),
            "action": {"name": "can_create_todo"},
            "resource": {"type": "todo", "id": "todo-1"},
            **extra,
        }
        status, payload, _ = post(server, "/access/v1/evaluations", body)
        assert (status, payload) == (200, b'{"decision":false}')


def test_reasons_only_when_asked(server: Server) -> None:
    body = {
        "subject": subject("morty"),
        "action": {"name": "can_delete_todo"},
        "resource": todo("rick"),
        "options": {"reasons": True},
    }
    answer = evaluate(server, body)
    assert answer["decision"] is False
    assert answer["context"]["reason_admin"]["403"] == "implicitDeny"
    assert answer["context"]["reason_user"] == {"403": "Access denied"}
    body["resource"] = todo("morty")
    answer = evaluate(server, body)
    matched = answer["context"]["reason_admin"]["matched"]
    assert answer["decision"] is True and matched[0]["sid"] == "ChangeOwnTodos"
    assert answer["context"]["reason_admin"]["policy_version"] == "0001"
    body["options"] = {"reasons": False}
    assert evaluate(server, body) == {"decision": True}


def test_an_action_or_subject_type_the_store_does_not_map_is_false(server: Server) -> None:
    for body in (
        {"subject": subject("rick"), "action": {"name": "can_launch"}, "resource": todo("rick")},
        {
            "subject": {"type": "service", "id": PID["rick"]},
            "action": {"name": "can_read_todos"},
            "resource": todo("rick"),
        },
    ):
        assert evaluate(server, body) == {"decision": False}
        answer = evaluate(server, {**body, "options": {"reasons": True}})
        assert "not" in answer["context"]["reason_admin"]["403"]


def test_the_request_id_is_echoed(server: Server) -> None:
    body = {
        "subject": subject("rick"),
        "action": {"name": "can_read_todos"},
        "resource": todo("rick"),
    }
    _, _, headers = post(server, "/access/v1/evaluation", body, {"X-Request-ID": "bfe9eb29"})
    assert headers["x-request-id"] == "bfe9eb29"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/access/v1/evaluation", [], "body: must be a JSON object"),
        (
            "/access/v1/evaluation",
            {"action": {"name": "can_read_todos"}, "resource": {"type": "todo", "id": "1"}},
            "subject: required",
        ),
        (
            "/access/v1/evaluation",
            {
                "subject": {"type": "user"},
                "action": {"name": "x"},
                "resource": {"type": "t", "id": "1"},
            },
            "subject.id: required",
        ),
        (
            "/access/v1/evaluation",
            {
                "subject": {"type": "user", "id": "a", "identity": "b"},
                "action": {"name": "x"},
                "resource": {"type": "t", "id": "1"},
            },
            "subject.identity: unknown field",
        ),
        (
            "/access/v1/evaluation",
            {
                "subject": {"type": "user", "id": "a"},
                "action": {"name": "x"},
                "resource": {"type": "t", "id": "1", "properties": {"owner": {"id": "x"}}},
            },
            'resource.properties["owner"]: must be a string, number, boolean or a list of them',
        ),
        (
            "/access/v1/evaluations",
            {
                "subject": {"type": "user", "id": "a"},
                "evaluations": [{"resource": {"type": "t", "id": "1"}}],
            },
            "evaluations[0].action: required",
        ),
        (
            "/access/v1/evaluations",
            {
                "subject": {"type": "user", "id": "a"},
                "action": {"name": "x"},
                "options": {"evaluations_semantic": "first_wins"},
                "evaluations": [{"resource": {"type": "t", "id": "1"}}],
            },
            "options.evaluations_semantic: must be one of",
        ),
        (
            "/access/v1/evaluations",
            {
                "subject": {"type": "user", "id": "a"},
                "action": {"name": "x"},
                "evaluations": [{"resource": {"type": "t", "id": "1"}}] * 1001,
            },
            "evaluations: 1001 evaluations, over the limit of 1000",
        ),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    server: Server, path: str, body: Any, message: str
) -> None:
    status, payload, _ = post(server, path, body)
    assert status == 400
    assert message in json.loads(payload)["error"]["message"]


def test_the_caller_must_send_the_key(server: Server) -> None:
    body = {
        "subject": subject("rick"),
        "action": {"name": "can_read_todos"},
        "resource": todo("rick"),
    }
    assert post(server, "/access/v1/evaluation", body, key=None)[0] == 401
    assert post(server, "/access/v1/evaluation", body, key="wrong")[0] == 401
    assert post(server, "/access/v1/evaluation", body, key=f"Bearer {KEY}")[0] == 200
    assert (
        post(
            server,
            "/access/v1/search/action",
            {"subject": subject("rick"), "resource": todo("rick")},
            key=None,
        )[0]
        == 401
    )


def test_the_metadata_document(server: Server) -> None:
    status, document = server.call("/.well-known/authzen-configuration")
    base = f"http://{server.http}"
    assert status == 200
    assert document == {
        "policy_decision_point": base,
        "access_evaluation_endpoint": f"{base}/access/v1/evaluation",
        "access_evaluations_endpoint": f"{base}/access/v1/evaluations",
        "search_subject_endpoint": f"{base}/access/v1/search/subject",
        "search_resource_endpoint": f"{base}/access/v1/search/resource",
        "search_action_endpoint": f"{base}/access/v1/search/action",
    }


def _search(server: Server, kind: str, body: Any) -> list[dict[str, Any]]:
    status, payload, _ = post(server, f"/access/v1/search/{kind}", body)
    assert status == 200, payload
    answer = json.loads(payload)
    assert answer["page"] == {"next_token": ""}
    return list(answer["results"])


def test_subject_search_lists_who_may_and_each_result_evaluates_true(server: Server) -> None:
    action, resource = {"name": "can_delete_todo"}, todo("morty")
    found = _search(
        server, "subject", {"subject": {"type": "user"}, "action": action, "resource": resource}
    )
    ids = {r["id"] for r in found}
    assert ids == {PID["rick"], PID["morty"]}  # the admin and the owner
    for result in found:
        assert evaluate(server, {"subject": result, "action": action, "resource": resource}) == {
            "decision": True
        }


def test_action_search_lists_what_a_subject_may_do(server: Server) -> None:
    found = _search(server, "action", {"subject": subject("summer"), "resource": todo("rick")})
    names = {r["name"] for r in found}
    assert names == {"can_read_user", "can_read_todos", "can_create_todo"}  # not rick's todo
    found = _search(server, "action", {"subject": subject("summer"), "resource": todo("summer")})
    assert {r["name"] for r in found} == names | {"can_update_todo", "can_delete_todo"}


def test_resource_search_never_returns_a_pattern_as_an_id(server: Server) -> None:
    body = {
        "subject": subject("morty"),
        "action": {"name": "can_read_todos"},
        "resource": {"type": "todo"},
    }
    assert _search(server, "resource", body) == []  # the policy grants todo/*: no single id
