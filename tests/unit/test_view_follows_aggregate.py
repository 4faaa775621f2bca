"""The account view's copy of the incident rules agrees with the aggregate, for any story."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.incident import Incident
from projections.account_incidents import _apply
from streams.envelope import envelope_of

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
ID = UUID("00000000-0000-4000-8000-000000000001")

COMMANDS = {
    "acknowledge": lambda i, at: i.acknowledge(actor="a", at=at),
    "reprioritise_up": lambda i, at: i.reprioritise(impact=1, urgency=1, actor="a", at=at),
    "reprioritise_down": lambda i, at: i.reprioritise(impact=3, urgency=2, actor="a", at=at),
    "assign": lambda i, at: i.assign(group="N2 systems", assignee=None, actor="a", at=at),
    "assign_person": lambda i, at: i.assign(group="N2 systems", assignee="bob", actor="a", at=at),
    "hold_customer": lambda i, at: i.hold(reason="awaiting_customer", actor="a", at=at),
    "hold_supplier": lambda i, at: i.hold(reason="awaiting_supplier", actor="a", at=at),
    "resume": lambda i, at: i.resume(actor="a", at=at),
    "restore": lambda i, at: i.restore(actor="a", at=at),
    "resolve": lambda i, at: i.resolve(code="fixed", actor="a", at=at),
    "reopen": lambda i, at: i.reopen(reason="again", actor="a", at=at),
    "close": lambda i, at: i.close(actor="a", at=at),
    "cancel": lambda i, at: i.cancel(reason="dup", actor="a", at=at),
}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(sorted(COMMANDS)), max_size=25))
def test_view_row_matches_aggregate_after_any_sequence_of_commands(commands: list[str]) -> None:
    incident = Incident.log(id=ID, account="acme", title="t", impact=2, urgency=2, channel="phone",
                            reporter="r", actor="a", at=T0, ci="ci")  # fmt: skip
    for n, name in enumerate(commands, start=1):
        try:
            COMMANDS[name](incident, T0 + timedelta(minutes=n))
        except DomainError:
            pass
    row = None
    for position, event in enumerate(incident.collect_events(), start=1):
        row = _apply(row, envelope_of(event, position))
    assert row is not None
    assert row["status"] == incident.status
    assert row["hold_reason"] == incident.hold_reason
    assert row["status_before_hold"] == incident.status_before_hold
    assert (row["assignment_group"], row["assignee"]) == (incident.assignment_group, incident.assignee)
    assert row["version"] == incident.version
    assert (row["impact"], row["urgency"], row["priority"]) == (incident.impact, incident.urgency, incident.priority)
    for field in ("acknowledged_at", "restored_at", "resolved_at", "closed_at", "cancelled_at"):
        value = getattr(incident, field)
        assert row[field] == (value.isoformat() if value else None), field
