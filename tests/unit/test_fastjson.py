"""streams.fastjson: orjson's reading only where it is exactly the json module's."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import fastjson

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types throughout (1 is not 1.0 here), NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=400)
@given(values, st.booleans())
def test_what_it_reads_it_reads_as_the_json_module_does(value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        read = fastjson.loads(raw)
    except fastjson.NotExact:
        return  # the caller reads it with json
    assert same(read, json.loads(raw))


@pytest.mark.parametrize(
    "raw",
    [b"[18446744073709551616]", b"[-9223372036854775809]", b"[1e400]", b"[NaN]", b'["\\ud800"]', b"\xff"],
)
def test_what_orjson_would_read_otherwise_it_leaves_to_the_json_module(raw: bytes) -> None:
    with pytest.raises(fastjson.NotExact):
        fastjson.loads(raw)
