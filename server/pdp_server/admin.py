"""The admin listener: reload, status, the access advisor and diff (`GET /admin/diff?old=&new=`,
docs/queries.md), behind a bearer token compared in constant time.

It binds to 127.0.0.1 by default, apart from the decision listeners. Without a configured token
every admin request is refused (403): the admin API never runs open.

waitress reads a whole request before the app sees it, so the token cannot be checked before
the body is read. Instead the body is capped so low that reading it first costs nothing: a
declared length of 8 KiB or more is refused (413) on the headers alone, and what is read stays
in memory (waitress spools to a file only past 512 KiB). Idle and half-sent connections are
closed after `admin_timeout` seconds, and up to 1000 may be open, so junk connections do not
lock operators out of reload and status.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request
from waitress.server import create_server

from pdp.store import DEFAULT_MAX_CHECKS, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT
from pdp_server.errors import (
    AdminDisabled,
    BadRequest,
    NotFound,
    NotReady,
    ReloadFailed,
    Unauthenticated,
)
from pdp_server.http_json import error_response, json_errors, json_response, read_json
from pdp_server.service import Service

__all__ = ["MAX_BODY", "MAX_DAYS", "MAX_HEADERS", "create_admin_app", "create_admin_server"]

log = logging.getLogger("pdp.server.admin")
MAX_BODY = 8 << 10  # bytes: an admin body is {"version": "<name>"}
MAX_HEADERS = 8 << 10  # bytes of request line and headers
MAX_CONNECTIONS = 1000
MAX_DAYS = 36_500  # the Access Advisor's window: a hundred years


def _days(raw: str) -> int:
    """The `days` parameter, 1 to MAX_DAYS. The length is checked before int(): Python refuses
    to convert more than 4,300 digits, and orjson to encode integers past 64 bits."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= MAX_DAYS:
        return int(raw)
    raise BadRequest(f"days: must be a whole number from 1 to {MAX_DAYS}")


def _version_name(args: Mapping[str, str], key: str) -> str:
    """A version name parameter (`old`, `new`); the store checks it is one (never a path)."""
    value = args.get(key)
    if not value:
        raise BadRequest(f"{key}: required, a version name of the store (e.g. 0001)")
    return value


def _max_checks(args: Mapping[str, str]) -> int:
    """The `max_checks` parameter, 1 to DEFAULT_MAX_CHECKS (digits checked before int())."""
    raw = args.get("max_checks", str(DEFAULT_MAX_CHECKS))
    if raw.isascii() and raw.isdigit() and len(raw) <= 7 and 1 <= int(raw) <= DEFAULT_MAX_CHECKS:
        return int(raw)
    raise BadRequest(f"max_checks: must be a whole number from 1 to {DEFAULT_MAX_CHECKS}")


def _limit(args: Mapping[str, str]) -> int:
    """The `limit` parameter of who-can and what-can, 1 to MAX_QUERY_LIMIT."""
    raw = args.get("limit", str(DEFAULT_QUERY_LIMIT))
    if raw.isascii() and raw.isdigit() and len(raw) <= 5 and 1 <= int(raw) <= MAX_QUERY_LIMIT:
        return int(raw)
    raise BadRequest(f"limit: must be a whole number from 1 to {MAX_QUERY_LIMIT}")


def _context(raw: str | None) -> dict[str, object] | None:
    """who-can's `context` parameter: a JSON object of condition keys (at most MAX_BODY)."""
    if raw is None:
        return None
    if len(raw) > MAX_BODY:
        raise BadRequest(f"context: longer than {MAX_BODY} characters")
    try:
        value = json.loads(raw)
    except ValueError:
        raise BadRequest("context: must be a JSON object of condition keys") from None
    if not isinstance(value, dict):
        raise BadRequest("context: must be a JSON object of condition keys")
    return value


def _required(args: Mapping[str, str], key: str, what: str) -> str:
    value = args.get(key)
    if not value:
        raise BadRequest(f"{key}: required, {what}")
    return value


