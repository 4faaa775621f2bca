"""JSON read by orjson (in C) wherever it gives exactly what the json module gives.

orjson reads a whole number beyond 64 bits as a float (json: an exact int) and refuses some
texts json reads (NaN, Infinity, lone surrogate escapes, numbers beyond a double). Callers read
with `loads`, and with the json module when it raises.
"""

from __future__ import annotations

from typing import Any

import orjson

_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


class NotExact(ValueError):
    """orjson would not read this text exactly as the json module does."""


def has_long_number(raw: bytes) -> bool:
    """19 digits in a row: perhaps a number orjson would not read as an exact int (inside a string
    too, where it is harmless: that text just takes the json module's path). Found as a run of
    zeros once every digit is a zero: a regular expression took longer than orjson's whole reading."""
    return _LONG_NUMBER in raw.translate(_DIGITS_AS_ZEROS)


def loads(raw: bytes) -> Any:
    """The value of `raw` as the json module reads it; raises NotExact where orjson cannot vouch for that."""
    if has_long_number(raw):
        raise NotExact("a run of 19 digits or more")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise NotExact(str(error)) from None
