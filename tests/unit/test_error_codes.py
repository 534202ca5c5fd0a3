"""The table of wire errors (server/pdp_server/errors.py) is complete, used, and the one the docs
and the OpenAPI file describe."""

from __future__ import annotations

import json
import re
from pathlib import Path

import grpc
import orjson
import pytest

from pdp import Diagnostic
from pdp_server import errors, requests, service
from pdp_server.errors import KINDS, ServiceError, http_error, kind_for_status

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "server" / "pdp_server"


def subclasses(cls: type[ServiceError]) -> list[type[ServiceError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *subclasses(sub)]
    return found


def test_every_error_class_is_one_kind_of_the_table() -> None:
    classes = subclasses(ServiceError)
    assert {c.__name__ for c in classes} >= {
        "BadRequest",
        "NotReady",
        "DeadlineExceeded",
        "ReloadFailed",
    }
    for cls in [ServiceError, *classes]:
        assert cls.kind in KINDS, cls
    # every kind is raised by a class, or answers the framework's own errors (a wrong method)
    by_class = {c.kind for c in classes}
    by_status = {kind_for_status(s).code for s in (400, 404, 405, 418, 500)}
    assert by_class | by_status == set(KINDS)
    assert set(KINDS) - by_class == {"method_not_allowed"}


def test_each_kind_is_defined_once_with_a_valid_status_and_grpc_code() -> None:
    assert len({k.code for k in KINDS.values()}) == len(KINDS)
    for code, kind in KINDS.items():
        assert kind.code == code and re.fullmatch(r"[a-z_]+", code)
        assert 400 <= kind.http < 600, kind
        assert kind.grpc in grpc.StatusCode.__members__ and kind.grpc != "OK", kind
        assert kind.when


def test_the_error_classes_stay_importable_where_they_were() -> None:
    assert requests.BadRequest is errors.BadRequest
    assert service.NotReady is errors.NotReady
    assert service.DeadlineExceeded is errors.DeadlineExceeded
    assert service.ReloadFailed is errors.ReloadFailed
    assert issubclass(errors.BadRequest, ValueError)  # callers that caught ValueError still do


@pytest.mark.parametrize("cls", subclasses(ServiceError))
def test_http_answer_of_each_class(cls: type[ServiceError]) -> None:
    if cls is errors.ReloadFailed:
        exc: ServiceError = errors.ReloadFailed("refused", [])
    elif cls in (errors.NotReady, errors.InternalError):
        exc = cls()  # type: ignore[call-arg]
    else:
        exc = cls("the message")
    status, body, _ = http_error(exc)
    assert status == KINDS[cls.kind].http
    error = orjson.loads(body)["error"]
    assert error["code"] == cls.kind and error["message"] == str(exc)


def test_a_base_error_takes_its_kind_and_refuses_unknown_ones() -> None:
    exc = ServiceError("gone", kind="not_found")
    assert http_error(exc)[0] == 404
    with pytest.raises(ValueError, match="unknown error kind"):
        ServiceError("x", kind="nope")


def test_reload_problems_are_structured() -> None:
    diagnostic = Diagnostic("missing_reference", "groups[0]", 'group "x"', "users/a.json", "hint")
    problems = errors.problems_of([diagnostic])
    exc = errors.ReloadFailed("refused", [*problems, errors.problem("worker_timeout", "late")])
    status, body, headers = http_error(exc, version="0002")
    assert (status, headers) == (422, {})
    assert orjson.loads(body) == {
        "error": {
            "code": "reload_refused",
            "message": "refused",
            "problems": [
                {
                    "code": "missing_reference",
                    "source": "users/a.json",
                    "path": "groups[0]",
                    "message": 'group "x"',
                    "hint": "hint",
                },
                {
                    "code": "worker_timeout",
                    "source": None,
                    "path": "",
                    "message": "late",
                    "hint": None,
                },
            ],
        },
        "version": "0002",
    }


def test_no_transport_builds_an_error_answer_by_hand() -> None:
    """Every gRPC abort goes through errors.grpc_abort and every HTTP error body through the
    table: no `context.abort(` or `{"error": ` literal outside errors.py."""
    for path in SERVER.glob("*.py"):
        if path.name == "errors.py":
            continue
        text = path.read_text()
        assert "context.abort(" not in text, path
        assert '{"error":' not in text and "StatusCode." not in text, path


def test_the_docs_table_is_the_code_table() -> None:
    text = (ROOT / "docs" / "serving.md").read_text()
    section = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (\d+) \| `(\w+)` \|", section, re.M)
    assert rows == [(k.code, str(k.http), k.grpc) for k in KINDS.values()]


def test_the_openapi_error_schema_lists_every_code() -> None:
    spec = json.loads((SERVER / "openapi.json").read_text())
    schemas = spec["components"]["schemas"]
    assert schemas["Error"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorObject"}
    assert schemas["ErrorObject"]["properties"]["code"]["enum"] == list(KINDS)
    assert set(schemas["Problem"]["required"]) == {"code", "source", "path", "message", "hint"}
