"""The public envelope of every event published on `itil.events` (a versioned contract)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import DomainEventProtocol
from marshmallow import Schema, fields, validate

from streams.fastload import compile_loader

ENVELOPE_VERSION = 1
EVENT_ID_NAMESPACE = uuid5(NAMESPACE_URL, "urn:itil-engine:event")

_PRIMITIVES = frozenset({str, int, float, bool, type(None)})
_HEADER_FIELDS = {"originator_id", "originator_version", "timestamp", "actor", "at", "originator_topic"}


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


_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes


def event_id(aggregate_id: UUID, version: int) -> str:
    """uuid5(EVENT_ID_NAMESPACE, "<aggregate id>:<version>"), written out without the UUID class (hot path)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{aggregate_id}:{version}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _payload(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v if type(v) in _PRIMITIVES else _plain(v) for k, v in attributes.items() if k not in _HEADER_FIELDS}


def envelope_of(
    event: DomainEventProtocol[UUID], position: int | None, previous_position: int | None = None
) -> dict[str, Any]:
    """The envelope (as JSON-ready values) of a domain event stored at `position`."""
    attributes = event.__dict__
    qualname = type(event).__qualname__
    payload = _payload(attributes)
    return {
        "envelope_version": ENVELOPE_VERSION,
        "event_id": event_id(event.originator_id, event.originator_version),
        "event_type": qualname,
        "aggregate_type": qualname.partition(".")[0],
        "aggregate_id": str(event.originator_id),
        "aggregate_version": event.originator_version,
        "position": position,
        "previous_position": previous_position,
        "occurred_at": attributes["at"].isoformat(),
        "recorded_at": attributes["timestamp"].isoformat(),
        "actor": attributes["actor"],
        "payload": payload,
    }


_TYPES: dict[type, tuple[str, str]] = {}


def record_of(event: DomainEventProtocol[UUID], position: int, aggregate_id: str | None = None) -> dict[str, Any]:
    """What the projections read of an envelope, for a rebuild (no broker): the same values as
    `envelope_of`, without the fields only a published message needs (event id, recorded_at,
    envelope version, previous position), which cost a hash and a date formatting per event.
    `aggregate_id`: the originator id already written out, when the caller has it."""
    attributes = event.__dict__
    names = _TYPES.get(type(event))
    if names is None:
        qualname = type(event).__qualname__
        names = _TYPES[type(event)] = (qualname, qualname.partition(".")[0])
    return {
        "event_type": names[0],
        "aggregate_type": names[1],
        "aggregate_id": aggregate_id or str(event.originator_id),
        "aggregate_version": event.originator_version,
        "position": position,
        "occurred_at": attributes["at"].isoformat(),
        "actor": attributes["actor"],
        "payload": _payload(attributes),
    }


def encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


_FAST_ENVELOPE = compile_loader(ENVELOPE_SCHEMA)


def decode(data: bytes) -> dict[str, Any]:
    """Parse and validate one message; raises ValueError or marshmallow's ValidationError.

    Through the exact fast path compiled from the contract (`streams.fastload`): what it cannot
    vouch for, every refusal included, is loaded by marshmallow itself.
    """
    body = json.loads(data)
    if _FAST_ENVELOPE is not None and isinstance(body, dict):
        fast = _FAST_ENVELOPE(body)
        if fast is not None:
            return fast
    loaded: dict[str, Any] = ENVELOPE_SCHEMA.load(body)
    return loaded
