"""`repeated_key`: its quote-counting fast path never misses a repeat that `load_json` sees; and
`load_json`'s orjson fast path reads every text exactly as the `json` module with its hook does."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdp.language.jsondoc import JsonObject, MalformedJson, _load_slowly, load_json, repeated_key

KEYS = st.text(alphabet='ab:"\\/é\u2028', max_size=3)
SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5)
WIDE = SCALARS | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12,
)


@given(VALUES, st.booleans())
def test_no_repeat_is_reported_for_any_value(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert repeated_key(text, orjson.loads(text)) is None


@given(st.dictionaries(KEYS, SCALARS, min_size=1, max_size=4), st.data())
def test_a_repeated_key_is_always_found(members: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(members)))
    pairs = [json.dumps(k) + ":" + json.dumps(v) for k, v in members.items()]
    pairs.append(json.dumps(key) + ":" + json.dumps(data.draw(SCALARS)))
    text = ('{"requests": [{}, {"context": {' + ", ".join(pairs) + "}}]}").encode()
    assert repeated_key(text, orjson.loads(text)) == ("requests[1].context", key)


def test_paths_name_the_object_that_repeats() -> None:
    text = b'{"a": [{"x": 1, "x": 2}], "b b": {"y": 1, "y": 1}}'
    assert repeated_key(text, orjson.loads(text)) == ("a[0]", "x")
    text = b'{"b b": {"y": 1, "y": 1}}'
    assert repeated_key(text, orjson.loads(text)) == ('["b b"]', "y")
    text = b'{"pr\\u0069ncipal": "carol", "principal": "bob"}'
    assert repeated_key(text, orjson.loads(text)) == ("", "principal")


def test_nesting_past_what_orjson_writes_takes_the_slow_path() -> None:
    text = b"[" * 300 + b"]" * 300
    assert repeated_key(text, orjson.loads(text)) is None
    text = b"[" * 1000 + b"]" * 1000
    with pytest.raises(MalformedJson, match="nested too deeply"):
        repeated_key(text, orjson.loads(text))


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0; a JsonObject is kept)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        dups = (a.duplicates, b.duplicates) if isinstance(a, JsonObject) else ([], [])
        return dups[0] == dups[1] and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) or a != a


WIDE_VALUES = st.recursive(
    WIDE,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12,
)


@given(WIDE_VALUES, st.booleans(), st.data())
def test_the_fast_path_reads_as_the_json_module_does(
    value: Any, ascii_only: bool, data: st.DataObject
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    if data.draw(st.booleans()) and text.startswith("{") and text != "{}":
        text = text[:-1] + ', "a": 1, "a": 2}'  # a repeated key: a JsonObject either way
    raw = text.encode()
    assert _same(load_json(raw), _load_slowly(raw))


@pytest.mark.parametrize(
    "raw",
    [b"123456789012345678901234567890", b"1e400", b'"\\ud800"', b"\xef\xbb\xbf{}", b"NaN", b"[1,]"],
)
def test_what_orjson_reads_otherwise_takes_the_slow_path(raw: bytes) -> None:
    try:
        slow: Any = _load_slowly(raw)
    except MalformedJson as exc:
        with pytest.raises(MalformedJson, match=str(exc).split(":")[0]):
            load_json(raw)
        return
    assert _same(load_json(raw), slow)
