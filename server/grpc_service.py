"""gRPC transport: pdp.v1.Authorizer, the standard health service and server reflection.

Decode, call the Service, encode; no policy logic. Create the server only in the process that
serves it (after any fork): gRPC objects do not survive a fork.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
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
MIN_RECEIVE = 2 << 20  # bytes: a batch at the default work limit is about 1.06 MB
MAX_SEND = 4 << 20


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
    request_id = message.request_id
    if max(len(principal), len(action), len(resource), len(request_id)) > MAX_STRING:
        fields = {"principal": principal, "action": action, "resource": resource}
        parse_request({**fields, "request_id": request_id})  # raises, naming the field
    context: dict[str, Any] = {}
    if message.context:
        if len(message.context) > MAX_CONTEXT_KEYS:
            raise BadRequest(f"context: more than {MAX_CONTEXT_KEYS} keys")
        for key, value in message.context.items():
            context[key] = _value(value, f'context["{key}"]')
        check_context(context)  # the checks the HTTP sidecar makes too
    principal_type = check_principal_type(message.principal_type)
    return DecisionRequest(principal, action, resource, context, request_id or None, principal_type)


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


def _decoder(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """`deserializer`, returning an _Undecodable instead of raising: gRPC would answer
    INTERNAL and log a traceback for each such call ("Exception deserializing request!")."""
    message = getattr(deserializer, "__self__", None)  # Message.FromString is bound to its class
    descriptor = getattr(message, "DESCRIPTOR", None)
    what = f"a valid {descriptor.full_name} message" if descriptor else "a valid request message"

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # DecodeError, or any other way the bytes fail to parse
            why = str(exc).rpartition(": ")[2] or type(exc).__name__
            return _Undecodable(f"request: not {what} ({why.lower()})")

    return decode


class _Decoding(grpc.ServerInterceptor):
    """Every service's handlers, with a request deserializer that never raises and behaviours
    that answer INVALID_ARGUMENT (counted by `bad_request`) for a request that did not decode.
    A streamed request ends its call with INVALID_ARGUMENT when the servicer reaches it."""

    def __init__(self, bad_request: Callable[[], None]) -> None:
        self._bad_request = bad_request
        self._handlers: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler  # an unknown method: UNIMPLEMENTED
        method = handler_call_details.method
        known = self._handlers.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(handler)
        # Invariant: keyed by methods that have a handler, so the dict stays as small as the
        # services; a racing call at worst wraps the same handler twice.
        self._handlers[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: Any) -> grpc.RpcMethodHandler:
        # grpc's RpcMethodHandler is a namedtuple: a copy with two fields replaced
        kind = ("stream" if handler.request_streaming else "unary") + "_"
        kind += "stream" if handler.response_streaming else "unary"
        behaviour = getattr(handler, kind)
        checked = self._each if handler.request_streaming else self._one
        return handler._replace(
            request_deserializer=_decoder(handler.request_deserializer),
            **{kind: checked(behaviour)},
        )

    def _refuse(self, request: _Undecodable, context: grpc.ServicerContext) -> None:
        self._bad_request()
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.detail)

    def _one(self, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        # functools.wraps keeps grpc_health's experimental_non_blocking on Watch: without it
        # each watcher would hold a server thread
        @functools.wraps(behaviour)
        def behave(request: Any, context: grpc.ServicerContext, *rest: Any) -> Any:
            if isinstance(request, _Undecodable):
                self._refuse(request, context)
            return behaviour(request, context, *rest)

        return behave

    def _each(self, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def checked(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            for request in requests:
                if isinstance(request, _Undecodable):
                    self._refuse(request, context)
                yield request

        @functools.wraps(behaviour)
        def behave(requests: Iterator[Any], context: grpc.ServicerContext, *rest: Any) -> Any:
            return behaviour(checked(requests, context), context, *rest)

        return behave


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


def _receive_limit(max_batch_chars: int) -> int:
    """The largest request message a worker reads: 2 bytes per character of the batch work
    limit, at least MIN_RECEIVE (docs/serving.md, "Batch limits", has the measurements)."""
    return max(MIN_RECEIVE, 2 * max_batch_chars)


def create_server(
    service: Service, address: str, *, threads: int = 16, reuse_port: bool = True
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A started gRPC server on `address`; returns (server, bound port, health servicer).

    At most `config.grpc_max_concurrent` calls are in flight, running or waiting for one of
    `threads`: past it gRPC answers RESOURCE_EXHAUSTED without reading its message, so what
    waiting calls hold is bounded too (that many times the receive limit)."""
    config = service.config
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pdp-grpc"),
        interceptors=(_Decoding(service.metrics.bad_request),),
        options=[
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", _receive_limit(config.max_batch_chars)),
            ("grpc.max_send_message_length", MAX_SEND),
        ],
        maximum_concurrent_rpcs=config.grpc_max_concurrent or None,
    )
    pb_grpc.add_AuthorizerServicer_to_server(AuthorizerServicer(service), server)
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
