"""gRPC admission: what every call passes before a servicer sees it, on the aio server.

- Decoding never raises: bytes that are no message become INVALID_ARGUMENT with a message and
  no traceback (grpc's own deserializer answers INTERNAL and logs one per call).
- Calls are admitted here, not by grpc's `maximum_concurrent_rpcs`, which counts a call until it
  ends: past the limit a call is RESOURCE_EXHAUSTED before its message is read, and a unary
  call's message must arrive within a timeout, else DEADLINE_EXCEEDED and its slot is free again.
  Health Watch streams are not counted.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from pdp_server.errors import BadRequest, BodyTimeout, Busy, Unauthenticated, grpc_abort
from pdp_server.tls import peer_allowed

__all__ = ["BUSY", "Admission"]


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


BUSY = "Concurrent RPC limit exceeded!"  # grpc's own words for its maximum_concurrent_rpcs
# Calls that hold no slot: a health Watch waits on the loop for changes, holding nothing but a
# stream (the sync server gave its slot back after the first answer too).
_UNCOUNTED = frozenset({"/grpc.health.v1.Health/Watch"})


class Admission(grpc.aio.ServerInterceptor):
    """Every service's handlers, with a request deserializer that never raises, a bound on
    calls in flight and a bound on the time to receive a unary request's message.

    - A request that did not decode answers INVALID_ARGUMENT (counted by `bad_request`); in a
      stream, when the servicer reaches it.
    - Past `limit` calls in flight (None: no limit; health Watch not counted) a call answers
      RESOURCE_EXHAUSTED without its message being read.
    - A unary request's message must arrive within `message_timeout` seconds, else
      DEADLINE_EXCEEDED: a call whose headers came but whose message never does gives its slot
      back instead of holding it until the caller's deadline, or forever.

    grpc's own `maximum_concurrent_rpcs` would count a call until it ends, health watchers and
    half-sent calls included. So counted unary-request handlers are served as stream-request
    ones: the behaviour runs as soon as the headers are in, and reads the one message itself.
    """

    def __init__(
        self,
        bad_request: Callable[[], None],
        limit: int | None,
        message_timeout: float,
        subjects: Sequence[str] = (),
    ) -> None:
        self._bad_request = bad_request
        self._subjects = tuple(subjects)
        self._limit = limit
        self._timeout = message_timeout
        self._in_flight = 0  # Invariant: only the loop's thread reads or writes it
        self._handlers: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler  # an unknown method: UNIMPLEMENTED
        method = handler_call_details.method
        known = self._handlers.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(handler, counted=method not in _UNCOUNTED)
        # Invariant: keyed by methods that have a handler, so the dict stays as small as the
        # services. Only the loop's thread runs this.
        self._handlers[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: Any, counted: bool) -> grpc.RpcMethodHandler:
        kind = ("stream" if handler.request_streaming else "unary") + "_"
        kind += "stream" if handler.response_streaming else "unary"
        behaviour = getattr(handler, kind)
        decode = _decoder(handler.request_deserializer)
        if handler.request_streaming:
            return handler._replace(  # grpc's RpcMethodHandler is a namedtuple
                request_deserializer=decode, **{kind: self._each(behaviour, counted)}
            )
        if not counted:
            return handler._replace(request_deserializer=decode, **{kind: self._one(behaviour)})
        make = (
            grpc.stream_stream_rpc_method_handler
            if handler.response_streaming
            else grpc.stream_unary_rpc_method_handler
        )
        return make(
            self._first(behaviour),
            request_deserializer=decode,
            response_serializer=handler.response_serializer,
        )

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> None:
        """With PDP_TLS_CLIENT_SUBJECTS, a call whose client certificate names none of them
        answers UNAUTHENTICATED before its message is read."""
        if self._subjects and not peer_allowed(context.auth_context(), self._subjects):
            await grpc_abort(
                context, Unauthenticated("client certificate: not one of PDP_TLS_CLIENT_SUBJECTS")
            )

    async def _refuse(self, request: _Undecodable, context: grpc.aio.ServicerContext) -> None:
        self._bad_request()
        await grpc_abort(context, BadRequest(request.detail))

    async def _admit(self, context: grpc.aio.ServicerContext) -> None:
        await self._authenticate(context)
        if self._limit is not None and self._in_flight >= self._limit:
            await grpc_abort(context, Busy(BUSY))
        self._in_flight += 1

    async def _receive(self, requests: AsyncIterator[Any], context: Any) -> Any:
        """The one message of a unary request, read within the message timeout."""
        try:
            request = await asyncio.wait_for(anext(requests), self._timeout)
        except TimeoutError:
            detail = f"request: message not received within {self._timeout:g} s"
            await grpc_abort(context, BodyTimeout(detail))
        except StopAsyncIteration:
            await grpc_abort(context, BadRequest("request: no message sent"))
        if isinstance(request, _Undecodable):
            await self._refuse(request, context)
        return request

    def _first(self, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        """A unary-request behaviour as a counted stream-request one (see the class)."""
        # Invariant: every wrapper is the same kind of function as the behaviour (coroutine or
        # async generator): grpc.aio picks how to run a handler by its kind, and would run any
        # other function in a thread.
        if inspect.isasyncgenfunction(behaviour):

            @functools.wraps(behaviour)
            async def stream(requests: AsyncIterator[Any], context: Any) -> Any:
                await self._admit(context)
                try:
                    request = await self._receive(requests, context)
                    async for response in behaviour(request, context):
                        yield response
                finally:
                    self._in_flight -= 1

            return stream

        @functools.wraps(behaviour)
        async def behave(requests: AsyncIterator[Any], context: Any) -> Any:
            await self._admit(context)
            try:
                return await behaviour(await self._receive(requests, context), context)
            finally:
                self._in_flight -= 1

        return behave

    def _one(self, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        """An uncounted unary-request behaviour, refusing a request that did not decode."""
        if inspect.isasyncgenfunction(behaviour):

            @functools.wraps(behaviour)
            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await self._authenticate(context)
                if isinstance(request, _Undecodable):
                    await self._refuse(request, context)
                async for response in behaviour(request, context):
                    yield response

            return stream

        @functools.wraps(behaviour)
        async def behave(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await self._authenticate(context)
            if isinstance(request, _Undecodable):
                await self._refuse(request, context)
            return await behaviour(request, context)

        return behave

    def _each(self, behaviour: Callable[..., Any], counted: bool) -> Callable[..., Any]:
        """A stream-request behaviour, refusing each request that did not decode."""

        async def checked(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            async for request in requests:
                if isinstance(request, _Undecodable):
                    await self._refuse(request, context)
                yield request

        if inspect.isasyncgenfunction(behaviour):

            @functools.wraps(behaviour)
            async def stream(requests: AsyncIterator[Any], context: Any) -> Any:
                await (self._admit if counted else self._authenticate)(context)
                try:
                    async for response in behaviour(checked(requests, context), context):
                        yield response
                finally:
                    if counted:
                        self._in_flight -= 1

            return stream

        @functools.wraps(behaviour)
        async def behave(requests: AsyncIterator[Any], context: Any) -> Any:
            await (self._admit if counted else self._authenticate)(context)
            try:
                return await behaviour(checked(requests, context), context)
            finally:
                if counted:
                    self._in_flight -= 1

        return behave
