"""The asyncio gRPC client (grpc.aio): the same interface as GrpcClient, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any

import grpc.aio

from pdp_client._common import Client, Retry, fail_closed, request_message
from pdp_client.errors import PdpUnavailable
from pdp_client.grpc_client import (
    batch_decisions,
    batch_message,
    channel_credentials,
    grpc_failure,
)
from pdp_client.model import Decision
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc

__all__ = ["AsyncGrpcClient"]


class AsyncGrpcClient(Client[Coroutine[Any, Any, Decision], Coroutine[Any, Any, list[Decision]]]):
    """`async with AsyncGrpcClient("127.0.0.1:50051") as pdp: await pdp.is_authorized(...)`."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float = 1.0,
        retries: int = 2,
        on_unavailable: str = "deny",
        ca: str | None = None,
        cert: str | None = None,
        key: str | None = None,
    ) -> None:
        """`ca`, `cert`, `key`: PEM files for TLS, as GrpcClient's."""
        super().__init__(timeout=timeout, retries=retries, on_unavailable=on_unavailable)
        self.target = target
        credentials = channel_credentials(ca, cert, key)
        self._channel = (
            grpc.aio.insecure_channel(target)
            if credentials is None
            else grpc.aio.secure_channel(target, credentials)
        )
        self._stub = pb_grpc.AuthorizerStub(self._channel)

    async def _call(self, method: Any, message: Any) -> Any:
        """`retrying` a call, awaited: the same retries after the same failures."""
        retried = 0
        while True:
            try:
                return await method(message, timeout=self.timeout)
            except grpc.aio.AioRpcError as exc:
                failure = grpc_failure(exc, self.target)
                if not isinstance(failure, Retry):
                    raise failure from None
                await asyncio.sleep(failure.delay(retried, self.retries))
                retried += 1

    async def _decide(self, body: dict[str, Any]) -> Decision:
        try:
            answer = await self._call(self._stub.IsAuthorized, request_message(body))
        except PdpUnavailable as exc:
            return fail_closed(self.on_unavailable, exc)
        return Decision.from_message(answer)

    async def _decide_batch(self, requests: list[Mapping[str, Any]]) -> list[Decision]:
        try:
            answer = await self._call(self._stub.BatchIsAuthorized, batch_message(requests))
            return batch_decisions(answer, len(requests), self.target)
        except PdpUnavailable as exc:
            return [fail_closed(self.on_unavailable, exc)] * len(requests)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncGrpcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
