"""Every error pdp's service answers on the wire, defined once: its stable code, HTTP status and
gRPC status code (docs/serving.md, "Error codes", shows this table).

Raise a `ServiceError` subclass (or a `ServiceError` with a `kind`); the transports turn it into
an answer with `http_error` (the Flask handlers in `pdp_server.http_sidecar.json_errors`, the
RSGI `Sidecar`'s pre-built bodies) and `grpc_abort` (every `context.abort` of the gRPC
service). An HTTP error body is `{"error": {"code": "<code>", "message": "<text>"}}`, plus
what the error adds (a refused reload's `problems`); a gRPC error has the status code and the
message, and the code in the trailing metadata `pdp-error-code`.

Neither grpc nor Flask is imported here: this module is loaded by `pdp serve` before it forks
its workers, and gRPC objects do not survive a fork.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import orjson

from pdp import Diagnostic

if TYPE_CHECKING:
    import grpc.aio

__all__ = [
    "GRPC_CODE_KEY",
    "KINDS",
    "AdminDisabled",
    "BadRequest",
    "BodyTimeout",
    "BodyTooLarge",
    "Busy",
    "DeadlineExceeded",
    "ErrorKind",
    "InternalError",
    "NotFound",
    "NotReady",
    "ReloadFailed",
    "ServiceError",
    "Unauthenticated",
    "error_body",
    "grpc_abort",
    "http_error",
    "kind_for_status",
    "problem",
    "problems_of",
]


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """One kind of wire error: `code` is stable (clients may branch on it), `grpc` names a
    `grpc.StatusCode` member, `when` says when it happens (the docs' table)."""

    code: str
    http: int
    grpc: str
    when: str


KINDS: dict[str, ErrorKind] = {
    kind.code: kind
    for kind in (
        ErrorKind(
            "invalid_request",
            400,
            "INVALID_ARGUMENT",
            "the request cannot be decided as sent: invalid JSON or message, a wrong type, an"
            " unknown field, a batch over its limits; the message names the field",
        ),
        ErrorKind(
            "body_too_large",
            400,
            "RESOURCE_EXHAUSTED",
            "an HTTP body over `PDP_MAX_BODY` (answered unread); over gRPC, a message over the"
            " receive limit, answered by grpc itself",
        ),
        ErrorKind(
            "body_timeout",
            408,
            "DEADLINE_EXCEEDED",
            "the HTTP body (or the gRPC request message) did not arrive within"
            " `PDP_BODY_TIMEOUT` seconds of the headers",
        ),
        ErrorKind(
            "unauthenticated",
            401,
            "UNAUTHENTICATED",
            "admin: the bearer token is missing or wrong",
        ),
        ErrorKind(
            "admin_disabled",
            403,
            "PERMISSION_DENIED",
            "admin: no admin token is configured, so every admin request is refused",
        ),
        ErrorKind(
            "not_found",
            404,
            "NOT_FOUND",
            "no such path, or the Access Advisor has no such user",
        ),
        ErrorKind(
            "method_not_allowed",
            405,
            "UNIMPLEMENTED",
            "the path exists, but not for this method",
        ),
        ErrorKind(
            "explain_disabled",
            400,
            "FAILED_PRECONDITION",
            'a decision request asked for "explain" but the server runs without `PDP_EXPLAIN`'
            " (explanations show policy internals, so they are off unless enabled)",
        ),
        ErrorKind(
            "reload_refused",
            422,
            "FAILED_PRECONDITION",
            "admin: a reload was refused (the old version keeps serving); `problems` lists why",
        ),
        ErrorKind(
            "not_ready",
            503,
            "UNAVAILABLE",
            "no policy version is loaded yet (or the Access Advisor has no decision log)",
        ),
        ErrorKind(
            "busy",
            503,
            "RESOURCE_EXHAUSTED",
            "too many large HTTP bodies or gRPC calls in flight in this worker; retry shortly"
            " (HTTP adds `Retry-After: 1`)",
        ),
        ErrorKind(
            "deadline_exceeded",
            504,
            "DEADLINE_EXCEEDED",
            "the caller's deadline passed while a batch was read or decided",
        ),
        ErrorKind(
            "internal",
            500,
            "INTERNAL",
            "a failure inside pdp; its cause is logged, never echoed",
        ),
    )
}

GRPC_CODE_KEY = "pdp-error-code"  # the trailing metadata of an aborted call: the stable code
_BY_STATUS = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}


def kind_for_status(status: int) -> ErrorKind:
    """The kind of an HTTP error raised by the framework itself (an unknown path, a wrong
    method): by its status, else invalid_request for a 4xx and internal for anything else."""
    code = _BY_STATUS.get(status) or ("invalid_request" if 400 <= status < 500 else "internal")
    return KINDS[code]


