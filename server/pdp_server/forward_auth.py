"""Forward-auth on the HTTP port: `/v1/forward-auth` for nginx `auth_request`, Caddy
`forward_auth` and Traefik ForwardAuth (docs/serving.md, Forward-auth).

The proxy asks before it forwards a request; pdp reads the original method and URI from the
headers those proxies send (`X-Original-Method`/`X-Original-URI`, nginx as configured in the
docs; `X-Forwarded-Method`/`X-Forwarded-Uri`, Caddy and Traefik), the principal from one header
the proxy sets (PDP_FORWARD_AUTH_PRINCIPAL_HEADER), maps them with pdp_server.gateway and
answers 200 (allow, with `X-Pdp-Principal` and `X-Pdp-Policy-Version`), 403 (deny, or a path
pdp will not match), 401 (no principal), 400 (the proxy sent no original URI).
"""

from __future__ import annotations

import ipaddress

from flask import Flask, Response, request

from pdp_server.errors import BadRequest
from pdp_server.gateway import (
    GatewayRules,
    HttpCall,
    Refused,
    answer,
    denial_body,
    refusal,
)
from pdp_server.service import Service

__all__ = ["FORWARD_AUTH", "METHODS", "register_forward_auth"]

FORWARD_AUTH = "/v1/forward-auth"
# nginx and Caddy ask with GET; a proxy that asks with the original method may, too.
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_MAX_HEADER = 8192


# The two header families proxies name the original request with. A proxy sets its own family
# and passes the client's other headers on, so a request carrying both holds a client's header:
# pdp decides neither (403) rather than pick one.
_ORIGINAL = ("X-Original-URI", "X-Original-Method")  # nginx, as configured in the docs
_FORWARDED = ("X-Forwarded-Uri", "X-Forwarded-Method")  # Caddy, Traefik


def _header(*names: str) -> str | None:
    """The first of `names` present. A header sent twice reaches WSGI joined with ", ": in a
    URI (which never holds a space) gateway.clean_path refuses it."""
    for name in names:
        value = request.headers.get(name)
        if value is not None:
            if len(value) > _MAX_HEADER:
                raise BadRequest(f"{name}: longer than {_MAX_HEADER} characters")
            return value
    return None


def _source_ip() -> str | None:
    """The client address the proxy saw: the last X-Forwarded-For entry (the one the proxy
    itself appended), if it is an IP address."""
    forwarded = _header("X-Forwarded-For")
    if not forwarded:
        return None
    last = forwarded.rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return None


def _call(principal_header: str) -> HttpCall:
    original = [name for name in _ORIGINAL if name in request.headers]
    forwarded = [name for name in _FORWARDED if name in request.headers]
    if original and forwarded:
        raise Refused(403, f"{original[0]} and {forwarded[0]} both sent: one is a client's")
    family = _ORIGINAL if original else _FORWARDED
    uri = _header(family[0])
    if uri is None:
        raise BadRequest("X-Original-URI or X-Forwarded-Uri: required (the original request's URI)")
    method = _header(family[1]) or request.method
    host = _header("X-Forwarded-Host", "Host") or ""
    proto = (_header("X-Forwarded-Proto") or "").lower()
    principal = _header(principal_header)
    return HttpCall(
        method=method,
        path=uri,
        host=host,
        headers={principal_header.lower(): principal} if principal is not None else {},
        source_ip=_source_ip(),
        secure=proto == "https",
    )


def register_forward_auth(app: Flask, service: Service) -> None:
    config = service.config
    header = config.forward_auth_principal_header
    rules = GatewayRules.of(config, principal=f"header:{header}")

    def forward_auth() -> Response:
        try:
            found = answer(service, _call(header), rules)
        except Refused as exc:
            found = refusal(service, exc)
        if found.status != 200:
            if not config.gateway_deny_body:
                return Response(b"", status=found.status)
            body = denial_body(found.why)
            return Response(body, status=found.status, mimetype="application/json")
        response = Response(b"", status=200)
        response.headers["X-Pdp-Principal"] = found.principal
        response.headers["X-Pdp-Policy-Version"] = found.policy_version
        return response

    app.add_url_rule(FORWARD_AUTH, endpoint="forward_auth", view_func=forward_auth, methods=METHODS)
