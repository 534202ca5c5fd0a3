"""The gRPC client: one channel, per-attempt timeouts, retries only when pdp is unreachable or
busy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from pdp_client._common import (
    Retry,
    SyncClient,
    checked_results,
    grpc_error_code,
    request_message,
    retrying,
)
from pdp_client.errors import PdpClientError, PdpRequestError, PdpUnavailable
from pdp_client.model import Decision
from pdp_client.v1 import authorizer_pb2 as pb
from pdp_client.v1 import authorizer_pb2_grpc as pb_grpc

__all__ = ["RETRYABLE", "GrpcClient", "channel_credentials"]

# Codes that mean "pdp was not reached, not ready or busy": safe to retry, never a decision.
# RESOURCE_EXHAUSTED is a worker at its PDP_GRPC_MAX_CONCURRENT calls (or a message over its
# size limit, which fails the same way after the retries).
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


def grpc_failure(exc: grpc.RpcError, target: str) -> PdpClientError | Retry:
    """What a failed call means to a client, sync or asyncio: the request refused, pdp
    unavailable, or (unreachable, not ready, busy) a Retry."""
    code = exc.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT or grpc_error_code(exc) == "explain_disabled":
        return PdpRequestError(exc.details(), grpc_error_code(exc))
    error = PdpUnavailable(f"{target}: {code.name}: {exc.details()}", grpc_error_code(exc))
    return Retry(error) if code in RETRYABLE else error


def channel_credentials(
    ca: str | None, cert: str | None, key: str | None
) -> grpc.ChannelCredentials | None:
    """TLS credentials from PEM files, or None (plaintext) when none is given: `ca` verifies
    pdp's certificate (None: the system's roots), `cert` and `key` are the client's own (mTLS)."""
    if ca is None and cert is None and key is None:
        return None
    if (cert is None) != (key is None):
        raise ValueError("cert and key: give both (a client certificate) or neither")

    def read(path: str | None) -> bytes | None:
        if path is None:
            return None
        with open(path, "rb") as handle:
            return handle.read()

    return grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
    )


def batch_message(requests: list[Mapping[str, Any]]) -> pb.BatchIsAuthorizedRequest:
    return pb.BatchIsAuthorizedRequest(requests=[request_message(r) for r in requests])


def batch_decisions(answer: pb.BatchIsAuthorizedResponse, sent: int, target: str) -> list[Decision]:
    return [Decision.from_message(m) for m in checked_results(answer.results, sent, target)]


class GrpcClient(SyncClient):
    """`GrpcClient("127.0.0.1:50051", timeout=0.5, retries=2, on_unavailable="deny")`."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float = 1.0,
        retries: int = 2,
        on_unavailable: str = "deny",
        channel: grpc.Channel | None = None,
        ca: str | None = None,
        cert: str | None = None,
        key: str | None = None,
    ) -> None:
        """`ca`, `cert`, `key`: PEM files for TLS (docs/serving.md, TLS); none: plaintext."""
        super().__init__(timeout=timeout, retries=retries, on_unavailable=on_unavailable)
        self.target = target
        credentials = channel_credentials(ca, cert, key)
        if channel is None:
            channel = (
                grpc.insecure_channel(target)
                if credentials is None
                else grpc.secure_channel(target, credentials)
            )
        self._channel = channel
        self._stub = pb_grpc.AuthorizerStub(self._channel)

    def _attempt(self, method: Any, message: Any) -> Any:
        try:
            return method(message, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise grpc_failure(exc, self.target) from None

    def _ask(self, body: dict[str, Any]) -> Decision:
        message = request_message(body)
        return Decision.from_message(
            retrying(self.retries, self._attempt, self._stub.IsAuthorized, message)
        )

    def _ask_batch(self, requests: list[Mapping[str, Any]]) -> list[Decision]:
        message = batch_message(requests)
        answer = retrying(self.retries, self._attempt, self._stub.BatchIsAuthorized, message)
        return batch_decisions(answer, len(requests), self.target)

    def close(self) -> None:
        self._channel.close()
