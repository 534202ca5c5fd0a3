"""Strict JSON reading for policy documents: duplicate keys and NaN are errors, not silence.

`json.loads` keeps the last of two equal keys; IAM refuses such a document, so objects are built by
a hook that remembers the keys it saw twice. The validator reports them with their JSON path.
orjson keeps the last value too and has no hook: `repeated_key` finds what it dropped, cheaply.
`load_json` therefore parses with orjson (about 30 times faster, which counts when a store holds a
hundred thousand files) and takes the hook's slow path only for text that orjson refuses (to
word the error as before, or to accept what only `json` reads, such as an integer past 64 bits)
or that repeats a key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["JsonObject", "MalformedJson", "load_json", "repeated_key"]

_LONG_DIGITS = re.compile(rb"\d{19}")


class JsonObject(dict[str, Any]):
    """A JSON object in which a key appeared more than once (objects without repeats are dicts)."""

    __slots__ = ("duplicates",)

    def __init__(self) -> None:
        super().__init__()
        self.duplicates: list[str] = []


class MalformedJson(ValueError):
    """The text is not one well-formed JSON value; the message says where."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    plain = dict(pairs)
    if len(plain) == len(pairs):
        return plain  # the common case: no key repeats, no bookkeeping
    obj = JsonObject()
    for key, value in pairs:
        if key in obj and key not in obj.duplicates:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _no_constants(name: str) -> Any:
    raise MalformedJson(f"malformed JSON: {name} is not a JSON value")


def load_json(text: str | bytes) -> Any:
    """Parse JSON text into Python values, with `JsonObject` for objects that repeat a key."""
    if isinstance(text, bytes) and not text.startswith(b"\xef\xbb\xbf"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # the slow path words the error (or reads what only `json` accepts)
        else:
            if _fast_unique(text, value):
                return value
    return _load_slowly(text)


def _fast_unique(text: bytes, value: Any) -> bool:
    """True when `text` (which parsed to `value`) certainly repeats no key (see repeated_key)
    and orjson read it as `json` does: orjson turns an integer past 64 bits into a float, so
    text with 19 digits in a row takes the slow path."""
    if b"\\" in text or _LONG_DIGITS.search(text):
        return False
    try:
        return text.count(b'"') == orjson.dumps(value).count(b'"')
    except orjson.JSONEncodeError:  # nested deeper than orjson writes
        return False


def _load_slowly(text: str | bytes) -> Any:
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MalformedJson(f"malformed JSON: not UTF-8 text ({exc.reason})") from None
    elif text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise MalformedJson(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise MalformedJson("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise MalformedJson(f"malformed JSON: {exc}") from None


def repeated_key(text: bytes, value: Any) -> tuple[str, str] | None:
    """The first key that `text` repeats, as (path to its object, key), or None; `value` is what
    a last-wins parser (orjson) made of `text`. The path is "" for the top level.

    Invariant of the fast path: in text without a backslash every string is spelled exactly as
    it parses, so the text holds two quotes for each string of `value` (keys included), and
    more if an object lost a repeated member. Only text that has escapes or too many quotes
    is parsed again, by `load_json`, to name the key (about 1 us per request, else 10).
    """
    if _fast_unique(text, value):
        return None
    try:
        return _first_repeat(_load_slowly(text), "")
    except RecursionError:
        raise MalformedJson("malformed JSON: nested too deeply") from None


def _first_repeat(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, JsonObject):
        return path, value.duplicates[0]
    if isinstance(value, dict):
        for key, item in value.items():
            where = (f"{path}.{key}" if path else key) if key.isidentifier() else f'{path}["{key}"]'
            if found := _first_repeat(item, where):
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if found := _first_repeat(item, f"{path}[{i}]"):
                return found
    return None
