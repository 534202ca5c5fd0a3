"""gRPC transport: pdp.v1.Authorizer, the standard health service and server reflection.

Decode, call the Service, encode; no policy logic. Create the server only in the process that
serves it (after any fork): gRPC objects do not survive a fork.

The server is a `grpc.aio` server on its own event loop, in a daemon thread of the worker (the
main thread belongs to granian). Request messages are read on the loop, so a call whose headers
arrived but whose message never does holds no thread (with the sync server, 8 such calls from
one unauthenticated client stalled a 4-thread worker's whole gRPC service). Single decisions
run on the loop; batches are read and decided in a small thread pool, so a 100 ms batch does
not stop the loop. `create_server` returns a `GrpcServer`, a sync facade for the worker. Every
call first passes `server/pdp_server/grpc_admission.py` (decoding that never raises, admission, the
message timeout).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
import orjson
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from pdp import Decision, Session
from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc
from pdp_server.config import Config
from pdp_server.errors import (
    BadRequest,
    DeadlineExceeded,
    InternalError,
    ServiceError,
    grpc_abort,
)
from pdp_server.grpc_admission import Admission
from pdp_server.grpc_ext_authz import EXT_AUTHZ_SERVICE_NAME, add_ext_authz
from pdp_server.grpc_queries import QUERIES_SERVICE_NAME, add_queries
from pdp_server.requests import (
    MAX_CONTEXT_KEYS,
    MAX_STRING,
    DecisionRequest,
    check_context,
    check_principal_type,
    check_session,
    parse_request,
)
from pdp_server.service import Service
from pdp_server.tls import parse_subjects

__all__ = ["SERVICE_NAME", "GrpcServer", "create_server", "decision_message", "explained_message"]

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
    session = _session(message.session) if message.HasField("session") else None
    return DecisionRequest(
        principal, action, resource, context, request_id or None, principal_type, session
    )


def _session(message: pb.Session) -> Session | None:
    """The wire JSON object of the HTTP sidecar's "session", built from the message, so
    `check_session` (Session.from_dict) refuses the same sessions on both doors. proto3 has no
    absent strings or lists: empty ones are left out."""
    raw: dict[str, Any] = {}
    if message.policies_json:
        policies = []
        for i, text in enumerate(message.policies_json):
            try:
                policies.append(orjson.loads(text))
            except orjson.JSONDecodeError:
                raise BadRequest(f"session.policies_json[{i}]: invalid JSON") from None
        raw["policies"] = policies
    for name in ("policy_arns", "transitive_tag_keys", "role_chain"):
        values = getattr(message, name)
        if values:
            raw[name] = list(values)
    if message.tags:
        raw["tags"] = dict(message.tags)
    for name in ("mfa_present", "mfa_age"):
        if message.HasField(name):
            raw[name] = getattr(message, name)
    for name in ("source_identity", "issued_at"):
        value = getattr(message, name)
        if value:
            raw[name] = value
    try:
        return check_session(raw)
    except BadRequest as exc:  # name the message's field, not the JSON one
        raise BadRequest(str(exc).replace("session.policies[", "session.policies_json[")) from None


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


def explained_message(decision: Decision, explanation: dict[str, Any]) -> pb.IsAuthorizedResponse:
    """The response for an explained decision: a message of its own (never a shared one of
    `decision_message`), with the explanation as a Struct (numbers become doubles)."""
    message = _message(decision)
    message.explanation.update(explanation)
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
        layers=list(decision.layers),
        blocked_by=list(decision.blocked_by),
    )


class AuthorizerServicer(pb_grpc.AuthorizerServicer):
    """pdp.v1.Authorizer on the aio server. A batch is read and decided in `pool`."""

    def __init__(self, service: Service, pool: futures.Executor) -> None:
        self.service = service
        self._pool = pool

    async def IsAuthorized(  # noqa: N802 (gRPC's method name)
        self, request: pb.IsAuthorizedRequest, context: grpc.aio.ServicerContext
    ) -> pb.IsAuthorizedResponse:
        try:
            if request.explain:
                decision, explanation = self.service.explain(_request(request))
                return explained_message(decision, explanation)
            return decision_message(self.service.decide(_request(request)))
        except ServiceError as exc:
            await self._abort(context, exc)
        except Exception:  # as the table says: INTERNAL, the cause logged and never echoed
            log.exception("internal error")
            await self._abort(context, InternalError())

    async def BatchIsAuthorized(  # noqa: N802
        self, request: pb.BatchIsAuthorizedRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchIsAuthorizedResponse:
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self._batch, request, deadline)
        except ServiceError as exc:
            await self._abort(context, exc)
        except Exception:
            log.exception("internal error")
            await self._abort(context, InternalError())

    async def _abort(self, context: grpc.aio.ServicerContext, exc: ServiceError) -> NoReturn:
        if isinstance(exc, BadRequest):
            self.service.metrics.bad_request()
        await grpc_abort(context, exc)

    def _batch(
        self, request: pb.BatchIsAuthorizedRequest, deadline: float | None
    ) -> pb.BatchIsAuthorizedResponse:
        """Read and decide a batch (in a pool thread)."""
        budget = self.service.batch_budget()
        budget.check_count(len(request.requests))
        items = []
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
        explain = [item.explain for item in request.requests]
        if any(explain):
            self.service.check_explain(sum(explain))
            answers, version = self.service.batch_explained(items, explain, deadline)
            return pb.BatchIsAuthorizedResponse(
                results=[
                    decision_message(d) if e is None else explained_message(d, e)
                    for d, e in answers
                ],
                policy_version=version,
            )
        decisions, version = self.service.batch(items, deadline)
        return pb.BatchIsAuthorizedResponse(
            results=[decision_message(d) for d in decisions], policy_version=version
        )


def _receive_limit(max_batch_chars: int) -> int:
    """The largest request message a worker reads: 2 bytes per character of the batch work
    limit, at least MIN_RECEIVE (docs/serving.md, "Batch limits", has the measurements)."""
    return max(MIN_RECEIVE, 2 * max_batch_chars)


@dataclass(eq=False)
class GrpcServer:
    """A running aio gRPC server seen from sync code: its bound `port`, its `health` servicer,
    and `stop`; the loop, server and pool it runs on are its own."""

    _loop: asyncio.AbstractEventLoop
    _server: grpc.aio.Server
    port: int
    health: health_aio.HealthServicer
    _pool: futures.ThreadPoolExecutor

    def stop(self, grace: float | None = None) -> bool:
        """Refuse new calls, let calls in flight finish for up to `grace` seconds, then cancel
        them and end the loop. Waits at most `grace` + 1 seconds; False if that was not enough."""
        stopping = asyncio.run_coroutine_threadsafe(self._server.stop(grace), self._loop)
        try:
            stopping.result(timeout=(grace or 0) + 1)
            return True
        except futures.TimeoutError:
            return False
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._pool.shutdown(wait=False, cancel_futures=True)


def _credentials(config: Config) -> grpc.ServerCredentials | None:
    """TLS credentials from the files `pdp serve` staged (pdp_server.tls), or None: plaintext.
    With a client CA, a client must present a certificate it signed."""
    if not (config.tls_cert and config.tls_key):
        return None
    with open(config.tls_cert, "rb") as cert, open(config.tls_key, "rb") as key:
        pair = (key.read(), cert.read())
    ca = None
    if config.tls_client_ca:
        with open(config.tls_client_ca, "rb") as handle:
            ca = handle.read()
    return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=bool(ca))


async def _start(
    service: Service, address: str, reuse_port: bool, pool: futures.Executor
) -> tuple[grpc.aio.Server, int, health_aio.HealthServicer]:
    config = service.config
    subjects = parse_subjects(config.tls_client_subjects) if config.tls_client_subjects else ()
    admission = Admission(
        service.metrics.bad_request,
        config.grpc_max_concurrent or None,
        config.body_timeout,
        subjects,
    )
    server = grpc.aio.server(
        migration_thread_pool=pool,  # for sync handlers; every handler here is async
        interceptors=(admission,),
        options=[
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", _receive_limit(config.max_batch_chars)),
            ("grpc.max_send_message_length", MAX_SEND),
        ],
    )
    pb_grpc.add_AuthorizerServicer_to_server(AuthorizerServicer(service, pool), server)
    add_queries(server, service, pool)
    add_ext_authz(server, service)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            QUERIES_SERVICE_NAME,
            EXT_AUTHZ_SERVICE_NAME,
            health.SERVICE_NAME,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    status = health_pb2.HealthCheckResponse
    for name in ("", SERVICE_NAME, EXT_AUTHZ_SERVICE_NAME):
        await health_servicer.set(name, status.NOT_SERVING)
    credentials = _credentials(config)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"gRPC cannot listen on {address}")
    await server.start()
    return server, port, health_servicer


def create_server(
    service: Service, address: str, *, threads: int = 4, reuse_port: bool = True
) -> GrpcServer:
    """A started gRPC server on `address`, on its own event loop in a daemon thread.

    At most `config.grpc_max_concurrent` calls are in flight: past it gRPC answers
    RESOURCE_EXHAUSTED without reading its message, so what calls hold is bounded too (that
    many times the receive limit). `threads` read and decide batches."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="pdp-grpc-loop", daemon=True).start()
    pool = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pdp-grpc")
    starting = asyncio.run_coroutine_threadsafe(_start(service, address, reuse_port, pool), loop)
    try:
        server, port, health_servicer = starting.result(timeout=30)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        pool.shutdown(wait=False)
        raise
    status = health_pb2.HealthCheckResponse

    async def serving() -> None:
        for name in ("", SERVICE_NAME, EXT_AUTHZ_SERVICE_NAME):
            await health_servicer.set(name, status.SERVING)

    def mark_ready() -> None:
        service.ready.wait()
        asyncio.run_coroutine_threadsafe(serving(), loop)

    threading.Thread(target=mark_ready, name="pdp-grpc-health", daemon=True).start()
    return GrpcServer(loop, server, port, health_servicer, pool)
