"""HTTP transport (Flask): the sidecar API, health, readiness, metrics and the OpenAPI file.

`create_app(service)` builds the app; there is no global one. Every error is JSON: bad input is
a 400 naming the problem (never a 500), an unready store is a 503.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from pdp.jsondoc import MalformedJson, repeated_key
from server.requests import BadRequest, parse_request
from server.service import NotReady, Service

__all__ = ["create_app", "json_response", "read_json"]

log = logging.getLogger("pdp.server.http")


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def read_json(max_body: int) -> Any:
    """The request body as JSON, or BadRequest naming what is wrong with it (a repeated key
    too: orjson would keep the last value silently)."""
    if request.content_length is not None and request.content_length > max_body:
        raise BadRequest(f"body: larger than {max_body} bytes")
    data = request.get_data(cache=False)
    if len(data) > max_body:
        raise BadRequest(f"body: larger than {max_body} bytes")
    try:
        value = orjson.loads(data)
        repeat = repeated_key(data, value)
    except (orjson.JSONDecodeError, MalformedJson) as exc:
        raise BadRequest(f"body: invalid JSON ({exc})") from None
    if repeat is not None:
        path, key = repeat
        raise BadRequest(f'{path or "body"}: duplicate key "{key}"')
    return value


def create_app(service: Service) -> Flask:
    app = Flask("pdp")
    app.config["MAX_CONTENT_LENGTH"] = service.config.max_body
    openapi = resources.files("server").joinpath("openapi.json").read_bytes()
    max_body = service.config.max_body

    @app.errorhandler(BadRequest)
    def bad_request(exc: BadRequest) -> Response:
        service.metrics.bad_request()
        return json_response({"error": str(exc)}, 400)

    @app.errorhandler(NotReady)
    def not_ready(exc: NotReady) -> Response:
        return json_response({"error": f"not ready: {exc}"}, 503)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> Response:
        service.metrics.bad_request()
        return json_response({"error": f"body: larger than {max_body} bytes"}, 400)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return json_response({"error": exc.description or exc.name}, exc.code or 500)

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Response:
        log.exception("internal error")
        return json_response({"error": "internal error"}, 500)

    @app.post("/v1/is-authorized")
    def is_authorized() -> Response:
        decision = service.decide(parse_request(read_json(max_body)))
        return json_response(decision.to_dict())

    @app.post("/v1/batch-is-authorized")
    def batch_is_authorized() -> Response:
        body = read_json(max_body)
        if not isinstance(body, dict) or set(body) != {"requests"}:
            raise BadRequest('body: must be {"requests": [...]}')
        items = body["requests"]
        if not isinstance(items, list):
            raise BadRequest("requests: must be a list")
        if len(items) > service.config.max_batch:
            raise BadRequest(
                f"requests: {len(items)} requests, over the limit of {service.config.max_batch}"
            )
        parsed = []
        for i, item in enumerate(items):
            try:
                parsed.append(parse_request(item))
            except BadRequest as exc:
                raise BadRequest(f"requests[{i}].{exc}") from None
        decisions, version = service.batch(parsed)
        return json_response(
            {"results": [d.to_dict() for d in decisions], "policy_version": version}
        )

    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        status = service.status()
        if status is None:
            return json_response({"status": "loading", "error": service.load_error}, 503)
        return json_response({"status": "ready", "policy_version": status["version"]})

    @app.get("/metrics")
    def metrics() -> Response:
        text = service.metrics.render(service.status)
        return Response(text, mimetype="text/plain; version=0.0.4")

    @app.get("/openapi.json")
    def openapi_json() -> Response:
        return Response(openapi, mimetype="application/json")

    return app
