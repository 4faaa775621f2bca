"""The account view's copy of the incident rules agrees with the aggregate, for any story."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.incident import Incident
from projections.account_incidents import _apply
from projections.records import envelope_of

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
ID = UUID("00000000-0000-4000-8000-000000000001")
CHILD_A = UUID("00000000-0000-4000-8000-00000000000a")
CHILD_B = UUID("00000000-0000-4000-8000-00000000000b")
PARENT = UUID("00000000-0000-4000-8000-0000000000ff")
PROBLEM_A = UUID("00000000-0000-4000-8000-0000000000a1")
PROBLEM_B = UUID("00000000-0000-4000-8000-0000000000b1")

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
    "assign_hotline": lambda i, at: i.assign(group="N1 hotline", actor="a", at=at),
    "categorise_network": lambda i, at: i.categorise(category="network", actor="a", at=at),
    "categorise_terminal": lambda i, at: i.categorise(category="payment terminal", actor="a", at=at),
    "escalate_n2": lambda i, at: i.escalate_functionally(to_group="N2 network", reason="r", actor="a", at=at),
    "escalate_n3": lambda i, at: i.escalate_functionally(to_group="N3 experts", reason="r", actor="a", at=at),
    "escalate_roc": lambda i, at: i.escalate_hierarchically(level="roc", reason="r", actor="a", at=at),
    "escalate_management": lambda i, at: i.escalate_hierarchically(level="management", reason="r", actor="a", at=at),
    "declare_major": lambda i, at: i.declare_major(reason="r", actor="a", at=at),
    "attach_child_a": lambda i, at: i.attach_child(child_id=CHILD_A, actor="a", at=at),
    "attach_child_b": lambda i, at: i.attach_child(child_id=CHILD_B, actor="a", at=at),
    "attach_to_parent": lambda i, at: i.attach_to_parent(parent_id=PARENT, actor="a", at=at),
    "link_problem_a": lambda i, at: i.link_problem(problem_id=PROBLEM_A, actor="a", at=at),
    "link_problem_b": lambda i, at: i.link_problem(problem_id=PROBLEM_B, actor="a", at=at),
    "unlink_problem_a": lambda i, at: i.unlink_problem(problem_id=PROBLEM_A, actor="a", at=at),
    "workaround_a": lambda i, at: i.note_workaround(problem_id=PROBLEM_A, workaround="reboot", actor="a", at=at),
    "workaround_b": lambda i, at: i.note_workaround(problem_id=PROBLEM_B, workaround="4G", actor="a", at=at),
    "comment": lambda i, at: i.comment(text="still down", author="customer", customer_visible=True, actor="c", at=at),
    "work_note": lambda i, at: i.comment(text="ticket 44", author="a", customer_visible=False, actor="a", at=at),
}


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(sorted(COMMANDS)), max_size=30),
    st.sampled_from([None, "network"]),
    st.sampled_from([None, UUID("00000000-0000-4000-8000-0000000000cc")]),
)
def test_view_row_matches_aggregate_after_any_sequence_of_commands(
    commands: list[str], category: str | None, related: UUID | None
) -> None:
    incident = Incident.log(id=ID, account="acme", title="t", impact=2, urgency=2, channel="phone",
                            reporter="r", actor="a", at=T0, ci="ci", category=category,
                            related_incident=related)  # fmt: skip
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
    assert (row["category"], row["escalation_level"], row["workaround"]) == (
        incident.category, incident.escalation_level, incident.workaround,
    )  # fmt: skip
    assert bool(row["is_major"]) == incident.is_major
    assert row["related_incident"] == (str(incident.related_incident) if incident.related_incident else None)
    assert row["parent_id"] == (str(incident.parent_id) if incident.parent_id else None)
    assert json.loads(row["children"]) == [str(c) for c in incident.children]
    assert json.loads(row["problem_ids"]) == [str(p) for p in incident.problem_ids]
    for field in ("acknowledged_at", "restored_at", "resolved_at", "closed_at", "cancelled_at"):
        value = getattr(incident, field)
        assert row[field] == (value.isoformat() if value else None), field
