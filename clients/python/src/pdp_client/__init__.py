"""Clients for pdp: `GrpcClient`, `AsyncGrpcClient`, `HttpClient` share one interface."""

from pdp_client.aio import AsyncGrpcClient
from pdp_client.errors import PdpClientError, PdpRequestError, PdpUnavailable
from pdp_client.grpc_client import GrpcClient
from pdp_client.http_client import HttpClient
from pdp_client.model import Decision, MatchedStatement

__all__ = [
    "AsyncGrpcClient",
    "Decision",
    "GrpcClient",
    "HttpClient",
    "MatchedStatement",
    "PdpClientError",
    "PdpRequestError",
    "PdpUnavailable",
]
