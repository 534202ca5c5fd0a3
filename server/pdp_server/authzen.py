"""OpenID AuthZEN Authorization API 1.0 on the HTTP port (docs/serving.md, AuthZEN).

    POST /access/v1/evaluation          one decision:   {"decision": true}
    POST /access/v1/evaluations         a boxcar:       {"evaluations": [{"decision": ...}, ...]}
    POST /access/v1/search/{subject,resource,action}   (pdp_server/authzen_search.py)
    GET  /.well-known/authzen-configuration            the PDP metadata

Each AuthZEN request becomes a pdp request through the serving store's `"authzen"` mapping
(store.json, pdp.store.AuthzenMapping): subject -> principal, action name -> `service:Action`,
resource type and id -> an ARN, and every property and context value -> a condition key. The
mapping and the decision come from one snapshot. A request pdp cannot map (an action the store
does not name, a subject type it does not map) is `false`; an answer carries a `context` only
for an error, or when the caller asks with `"options": {"reasons": true}`: then
`context.reason_admin` holds pdp's reason, matched statements and errors, and
`context.reason_user` a sentence fit for an end user. Otherwise the bytes are the
specification's: `{"decision":true}`.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request

from pdp import Decision
from pdp.store import AuthzenMapping, Snapshot
from pdp_server.errors import BadRequest, Unauthenticated
from pdp_server.http_json import json_response, read_json
from pdp_server.requests import DecisionRequest, check_context
from pdp_server.service import Service

__all__ = [
    "SEARCH",
    "SEMANTICS",
    "Door",
    "Evaluation",
    "Unmapped",
    "mapping_of",
    "parse_evaluation",
    "principal_of",
    "register_authzen",
    "to_request",
]

EVALUATION = "/access/v1/evaluation"
EVALUATIONS = "/access/v1/evaluations"
METADATA = "/.well-known/authzen-configuration"
SEARCH = {kind: f"/access/v1/search/{kind}" for kind in ("subject", "resource", "action")}
SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")
MAX_ID = 1024  # characters of a type, id or name (pdp's own limits apply after mapping)
MAX_REQUEST_ID = 256
_ENTITY_KEYS = {
    "subject": ("type", "id", "properties"),
    "resource": ("type", "id", "properties"),
    "action": ("name", "properties"),
}
_REQUIRED = {"subject": ("type", "id"), "resource": ("type", "id"), "action": ("name",)}
_TOP = ("subject", "action", "resource", "context", "options")
_BOXCAR = (*_TOP, "evaluations")
_ITEM = ("subject", "action", "resource", "context")
_DEFAULT = AuthzenMapping()
_SCALARS = (str, bool, int, float)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One checked AuthZEN evaluation: the four entities as the caller sent them."""

    subject: Mapping[str, Any]
    action: Mapping[str, Any]
    resource: Mapping[str, Any]
    context: Mapping[str, Any]


class Unmapped(Exception):
    """The store's mapping has no pdp request for this evaluation: its answer is false."""


def _entity(value: Any, name: str, where: str) -> dict[str, Any]:
    at = f"{where}{name}"
    if not isinstance(value, dict):
        raise BadRequest(f"{at}: must be an object")
    for key in value:
        if key not in _ENTITY_KEYS[name]:
            raise BadRequest(f"{at}.{key}: unknown field (known: {', '.join(_ENTITY_KEYS[name])})")
    for key in _REQUIRED[name]:
        field = value.get(key)
        if not isinstance(field, str) or not field:
            raise BadRequest(f"{at}.{key}: required, a non-empty string")
        if len(field) > MAX_ID:
            raise BadRequest(f"{at}.{key}: longer than {MAX_ID} characters")
    properties = value.get("properties", {})
    if not isinstance(properties, dict):
        raise BadRequest(f"{at}.properties: must be an object")
    return value


