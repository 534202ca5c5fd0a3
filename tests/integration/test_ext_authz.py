"""Envoy ext_authz through a real `pdp serve`: CheckRequests shaped as Envoy sends them, sent by a
client built from the upstream protos (xds-protos), on the gRPC port next to pdp.v1.Authorizer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as ext
from envoy.service.auth.v3 import external_auth_pb2_grpc as ext_grpc
from google.protobuf import json_format, struct_pb2
from google.rpc import code_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.integration.servers import Server, start_server
from tests.integration.test_forward_auth import (
    ACCOUNT,
    API,
    allowed_count,
    refused_count,
    write_store,
)

ROLE = f"arn:aws:iam::{ACCOUNT}:role/Web"
MFA_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": f"{API}/DELETE/orders/*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        },
        {
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": f"{API}/GET/teams/${{aws:PrincipalTag/team}}/*",
        },
    ],
}


def write_gateway_store(root: Path) -> Path:
    write_store(root)
    version = root / "versions" / "0001"
    (version / "policies" / "Mfa.json").write_text(json.dumps(MFA_POLICY))
    (version / "users" / "carol.json").write_text(json.dumps({"policies": ["Mfa"]}))
    (version / "roles").mkdir()
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/idp"},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
    (version / "roles" / "Web.json").write_text(
        json.dumps({"trust_policy": trust, "policies": ["Mfa"]})
    )
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ext-authz")
    store = write_gateway_store(tmp / "store")
    running = start_server(tmp, store=store, PDP_GATEWAY_API="orders-api")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Deny bodies on, the payload named, callers sessions of a role."""
    tmp = tmp_path_factory.mktemp("ext-authz-configured")
    running = start_server(
        tmp,
        store=write_gateway_store(tmp / "store"),
        PDP_GATEWAY_API="orders-api",
        PDP_GATEWAY_DENY_BODY="on",
        PDP_GATEWAY_JWT_PAYLOAD="verified",
        PDP_GATEWAY_ROLE=ROLE,
    )
    yield running
    running.stop()


def envoy_request(
    path: str,
    method: str = "GET",
    claims: dict[str, Any] | None = None,
    payload_key: str = "jwt_payload",
    peer: str = "",
    source: str = "203.0.113.7",
    host: str = "orders.example.com:8443",
    scheme: str = "https",
    raw_headers: bool = False,
    **headers: str,
) -> ext.CheckRequest:
    """A CheckRequest as Envoy's ext_authz filter builds it (with `metadata_context_namespaces:
    [envoy.filters.http.jwt_authn]` and jwt_authn's `payload_in_metadata: <payload_key>`)."""
    all_headers = {
        ":authority": host,
        ":method": method,
        ":path": path,
        ":scheme": scheme,
        "user-agent": "curl/8.5.0",
        "x-forwarded-proto": scheme,
        "x-request-id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    http: dict[str, Any] = {
        "id": "1234567890",
        "method": method,
        "path": path,
        "host": host,
        "scheme": scheme,
        "protocol": "HTTP/1.1",
    }
    if not raw_headers:
        http["headers"] = all_headers
    attributes: dict[str, Any] = {
        "source": {"address": {"socket_address": {"address": source, "port_value": 51234}}},
        "destination": {"address": {"socket_address": {"address": "10.0.0.2", "port_value": 8443}}},
        "request": {"time": "2026-12-03T10:00:00Z", "http": http},
    }
    if peer:
        attributes["source"]["principal"] = peer
    if claims is not None:
        attributes["metadata_context"] = {
            "filter_metadata": {"envoy.filters.http.jwt_authn": {payload_key: claims}}
        }
    message = ext.CheckRequest()
    json_format.ParseDict({"attributes": attributes}, message)
    if raw_headers:  # encode_raw_headers: true
        header_map = message.attributes.request.http.header_map
        for key, value in all_headers.items():
            header_map.headers.add(key=key, raw_value=value.encode())
    return message


def check(server: Server, message: ext.CheckRequest) -> ext.CheckResponse:
    with grpc.insecure_channel(server.grpc) as channel:
        response: ext.CheckResponse = ext_grpc.AuthorizationStub(channel).Check(message, timeout=10)
        return response


def claims(sub: str, **more: Any) -> dict[str, Any]:
    issuer = "https://idp.example.com"
    return {"iss": issuer, "sub": sub, "aud": "orders", "exp": 1893456000, **more}


def headers_of(response: ext.CheckResponse) -> dict[str, str]:
    return {h.header.key: h.header.value for h in response.ok_response.headers}


