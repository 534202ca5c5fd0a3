"""What the clients share: their interface, request encoding, the retry schedule, the
unreachable policy."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Literal, Self, TypeVar

from pdp_client.errors import PdpUnavailable
from pdp_client.model import Decision, unreachable
from pdp_client.v1 import authorizer_pb2 as pb

OnUnavailable = Literal["deny", "raise"]
T = TypeVar("T")
One = TypeVar("One")  # what `is_authorized` returns: a Decision, or (asyncio) an awaitable of one
Many = TypeVar("Many")  # what `batch_is_authorized` returns: a list of them, or an awaitable


def check_policy(on_unavailable: str) -> OnUnavailable:
    if on_unavailable not in ("deny", "raise"):
        raise ValueError('on_unavailable is "deny" or "raise" (pdp clients never fail open)')
    return on_unavailable  # type: ignore[return-value]


def fail_closed(on_unavailable: OnUnavailable, exc: PdpUnavailable) -> Decision:
    """What a client answers when pdp stayed unreachable: a Deny, or the error raised."""
    if on_unavailable == "raise":
        raise exc
    return unreachable(str(exc))


class Retry(Exception):
    """An attempt failed in a way another attempt may not: pdp unreachable, not ready or busy."""

    def __init__(self, error: PdpUnavailable) -> None:
        super().__init__(error)
        self.error = error

    def delay(self, retried: int, retries: int, base: float = 0.05, cap: float = 1.0) -> float:
        """The wait before one more attempt after `retried` retries: exponential with full
        jitter; once `retries` are spent, `error` is raised."""
        if retried >= retries:
            raise self.error from None
        return random.uniform(0, min(cap, base * 2**retried))


def retrying(retries: int, attempt: Callable[..., T], *args: Any) -> T:
    """`attempt(*args)`, tried again after a delay while it raises Retry (at most `retries`
    times); PdpRequestError and a PdpUnavailable that is not worth a retry pass."""
    retried = 0
    while True:
        try:
            return attempt(*args)
        except Retry as exc:
            time.sleep(exc.delay(retried, retries))
            retried += 1


class Client(Generic[One, Many]):
    """The interface of every client: a transport builds on it with `_decide` (one request, as
    a `request_dict`) and `_decide_batch`, which fail closed by `on_unavailable`."""

    def __init__(self, *, timeout: float, retries: int, on_unavailable: str) -> None:
        self.timeout = timeout
        self.retries = retries
        self.on_unavailable = check_policy(on_unavailable)

    def is_authorized(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        principal_type: str = "user",
        session: Mapping[str, Any] | None = None,
        explain: bool = False,
    ) -> One:
        """Decide one request; `principal_type="root"` (with the root ARN) asks for the root.
        `session` (with principal_type "role_session") is the wire JSON object of a role
        session: policies, policy_arns, tags, transitive_tag_keys, mfa_present, mfa_age,
        source_identity, issued_at, role_chain (docs/serving.md). `explain=True` asks why: the
        decision's `explanation` (docs/queries.md, Explain); a server without PDP_EXPLAIN
        refuses it (PdpRequestError, code "explain_disabled")."""
        return self._decide(
            request_dict(principal, action, resource, context, principal_type, session, explain)
        )

    def batch_is_authorized(self, requests: Iterable[Mapping[str, Any]]) -> Many:
        """Decide many requests on one policy version (dicts with principal/action/resource)."""
        return self._decide_batch(list(requests))

    def _decide(self, body: dict[str, Any]) -> One:
        raise NotImplementedError

    def _decide_batch(self, requests: list[Mapping[str, Any]]) -> Many:
        raise NotImplementedError


class SyncClient(Client[Decision, list[Decision]]):
    """A blocking client: its transport's `_ask` and `_ask_batch` answer, or raise
    PdpUnavailable (then the answer is `fail_closed`) or PdpRequestError."""

    def _decide(self, body: dict[str, Any]) -> Decision:
        try:
            return self._ask(body)
        except PdpUnavailable as exc:
            return fail_closed(self.on_unavailable, exc)

    def _decide_batch(self, requests: list[Mapping[str, Any]]) -> list[Decision]:
        try:
            return self._ask_batch(requests)
        except PdpUnavailable as exc:
            return [fail_closed(self.on_unavailable, exc)] * len(requests)

    def _ask(self, body: dict[str, Any]) -> Decision:
        raise NotImplementedError

    def _ask_batch(self, requests: list[Mapping[str, Any]]) -> list[Decision]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request_dict(
    principal: str,
    action: str,
    resource: str,
    context: Mapping[str, Any] | None,
    principal_type: str = "user",
    session: Mapping[str, Any] | None = None,
    explain: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {"principal": principal, "action": action, "resource": resource}
    if context:
        body["context"] = dict(context)
    if principal_type != "user":
        body["principal_type"] = principal_type
    if session is not None:
        body["session"] = dict(session)
    if explain:
        body["explain"] = True
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


_SESSION_LISTS = ("policy_arns", "transitive_tag_keys", "role_chain")
_SESSION_FIELDS = ("policies", "tags", "mfa_present", "mfa_age", "source_identity", "issued_at")


def session_message(session: Mapping[str, Any]) -> pb.Session:
    """The gRPC Session for the wire JSON object of a session: its inline policies travel as
    JSON text (policies_json), everything else under its own name. The server checks the
    values; a field the message has no place for is refused here, naming it."""
    for key in session:
        if key not in _SESSION_LISTS and key not in _SESSION_FIELDS:
            known = ", ".join(_SESSION_FIELDS[:2] + _SESSION_LISTS + _SESSION_FIELDS[2:])
            raise ValueError(f"session.{key}: unknown field (known: {known})")
    message = pb.Session(
        policies_json=[json.dumps(p) for p in session.get("policies") or ()],
        tags=dict(session.get("tags") or {}),
        source_identity=session.get("source_identity") or "",
        issued_at=session.get("issued_at") or "",
    )
    for name in _SESSION_LISTS:
        getattr(message, name).extend(session.get(name) or ())
    for name in ("mfa_present", "mfa_age"):
        if session.get(name) is not None:
            setattr(message, name, session[name])
    return message


def request_message(body: Mapping[str, Any]) -> pb.IsAuthorizedRequest:
    session = body.get("session")
    return pb.IsAuthorizedRequest(
        principal=body["principal"],
        action=body["action"],
        resource=body["resource"],
        context={k: _value(v) for k, v in (body.get("context") or {}).items()},
        request_id=body.get("request_id") or "",
        principal_type=body.get("principal_type") or "",
        session=None if session is None else session_message(session),
        explain=bool(body.get("explain")),
    )
