"""The transcoder of stored event state: the library's JSON, written and read by orjson."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import orjson
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Transcoding, TranscodingNotRegisteredError

# What the json module writes itself, subclasses included, so never hands to a transcoding.
_JSON_NATIVE = (str, int, float, list, tuple, dict, type(None))
# What orjson writes as the json module does (ints up to 64 bits; beyond, orjson refuses them).
_SCALARS = frozenset({str, int, bool, type(None)})
# orjson reads an integer beyond 64 bits as a float; no integer within them reaches this size.
_BEYOND_64_BITS = float(2**63)
_UTC = timezone.utc


class _Unsuited(Exception):
    """Something orjson would write or read otherwise than the json module, or not at all."""


class OrjsonTranscoder(JSONTranscoder):
    """The library's `JSONTranscoder`, the same bytes both ways: writing in a third of its time, reading in two thirds.

    Every event the engine stores is encoded here and every one it loads decoded. orjson writes UUIDs
    its own way, so a walk first puts the registered types in the `{"_type_", "_data_"}` form the
    json module's `default` gives them. Whatever orjson would write differently (subclasses of str
    or int, keys that are not str, ints beyond 64 bits, some floats) or refuses, the library's
    encoder writes instead, raising what it raises. Reading, orjson parses and a walk turns the
    `{"_type_", "_data_"}` dicts back as the library's object hook does; what orjson cannot read
    exactly (ints beyond 64 bits, NaN, lone surrogates) the library's decoder reads.
    """

    def __init__(self) -> None:
        super().__init__()
        self._encoders: dict[type, tuple[str, Callable[[Any], Any]]] = {}
        self._datetime_name: str | None = None

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        if not issubclass(transcoding.type, _JSON_NATIVE):
            self._encoders[transcoding.type] = (transcoding.name, transcoding.encode)
        # orjson writes a naive or UTC datetime exactly as `isoformat` does (not every offset: it
        # drops seconds), without the call; only the library's own transcoding writes isoformat.
        if transcoding.type is datetime:
            self._datetime_name = transcoding.name if type(transcoding) is DatetimeAsISO else None

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(self._plain(obj))
        # RecursionError: a cycle, for which the json module has its own error.
        except (_Unsuited, orjson.JSONEncodeError, RecursionError):
            return super().encode(obj)

    def decode(self, data: bytes) -> Any:
        try:
            obj = orjson.loads(data)
            return self._restored(obj) if type(obj) is dict or type(obj) is list else obj
        except (_Unsuited, orjson.JSONDecodeError):
            return super().decode(data)

    def _plain(self, o: Any) -> Any:
        """`o` with the registered types transcoded, made only of what orjson writes as json does.

        Containers that need no change are returned as they are, for orjson to read.
        """
        t = type(o)
        if t is dict:
            copy = None
            for k, v in o.items():
                if type(k) is not str:
                    raise _Unsuited
                t = type(v)
                if t in _SCALARS:
                    continue
                if t is datetime and self._datetime_name is not None:
                    tz = v.tzinfo
                    new = {"_type_": self._datetime_name, "_data_": v if tz is None or tz is _UTC else v.isoformat()}
                else:
                    new = self._plain(v)
                    if new is v:
                        continue
                if copy is None:
                    copy = o.copy()
                copy[k] = new
            return o if copy is None else copy
        if t is list or t is tuple:
            for v in o:
                if type(v) not in _SCALARS:
                    return [v if type(v) in _SCALARS else self._plain(v) for v in o]
            return o
        if t in _SCALARS:
            return o
        if t is float:
            # repr (json) and orjson agree on every finite float but those from 1e-9 to 1e-4, which
            # orjson writes without an exponent; nan and the infinities orjson writes as null.
            if 1e-4 <= abs(o) < float("inf") or o == 0:
                return o
            raise _Unsuited
        try:
            name, encode = self._encoders[t]
        except KeyError:
            raise _Unsuited from None
        data = encode(o)
        return {"_type_": name, "_data_": data if type(data) in _SCALARS else self._plain(data)}

    def _restored(self, o: Any) -> Any:
        """`o` as orjson read it, with its transcoded values decoded, innermost first as `_decode_obj` does."""
        if type(o) is dict:
            for k, v in o.items():
                t = type(v)
                if t in _SCALARS:
                    continue
                # Most transcoded values are a str: decoded here without a call for the dict.
                if t is dict and len(v) == 2 and type(v.get("_data_")) is str and type(v.get("_type_")) is str:
                    transcoding = self.names.get(v["_type_"])
                    if transcoding is None:
                        raise _unregistered(v["_type_"])
                    o[k] = transcoding.decode(v["_data_"])
                elif t is dict or t is list:
                    o[k] = self._restored(v)
                elif t is float and not -_BEYOND_64_BITS < v < _BEYOND_64_BITS:
                    raise _Unsuited
            if len(o) == 2 and "_type_" in o and "_data_" in o:
                transcoding = self.names.get(o["_type_"])
                if transcoding is None:
                    raise _unregistered(o["_type_"])
                return transcoding.decode(o["_data_"])
            return o
        for v in o:
            if type(v) not in _SCALARS:
                break
        else:
            return o
        for i, v in enumerate(o):
            t = type(v)
            if t is dict or t is list:
                o[i] = self._restored(v)
            elif t is float and not -_BEYOND_64_BITS < v < _BEYOND_64_BITS:
                raise _Unsuited
        return o


def _unregistered(name: str) -> TranscodingNotRegisteredError:
    """`JSONTranscoder._decode_obj`'s error for a name no transcoding is registered under."""
    advice = "Please register a custom transcoding for this type."
    return TranscodingNotRegisteredError(f"Data serialized with name '{name}' is not deserializable. {advice}")
