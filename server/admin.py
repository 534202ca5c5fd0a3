"""The admin listener: reload and status, behind a bearer token compared in constant time.

It binds to 127.0.0.1 by default, apart from the decision listeners. Without a configured token
every admin request is refused (403): the admin API never runs open.
"""

from __future__ import annotations

import hmac

from flask import Flask, Response, request

from server.http_sidecar import json_response, read_json
from server.requests import BadRequest
from server.service import NotReady, ReloadFailed, Service

__all__ = ["create_admin_app"]


def create_admin_app(service: Service) -> Flask:
    app = Flask("pdp-admin")
    token = service.config.admin_token

    @app.before_request
    def authorize() -> Response | None:
        if not token:
            return json_response(
                {"error": "admin disabled: no admin token configured (PDP_ADMIN_TOKEN)"}, 403
            )
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            response = json_response({"error": "missing or wrong bearer token"}, 401)
            response.headers["WWW-Authenticate"] = 'Bearer realm="pdp-admin"'
            return response
        return None

    @app.errorhandler(BadRequest)
    def bad_request(exc: BadRequest) -> Response:
        return json_response({"error": str(exc)}, 400)

    @app.errorhandler(NotReady)
    def not_ready(exc: NotReady) -> Response:
        return json_response({"error": f"not ready: {exc}"}, 503)

    @app.post("/admin/reload")
    def reload() -> Response:
        version = None
        if request.get_data(cache=True).strip():
            body = read_json(1 << 16)
            if not isinstance(body, dict) or not set(body) <= {"version"}:
                raise BadRequest('body: must be {} or {"version": "<name>"}')
            version = body.get("version")
            if version is not None and (not isinstance(version, str) or not version):
                raise BadRequest("version: must be a non-empty string")
        try:
            return json_response(service.reload(version))
        except ReloadFailed as exc:
            status = service.status() or {}
            return json_response(
                {"error": str(exc), "problems": exc.problems, "version": status.get("version")},
                422,
            )

    @app.get("/admin/access-advisor/<path:principal>")
    def access_advisor(principal: str) -> Response:
        days = request.args.get("days", "90")
        if not (days.isascii() and days.isdigit()):
            raise BadRequest("days: must be a whole number")
        answer = service.access_advisor(principal, int(days))
        if answer is None:
            return json_response({"error": f"no user {principal!r} in the store"}, 404)
        return json_response(answer)

    @app.get("/admin/status")
    def status() -> Response:
        info = service.status()
        if info is None:
            raise NotReady(service.load_error or "the policy store is still loading")
        return json_response(info)

    return app
