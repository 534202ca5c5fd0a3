"""What the clients share: request encoding, the retry schedule, the unreachable policy."""

from __future__ import annotations

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
