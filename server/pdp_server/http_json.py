"""The JSON of every Flask app of pdp_server (the sidecar, the admin listener, the AuthZEN door):
answers, errors from the one table (pdp_server/errors.py), and request bodies read within limits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from pdp.language import MalformedJson, repeated_key
from pdp_server.errors import (
    BadRequest,
    BodyTooLarge,
    InternalError,
    ServiceError,
    error_body,
    http_error,
    kind_for_status,
)

__all__ = ["error_response", "json_errors", "json_response", "read_json", "too_large"]


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def error_response(exc: ServiceError, **extra: Any) -> Response:
    """The JSON answer to `exc` (pdp_server/errors.py), with `extra` top-level fields."""
    status, body, headers = http_error(exc, **extra)
    return Response(body, status=status, headers=headers, mimetype="application/json")


def too_large(max_body: int) -> BodyTooLarge:
    return BodyTooLarge(f"body: larger than {max_body} bytes")


def read_json(max_body: int) -> Any:
    """The request body as JSON, or BadRequest naming what is wrong with it (a repeated key
    too: orjson would keep the last value silently)."""
    if request.content_length is not None and request.content_length > max_body:
        raise too_large(max_body)
    data = request.get_data(cache=False)
    if len(data) > max_body:
        raise too_large(max_body)
    try:
        value = orjson.loads(data)
        repeat = repeated_key(data, value)
    except (orjson.JSONDecodeError, MalformedJson) as exc:
        raise BadRequest(f"body: invalid JSON ({exc})") from None
    if repeat is not None:
        path, key = repeat
        raise BadRequest(f'{path or "body"}: duplicate key "{key}"')
    return value


def json_errors(
    app: Flask, logger: logging.Logger, on_bad_request: Callable[[], None] = lambda: None
) -> None:
    """Every error of `app` as JSON from the one table (pdp_server/errors.py), for the sidecar
    and the admin listener: a ServiceError by its kind (a BadRequest counted by
    `on_bad_request`), the framework's HTTP errors (unknown path, wrong method) keeping their
    status, and anything else a logged 500 that never echoes its cause."""

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> Response:
        if isinstance(exc, BadRequest):
            on_bad_request()
        return error_response(exc)

    @app.errorhandler(HTTPException)
    def http_exception(exc: HTTPException) -> Response:
        status = exc.code or 500
        body = error_body(kind_for_status(status).code, exc.description or exc.name)
        return json_response(body, status)

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Response:
        logger.exception("internal error")
        return error_response(InternalError())
