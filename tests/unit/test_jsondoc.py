"""`repeated_key`: its quote-counting fast path never misses a repeat that `load_json` sees."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdp.jsondoc import MalformedJson, repeated_key

KEYS = st.text(alphabet='ab:"\\/é\u2028', max_size=3)
SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5)
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