def test_an_allowed_request_is_ok_with_the_principal_and_version_headers(server: Server) -> None:
    response = check(server, envoy_request("/public/menu?lang=en", claims=claims("alice")))
    assert response.status.code == code_pb2.OK
    assert response.WhichOneof("http_response") == "ok_response"
    assert headers_of(response) == {"x-pdp-principal": "alice", "x-pdp-policy-version": "0001"}
    overwrite = response.ok_response.headers[0].OVERWRITE_IF_EXISTS_OR_ADD
    # a client's own x-pdp-principal header never reaches the upstream beside pdp's
    assert all(h.append_action == overwrite for h in response.ok_response.headers)


@pytest.mark.parametrize(
    ("path", "method", "who", "source", "code", "http"),
    [
        ("/public/menu", "GET", "bob", "203.0.113.7", code_pb2.PERMISSION_DENIED, 403),
        ("/public/secret", "GET", "alice", "203.0.113.7", code_pb2.PERMISSION_DENIED, 403),
        ("/orders", "POST", "alice", "203.0.113.7", code_pb2.OK, 200),
        ("/orders", "POST", "alice", "198.51.100.1", code_pb2.PERMISSION_DENIED, 403),
        ("/orders", "GET", "alice", "203.0.113.7", code_pb2.PERMISSION_DENIED, 403),
        ("/public/../orders", "POST", "alice", "203.0.113.7", code_pb2.PERMISSION_DENIED, 403),
        ("/public/%2e%2e/secret", "GET", "alice", "203.0.113.7", code_pb2.PERMISSION_DENIED, 403),
        ("/public//secret", "GET", "alice", "203.0.113.7", code_pb2.PERMISSION_DENIED, 403),
        ("/public/a%2Fb", "GET", "alice", "203.0.113.7", code_pb2.PERMISSION_DENIED, 403),
        ("/public/caf%C3%A9", "GET", "alice", "203.0.113.7", code_pb2.OK, 200),
    ],
)
def test_decisions_follow_the_policies_on_the_api_gateway_arn(
    server: Server, path: str, method: str, who: str, source: str, code: int, http: int
) -> None:
    message = envoy_request(path, method=method, claims=claims(who), source=source)
    response = check(server, message)
    assert response.status.code == code, response
    if http != 200:
        assert response.denied_response.status.code == http
        assert response.denied_response.body == ""  # no reasons unless configured
        assert response.status.message == ""


def test_without_a_claim_the_mtls_peer_is_the_principal(server: Server) -> None:
    response = check(server, envoy_request("/public/menu", peer="alice"))
    assert response.status.code == code_pb2.OK
    assert headers_of(response)["x-pdp-principal"] == "alice"


def test_no_principal_is_unauthenticated_401(server: Server) -> None:
    response = check(server, envoy_request("/public/menu"))
    assert response.status.code == code_pb2.UNAUTHENTICATED
    assert response.denied_response.status.code == 401
    # a header naming a user is not a source unless configured
    response = check(server, envoy_request("/public/menu", x_forwarded_user="alice"))
    assert response.status.code == code_pb2.UNAUTHENTICATED


def test_the_amr_claim_is_multi_factor_presence(server: Server) -> None:
    path = "/orders/17"
    with_mfa = envoy_request(path, method="DELETE", claims=claims("carol", amr=["pwd", "mfa"]))
    without = envoy_request(path, method="DELETE", claims=claims("carol", amr=["pwd"]))
    assert check(server, with_mfa).status.code == code_pb2.OK
    assert check(server, without).status.code == code_pb2.PERMISSION_DENIED


def test_raw_header_maps_are_read_as_envoy_sends_them(server: Server) -> None:
    message = envoy_request("/public/menu", claims=claims("alice"), raw_headers=True)
    message.attributes.request.http.host = ""  # the host then comes from :authority
    assert check(server, message).status.code == code_pb2.OK


def test_the_host_names_the_api_unless_configured(tmp_path: Path) -> None:
    store = write_gateway_store(tmp_path / "store")
    running = start_server(tmp_path, store=store)
    try:
        at_api = envoy_request("/public/menu", claims=claims("alice"), host="orders-api:8443")
        other = envoy_request("/public/menu", claims=claims("alice"), host="other-api")
        assert check(running, at_api).status.code == code_pb2.OK
        assert check(running, other).status.code == code_pb2.PERMISSION_DENIED
        no_host = envoy_request("/public/menu", claims=claims("alice"), host="")
        response = check(running, no_host)
        assert response.status.code == code_pb2.INVALID_ARGUMENT
        assert response.denied_response.status.code == 400
    finally:
        running.stop()


