"""Envoy external authorization on the gRPC port: `envoy.service.auth.v3.Authorization/Check`,
built with the upstream generated protos (xds-protos). docs/serving.md, Envoy ext_authz.

A CheckRequest's HTTP request (method, path with its query, host, scheme, headers), its source
(address, and the mTLS peer principal Envoy verified) and the claims of a JWT that Envoy's
jwt_authn filter verified (`metadata_context.filter_metadata["envoy.filters.http.jwt_authn"]`,
the payload stored under `payload_in_metadata`) become a gateway.HttpCall, decided like every
other gateway request. Every Check is answered with a CheckResponse, never a gRPC error: an
error Envoy sees could be let through by `failure_mode_allow`, a denial cannot.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2
from envoy.type.v3 import http_status_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2

from pdp_server.errors import ServiceError
from pdp_server.gateway import (
    MAX_CLAIMS,
    MAX_HEADER,
    GatewayRules,
    HttpCall,
    Refused,
    answer,
    denial_body,
    refusal,
)
from pdp_server.service import Service

__all__ = ["EXT_AUTHZ_SERVICE_NAME", "JWT_AUTHN", "ExtAuthzServicer", "add_ext_authz", "http_call"]

log = logging.getLogger("pdp.server.grpc")
EXT_AUTHZ_SERVICE_NAME = external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"].full_name
JWT_AUTHN = "envoy.filters.http.jwt_authn"  # the jwt_authn filter's metadata namespace

# the gRPC status Envoy reads (any but OK denies) and the HTTP status it answers with
_STATUS = {
    400: (code_pb2.INVALID_ARGUMENT, http_status_pb2.BadRequest),
    401: (code_pb2.UNAUTHENTICATED, http_status_pb2.Unauthorized),
    403: (code_pb2.PERMISSION_DENIED, http_status_pb2.Forbidden),
    503: (code_pb2.UNAVAILABLE, http_status_pb2.ServiceUnavailable),
}
_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _claims(request: external_auth_pb2.CheckRequest, payload_key: str | None) -> dict[str, Any]:
    """The verified JWT payload: under `payload_key` of the jwt_authn namespace, or, with no key
    configured, its only entry (more than one and none named: no claims, so no principal from a
    claim rather than a guess between tokens)."""
    metadata = request.attributes.metadata_context.filter_metadata
    if JWT_AUTHN not in metadata:
        return {}
    fields = metadata[JWT_AUTHN].fields
    if payload_key is not None:
        value = fields.get(payload_key)
    elif len(fields) == 1:
        value = next(iter(fields.values()))
    else:
        return {}
    if value is None or value.WhichOneof("kind") != "struct_value":
        return {}
    if len(value.struct_value.fields) > MAX_CLAIMS:
        raise Refused(403, f"claims: more than {MAX_CLAIMS}")
    claims: dict[str, Any] = MessageToDict(value.struct_value)
    return claims


def _headers(http: attribute_context_pb2.AttributeContext.HttpRequest) -> Mapping[str, str]:
    """Header names in lower case, as Envoy sends them (`headers`, or `header_map` when the
    filter is set to `encode_raw_headers`; repeated names joined with "," as Envoy joins them)."""
    if http.headers or not http.HasField("header_map"):
        headers: Mapping[str, str] = http.headers
        return headers
    out: dict[str, str] = {}
    for header in http.header_map.headers:
        value = header.raw_value.decode("utf-8", "replace") if header.raw_value else header.value
        name = header.key.lower()
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def _parse(data: bytes) -> external_auth_pb2.CheckRequest:
    try:
        return external_auth_pb2.CheckRequest.FromString(data)
    except DecodeError as exc:
        raise Refused(400, f"CheckRequest: {exc}") from None


def http_call(request: external_auth_pb2.CheckRequest, payload_key: str | None) -> HttpCall:
    """The gateway request of a CheckRequest (Refused when its claims are over the limits)."""
    attributes = request.attributes
    http = attributes.request.http
    headers = _headers(http)
    host = http.host or headers.get(":authority", "")
    source = attributes.source
    address = source.address.socket_address.address if source.HasField("address") else ""
    for name, value in (("path", http.path), ("host", host), ("principal", source.principal)):
        if len(value) > MAX_HEADER:
            raise Refused(400, f"{name}: longer than {MAX_HEADER} characters")
    return HttpCall(
        method=http.method,
        path=http.path,
        host=host,
        headers=headers,
        claims=_claims(request, payload_key),
        peer=source.principal or None,
        source_ip=address or None,
        secure=http.scheme.lower() == "https",
    )


def _denied(status: int, why: str, deny_body: bool) -> external_auth_pb2.CheckResponse:
    code, http_status = _STATUS.get(status, _STATUS[403])
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code, message=why if deny_body else ""),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=http_status),
            headers=[
                base_pb2.HeaderValueOption(
                    header=base_pb2.HeaderValue(key="content-type", value="application/json"),
                    append_action=_OVERWRITE,
                )
            ]
            if deny_body
            else [],
            body=denial_body(why).decode() if deny_body else "",
        ),
    )


def _allowed(principal: str, version: str) -> external_auth_pb2.CheckResponse:
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code_pb2.OK),
        ok_response=external_auth_pb2.OkHttpResponse(
            headers=[
                base_pb2.HeaderValueOption(
                    header=base_pb2.HeaderValue(key=key, value=value), append_action=_OVERWRITE
                )
                for key, value in (
                    ("x-pdp-principal", principal),
                    ("x-pdp-policy-version", version),
                )
            ]
        ),
    )


class ExtAuthzServicer:
    """envoy.service.auth.v3.Authorization on the aio server; decides on the event loop, as
    pdp.v1.Authorizer/IsAuthorized does (one decision takes microseconds)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        config = service.config
        self._rules = GatewayRules.of(config)
        self._payload_key = config.gateway_jwt_payload
        self._deny_body = config.gateway_deny_body

    async def Check(  # noqa: N802 (gRPC's method name)
        self, data: bytes, context: grpc.aio.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        """The message arrives as bytes and is parsed here: one that does not parse (a string
        that is not UTF-8, nesting past protobuf's limit) is a denial too, not a gRPC error."""
        try:
            call = http_call(_parse(data), self._payload_key)
            found = answer(self.service, call, self._rules)
        except Refused as exc:
            found = refusal(self.service, exc)
        except ServiceError as exc:  # no store loaded yet
            return _denied(503 if exc.kind == "not_ready" else 403, str(exc), self._deny_body)
        except Exception:  # fail closed: a denial, the cause logged and never echoed
            log.exception("internal error in ext_authz Check")
            return _denied(403, "internal error", self._deny_body)
        if found.status != 200:
            return _denied(found.status, found.why, self._deny_body)
        return _allowed(found.principal, found.policy_version)


def add_ext_authz(server: grpc.aio.Server, service: Service) -> None:
    """The Check method with a deserializer that cannot fail (the servicer parses)."""
    servicer = ExtAuthzServicer(service)
    check = grpc.unary_unary_rpc_method_handler(
        servicer.Check,
        request_deserializer=bytes,
        response_serializer=external_auth_pb2.CheckResponse.SerializeToString,
    )
    handler = grpc.method_handlers_generic_handler(EXT_AUTHZ_SERVICE_NAME, {"Check": check})
    server.add_generic_rpc_handlers((handler,))
