"""The record of a stored event as the views, the processes and the timelines read it.

`envelope_of` gives the public envelope's values (what the relay publishes on `itil.events`, whose
schema and wire format are `streams.envelope`'s); `record_of` gives what a rebuild feeds the views.
Both are plain functions of a domain event: this floor's consumers and those above use them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import DomainEventProtocol

ENVELOPE_VERSION = 1
EVENT_ID_NAMESPACE = uuid5(NAMESPACE_URL, "urn:itil-engine:event")

PRIMITIVES = frozenset({str, int, float, bool, type(None)})
"""Types of values written out as they are (anything else goes through `_plain`)."""
HEADER_FIELDS = {"originator_id", "originator_version", "timestamp", "actor", "at", "originator_topic"}
"""An event's attributes that the envelope's header carries, not its payload."""


_NAMESPACE_SHA1 = hashlib.sha1(EVENT_ID_NAMESPACE.bytes)
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def event_id(aggregate_id: UUID | str, version: int) -> str:
    """uuid5(EVENT_ID_NAMESPACE, "<aggregate id>:<version>"), written out without the UUID class (hot path):
    the first 16 bytes of the SHA-1, with the version nibble set to 5 and the variant bits to 10."""
    sha1 = _NAMESPACE_SHA1.copy()
    sha1.update(f"{aggregate_id}:{version}".encode())
    x = sha1.hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


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
    return {k: v if type(v) in PRIMITIVES else _plain(v) for k, v in attributes.items() if k not in HEADER_FIELDS}


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