def test_an_empty_or_malformed_check_is_denied_never_an_error(server: Server) -> None:
    response = check(server, ext.CheckRequest())
    assert response.status.code != code_pb2.OK
    assert response.WhichOneof("http_response") == "denied_response"
    too_many = claims("alice", **{f"c{i}": "x" for i in range(80)})
    response = check(server, envoy_request("/public/menu", claims=too_many))
    assert response.status.code == code_pb2.PERMISSION_DENIED
    two_tokens = envoy_request("/public/menu", claims=claims("alice"))
    jwt = two_tokens.attributes.metadata_context.filter_metadata["envoy.filters.http.jwt_authn"]
    jwt.fields["other"].struct_value.update({"sub": "bob"})
    # two payloads and none named: no claim is trusted, so no principal
    assert check(server, two_tokens).status.code == code_pb2.UNAUTHENTICATED


def test_deny_bodies_say_why_when_configured(configured: Server) -> None:
    message = envoy_request("/orders/17", "DELETE", claims("carol"), payload_key="verified")
    response = check(configured, message)
    assert response.status.code == code_pb2.PERMISSION_DENIED
    body = json.loads(response.denied_response.body)
    assert body == {"allowed": False, "reason": "implicitDeny"}
    assert response.status.message == "implicitDeny"
    content_type = {h.header.key: h.header.value for h in response.denied_response.headers}
    assert content_type == {"content-type": "application/json"}
    refused = check(configured, envoy_request("/a/../b", "GET", claims("carol"), "verified"))
    assert "dot segments" in json.loads(refused.denied_response.body)["reason"]


def test_with_a_role_callers_are_sessions_tagged_with_their_claims(configured: Server) -> None:
    team = claims("carol", team="blue")
    allowed = check(configured, envoy_request("/teams/blue/board", "GET", team, "verified"))
    assert allowed.status.code == code_pb2.OK
    principal = headers_of(allowed)["x-pdp-principal"]
    assert principal == f"arn:aws:sts::{ACCOUNT}:assumed-role/Web/carol"
    other = check(configured, envoy_request("/teams/red/board", "GET", team, "verified"))
    assert other.status.code == code_pb2.PERMISSION_DENIED
    # the payload under another key is not read when one is configured
    unnamed = check(configured, envoy_request("/teams/blue/board", claims=team))
    assert unnamed.status.code == code_pb2.UNAUTHENTICATED


def test_the_service_is_in_health_and_reflection(server: Server) -> None:
    name = ext.DESCRIPTOR.services_by_name["Authorization"].full_name
    with grpc.insecure_channel(server.grpc) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        assert name in ProtoReflectionDescriptorDatabase(channel).get_services()


def test_each_check_is_a_counted_decision_or_refusal(server: Server) -> None:
    before, refused = allowed_count(server), refused_count(server, 400)
    check(server, envoy_request("/public/menu", claims=claims("alice")))
    assert allowed_count(server) == before + 1
    raw_check(server, b"\xff\xff\xff")  # no CheckRequest
    assert refused_count(server, 400) == refused + 1


def raw_check(server: Server, data: bytes) -> ext.CheckResponse:
    with grpc.insecure_channel(server.grpc) as channel:
        call = channel.unary_unary(
            "/envoy.service.auth.v3.Authorization/Check",
            request_serializer=None,  # bytes as they are
            response_deserializer=ext.CheckResponse.FromString,
        )
        response: ext.CheckResponse = call(data, timeout=10)
        return response


def test_a_check_that_does_not_parse_is_a_denial_not_a_grpc_error(server: Server) -> None:
    # a string field that is not UTF-8 (older Envoys sent header bytes as they came)
    good = envoy_request("/public/AAAA", claims=claims("alice")).SerializeToString()
    assert raw_check(server, good).status.code == code_pb2.OK
    response = raw_check(server, good.replace(b"/public/AAAA", b"/public/\xff\xfe\xfd\xfc"))
    assert response.status.code == code_pb2.INVALID_ARGUMENT
    assert response.denied_response.status.code == 400
    # claims nested past protobuf's recursion limit (built as bytes: no parser builds them)
    deep = struct_pb2.Struct(fields={"sub": struct_pb2.Value(string_value="alice")})
    nested = deep.SerializeToString()
    for _ in range(120):
        nested = field(1, field(1, b"n") + field(2, field(5, nested)))  # {"n": {...}}
    context = ext.CheckRequest.DESCRIPTOR.fields_by_name["attributes"].message_type
    metadata = context.fields_by_name["metadata_context"]
    filter_metadata = metadata.message_type.fields_by_name["filter_metadata"].number
    payload = field(1, field(1, b"jwt_payload") + field(2, field(5, nested)))
    entry = field(1, b"envoy.filters.http.jwt_authn") + field(2, payload)
    attributes = field(metadata.number, field(filter_metadata, entry))
    response = raw_check(server, good + field(1, attributes))  # merged into attributes
    assert response.status.code == code_pb2.INVALID_ARGUMENT
    assert response.WhichOneof("http_response") == "denied_response"


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