def _object(value: Any, at: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{at}: must be an object")
    return value


def _keys(body: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in body:
        if key not in known:
            raise BadRequest(f"{where}{key}: unknown field (known: {', '.join(known)})")


def parse_evaluation(body: Any) -> Evaluation:
    """The body of POST /access/v1/evaluation (BadRequest names the field at fault)."""
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object")
    _keys(body, _TOP, "")
    for name in ("subject", "action", "resource"):
        if name not in body:
            raise BadRequest(f"{name}: required")
    return Evaluation(
        _entity(body["subject"], "subject", ""),
        _entity(body["action"], "action", ""),
        _entity(body["resource"], "resource", ""),
        _object(body.get("context"), "context"),
    )


def parse_evaluations(body: Any, max_items: int) -> tuple[list[Evaluation] | None, str]:
    """The body of POST /access/v1/evaluations: its evaluations with the top-level defaults
    applied, and the semantic; (None, ...) when `evaluations` is absent or empty (then the
    request is a single evaluation, as the specification says)."""
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object")
    _keys(body, _BOXCAR, "")
    semantic = _semantic(body.get("options"))
    items = body.get("evaluations")
    if items is None or items == []:
        return None, semantic
    if not isinstance(items, list):
        raise BadRequest("evaluations: must be a list")
    if len(items) > max_items:
        raise BadRequest(f"evaluations: {len(items)} evaluations, over the limit of {max_items}")
    defaults = {name: body[name] for name in ("subject", "action", "resource") if name in body}
    context = _object(body.get("context"), "context")
    out = []
    for i, item in enumerate(items):
        where = f"evaluations[{i}]."
        if not isinstance(item, dict):
            raise BadRequest(f"evaluations[{i}]: must be an object")
        _keys(item, _ITEM, where)
        entities = []
        for name in ("subject", "action", "resource"):
            if name in item:
                entities.append(_entity(item[name], name, where))
            elif name in defaults:
                entities.append(_entity(defaults[name], name, ""))
            else:
                raise BadRequest(f"{where}{name}: required (here or at the top level)")
        own = _object(item["context"], f"{where}context") if "context" in item else context
        out.append(Evaluation(entities[0], entities[1], entities[2], own))
    return out, semantic


def _semantic(options: Any) -> str:
    if options is None:
        return SEMANTICS[0]
    if not isinstance(options, dict):
        raise BadRequest("options: must be an object")
    semantic = options.get("evaluations_semantic", SEMANTICS[0])
    if semantic not in SEMANTICS:
        raise BadRequest(f"options.evaluations_semantic: must be one of {', '.join(SEMANTICS)}")
    return str(semantic)


def wants_reasons(body: Any) -> bool:
    options = body.get("options") if isinstance(body, dict) else None
    if not isinstance(options, dict) or "reasons" not in options:
        return False
    if not isinstance(options["reasons"], bool):
        raise BadRequest("options.reasons: must be true or false")
    return options["reasons"]


def _value(value: Any, at: str) -> Any:
    """A property or context value as a condition key holds it: a scalar or a list of them."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value):
        return value
    raise BadRequest(f"{at}: must be a string, number, boolean or a list of them")


def _fill(template: str, name: str) -> str:
    return template.replace("{name}", name)


def principal_of(mapping: AuthzenMapping, subject: Mapping[str, Any]) -> tuple[str, str]:
    """The pdp principal and principal type of a checked subject; Unmapped when the store
    maps no principal type for the subject's type."""
    principal_type = mapping.principal_type_of(subject["type"])
    if principal_type is None:
        raise Unmapped(f'subject.type: "{subject["type"]}" is not a subject type of the store')
    return mapping.principal_of(subject["type"], subject["id"]), principal_type


def to_request(
    mapping: AuthzenMapping, evaluation: Evaluation, where: str, request_id: str | None
) -> DecisionRequest:
    """The pdp request of one evaluation under `mapping`; Unmapped when the store's mapping
    names no action or principal type for it, BadRequest for a value no condition key holds."""
    subject, action, resource = evaluation.subject, evaluation.action, evaluation.resource
    context: dict[str, Any] = {}  # first: a value no condition key holds is a 400 in any case
    sources = (
        ("subject.properties", subject.get("properties", {}), mapping.subject_properties),
        ("resource.properties", resource.get("properties", {}), mapping.resource_properties),
        ("action.properties", action.get("properties", {}), mapping.action_properties),
        ("context", evaluation.context, mapping.context),
    )
    for at, values, template in sources:
        for key, value in values.items():
            if not isinstance(key, str) or not key or "/" in key or len(key) > MAX_ID:
                raise BadRequest(f'{where}{at}["{str(key)[:40]}"]: not a usable property name')
            target = _fill(template, key)
            if target in context:
                raise BadRequest(f'{where}{at}["{key}"]: maps to "{target}" twice')
            context[target] = _value(value, f'{where}{at}["{key}"]')
    check_context(context, where)
    principal, principal_type = principal_of(mapping, subject)
    name = mapping.action_of(action["name"])
    if name is None:
        raise Unmapped(f'action.name: "{action["name"]}" is not an action of the store')
    return DecisionRequest(
        principal,
        name,
        mapping.resource_of(resource["type"], resource["id"]),
        context,
        request_id,
        principal_type,
    )


def _answer(decision: Decision | None, why: str | None, reasons: bool) -> dict[str, Any]:
    """The AuthZEN Decision object: `{"decision": bool}`, with a context only when asked."""
    allowed = decision is not None and decision.decision == "Allow"
    out: dict[str, Any] = {"decision": allowed}
    if not reasons:
        return out
    code = "200" if allowed else "403"
    if decision is None:
        out["context"] = {
            "reason_admin": {code: why or "not mapped"},
            "reason_user": {code: "Access denied"},
        }
        return out
    admin: dict[str, Any] = {
        code: decision.reason,
        "matched": [m.to_dict() for m in decision.matched],
        "policy_version": decision.policy_version,
    }
    if decision.errors:
        admin["errors"] = list(decision.errors)
    out["context"] = {
        "reason_admin": admin,
        "reason_user": {code: "Access allowed" if allowed else "Access denied"},
    }
    return out


def _request_id() -> str | None:
    value = request.headers.get("X-Request-ID")
    if value is None:
        return None
    if len(value) > MAX_REQUEST_ID or not value.isprintable():
        raise BadRequest(f"X-Request-ID: at most {MAX_REQUEST_ID} printable characters")
    return value


def _respond(body: Any, request_id: str | None) -> Response:
    response = json_response(body)
    if request_id is not None:
        response.headers["X-Request-ID"] = request_id
    return response


class Door:
    """The AuthZEN endpoints of one Service."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.token = service.config.authzen_token

    def check_caller(self) -> None:
        """With PDP_AUTHZEN_TOKEN set, the caller sends it as Authorization, bare (as the
        interop's PEP sends its API key) or as a Bearer token."""
        if self.token is None:
            return
        sent = request.headers.get("Authorization", "")
        scheme, _, rest = sent.partition(" ")
        candidate = rest.strip() if scheme.lower() == "bearer" else sent.strip()
        if not hmac.compare_digest(candidate.encode(), self.token.encode()):
            raise Unauthenticated("missing or wrong AuthZEN key (Authorization)")

    def decide(
        self, snapshot: Snapshot, evaluation: Evaluation, where: str, request_id: str | None
    ) -> tuple[Decision | None, str | None]:
        mapping = mapping_of(snapshot)
        try:
            pdp_request = to_request(mapping, evaluation, where, request_id)
        except Unmapped as exc:
            return None, str(exc)
        return self.service.decide_on(snapshot, pdp_request), None

    def evaluation(self) -> Response:
        self.check_caller()
        request_id = _request_id()
        body = read_json(self.service.config.max_body)
        reasons = wants_reasons(body)
        evaluation = parse_evaluation(body)
        snapshot = self.service.serving()
        decision, why = self.decide(snapshot, evaluation, "", request_id)
        return _respond(_answer(decision, why, reasons), request_id)

    def evaluations(self) -> Response:
        self.check_caller()
        request_id = _request_id()
        body = read_json(self.service.config.max_body)
        reasons = wants_reasons(body)
        budget = self.service.batch_budget()
        items, semantic = parse_evaluations(body, budget.max_items)
        if items is None:  # no boxcar: a single evaluation, answered as one
            evaluation = parse_evaluation({k: v for k, v in body.items() if k != "evaluations"})
            snapshot = self.service.serving()
            decision, why = self.decide(snapshot, evaluation, "", request_id)
            return _respond(_answer(decision, why, reasons), request_id)
        snapshot = self.service.serving()
        mapping = mapping_of(snapshot)
        prepared: list[DecisionRequest | str] = []
        for i, item in enumerate(items):  # every item checked before any is decided
            try:
                mapped = to_request(mapping, item, f"evaluations[{i}].", request_id)
                prepared.append(budget.add(mapped))
            except Unmapped as exc:
                prepared.append(str(exc))
        answers = []
        for i, pdp_request in enumerate(prepared):
            if i & 15 == 15:
                time.sleep(0)  # as Service.batch: let a single call in between
            if isinstance(pdp_request, str):
                decision, why = None, pdp_request
            else:
                decision, why = self.service.decide_on(snapshot, pdp_request), None
            answer = _answer(decision, why, reasons)
            answers.append(answer)
            if _stops(semantic, answer["decision"]):
                break
        return _respond({"evaluations": answers}, request_id)

    def metadata(self) -> Response:
        base = self.service.config.authzen_base_url or request.host_url
        base = base.rstrip("/")
        return json_response(
            {
                "policy_decision_point": base,
                "access_evaluation_endpoint": base + EVALUATION,
                "access_evaluations_endpoint": base + EVALUATIONS,
                "search_subject_endpoint": base + SEARCH["subject"],
                "search_resource_endpoint": base + SEARCH["resource"],
                "search_action_endpoint": base + SEARCH["action"],
            }
        )


def _stops(semantic: str, allowed: bool) -> bool:
    """Does this answer end the boxcar (deny_on_first_deny: a false; permit_on_first_permit:
    a true)? The answers so far, this one included, are the response."""
    if semantic == "deny_on_first_deny":
        return not allowed
    if semantic == "permit_on_first_permit":
        return allowed
    return False


def mapping_of(snapshot: Snapshot) -> AuthzenMapping:
    source = snapshot.source
    found = source.authzen if source is not None else None
    return found if found is not None else _DEFAULT


def register_authzen(app: Flask, service: Service) -> Door:
    """Add the AuthZEN evaluation and metadata routes to the HTTP app (create_app calls it,
    then pdp_server.authzen_search.register_search with the door returned)."""
    door = Door(service)
    routes: tuple[tuple[str, str, Callable[[], Response]], ...] = (
        (EVALUATION, "POST", door.evaluation),
        (EVALUATIONS, "POST", door.evaluations),
        (METADATA, "GET", door.metadata),
    )
    for path, method, view in routes:
        app.add_url_rule(path, endpoint=f"authzen:{path}", view_func=view, methods=[method])
    return door