def create_admin_app(service: Service) -> Flask:
    app = Flask("pdp-admin")
    token = service.config.admin_token

    @app.before_request
    def authorize() -> None:
        if not token:
            raise AdminDisabled("admin disabled: no admin token configured (PDP_ADMIN_TOKEN)")
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise Unauthenticated("missing or wrong bearer token")

    json_errors(app, log)

    @app.post("/admin/reload")
    def reload() -> Response:
        version = None
        if request.get_data(cache=True).strip():
            body = read_json(MAX_BODY)
            if not isinstance(body, dict) or not set(body) <= {"version"}:
                raise BadRequest('body: must be {} or {"version": "<name>"}')
            version = body.get("version")
            if version is not None and (not isinstance(version, str) or not version):
                raise BadRequest("version: must be a non-empty string")
        try:
            return json_response(service.reload(version))
        except ReloadFailed as exc:
            status = service.status() or {}
            return error_response(exc, version=status.get("version"))

    @app.post("/admin/impact")
    def impact() -> Response:
        body = read_json(MAX_BODY)
        if not isinstance(body, dict) or not set(body) <= {"candidate", "baseline"}:
            raise BadRequest('body: must be {"candidate": "<version>", "baseline": "logged"}')
        candidate = body.get("candidate")
        if not isinstance(candidate, str) or not candidate:
            raise BadRequest("candidate: must be the name of a version of the store")
        baseline = body.get("baseline", "logged")
        if baseline not in ("logged", "current"):
            raise BadRequest('baseline: must be "logged" or "current"')
        return json_response(service.impact(candidate, baseline))

    @app.get("/admin/access-advisor/<path:principal>")
    def access_advisor(principal: str) -> Response:
        answer = service.access_advisor(principal, _days(request.args.get("days", "90")))
        if answer is None:
            raise NotFound(f"no user {principal!r} in the store")
        return json_response(answer)

    @app.get("/admin/diff")
    def diff() -> Response:
        old, new = _version_name(request.args, "old"), _version_name(request.args, "new")
        return json_response(service.diff(old, new, _max_checks(request.args)))

    @app.get("/admin/who-can")
    def who_can() -> Response:
        args = request.args
        return json_response(
            service.who_can(
                _required(args, "action", "service:Action (e.g. s3:GetObject)"),
                _required(args, "resource", "an ARN or *"),
                _context(args.get("context")),
                _limit(args),
                args.get("page_token") or None,
            )
        )

    @app.get("/admin/what-can/<path:principal>")
    def what_can(principal: str) -> Response:
        args = request.args
        return json_response(
            service.what_can(
                principal,
                args.get("service") or None,
                args.get("resource_pattern") or None,
                _limit(args),
            )
        )

    @app.get("/admin/status")
    def status() -> Response:
        info = service.status()
        if info is None:
            raise NotReady(service.load_error)
        return json_response(info)

    return app


def create_admin_server(app: Flask, host: str, port: int, timeout: int) -> Any:
    """A waitress server for `app` on host:port (bound now; `.run()` serves); OSError if taken.

    The socket is bound here, before waitress exists: waitress starts its task threads and a
    wake-up pipe before it binds, and a worker retrying a port that another worker holds leaked
    two threads each time (thousands an hour). It listens at once too: with SO_REUSEADDR, Linux
    lets a second worker bind a port that is bound but not yet listening, and two workers then
    both believed they held admin; whichever listens second now fails here."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return create_server(
        app,
        sockets=[sock],
        threads=2,
        ident="pdp-admin",
        max_request_body_size=MAX_BODY,
        max_request_header_size=MAX_HEADERS,
        channel_timeout=timeout,  # idle or half-sent: a request being served is never cut
        cleanup_interval=1,  # seconds between sweeps for idle connections
        connection_limit=MAX_CONNECTIONS,
        asyncore_use_poll=True,  # select() fails on descriptors past 1024, poll() does not
    )
