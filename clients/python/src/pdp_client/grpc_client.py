"""The gRPC client: one channel, per-attempt timeouts, retries only when pdp is unreachable or
busy."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import grpc

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
from pdp_client.model import Decision
from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc

__all__ = ["RETRYABLE", "GrpcClient"]

# Codes that mean "pdp was not reached, not ready or busy": safe to retry, never a decision.
# RESOURCE_EXHAUSTED is a worker at its PDP_GRPC_MAX_CONCURRENT calls (or a message over its
# size limit, which fails the same way after the retries).
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


class GrpcClient:
    """`GrpcClient("127.0.0.1:50051", timeout=0.5, retries=2, on_unavailable="deny")`."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float = 1.0,
        retries: int = 2,
        on_unavailable: str = "deny",
        channel: grpc.Channel | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.retries = retries
        self.on_unavailable = check_policy(on_unavailable)
        self._channel = channel or grpc.insecure_channel(target)
        self._stub = pb_grpc.AuthorizerStub(self._channel)

    def _call(self, method: Any, message: Any) -> Any:
        delays = backoff(self.retries)
        while True:
            try:
                return method(message, timeout=self.timeout)
            except grpc.RpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.INVALID_ARGUMENT:
                    raise PdpRequestError(exc.details(), grpc_error_code(exc)) from None
                if code in RETRYABLE:
                    delay = next(delays, None)
                    if delay is not None:
                        time.sleep(delay)
                        continue
                detail = f"{code.name}: {exc.details()}"
                raise PdpUnavailable(f"{self.target}: {detail}", grpc_error_code(exc)) from None

    def is_authorized(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        principal_type: str = "user",
    ) -> Decision:
        """Decide one request; `principal_type="root"` (with the root ARN) asks for the root."""
        body = request_dict(principal, action, resource, context, principal_type)
        try:
            return Decision.from_message(self._call(self._stub.IsAuthorized, request_message(body)))
        except PdpUnavailable as exc:
            return fail_closed(self.on_unavailable, exc)

    def batch_is_authorized(self, requests: Iterable[Mapping[str, Any]]) -> list[Decision]:
        """Decide many requests on one policy version (dicts with principal/action/resource)."""
        items = [request_message(r) for r in requests]
        message = pb.BatchIsAuthorizedRequest(requests=items)
        try:
            answer = self._call(self._stub.BatchIsAuthorized, message)
            results = checked_results(answer.results, len(items), self.target)
        except PdpUnavailable as exc:
            return [fail_closed(self.on_unavailable, exc)] * len(items)
        return [Decision.from_message(m) for m in results]

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
