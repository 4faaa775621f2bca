"""The public envelope of every event published on `itil.events` (a versioned contract)."""

from __future__ import annotations

import json
import math
import re
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, StoredEvent, UUIDAsHex
from eventsourcing.utils import resolve_topic
from marshmallow import Schema, fields, validate

from projections.records import ENVELOPE_VERSION, HEADER_FIELDS, PRIMITIVES, envelope_of, event_id, record_of
from streams import fastjson
from streams.fastload import compile_loader

__all__ = [
    "ENVELOPE_VERSION",
    "envelope_of",
    "event_id",
    "record_of",
]  # the envelope's values, for this adapter's callers


class EventEnvelopeSchema(Schema):
    """One stored domain event as published to Kafka, keyed by `aggregate_id`."""

    envelope_version = fields.Integer(required=True, validate=validate.Equal(ENVELOPE_VERSION))
    event_id = fields.UUID(required=True, metadata={"description": "stable: uuid5 of aggregate and version"})
    event_type = fields.String(required=True, metadata={"example": "Incident.Logged"})
    aggregate_type = fields.String(required=True, metadata={"example": "Incident"})
    aggregate_id = fields.UUID(required=True)
    aggregate_version = fields.Integer(required=True, validate=validate.Range(min=1))
    position = fields.Integer(
        required=True,
        validate=validate.Range(min=1),
        metadata={"description": "global position in the event store's notification log"},
    )
    previous_position = fields.Integer(
        required=True,
        allow_none=True,
        metadata={
            "description": "position of the event published just before this one on the same"
            " partition, or null for the first: lets a consumer prove it missed nothing"
        },
    )
    occurred_at = fields.AwareDateTime(required=True, metadata={"description": "business instant"})
    recorded_at = fields.AwareDateTime(required=True, metadata={"description": "store instant"})
    actor = fields.String(required=True)
    payload = fields.Dict(keys=fields.String(), required=True)


ENVELOPE_SCHEMA = EventEnvelopeSchema()


def encode(envelope: dict[str, Any]) -> bytes:
    """The message: compact JSON with sorted keys, by orjson, which writes non-ASCII text as UTF-8.

    What orjson refuses (ints beyond 64 bits, keys that are not strings, lone surrogates) or writes
    otherwise (non-finite floats: null where the json module writes NaN or Infinity) is written by
    the json module, as it always was.
    """
    try:
        data = orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return _json_encode(envelope)
    if b"null" in data and _has_non_finite(envelope):
        return _json_encode(envelope)
    return data


def _json_encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_non_finite(v) for v in value)
    return False


# What `datetime.isoformat()` writes, and `datetime.fromisoformat` reads back to the same text: a valid
# date (29 February aside), microseconds only when not zero, an offset in whole minutes other than
# -00:00. The rare rest (offsets with seconds, leap days, hand-written text) takes the domain-event path.
_ISOFORMAT = re.compile(
    r"(?!0000)\d{4}-"
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|02-(?:0[1-9]|1\d|2[0-8]))"
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(?:\.(?!000000)\d{6})?"
    r"(?:(?!-00:00)[+-](?:[01]\d|2[0-3]):[0-5]\d)?",
    re.ASCII,
)
_UUID_HEX = re.compile(r"[0-9a-f]{32}", re.ASCII)


class _Unusual(Exception):
    """Stored state that only the domain-event path turns into the envelope exactly."""


def _untranscoded(value: Any) -> Any:
    """A value of stored state as `_plain` writes what the library's transcoder decodes it to."""
    t = type(value)
    if t is dict:
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            return _transcoded(value["_type_"], value["_data_"])
        return {k: v if type(v) in PRIMITIVES else _untranscoded(v) for k, v in value.items()}
    if t is list:
        return [v if type(v) in PRIMITIVES else _untranscoded(v) for v in value]
    return value


def _transcoded(kind: Any, data: Any) -> str:
    """The envelope's text of a datetime or UUID in the transcoder's `{"_type_", "_data_"}` form."""
    if type(data) is str:
        if kind == "datetime_iso" and _ISOFORMAT.fullmatch(data):
            return data
        if kind == "uuid_hex" and _UUID_HEX.fullmatch(data):
            return f"{data[:8]}-{data[8:12]}-{data[12:16]}-{data[16:20]}-{data[20:]}"
    raise _Unusual


def _datetime_text(value: Any) -> str:
    """What `isoformat()` gives of a datetime in the transcoder's form (the event's `at`, `timestamp`)."""
    if type(value) is dict and len(value) == 2 and value.get("_type_") == "datetime_iso":
        return _transcoded("datetime_iso", value.get("_data_"))
    raise _Unusual


