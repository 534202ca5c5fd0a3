"""AuthZEN 1.0 search: POST /access/v1/search/{subject,resource,action} (docs/serving.md).

Each search sits on pdp's own queries (pdp.store.who_can, what_can) over the serving snapshot,
mapped back to AuthZEN ids through the store's `"authzen"` mapping, and every result is
confirmed with the forward decision of the evaluation it stands for: fed back into
/access/v1/evaluation, a result answers true (the specification's requirement). What pdp cannot
name as an AuthZEN id (a resource pattern with wildcards, a principal the mapping cannot
reverse) is left out: a search may list less than is allowed, never more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response

from pdp.store import AuthzenMapping, QueryError, Snapshot, what_can, who_can
from pdp_server.authzen import (
    SEARCH,
    Door,
    Evaluation,
    Unmapped,
    mapping_of,
    parse_evaluation,
    principal_of,
    to_request,
)
from pdp_server.errors import BadRequest
from pdp_server.http_json import json_response, read_json

__all__ = ["PAGE_SIZE", "register_search"]

PAGE_SIZE = 100
MAX_CANDIDATES = 10_000  # action names or resources one search confirms
_KEYS = {
    "subject": ("subject", "action", "resource", "context", "page"),
    "resource": ("subject", "action", "resource", "context", "page"),
    "action": ("subject", "resource", "context", "page"),
}
_PLACEHOLDER_ID = "-"  # the id a search leaves out, while its other fields are mapped


def _body(door: Door, kind: str) -> tuple[dict[str, Any], str | None]:
    door.check_caller()
    body = read_json(door.service.config.max_body)
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object")
    for key in body:
        if key not in _KEYS[kind]:
            raise BadRequest(f"{key}: unknown field (known: {', '.join(_KEYS[kind])})")
    page = body.get("page")
    token = None
    if page is not None:
        if not isinstance(page, dict) or set(page) - {"next_token"}:
            raise BadRequest('page: must be {"next_token": "..."}')
        token = page.get("next_token") or None
        if token is not None and (not isinstance(token, str) or len(token) > 256):
            raise BadRequest("page.next_token: a string of at most 256 characters")
    return body, token


def _with_id(entity: Any, name: str) -> dict[str, Any]:
    """The entity whose id the search leaves out, completed so that it parses (its id is
    ignored, as the specification says)."""
    if not isinstance(entity, dict):
        raise BadRequest(f"{name}: must be an object")
    return {**entity, "id": _PLACEHOLDER_ID}


def _evaluation(body: dict[str, Any], blank: str) -> Evaluation:
    fields = {k: v for k, v in body.items() if k != "page"}
    if blank in ("subject", "resource"):
        if blank not in fields:
            raise BadRequest(f"{blank}: required")
        fields[blank] = _with_id(fields[blank], blank)
    if blank == "action":
        fields["action"] = {"name": _PLACEHOLDER_ID}
    return parse_evaluation(fields)


def _page(results: list[dict[str, Any]], token: str | None) -> Response:
    return json_response({"results": results, "page": {"next_token": token or ""}})


def _offset(token: str | None, snapshot: Snapshot) -> int:
    """A page token of action/resource search: "<version>:<offset>" of the same version."""
    if token is None:
        return 0
    version, _, offset = token.rpartition(":")
    if version != snapshot.version or not offset.isdigit():
        raise BadRequest("page.next_token: not a token of this store version (search again)")
    return int(offset)


def _slice(found: list[dict[str, Any]], offset: int, snapshot: Snapshot) -> Response:
    page = found[offset : offset + PAGE_SIZE]
    more = offset + PAGE_SIZE < len(found)
    return _page(page, f"{snapshot.version}:{offset + PAGE_SIZE}" if more else None)


def _allowed(snapshot: Snapshot, mapping: AuthzenMapping, evaluation: Evaluation) -> bool:
    try:
        request = to_request(mapping, evaluation, "", None)
    except Unmapped:
        return False
    decision = snapshot.decide(request)
    return decision.decision == "Allow"


def search_subject(door: Door) -> Response:
    body, token = _body(door, "subject")
    evaluation = _evaluation(body, "subject")
    snapshot = door.service.serving()
    mapping = mapping_of(snapshot)
    kind = evaluation.subject["type"]
    if mapping.principal_type_of(kind) != "user":
        return _page([], None)  # who-can answers users: no other subject type is searched
    try:
        request = to_request(mapping, evaluation, "", None)
    except Unmapped:
        return _page([], None)
    try:
        found = who_can(
            snapshot, request.action, request.resource, request.context,
            limit=PAGE_SIZE, page_token=token,
        )  # fmt: skip
    except QueryError as exc:
        raise BadRequest(str(exc)) from None
    results = []
    for row in found.allowed:
        if row.get("type") != "user":
            continue
        subject_id = mapping.subject_of(kind, row["principal"])
        if subject_id is not None:
            results.append({"type": kind, "id": subject_id})
    return _page(results, found.next_page_token)


def search_resource(door: Door) -> Response:
    body, token = _body(door, "resource")
    evaluation = _evaluation(body, "resource")
    snapshot = door.service.serving()
    mapping = mapping_of(snapshot)
    offset = _offset(token, snapshot)
    try:
        request = to_request(mapping, evaluation, "", None)
        principal, principal_type = principal_of(mapping, evaluation.subject)
        if principal_type != "user":
            raise Unmapped("what-can answers users")
        rows = what_can(snapshot, principal, service=request.action.partition(":")[0])
    except (Unmapped, QueryError):
        return _page([], None)  # no such subject or action: nothing is allowed
    kind = evaluation.resource["type"]
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in rows.allowed:
        if row["action"].lower() != request.action.lower() or row["not_resource"]:
            continue
        for arn in row["resources"]:
            if "*" in arn or "?" in arn or "${" in arn:
                continue  # a pattern names no single resource
            resource_id = mapping.resource_id_of(kind, arn)
            if resource_id is None or resource_id in seen or len(seen) >= MAX_CANDIDATES:
                continue
            seen.add(resource_id)
            resource = {**evaluation.resource, "id": resource_id}
            item = Evaluation(evaluation.subject, evaluation.action, resource, evaluation.context)
            if _allowed(snapshot, mapping, item):
                found.append({"type": kind, "id": resource_id})
    return _slice(found, offset, snapshot)


def search_action(door: Door) -> Response:
    body, token = _body(door, "action")
    evaluation = _evaluation(body, "action")
    snapshot = door.service.serving()
    mapping = mapping_of(snapshot)
    offset = _offset(token, snapshot)
    names = list(mapping.actions)
    if mapping.action is not None:  # names the template gives: from what the subject may do
        try:
            principal, principal_type = principal_of(mapping, evaluation.subject)
            rows = what_can(snapshot, principal).allowed if principal_type == "user" else []
        except (Unmapped, QueryError):
            rows = []
        for row in rows:
            names.extend(n for n in mapping.action_names(row["action"]) if n not in names)
    found = []
    for name in names[:MAX_CANDIDATES]:
        item = Evaluation(evaluation.subject, {"name": name}, evaluation.resource,
                          evaluation.context)  # fmt: skip
        if _allowed(snapshot, mapping, item):
            found.append({"name": name})
    return _slice(found, offset, snapshot)


def register_search(app: Flask, door: Door) -> None:
    views: tuple[tuple[str, Callable[[Door], Response]], ...] = (
        ("subject", search_subject),
        ("resource", search_resource),
        ("action", search_action),
    )
    for kind, view in views:
        app.add_url_rule(
            SEARCH[kind],
            endpoint=f"authzen:search:{kind}",
            view_func=lambda view=view: view(door),
            methods=["POST"],
        )
