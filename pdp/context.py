"""The request context a decision reads: the caller's keys plus the keys the principal supplies.

Key names are case-insensitive in IAM, so they are lower-cased once here. Values are kept as the
caller sent them (str, int, float, bool) or as a tuple for a multi-valued key. `aws:CurrentTime`
and `aws:EpochTime` come from the clock, read once per request, unless the request carries them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from pdp.errors import RequestError
from pdp.model import PRINCIPAL_KEYS, PRINCIPAL_TAG_PREFIX, Principal

__all__ = ["MISSING", "RequestContext", "Scalar", "Value", "scalar_text"]

Scalar = str | int | float | bool
Value = Scalar | tuple[Scalar, ...]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

_CLOCK_KEYS = ("aws:currenttime", "aws:epochtime")
MAX_CONTEXT_KEYS = 256
MAX_VALUES_PER_KEY = 1024
MAX_STRING = 8192


def scalar_text(value: Scalar) -> str:
    """A scalar as IAM compares it in string operators: booleans are "true"/"false"."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value if isinstance(value, str) else str(value)


def _check_scalar(key: str, value: object) -> Scalar:
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise RequestError(f'context: value of "{key}" is longer than {MAX_STRING} characters')
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


class RequestContext:
    """Context keys for one request (lower-cased names), built from a principal and a mapping."""

    __slots__ = ("values", "_now")

    def __init__(
        self, principal: Principal, context: Mapping[str, object] | None, now: float | None = None
    ) -> None:
        values: dict[str, Value] = dict(principal.context_keys)
        if context:
            if not isinstance(context, Mapping):
                raise RequestError("context: must be an object mapping keys to values")
            if len(context) > MAX_CONTEXT_KEYS:
                raise RequestError(f"context: more than {MAX_CONTEXT_KEYS} keys")
            seen: set[str] = set()
            for key, raw in context.items():
                if not isinstance(key, str) or not key:
                    raise RequestError(f"context: key {key!r} must be a non-empty string")
                lower = key.lower()
                if lower in PRINCIPAL_KEYS or lower.startswith(PRINCIPAL_TAG_PREFIX):
                    raise RequestError(
                        f'context: key "{key}" is derived from the principal and cannot be set'
                        " by the request"
                    )
                if lower in seen:
                    raise RequestError(f'context: key "{key}" is given twice (keys ignore case)')
                seen.add(lower)
                if isinstance(raw, list | tuple):
                    if len(raw) > MAX_VALUES_PER_KEY:
                        raise RequestError(f'context: "{key}" has more than {MAX_VALUES_PER_KEY}')
                    values[lower] = tuple(_check_scalar(key, v) for v in raw)
                else:
                    values[lower] = _check_scalar(key, raw)
        self.values = values
        self._now = now

    def get(self, key: str) -> Value | _Missing:
        """The value of a lower-cased key, or MISSING."""
        value = self.values.get(key, MISSING)
        if value is MISSING and key in _CLOCK_KEYS:
            value = self._clock(key)
        return value

    def single(self, key: str) -> str | None:
        """A single-valued key as text, for policy variables; None when absent or multi-valued."""
        value = self.get(key)
        if value is MISSING or isinstance(value, tuple):
            return None
        return scalar_text(value)  # type: ignore[arg-type]

    def _clock(self, key: str) -> Value:
        if self._now is None:
            self._now = time.time()
        if key == "aws:epochtime":
            return int(self._now)
        return datetime.fromtimestamp(int(self._now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
