"""One set of request limits (pdp.limits): the engine's Python API and the server's doors refuse
at the same numbers, and take everything up to them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pdp
from pdp.limits import MAX_CONTEXT_KEYS, MAX_KEY, MAX_LIST, MAX_STRING
from pdp_server.errors import BadRequest
from pdp_server.requests import parse_request

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "store"
OBJECT = "arn:aws:s3:::example-bucket/report.csv"


def _resource(n: int) -> str:
    return OBJECT + "x" * (n - len(OBJECT))


# (what, at the limit, one past it, what both refusals say); every context also holds a bool and
# a number, so the engine's checks see mixed values as a real context has them.
CASES: list[tuple[str, Any, Any, str]] = [
    (
        "context keys",
        {"context": {f"k:{i}": "v" for i in range(MAX_CONTEXT_KEYS - 2)}},
        {"context": {f"k:{i}": "v" for i in range(MAX_CONTEXT_KEYS - 1)}},
        f"more than {MAX_CONTEXT_KEYS} keys",
    ),
    (
        "key length",
        {"context": {"k:" + "x" * (MAX_KEY - 2): "v"}},
        {"context": {"k:" + "x" * (MAX_KEY - 1): "v"}},
        f"longer than {MAX_KEY} characters",
    ),
    (
        "values of a key",
        {"context": {"k:list": ["v"] * MAX_LIST}},
        {"context": {"k:list": ["v"] * (MAX_LIST + 1)}},
        f"more than {MAX_LIST} values",
    ),
    (
        "a context string",
        {"context": {"k:s": "x" * MAX_STRING}},
        {"context": {"k:s": "x" * (MAX_STRING + 1)}},
        f"longer than {MAX_STRING} characters",
    ),
    (
        "a string in a list",
        {"context": {"k:list": ["ok", "x" * MAX_STRING]}},
        {"context": {"k:list": ["ok", "x" * (MAX_STRING + 1)]}},
        f"longer than {MAX_STRING} characters",
    ),
    (
        "the resource",
        {"resource": _resource(MAX_STRING)},
        {"resource": _resource(MAX_STRING + 1)},
        f"{MAX_STRING} characters",
    ),
]


def _request(change: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {"principal": "bob", "action": "s3:GetObject", "resource": OBJECT}
    request.update(change)
    if "context" in request:
        request["context"] = {**request["context"], "aws:SecureTransport": True, "k:n": 7}
    return request


@pytest.fixture(scope="module")
def authz() -> pdp.Authorizer:
    return pdp.Authorizer.from_store(EXAMPLE, watch=False)


@pytest.mark.parametrize(("what", "at", "past", "message"), CASES, ids=[c[0] for c in CASES])
def test_the_engine_and_the_server_refuse_at_the_same_limit(
    authz: pdp.Authorizer, what: str, at: Any, past: Any, message: str
) -> None:
    inside, outside = _request(at), _request(past)

    parse_request(inside)  # the HTTP and gRPC doors take it ...
    decided = authz.is_authorized(**inside)
    assert decided.errors == (), (what, decided.errors)  # ... and so does the Python API

    with pytest.raises(BadRequest, match=message):
        parse_request(outside)
    refused = authz.is_authorized(**outside)
    assert refused.decision == "Deny" and len(refused.errors) == 1, what
    assert message in refused.errors[0], refused.errors


def test_a_long_key_is_named_short_in_the_error(authz: pdp.Authorizer) -> None:
    decision = authz.is_authorized("bob", "s3:GetObject", OBJECT, {"k:" + "x" * 100_000: "v"})
    assert decision.decision == "Deny" and len(decision.errors[0]) < 200


def test_the_limits_are_the_servers() -> None:
    from pdp_server import requests

    assert (requests.MAX_CONTEXT_KEYS, requests.MAX_KEY, requests.MAX_STRING) == (128, 256, 4096)
    assert requests.MAX_LIST is pdp.language.MAX_LIST is pdp.limits.MAX_LIST == 256
