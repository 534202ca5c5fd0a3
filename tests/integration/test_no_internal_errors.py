"""Nothing a client sends makes pdp answer 500 or INTERNAL: random and hostile input through
real HTTP and gRPC is a decision or a 400 / INVALID_ARGUMENT, and the server keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc
from tests.integration.servers import Server, start_server

FIELDS = ["principal", "principal_type", "action", "resource", "context", "request_id", "x"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["bob", "root", "arn:aws:iam::123456789012:root", "s3:GetObject", "*"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("fuzz"))
    yield srv
    srv.stop()


def _post(server: Server, path: str, raw: bytes) -> int:
    return server.call(path, raw=raw)[0]


@SETTINGS
@given(body=bodies)
def test_random_json_requests_are_decided_or_refused(server: Server, body: dict[str, Any]) -> None:
    assert _post(server, "/v1/is-authorized", json.dumps(body).encode()) in (200, 400)
    batch = json.dumps({"requests": [body, body]}).encode()
    assert _post(server, "/v1/batch-is-authorized", batch) in (200, 400)


@SETTINGS
@given(raw=st.binary(max_size=200))
def test_random_bytes_are_refused(server: Server, raw: bytes) -> None:
    assert _post(server, "/v1/is-authorized", raw) in (200, 400)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"principal": "\\ud800", "action": "s3:GetObject", "resource": "*"}',
        b'{"principal": "bob\x00", "action": "s3:GetObject", "resource": "*"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"principal": "bob", "action": "s3:GetObject", "resource": "*", "context": '
        + b'{"a:b": '
        + b"9" * 5000
        + b"}}",
        b'{"principal": "bob", "action": "s3:GetObject", "resource": "*", "context": '
        + b'{"a:b": 1e999}}',
        b"\xff\xfe\x00{",
        b'{"requests": {"0": {}}}',
        b'{"requests": [[]]}',
    ],
)
def test_hostile_bodies_are_refused(server: Server, raw: bytes) -> None:
    for path in ("/v1/is-authorized", "/v1/batch-is-authorized"):
        assert _post(server, path, raw) in (200, 400), (path, raw[:60])
    assert server.call("/healthz")[0] == 200


@SETTINGS
@given(
    principal=st.text(max_size=30),
    principal_type=st.sampled_from(["", "user", "root", "x"]),
    action=st.text(max_size=30),
    resource=st.text(max_size=30),
    context=st.dictionaries(
        st.text(max_size=10),
        st.one_of(
            st.builds(pb.Value, string_value=st.text(max_size=10)),
            st.builds(pb.Value, int_value=st.integers(-(2**63), 2**63 - 1)),
            st.builds(pb.Value, double_value=st.floats()),
            st.builds(pb.Value, bool_value=st.booleans()),
            st.just(pb.Value()),
        ),
        max_size=4,
    ),
)
def test_random_grpc_requests_are_decided_or_refused(
    server: Server,
    principal: str,
    principal_type: str,
    action: str,
    resource: str,
    context: dict[str, pb.Value],
) -> None:
    message = pb.IsAuthorizedRequest(
        principal=principal,
        principal_type=principal_type,
        action=action,
        resource=resource,
        context=context,
    )
    with grpc.insecure_channel(server.grpc) as channel:
        stub = pb_grpc.AuthorizerStub(channel)
        for call, arg in (
            (stub.IsAuthorized, message),
            (stub.BatchIsAuthorized, pb.BatchIsAuthorizedRequest(requests=[message] * 2)),
        ):
            try:
                call(arg, timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
