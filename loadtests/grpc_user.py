"""A reusable locust User for gRPC: every call is reported to locust's request events.

After locust's own examples/grpc: gevent must drive gRPC (init_gevent) and an interceptor times
each call with perf_counter and fires `events.request` with the method, the response time in
milliseconds and the exception, if any.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User
from locust.exception import LocustError

grpc_gevent.init_gevent()


class LocustInterceptor(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, environment: Any) -> None:
        self.env = environment

    def intercept_unary_unary(self, continuation: Any, call_details: Any, request: Any) -> Any:
        exception = None
        length = 0
        started = time.perf_counter()
        response = continuation(call_details, request)
        try:
            length = response.result().ByteSize()
        except grpc.RpcError as exc:
            exception = exc
        self.env.events.request.fire(
            request_type="grpc",
            name=call_details.method.rsplit("/", 1)[-1],
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            response=response,
            context=None,
            exception=exception,
        )
        return response


class GrpcUser(User):
    """Subclass with `stub_class` (and `host` = "host:port"); use `self.stub` in tasks."""

    abstract = True
    stub_class: Any = None

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if self.stub_class is None or not self.host:
            raise LocustError("GrpcUser needs stub_class and a host of the form host:port")
        target = self.host.removeprefix("grpc://").removeprefix("http://")
        channel = grpc.intercept_channel(
            grpc.insecure_channel(target), LocustInterceptor(environment)
        )
        self.stub = self.stub_class(channel)
