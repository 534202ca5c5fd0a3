"""The request context a decision reads: the caller's keys plus the keys the principal supplies.

Key names are case-insensitive in IAM, so they are lower-cased once here. Values are kept as the
caller sent them (str, int, float, bool) or as a tuple for a multi-valued key. `aws:CurrentTime`
and `aws:EpochTime` come from the clock, read once per request, unless the request carries them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Final

from pdp.errors import RequestError
from pdp.limits import MAX_CONTEXT_KEYS, MAX_KEY, MAX_LIST, MAX_STRING
from pdp.model import Principal, is_principal_key

__all__ = [
    "MISSING",
    "ReplayClock",
    "RequestContext",
    "Scalar",
    "Value",
    "as_of",
    "joined_keys",
    "scalar_text",
]

Scalar = str | int | float | bool
Value = Scalar | tuple[Scalar, ...]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

CLOCK_KEYS = ("aws:currenttime", "aws:epochtime")


class ReplayClock:
    """The time decisions read while `as_of` holds it, and whether any of them read it."""

    __slots__ = ("now", "read")

    def __init__(self, now: float) -> None:
        self.now = now
        self.read = False


# Read only when a decision reads the clock (and its context has no aws:CurrentTime): the
# normal path never looks at it.
_AS_OF: ContextVar[ReplayClock | None] = ContextVar("pdp_as_of", default=None)


@contextmanager
def as_of(now: float) -> Iterator[ReplayClock]:
    """Decide "as of" `now` (epoch seconds) in this thread or task: a decision that reads
    aws:CurrentTime / aws:EpochTime from the clock reads `now` instead, and the yielded clock's
    `read` says whether one did (a replay of the decision log: `pdp impact`)."""
    clock = ReplayClock(now)
    token = _AS_OF.set(clock)
    try:
        yield clock
    finally:
        _AS_OF.reset(token)


def scalar_text(value: Scalar) -> str:
    """A scalar as IAM compares it in string operators: booleans are "true"/"false"."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value if isinstance(value, str) else str(value)


_PLAIN = frozenset({str, int, bool})  # value types taken as they are, with no further check


def _check_scalar(key: str, value: object) -> Scalar:
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise RequestError(
                f'context: a value of "{_short(key)}" is longer than {MAX_STRING} characters'
            )
        return value
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RequestError(f'context: value of "{key}" is not a finite number')
        return value
    raise RequestError(
        f'context: value of "{key}" must be a string, number, boolean or a list of them,'
        f" got {type(value).__name__}"
    )


def _check_value(key: str, value: object) -> Value:
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST:
            raise RequestError(f'context: "{_short(key)}" has more than {MAX_LIST} values')
        return tuple(_check_scalar(key, v) for v in value)
    return _check_scalar(key, value)


def _short(key: str) -> str:
    """A key as an error message names it: a long one cut (the message stays small)."""
    return key if len(key) <= 100 else key[:40] + "..."


_is_str = str.__instancecheck__


def _longest_string(values: Iterable[object]) -> int:
    """The length of the longest string among `values` (C-level: filter, map, max)."""
    return max(map(len, filter(_is_str, values)), default=0)  # type: ignore[arg-type]


_USER_KEYS = frozenset(
    {"aws:username", "aws:userid"}
)  # the principal's keys not "aws:principal..."


def _normalize(context: Mapping[str, object]) -> dict[str, Value]:
    """Lower-case the keys and check the values.

    The common case is a dict comprehension and a few C-level checks over all keys at once;
    anything unusual (non-string or empty keys, keys repeated in another case, keys the principal
    supplies, keys or strings over the limits, values other than str/int/bool) takes the slow
    path, which names the offending key.
    """
    if type(context) is not dict and not isinstance(context, Mapping):
        raise RequestError("context: must be an object mapping keys to values")
    count = len(context)
    if count > MAX_CONTEXT_KEYS:
        raise RequestError(f"context: more than {MAX_CONTEXT_KEYS} keys")
    try:
        own: dict[str, object] = {k.lower(): v for k, v in context.items()}
    except AttributeError:
        own = {}
    keys = "\n".join(own)
    if (
        len(own) != count
        or "" in own
        or not _USER_KEYS.isdisjoint(own)
        or "\naws:principal" in "\n" + keys  # a cheap filter; _check_keys decides
        or (len(keys) > MAX_KEY and max(map(len, own)) > MAX_KEY)  # lower() never shortens
    ):
        _check_keys(context)
    for value in own.values():  # a loop beats map/filter on the few values of most contexts
        kind = type(value)
        if kind is str:
            if len(value) > MAX_STRING:  # type: ignore[arg-type]
                break
        elif kind is not bool and kind is not int:
            break
    else:
        return own  # type: ignore[return-value]
    for lower, value in list(own.items()):
        kind = type(value)
        if kind is bool or kind is int or (kind is str and len(value) <= MAX_STRING):  # type: ignore[arg-type]
            continue
        if (kind is list or kind is tuple) and _PLAIN.issuperset(map(type, value)):  # type: ignore[call-overload]
            if len(value) <= MAX_LIST and _longest_string(value) <= MAX_STRING:  # type: ignore[arg-type]
                own[lower] = tuple(value)  # type: ignore[arg-type]
                continue
        original = next(k for k in context if k.lower() == lower)
        own[lower] = _check_value(original, value)
    return own  # type: ignore[return-value]