class ServiceError(Exception):
    """An error answered on the wire; `kind` (a key of KINDS) decides how. Subclasses fix their
    kind; the base class takes one. `headers` are added to an HTTP answer."""

    kind: str = "internal"
    headers: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(
        cls, *, kind: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """`class Busy(ServiceError, kind="busy", headers=...)`: a kind not in the table fails
        at import, not when the error is first answered."""
        super().__init_subclass__()
        if kind is not None:
            if kind not in KINDS:
                raise ValueError(f"{cls.__name__}: unknown error kind {kind!r}")
            cls.kind = kind
        if headers is not None:
            cls.headers = headers

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            if kind not in KINDS:
                raise ValueError(f"unknown error kind {kind!r}")
            self.kind = kind

    @property
    def message(self) -> str:
        return str(self)

    def details(self) -> dict[str, Any]:
        """What the error object carries besides its code and message."""
        return {}


class BadRequest(ServiceError, ValueError, kind="invalid_request"):
    """A request that cannot be decided as sent; the message names the field."""


class BodyTooLarge(BadRequest, kind="body_too_large"):
    """An HTTP body over the configured limit (a bad request too: counted as one)."""


class BodyTimeout(ServiceError, kind="body_timeout"):
    """The body (or gRPC request message) did not arrive within the body timeout."""


class Busy(ServiceError, kind="busy", headers={"Retry-After": "1"}):
    """Too much in flight in this worker to take the request; retry shortly."""


class Unauthenticated(
    ServiceError, kind="unauthenticated", headers={"WWW-Authenticate": 'Bearer realm="pdp-admin"'}
):
    """An admin request without the right bearer token."""


class AdminDisabled(ServiceError, kind="admin_disabled"):
    """An admin request to a server started without an admin token: refused, never open."""


class ExplainDisabled(ServiceError, kind="explain_disabled"):
    """A request asked for explain and the server does not honour it (PDP_EXPLAIN off)."""

    def __init__(self, where: str = "") -> None:
        super().__init__(
            f"{where}explain: explanations are off on this server (start it with PDP_EXPLAIN=on"
            " or --explain on)"
        )


class NotFound(ServiceError, kind="not_found"):
    """No such path, or no such user (the Access Advisor)."""


class InternalError(ServiceError, kind="internal"):
    """The answer to any unexpected exception; never carries its cause."""

    def __init__(self, message: str = "internal error") -> None:
        super().__init__(message)


class NotReady(ServiceError, RuntimeError, kind="not_ready"):
    """No policy version is loaded yet: HTTP 503, gRPC UNAVAILABLE. The message is
    "not ready: <why>" on both transports."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(f"not ready: {reason or 'the policy store is still loading'}")


class DeadlineExceeded(ServiceError, RuntimeError, kind="deadline_exceeded"):
    """The caller's deadline passed while a batch was being decided: gRPC DEADLINE_EXCEEDED."""


def problem(
    code: str, message: str, source: str | None = None, path: str = "", hint: str | None = None
) -> dict[str, str | None]:
    """One structured problem of a refused reload."""
    return {"code": code, "source": source, "path": path, "message": message, "hint": hint}


def problems_of(diagnostics: Iterable[Diagnostic]) -> list[dict[str, str | None]]:
    """The engine's diagnostics (PolicyLoadError.diagnostics) as structured problems."""
    return [problem(d.code, d.message, d.source, d.path, d.hint) for d in diagnostics]


class ReloadFailed(ServiceError, RuntimeError, kind="reload_refused"):
    """A reload was refused; `problems` lists every diagnostic ({code, source, path, message,
    hint}: `problem`, `problems_of`)."""

    def __init__(self, message: str, problems: Sequence[Mapping[str, str | None]]) -> None:
        super().__init__(message)
        self.problems = [dict(p) for p in problems]

    def details(self) -> dict[str, Any]:
        return {"problems": self.problems}


def error_body(kind: str, message: str, **details: Any) -> dict[str, Any]:
    """The JSON error object of an HTTP answer: {"error": {"code", "message", ...details}}."""
    return {"error": {"code": KINDS[kind].code, "message": message, **details}}


def http_error(exc: ServiceError, **extra: Any) -> tuple[int, bytes, dict[str, str]]:
    """The HTTP answer to `exc`: status, JSON body (with `extra` top-level fields) and headers."""
    body = error_body(exc.kind, exc.message, **exc.details()) | extra
    return KINDS[exc.kind].http, orjson.dumps(body), dict(exc.headers)


async def grpc_abort(context: grpc.aio.ServicerContext, exc: ServiceError) -> NoReturn:
    """End the call with `exc`'s status code and message (the one way pdp aborts a call)."""
    import grpc  # here, not at the top: see the module's docstring

    kind = KINDS[exc.kind]
    metadata = ((GRPC_CODE_KEY, kind.code),)
    await context.abort(grpc.StatusCode[kind.grpc], exc.message, metadata)
    raise AssertionError("unreachable: abort raises")