class StoredEnvelopes:
    """The envelopes of stored events, read from their stored JSON without making domain events.

    The domain-event path (`Mapper.to_domain_event`, then `envelope_of`) decodes every dict of the
    state through the transcoder's object hook, makes UUID and datetime objects only for the envelope
    to write them out again, and builds the event object. Here the state is parsed by orjson and the
    transcoder's datetimes and UUIDs are written as `envelope_of` writes them. Whatever the two paths
    might read differently takes the domain-event path: a mapper with a compressor or cipher, or a
    transcoder that is not a JSONTranscoder; state to upcast (a class version other than the stored
    one); other transcoded types (decimals); text or numbers that might not round-trip.
    """

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self._mapper = mapper
        self._topics: dict[str, tuple[str, str, int]] = {}
        transcoder = mapper.transcoder
        self._fast = (
            mapper.compressor is None
            and mapper.cipher is None
            and type(mapper).to_domain_event is Mapper.to_domain_event
            # A JSONTranscoder, application.transcoder's included, reads the library's stored JSON as the library does.
            and isinstance(transcoder, JSONTranscoder)
            and type(transcoder.names.get("datetime_iso")) is DatetimeAsISO
            and type(transcoder.names.get("uuid_hex")) is UUIDAsHex
        )

    def message(self, stored: StoredEvent, position: int, previous_position: int | None, aggregate_id: str) -> bytes:
        """The encoded envelope of `stored` at `position`; `aggregate_id`: its originator id written out."""
        envelope = self.from_state(stored, position, previous_position, aggregate_id)
        if envelope is None:
            return encode(envelope_of(self._mapper.to_domain_event(stored), position, previous_position))
        # Everything in it was parsed by orjson (finite floats, ints within 64 bits, valid text) or made
        # here, so orjson writes it as `encode` would, without `encode`'s checks.
        return orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS)

    def from_state(
        self, stored: StoredEvent, position: int, previous_position: int | None, aggregate_id: str
    ) -> dict[str, Any] | None:
        """The envelope `envelope_of` makes of `stored`, or None when only the domain-event path makes it exactly."""
        if not self._fast or type(stored.originator_id) is not UUID:
            return None
        try:
            record = self._record(stored, position, aggregate_id)
            record["envelope_version"] = ENVELOPE_VERSION
            record["event_id"] = event_id(aggregate_id, stored.originator_version)
            record["previous_position"] = previous_position
            record["recorded_at"] = _datetime_text(record.pop("_timestamp"))
            return record
        except (_Unusual, orjson.JSONDecodeError):
            return None

    def record(self, stored: StoredEvent, position: int, aggregate_id: str) -> dict[str, Any]:
        """What `record_of` makes of `stored` (for a rebuild), from its stored JSON where that gives
        exactly the same, else from its domain event."""
        if self._fast and type(stored.originator_id) is UUID:
            try:
                record = self._record(stored, position, aggregate_id)
                del record["_timestamp"]
                return record
            except (_Unusual, orjson.JSONDecodeError):
                pass
        return record_of(self._mapper.to_domain_event(stored), position, aggregate_id)

    def _record(self, stored: StoredEvent, position: int, aggregate_id: str) -> dict[str, Any]:
        """The fields `record_of` makes, and the store instant as stored (`_timestamp`), for `from_state`."""
        names = self._topics.get(stored.topic)
        if names is None:
            cls = resolve_topic(stored.topic)
            qualname = cls.__qualname__
            names = self._topics[stored.topic] = (
                qualname,
                qualname.partition(".")[0],
                getattr(cls, "class_version", 1),
            )
        state = stored.state
        if fastjson.has_long_number(state):
            raise _Unusual  # orjson might read an integer beyond 64 bits as a float
        attributes = orjson.loads(state)
        if type(attributes) is not dict or (len(attributes) == 2 and "_type_" in attributes and "_data_" in attributes):
            raise _Unusual
        if attributes.pop("class_version", 1) != names[2]:
            raise _Unusual  # the mapper upcasts it
        actor = attributes.get("actor", attributes)  # absent: unusual, as a list or dict would be
        if type(actor) not in PRIMITIVES:
            raise _Unusual
        return {
            "event_type": names[0],
            "aggregate_type": names[1],
            "aggregate_id": aggregate_id,
            "aggregate_version": stored.originator_version,
            "position": position,
            "occurred_at": _datetime_text(attributes.get("at")),
            "_timestamp": attributes.get("timestamp"),
            "actor": actor,
            "payload": {
                k: v if type(v) in PRIMITIVES else _untranscoded(v)
                for k, v in attributes.items()
                if k not in HEADER_FIELDS
            },
        }


_FAST_ENVELOPE = compile_loader(ENVELOPE_SCHEMA)


def decode(data: bytes) -> dict[str, Any]:
    """Parse and validate one message; raises ValueError or marshmallow's ValidationError.

    Through the exact fast path compiled from the contract (`streams.fastload`): what it cannot
    vouch for, every refusal included, is loaded by marshmallow itself.
    """
    try:
        body = fastjson.loads(data)
    except fastjson.NotExact:
        body = json.loads(data)
    if _FAST_ENVELOPE is not None and isinstance(body, dict):
        fast = _FAST_ENVELOPE(body)
        if fast is not None:
            return fast
    loaded: dict[str, Any] = ENVELOPE_SCHEMA.load(body)
    return loaded
