"""What a rebuild applies (`record_of`) carries the envelope's values, and reads in a timeline as a published one does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import UUID

from domain.configuration import ConfigurationItem
from domain.incident import Incident
from projections.account_incidents import _apply, _timeline_row
from projections.records import envelope_of, record_of
from streams.envelope import decode, encode

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
ID = UUID("00000000-0000-4000-8000-000000000001")


def some_events() -> list:
    incident = Incident.log(id=ID, account="café-chain", title="Terminal hors ligne — caisse 2", impact=2, urgency=1,
                            channel="phone", reporter="gérant", actor="n1", at=T0, ci="tpe-0042")  # fmt: skip
    incident.acknowledge(actor="n1", at=T0 + timedelta(minutes=1))
    incident.assign(group="N2 network", assignee="eve", actor="n1", at=T0 + timedelta(minutes=2))
    incident.attach_child(child_id=UUID(int=7), actor="n1", at=T0 + timedelta(minutes=3))
    incident.hold(reason="awaiting_customer", note="rappel à 14 h", actor="eve", at=T0 + timedelta(minutes=4))
    ci = ConfigurationItem.register(id=UUID(int=9), account="café-chain", ci_name="tpe-0042",
                                    kind="payment_terminal", actor="cmdb", at=T0,
                                    attributes={"modèle": "X9", "série": "42"})  # fmt: skip
    return [*incident.collect_events(), *ci.collect_events()]


def test_a_record_holds_the_envelopes_values_but_the_published_only_fields() -> None:
    for position, event in enumerate(some_events(), start=1):
        envelope = envelope_of(event, position, position - 1 or None)
        record = record_of(event, position)
        published_only = {"event_id", "recorded_at", "envelope_version", "previous_position"}
        assert record == {k: v for k, v in envelope.items() if k not in published_only}


def test_a_record_reads_in_the_view_as_the_decoded_message_does() -> None:
    row_from_record = row_from_message = None
    for position, event in enumerate(some_events()[:5], start=1):
        record = record_of(event, position)
        message = decode(encode(envelope_of(event, position)))
        assert _timeline_row(str(ID), record) == _timeline_row(str(ID), message)
        row_from_record = _apply(row_from_record, record)
        row_from_message = _apply(row_from_message, message)
        assert row_from_record == row_from_message
