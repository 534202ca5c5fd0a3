"""What the clients share: request encoding, the retry schedule, the unreachable policy."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from pdp_client.errors import PdpUnavailable
from pdp_client.model import Decision, unreachable
from pdp_client.v1 import authorizer_pb2 as pb

OnUnavailable = Literal["deny", "raise"]
T = TypeVar("T")


def check_policy(on_unavailable: str) -> OnUnavailable:
    if on_unavailable not in ("deny", "raise"):
        raise ValueError('on_unavailable is "deny" or "raise" (pdp clients never fail open)')
    return on_unavailable  # type: ignore[return-value]


def fail_closed(on_unavailable: OnUnavailable, exc: PdpUnavailable) -> Decision:
    """What a client answers when pdp stayed unreachable: a Deny, or the error raised."""
    if on_unavailable == "raise":
        raise exc
    return unreachable(str(exc))


def backoff(retries: int, base: float = 0.05, cap: float = 1.0) -> Iterator[float]:
    """Delays before each retry: exponential with full jitter."""
    for attempt in range(retries):
        yield random.uniform(0, min(cap, base * 2**attempt))


def request_dict(
    principal: str,
    action: str,
    resource: str,
    context: Mapping[str, Any] | None,
    principal_type: str = "user",
) -> dict[str, Any]:
    body: dict[str, Any] = {"principal": principal, "action": action, "resource": resource}
    if context:
        body["context"] = dict(context)
    if principal_type != "user":
        body["principal_type"] = principal_type
    return body


def checked_results(results: Sequence[T], sent: int, where: str) -> Sequence[T]:
    """A batch answer holds exactly one result per request, in request order; any other count
    is a broken answer (a proxy, a bug), never a shorter list that `all(...)` would pass."""
    if len(results) != sent:
        raise PdpUnavailable(f"{where}: {len(results)} results for {sent} requests")
    return results


ERROR_CODE_KEY = "pdp-error-code"  # gRPC trailing metadata: pdp's stable error code


def grpc_error_code(exc: Any) -> str | None:
    """pdp's error code from a failed call's trailing metadata; None when it sent none (a call
    that grpc itself refused, or a server older than the codes)."""
    try:
        metadata = exc.trailing_metadata() or ()
    except Exception:  # not a grpc.Call: no metadata to read
        return None
    for key, value in metadata:
        if key == ERROR_CODE_KEY:
            return value if isinstance(value, str) else bytes(value).decode(errors="replace")
    return None


def http_error(data: bytes) -> tuple[str | None, str]:
    """pdp's error code and message from an HTTP error body: `{"error": {"code", "message"}}`
    (and the bare `{"error": "text"}` of servers older than the codes)."""
    try:
        error = json.loads(data).get("error")
    except (ValueError, AttributeError):
        return None, data[:200].decode(errors="replace")
    if isinstance(error, dict):
        code = error.get("code")
        return (code if isinstance(code, str) else None), str(error.get("message", ""))
    return None, "" if error is None else str(error)


def _value(value: Any) -> pb.Value:
    if isinstance(value, bool):
        return pb.Value(bool_value=value)
    if isinstance(value, int):
        return pb.Value(int_value=value)
    if isinstance(value, float):
        return pb.Value(double_value=value)
    if isinstance(value, str):
        return pb.Value(string_value=value)
    if isinstance(value, list | tuple):
        return pb.Value(list_value=pb.ValueList(values=[_value(v) for v in value]))
    raise TypeError(f"context values are str, int, float, bool or lists of them, not {value!r}")


def request_message(body: Mapping[str, Any]) -> pb.IsAuthorizedRequest:
    return pb.IsAuthorizedRequest(
        principal=body["principal"],
        action=body["action"],
        resource=body["resource"],
        context={k: _value(v) for k, v in (body.get("context") or {}).items()},
        request_id=body.get("request_id") or "",
        principal_type=body.get("principal_type") or "",
    )
