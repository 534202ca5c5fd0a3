"""The request model shared by both transports: validate a decision request, naming the field.

HTTP bodies arrive as JSON and gRPC messages are turned into the same Python values first, so a
request is checked in one place. A `BadRequest` (pdp_server/errors.py) becomes HTTP 400 or gRPC
INVALID_ARGUMENT.
"""

from __future__ import annotations

from typing import Any

import orjson

from pdp import Request, RequestError, Session
from pdp.language import MAX_CONTEXT_KEYS, MAX_KEY, MAX_LIST, MAX_STRING  # pdp/limits.py
from pdp.store import PRINCIPAL_TYPES as _MODEL_TYPES
from pdp_server.errors import BadRequest

__all__ = [
    "MAX_BATCH",
    "MAX_BATCH_CHARS",
    "MAX_CONTEXT_KEYS",
    "MAX_KEY",
    "MAX_STRING",
    "PRINCIPAL_TYPES",
    "BadRequest",
    "BatchBudget",
    "DecisionRequest",
    "check_context",
    "check_principal_type",
    "parse_request",
    "request_chars",
]

MAX_BATCH = 1000
MAX_BATCH_CHARS = 1 << 20  # request_chars() of one batch, all its requests together
VALUE_CHARS = 16
_FIELDS = ("principal", "principal_type", "action", "resource", "context", "request_id", "session")
PRINCIPAL_TYPES = _MODEL_TYPES  # pdp.model.PRINCIPAL_TYPES (via pdp.store): one list for every door
_SCALARS = (str, bool, int, float)


DecisionRequest = Request  # the engine's request model: what parse_request returns


def _string(body: dict[str, Any], name: str, where: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"{where}{name}: required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{where}{name}: must be a string")
    if required and not value:
        raise BadRequest(f"{where}{name}: required")  # as over gRPC, where "" means absent
    if len(value) > MAX_STRING:
        raise BadRequest(f"{where}{name}: longer than {MAX_STRING} characters")
    return value


def _scalar(value: Any, where: str) -> None:
    if not isinstance(value, _SCALARS):
        raise BadRequest(f"{where}: must be a string, number or boolean")
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise BadRequest(f"{where}: longer than {MAX_STRING} characters")
    if isinstance(value, float) and (value != value or abs(value) >= 2.0**63):
        raise BadRequest(f"{where}: numbers must be finite and fit in 64 bits")


def parse_request(body: Any, where: str = "") -> DecisionRequest:
    """Check one request object; `where` prefixes field names (e.g. "requests[3].")."""
    if not isinstance(body, dict):
        raise BadRequest(f"{where.rstrip('.') or 'body'}: must be a JSON object")
    for key in body:
        if key not in _FIELDS:
            raise BadRequest(f"{where}{key}: unknown field (known: {', '.join(_FIELDS)})")
    principal = _string(body, "principal", where)
    action = _string(body, "action", where)
    resource = _string(body, "resource", where)
    request_id = _string(body, "request_id", where, required=False)
    principal_type = check_principal_type(body.get("principal_type"), where)
    context = body.get("context")
    if context is None:
        context = {}
    check_context(context, where)
    session = check_session(body.get("session"), where)
    return DecisionRequest(
        principal,  # type: ignore[arg-type]
        action,  # type: ignore[arg-type]
        resource,  # type: ignore[arg-type]
        context,
        request_id,
        principal_type,
        session,
    )


def check_session(value: Any, where: str = "") -> Session | None:
    """A role session's attributes (the wire JSON of docs/serving.md), checked by the engine's
    own `Session.from_dict` so every door refuses the same sessions, naming the field."""
    if value is None:
        return None
    try:
        return Session.from_dict(value, where=f"{where}session")
    except RequestError as exc:
        raise BadRequest(str(exc)) from None


def check_principal_type(value: Any, where: str = "") -> str:
    """The principal type: "user" (also when absent, null or "") or "root"."""
    if value is None or value == "":
        return "user"
    if value not in PRINCIPAL_TYPES:
        known = ", ".join(f'"{t}"' for t in PRINCIPAL_TYPES)
        raise BadRequest(f"{where}principal_type: must be one of {known}")
    return str(value)


def check_context(context: Any, where: str = "") -> None:
    """A context is an object of non-empty keys to scalars or lists of scalars, within limits."""
    if not isinstance(context, dict):
        raise BadRequest(f"{where}context: must be an object")
    if len(context) > MAX_CONTEXT_KEYS:
        raise BadRequest(f"{where}context: more than {MAX_CONTEXT_KEYS} keys")
    for key, value in context.items():
        if not key:
            raise BadRequest(f"{where}context: keys must not be empty")
        if len(key) > MAX_KEY:
            raise BadRequest(
                f'{where}context["{key[:40]}..."]: key longer than {MAX_KEY} characters'
            )
        at = f'{where}context["{key}"]'
        if isinstance(value, list):
            if len(value) > MAX_LIST:
                raise BadRequest(f"{at}: more than {MAX_LIST} values")
            for i, item in enumerate(value):
                _scalar(item, f"{at}[{i}]")
        else:
            _scalar(value, at)


def request_chars(request: DecisionRequest) -> int:
    """What deciding a request costs, in characters: its strings, and `VALUE_CHARS` for each
    key and value besides (a list of a thousand small numbers is a thousand values to check)."""
    size = len(request.principal) + len(request.action) + len(request.resource)
    size += len(request.request_id or "")
    for key, value in request.context.items():
        size += len(key) + VALUE_CHARS
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, list):
            size += sum(len(v) if isinstance(v, str) else 0 for v in value)
            size += VALUE_CHARS * len(value)
    session = getattr(request, "session", None)
    if session is not None:  # its policies are parsed and its tags checked: count them too
        size += len(orjson.dumps(session.to_dict()))
    return size


class BatchBudget:
    """The work one batch may ask for: at most `max_items` requests and `max_chars` of
    `request_chars` in all. Checked while the batch is read, so an oversized batch is refused
    before it costs more than the limit."""

    __slots__ = ("max_items", "max_chars", "chars")

    def __init__(self, max_items: int, max_chars: int) -> None:
        self.max_items = max_items
        self.max_chars = max_chars
        self.chars = 0

    def check_count(self, count: int) -> None:
        if count > self.max_items:
            raise BadRequest(f"requests: {count} requests, over the limit of {self.max_items}")

    def add(self, request: DecisionRequest) -> DecisionRequest:
        self.chars += request_chars(request)
        if self.chars > self.max_chars:
            raise BadRequest(
                f"requests: over the limit of {self.max_chars} characters for one batch"
                " (strings, plus 16 for each context key and value)"
            )
        return request
