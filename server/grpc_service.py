"""gRPC transport: pdp.v1.Authorizer, the standard health service and server reflection.

Decode, call the Service, encode; no policy logic. Create the server only in the process that
serves it (after any fork): gRPC objects do not survive a fork.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pdp import Decision
from pdp.v1 import authorizer_pb2 as pb
from pdp.v1 import authorizer_pb2_grpc as pb_grpc
from server.requests import (
    MAX_CONTEXT_KEYS,
    MAX_STRING,
    BadRequest,
    DecisionRequest,
    check_context,
    check_principal_type,
    parse_request,
)
from server.service import DeadlineExceeded, NotReady, Service

__all__ = ["SERVICE_NAME", "create_server", "decision_message"]

log = logging.getLogger("pdp.server.grpc")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Authorizer"].full_name
MAX_MESSAGE = 4 << 20


def _value(value: pb.Value, where: str, nested: bool = False) -> Any:
    kind = value.WhichOneof("kind")
    if kind is None:
        raise BadRequest(f"{where}: a Value needs one of its kinds set")
    if kind == "list_value":
        if nested:
            raise BadRequest(f"{where}: lists hold strings, numbers or booleans, not lists")
        return [_value(v, f"{where}[{i}]", True) for i, v in enumerate(value.list_value.values)]
    return getattr(value, kind)


def _request(message: pb.IsAuthorizedRequest) -> DecisionRequest:
    """The proto already fixes the types; check what it cannot (presence, sizes, value kinds)."""
    principal, action, resource = message.principal, message.action, message.resource
    if not principal or not action or not resource:
        # proto3 has no "absent" for strings: an empty one is a missing field
        missing = [n for n in ("principal", "action", "resource") if not getattr(message, n)]
        raise BadRequest(f"{missing[0]}: required")
    fields: dict[str, Any] = {"principal": principal, "action": action, "resource": resource}
    if max(len(principal), len(action), len(resource)) > MAX_STRING:
        parse_request(fields)  # raises, naming the field
    context: dict[str, Any] = {}
    if message.context:
        if len(message.context) > MAX_CONTEXT_KEYS:
            raise BadRequest(f"context: more than {MAX_CONTEXT_KEYS} keys")
        for key, value in message.context.items():
            context[key] = _value(value, f'context["{key}"]')
        check_context(context)  # the checks the HTTP sidecar makes too
    principal_type = check_principal_type(message.principal_type)
    return DecisionRequest(
        principal, action, resource, context, message.request_id or None, principal_type
    )


_MESSAGES: dict[int, tuple[Decision, pb.IsAuthorizedResponse]] = {}


def decision_message(decision: Decision) -> pb.IsAuthorizedResponse:
    """The response for a decision. Decisions without errors are shared objects (one per set of
    matching statements), so their messages are built once and reused."""
    found = _MESSAGES.get(id(decision))
    if found is not None and found[0] is decision:
        return found[1]
    message = _message(decision)
    if not decision.errors:
        if len(_MESSAGES) > 10_000:
            _MESSAGES.clear()
        _MESSAGES[id(decision)] = (decision, message)  # holding the decision keeps its id valid
    return message


def _message(decision: Decision) -> pb.IsAuthorizedResponse:
    return pb.IsAuthorizedResponse(
        decision=decision.decision,
        reason=decision.reason,
        matched=[
            pb.MatchedStatement(
                policy=m.policy, statement=m.statement, sid=m.sid or "", effect=m.effect
            )
            for m in decision.matched
        ],
        errors=list(decision.errors),
        policy_version=decision.policy_version or "",
        root=decision.root,
    )


class _Undecodable:
    """A request whose bytes are no message of its type: the servicer is not called."""

    __slots__ = ("detail",)

    def __init__(self, detail: str) -> None:
        self.detail = detail


def _decoder(message: Any) -> Any:
    """A request deserializer that never raises: gRPC would answer INTERNAL and log a
    traceback for each such call ("Exception deserializing request!")."""
    name = message.DESCRIPTOR.full_name

    def decode(data: bytes) -> Any:
        try:
            return message.FromString(data)
        except Exception as exc:  # DecodeError, or any other way the bytes fail to parse
            why = str(exc).rpartition(": ")[2] or type(exc).__name__
            return _Undecodable(f"request: not a valid {name} message ({why.lower()})")

    return decode


def _checked(service: Service, method: Any) -> Any:
    """`method`, answering INVALID_ARGUMENT for a request that did not decode."""

    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, _Undecodable):
            service.metrics.bad_request()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.detail)
        return method(request, context)

    return handle


def _add_authorizer(servicer: AuthorizerServicer, server: grpc.Server) -> None:
    """pb_grpc.add_AuthorizerServicer_to_server, with request deserializers that never raise."""
    handlers = {}
    for method in pb.DESCRIPTOR.services_by_name["Authorizer"].methods:
        # Invariant: every Authorizer method is unary; a streaming one needs its own handler.
        assert not (method.client_streaming or method.server_streaming), method.name
        request = getattr(pb, method.input_type.name)
        response = getattr(pb, method.output_type.name)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            _checked(servicer.service, getattr(servicer, method.name)),
            request_deserializer=_decoder(request),
            response_serializer=response.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


class AuthorizerServicer(pb_grpc.AuthorizerServicer):
    def __init__(self, service: Service) -> None:
        self.service = service

    def IsAuthorized(  # noqa: N802 (gRPC's method name)
        self, request: pb.IsAuthorizedRequest, context: grpc.ServicerContext
    ) -> pb.IsAuthorizedResponse:
        try:
            decision = self.service.decide(_request(request))
        except BadRequest as exc:
            self.service.metrics.bad_request()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except NotReady as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return decision_message(decision)

    def BatchIsAuthorized(  # noqa: N802
        self, request: pb.BatchIsAuthorizedRequest, context: grpc.ServicerContext
    ) -> pb.BatchIsAuthorizedResponse:
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        budget = self.service.batch_budget()
        items = []
        try:
            budget.check_count(len(request.requests))
            for i, item in enumerate(request.requests):
                if i & 15 == 15:
                    time.sleep(0)  # let a single call in between (see Service.batch)
                if deadline is not None and i % 64 == 0 and time.monotonic() > deadline:
                    raise DeadlineExceeded(f"deadline exceeded after reading {i} requests")
                try:
                    parsed = _request(item)
                except BadRequest as exc:
                    raise BadRequest(f"requests[{i}].{exc}") from None
                items.append(budget.add(parsed))
            decisions, version = self.service.batch(items, deadline)
        except BadRequest as exc:
            self.service.metrics.bad_request()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except DeadlineExceeded as exc:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc))
        except NotReady as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return pb.BatchIsAuthorizedResponse(
            results=[decision_message(d) for d in decisions], policy_version=version
        )


def create_server(
    service: Service, address: str, *, threads: int = 16, reuse_port: bool = True
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A started gRPC server on `address`; returns (server, bound port, health servicer)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pdp-grpc"),
        options=[
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ],
    )
    _add_authorizer(AuthorizerServicer(service), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"gRPC cannot listen on {address}")
    server.start()
    status = health_pb2.HealthCheckResponse
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, status.NOT_SERVING)

    def mark_ready() -> None:
        service.ready.wait()
        for name in ("", SERVICE_NAME):
            health_servicer.set(name, status.SERVING)

    threading.Thread(target=mark_ready, name="pdp-grpc-health", daemon=True).start()
    return server, port, health_servicer
