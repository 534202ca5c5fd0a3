"""The asyncio gRPC client (grpc.aio): the same interface as GrpcClient, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
import grpc.aio

from pdp_client._common import (
    backoff,
    check_policy,
    checked_results,
    fail_closed,
    grpc_error_code,
    request_dict,
    request_message,
)
from pdp_client.errors import PdpRequestError, PdpUnavailable
from pdp_client.grpc_client import RETRYABLE
from pdp_client.model import Decision
from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc

__all__ = ["AsyncGrpcClient"]


class AsyncGrpcClient:
    """`async with AsyncGrpcClient("127.0.0.1:50051") as pdp: await pdp.is_authorized(...)`."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float = 1.0,
        retries: int = 2,
        on_unavailable: str = "deny",
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.retries = retries
        self.on_unavailable = check_policy(on_unavailable)
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = pb_grpc.AuthorizerStub(self._channel)

    async def _call(self, method: Any, message: Any) -> Any:
        delays = backoff(self.retries)
        while True:
            try:
                return await method(message, timeout=self.timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    raise PdpRequestError(exc.details(), grpc_error_code(exc)) from None
                if exc.code() in RETRYABLE:
                    delay = next(delays, None)
                    if delay is not None:
                        await asyncio.sleep(delay)
                        continue
                detail = f"{exc.code().name}: {exc.details()}"
                raise PdpUnavailable(f"{self.target}: {detail}", grpc_error_code(exc)) from None

    async def is_authorized(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        principal_type: str = "user",
    ) -> Decision:
        """Decide one request; `principal_type="root"` (with the root ARN) asks for the root."""
        message = request_message(
            request_dict(principal, action, resource, context, principal_type)
        )
        try:
            return Decision.from_message(await self._call(self._stub.IsAuthorized, message))
        except PdpUnavailable as exc:
            return fail_closed(self.on_unavailable, exc)

    async def batch_is_authorized(self, requests: Iterable[Mapping[str, Any]]) -> list[Decision]:
        items = [request_message(r) for r in requests]
        message = pb.BatchIsAuthorizedRequest(requests=items)
        try:
            answer = await self._call(self._stub.BatchIsAuthorized, message)
            results = checked_results(answer.results, len(items), self.target)
        except PdpUnavailable as exc:
            return [fail_closed(self.on_unavailable, exc)] * len(items)
        return [Decision.from_message(m) for m in results]

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncGrpcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