def _check_keys(context: Mapping[str, object]) -> None:
    """The slow path: find the key that is wrong, if any, and say why."""
    seen: set[str] = set()
    for key in context:
        if not isinstance(key, str) or not key or "\n" in key:
            raise RequestError(f"context: key {key!r} must be a non-empty single-line string")
        if len(key) > MAX_KEY:
            raise RequestError(f'context: key "{_short(key)}" is longer than {MAX_KEY} characters')
        lower = key.lower()
        if is_principal_key(lower):
            raise RequestError(
                f'context: key "{key}" is derived from the principal and cannot be set'
                " by the request"
            )
        if lower in seen:
            raise RequestError(f'context: key "{key}" is given twice (keys ignore case)')
        seen.add(lower)


class RequestContext:
    """Context keys for one request (lower-cased names), built from a principal and a mapping."""

    __slots__ = ("values", "_now", "clock_read")
    values: Mapping[str, Value]

    def __init__(
        self,
        principal: Principal,
        context: Mapping[str, object] | None,
        now: float | None = None,
        derived: Mapping[str, object] | None = None,
    ) -> None:
        """`derived`: more keys the store supplies (organization, resource), which the caller
        has been checked not to set; they join the principal's."""
        values = joined_keys(principal, derived) if derived else principal.context_keys
        self.values = _with_context(values, context) if context else values
        self._now = now
        self.clock_read = False  # set when the decision read the clock: not cacheable then

    @classmethod
    def joined(
        cls, values: Mapping[str, object], context: Mapping[str, object] | None
    ) -> RequestContext:
        """A context from a principal's keys joined with the store's (`joined_keys`, or a
        principal's `context_keys`) and the request's own `context` (whose keys the caller has
        been checked not to seal)."""
        self = cls.__new__(cls)
        # values: as joined_keys made them (a principal's own keys are such a mapping too)
        self.values = _with_context(values, context) if context else values  # type: ignore[arg-type,assignment]
        self._now = None
        self.clock_read = False
        return self

    def get(self, key: str) -> Value | _Missing:
        """The value of a lower-cased key, or MISSING."""
        value = self.values.get(key, MISSING)
        if value is MISSING and key in CLOCK_KEYS:
            value = self._clock(key)
        return value

    def single(self, key: str) -> str | None:
        """A single-valued key as text, for policy variables; None when absent or multi-valued."""
        value = self.get(key)
        if value is MISSING or isinstance(value, tuple):
            return None
        return scalar_text(value)  # type: ignore[arg-type]

    def _clock(self, key: str) -> Value:
        self.clock_read = True
        if self._now is None:
            replay = _AS_OF.get()
            if replay is None:
                self._now = time.time()
            else:
                replay.read = True
                self._now = replay.now
        seconds = int(self._now)
        if key == "aws:epochtime":
            return seconds
        return clock_text(seconds)


def joined_keys(principal: Principal, derived: Mapping[str, object]) -> Mapping[str, Value]:
    """The principal's keys and more keys the store derives, in one read-only mapping: what
    `RequestContext.joined` takes. The store builds it once per principal and request shape."""
    return MappingProxyType({**principal.context_keys, **derived})  # type: ignore[dict-item]


def _with_context(values: Mapping[str, Value], context: Mapping[str, object]) -> dict[str, Value]:
    own = _normalize(context)
    # A MappingProxyType (as Principal and joined_keys build) copies its dict at C speed;
    # dict() of one goes key by key, several times slower.
    merged = values.copy() if isinstance(values, MappingProxyType) else dict(values)
    merged.update(own)
    return merged


class ClockTime(str):
    """`aws:CurrentTime` read from the clock: ISO 8601 text that also carries its epoch seconds,
    so date operators need not parse what was just formatted."""

    __slots__ = ("epoch",)
    epoch: int


@lru_cache(maxsize=4)
def clock_text(seconds: int) -> ClockTime:
    text = ClockTime(datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    text.epoch = seconds
    return text
