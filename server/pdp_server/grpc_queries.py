"""gRPC transport for the store queries: pdp.v1.Queries (proto/pdp/v1/queries.proto).

The same questions and answers as the admin HTTP API (docs/queries.md): each call is checked
for the admin bearer token (metadata `authorization`), then handed to the Service in the gRPC
thread pool (a diff or a replay takes seconds: never on the event loop), and its JSON answer is
returned as a Struct. Without an admin token configured every call is refused, as admin is.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from concurrent import futures
from typing import Any, NoReturn

import grpc
from google.protobuf.json_format import MessageToDict

from pdp.store import DEFAULT_MAX_CHECKS, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT
from pdp_client.v1 import queries_pb2 as pb
from pdp_client.v1 import queries_pb2_grpc as pb_grpc
from pdp_server.errors import (
    AdminDisabled,
    BadRequest,
    InternalError,
    ServiceError,
    Unauthenticated,
    grpc_abort,
)
from pdp_server.requests import MAX_CONTEXT_KEYS, MAX_STRING
from pdp_server.service import Service

__all__ = ["QUERIES_SERVICE_NAME", "QueriesServicer", "add_queries"]

log = logging.getLogger("pdp.server.grpc")
QUERIES_SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Queries"].full_name


class QueriesServicer(pb_grpc.QueriesServicer):
    """pdp.v1.Queries on the aio server; every call runs in `pool`."""

    def __init__(self, service: Service, pool: futures.Executor) -> None:
        self.service = service
        self._pool = pool
        self._token = service.config.admin_token

    async def Diff(  # noqa: N802 (gRPC's method name)
        self, request: pb.DiffRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryResponse:
        def run() -> dict[str, Any]:
            old, new = _name(request.old, "old"), _name(request.new, "new")
            checks = request.max_checks or DEFAULT_MAX_CHECKS
            if checks > DEFAULT_MAX_CHECKS:
                raise BadRequest(f"max_checks: at most {DEFAULT_MAX_CHECKS}")
            return self.service.diff(old, new, checks)

        return await self._answer(context, run)

    async def Impact(  # noqa: N802
        self, request: pb.ImpactRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryResponse:
        def run() -> dict[str, Any]:
            baseline = request.baseline or "logged"
            if baseline not in ("logged", "current"):
                raise BadRequest('baseline: must be "logged" or "current"')
            return self.service.impact(_name(request.candidate, "candidate"), baseline)

        return await self._answer(context, run)

    async def WhoCan(  # noqa: N802
        self, request: pb.WhoCanRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryResponse:
        def run() -> dict[str, Any]:
            if len(request.context.fields) > MAX_CONTEXT_KEYS:  # before converting them all
                raise BadRequest(f"context: more than {MAX_CONTEXT_KEYS} keys")
            given = MessageToDict(request.context) if request.HasField("context") else None
            return self.service.who_can(
                _text(request.action, "action"),
                _text(request.resource, "resource"),
                given,
                _limit(request.limit),
                request.page_token or None,
            )

        return await self._answer(context, run)

    async def WhatCan(  # noqa: N802
        self, request: pb.WhatCanRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryResponse:
        def run() -> dict[str, Any]:
            return self.service.what_can(
                _text(request.principal, "principal"),
                request.service or None,
                request.resource_pattern or None,
                _limit(request.limit),
            )

        return await self._answer(context, run)

    async def _answer(
        self, context: grpc.aio.ServicerContext, run: Callable[[], dict[str, Any]]
    ) -> pb.QueryResponse:
        try:
            self._authorize(context)
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(self._pool, run)
            response = pb.QueryResponse()
            response.result.update(answer)
            return response
        except ServiceError as exc:
            await self._abort(context, exc)
        except Exception:  # INTERNAL, the cause logged and never echoed
            log.exception("internal error")
            await self._abort(context, InternalError())

    def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        if not self._token:
            raise AdminDisabled("queries disabled: no admin token configured (PDP_ADMIN_TOKEN)")
        given = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                given = value
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self._token.encode()
        ):
            raise Unauthenticated("missing or wrong bearer token (metadata authorization)")

    async def _abort(self, context: grpc.aio.ServicerContext, exc: ServiceError) -> NoReturn:
        if isinstance(exc, BadRequest):
            self.service.metrics.bad_request()
        await grpc_abort(context, exc)


def _limit(value: int) -> int:
    if value > MAX_QUERY_LIMIT:
        raise BadRequest(f"limit: at most {MAX_QUERY_LIMIT}")
    return value or DEFAULT_QUERY_LIMIT


def _name(value: str, field: str) -> str:
    if not value:
        raise BadRequest(f"{field}: required, a version name of the store (e.g. 0001)")
    return _text(value, field)


def _text(value: str, field: str) -> str:
    if not value:
        raise BadRequest(f"{field}: required")
    if len(value) > MAX_STRING:
        raise BadRequest(f"{field}: longer than {MAX_STRING} characters")
    return value


def add_queries(server: grpc.aio.Server, service: Service, pool: futures.Executor) -> None:
    """Register pdp.v1.Queries on `server`."""
    pb_grpc.add_QueriesServicer_to_server(QueriesServicer(service, pool), server)
