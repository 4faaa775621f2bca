"""Every transition rule of the Incident aggregate, called directly with explicit instants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest

from domain.errors import DomainError, IllegalTransition, InvalidCommand
from domain.incident import (
    ACKNOWLEDGED,
    ASSIGNED,
    ASSIGNMENT_GROUPS,
    CANCELLED,
    CLOSED,
    COMMENT_MAX_LENGTH,
    HOLD_REASONS,
    NEW,
    ON_HOLD,
    RESOLUTION_CODES,
    RESOLVED,
    RESTORED,
    Incident,
    attach,
)

INCIDENT_ID = UUID("6f1c1e0a-0000-4000-8000-000000000042")
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
HOTLINE = "hotline-n1"
TECHNICIAN = "n2-tech"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def log(**overrides: Any) -> Incident:
    fields: dict[str, Any] = {
        "id": INCIDENT_ID,
        "account": "resto-chain",
        "service": "site-network",
        "ci": "router-resto-042",
        "title": "Router down at restaurant 42",
        "impact": 2,
        "urgency": 2,
        "channel": "phone",
        "reporter": "restaurant manager",
        "actor": HOTLINE,
        "at": at(0),
    }
    fields.update(overrides)
    return Incident.log(**fields)


def event_names(incident: Incident) -> list[str]:
    return [type(e).__name__ for e in incident.collect_events()]


def assert_refused(
    incident: Incident,
    error: type[DomainError],
    command: Callable[[], object],
    match: str | None = None,
) -> DomainError:
    """The command raises `error` and leaves the incident exactly as it was: no event, no change."""
    pending = len(incident.pending_events)
    before = incident.summary()
    with pytest.raises(error, match=match) as refusal:
        command()
    assert len(incident.pending_events) == pending
    assert incident.summary() == before
    return refusal.value


# -- incidents in each status -----------------------------------------------------------------


def new() -> Incident:
    return log()


def acknowledged() -> Incident:
    incident = new()
    incident.acknowledge(actor=HOTLINE, at=at(1))
    return incident


def assigned() -> Incident:
    incident = acknowledged()
    incident.assign(group="N2 network", actor=HOTLINE, at=at(2))
    return incident


def on_hold() -> Incident:
    incident = assigned()
    incident.hold(reason="awaiting_supplier", note="carrier ticket 881", actor=TECHNICIAN, at=at(3))
    return incident


def restored() -> Incident:
    incident = assigned()
    incident.restore(note="backup link up", actor=TECHNICIAN, at=at(4))
    return incident


def resolved() -> Incident:
    incident = restored()
    incident.resolve(code="fixed", notes="router replaced", actor=TECHNICIAN, at=at(5))
    return incident


def closed() -> Incident:
    incident = resolved()
    incident.close(actor=HOTLINE, at=at(6))
    return incident


def cancelled() -> Incident:
    incident = acknowledged()
    incident.cancel(reason="duplicate of another incident", actor=HOTLINE, at=at(2))
    return incident


BUILDERS: dict[str, Callable[[], Incident]] = {
    NEW: new,
    ACKNOWLEDGED: acknowledged,
    ASSIGNED: assigned,
    ON_HOLD: on_hold,
    RESTORED: restored,
    RESOLVED: resolved,
    CLOSED: closed,
    CANCELLED: cancelled,
}

LATER = at(60)

COMMANDS: dict[str, Callable[[Incident, datetime], None]] = {
    "acknowledge": lambda i, t: i.acknowledge(actor=TECHNICIAN, at=t),
    "assign": lambda i, t: i.assign(group="N3 systems", assignee="alice", actor=TECHNICIAN, at=t),
    "hold": lambda i, t: i.hold(reason="awaiting_customer", actor=TECHNICIAN, at=t),
    "resume": lambda i, t: i.resume(actor=TECHNICIAN, at=t),
    "restore": lambda i, t: i.restore(actor=TECHNICIAN, at=t),
    "resolve": lambda i, t: i.resolve(code="fixed", actor=TECHNICIAN, at=t),
    "reopen": lambda i, t: i.reopen(reason="down again", actor=TECHNICIAN, at=t),
    "close": lambda i, t: i.close(actor=TECHNICIAN, at=t),
    "cancel": lambda i, t: i.cancel(reason="logged by mistake", actor=TECHNICIAN, at=t),
}


# -- logging --------------------------------------------------------------------------------------


def test_logging_records_a_new_incident_with_its_details() -> None:
    incident = log(description="  no payment terminal works  ")

    assert incident.id == INCIDENT_ID
    assert incident.version == 1
    assert incident.status == NEW
    assert incident.is_open
    assert incident.account == "resto-chain"
    assert incident.service == "site-network"
    assert incident.ci == "router-resto-042"
    assert incident.channel == "phone"
    assert incident.reporter == "restaurant manager"
    assert incident.logged_at == at(0)
    assert incident.last_at == at(0)
    assert incident.acknowledged_at is None
    assert incident.restored_at is None
    assert event_names(incident) == ["Logged"]


def test_logging_trims_the_texts_it_requires() -> None:
    incident = log(account="  resto-chain ", title=" Router down ", reporter=" manager ", service=" wan ")

    assert (incident.account, incident.title, incident.reporter, incident.service) == (
        "resto-chain",
        "Router down",
        "manager",
        "wan",
    )


def test_logging_on_a_ci_alone_is_accepted() -> None:
    incident = log(service=None, ci="router-resto-042")

    assert incident.service is None
    assert incident.ci == "router-resto-042"


def test_logging_on_a_service_alone_is_accepted() -> None:
    incident = log(service="site-network", ci="  ")

    assert incident.service == "site-network"
    assert incident.ci is None


@pytest.mark.parametrize("channel", ["phone", "extranet", "monitoring", "email"])
def test_logging_accepts_every_known_channel(channel: str) -> None:
    assert log(channel=channel).channel == channel


INVALID_LOGGINGS: list[tuple[dict[str, Any], str]] = [
    ({"title": ""}, "title is required"),
    ({"title": "   "}, "title is required"),
    ({"title": None}, "title is required"),
    ({"account": ""}, "account is required"),
    ({"account": None}, "account is required"),
    ({"reporter": ""}, "reporter is required"),
    ({"reporter": " "}, "reporter is required"),
    ({"actor": ""}, "actor is required"),
    ({"actor": None}, "actor is required"),
    ({"service": None, "ci": None}, "service or the CI"),
    ({"service": "  ", "ci": ""}, "service or the CI"),
    ({"channel": "fax"}, "channel must be one of"),
    ({"channel": ""}, "channel must be one of"),
    ({"impact": 0}, "impact must be 1"),
    ({"impact": 4}, "impact must be 1"),
    ({"impact": True}, "impact must be 1"),
    ({"impact": "1"}, "impact must be 1"),
    ({"impact": 1.0}, "impact must be 1"),
    ({"urgency": 0}, "urgency must be 1"),
    ({"urgency": 4}, "urgency must be 1"),
    ({"urgency": False}, "urgency must be 1"),
    ({"urgency": None}, "urgency must be 1"),
    ({"at": datetime(2025, 3, 3, 9, 0)}, "time zone"),
    ({"at": "2025-03-03T09:00:00+00:00"}, "time zone"),
]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(overrides, message, id=",".join(f"{k}={v!r}" for k, v in overrides.items()))
        for overrides, message in INVALID_LOGGINGS
    ],
)
def test_logging_with_invalid_details_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        log(**overrides)


@pytest.mark.parametrize(
    ("impact", "urgency", "priority"),
    [
        (1, 1, 1),
        (1, 2, 2),
        (1, 3, 3),
        (2, 1, 2),
        (2, 2, 3),
        (2, 3, 4),
        (3, 1, 3),
        (3, 2, 4),
        (3, 3, 4),
    ],
)
def test_priority_comes_from_impact_and_urgency_through_the_matrix(impact: int, urgency: int, priority: int) -> None:
    incident = log(impact=impact, urgency=urgency)

    assert (incident.impact, incident.urgency, incident.priority) == (impact, urgency, priority)


# -- acknowledge ----------------------------------------------------------------------------------


def test_acknowledging_stops_the_response_clock() -> None:
    incident = new()
    incident.acknowledge(actor=HOTLINE, at=at(1))

    assert incident.status == ACKNOWLEDGED
    assert incident.acknowledged_at == at(1)
    assert event_names(incident) == ["Logged", "Acknowledged"]


def test_acknowledging_twice_is_refused() -> None:
    incident = acknowledged()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.acknowledge(actor=TECHNICIAN, at=at(2)),
        match="already acknowledged",
    )
    assert incident.acknowledged_at == at(1)


def test_acknowledging_an_assigned_incident_keeps_it_assigned() -> None:
    incident = new()
    incident.assign(group="N2 network", actor=HOTLINE, at=at(1))
    incident.acknowledge(actor=HOTLINE, at=at(2))

    assert incident.status == ASSIGNED
    assert incident.acknowledged_at == at(2)


def test_acknowledging_while_on_hold_then_resuming_leaves_it_acknowledged() -> None:
    incident = new()
    incident.hold(reason="awaiting_customer", actor=HOTLINE, at=at(1))
    incident.acknowledge(actor=HOTLINE, at=at(2))

    assert incident.status == ON_HOLD
    incident.resume(actor=HOTLINE, at=at(3))
    assert incident.status == ACKNOWLEDGED


# -- assign ---------------------------------------------------------------------------------------


def test_assigning_gives_the_incident_to_a_group_and_a_person() -> None:
    incident = acknowledged()
    incident.assign(group=" N2 network ", assignee=" bob ", actor=HOTLINE, at=at(2))

    assert incident.status == ASSIGNED
    assert (incident.assignment_group, incident.assignee) == ("N2 network", "bob")
    assert event_names(incident)[-1] == "Assigned"


def test_assigning_a_new_incident_makes_it_assigned() -> None:
    incident = new()
    incident.assign(group="N2 network", actor=HOTLINE, at=at(1))

    assert incident.status == ASSIGNED
    assert incident.assignee is None


def test_reassigning_to_the_same_group_and_assignee_is_refused() -> None:
    incident = acknowledged()
    incident.assign(group="N2 network", assignee="bob", actor=HOTLINE, at=at(2))

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.assign(group="N2 network", assignee=" bob ", actor=HOTLINE, at=at(3)),
        match=r"already assigned to bob \(N2 network\)",
    )


def test_reassigning_to_the_same_group_without_assignee_is_refused() -> None:
    incident = assigned()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.assign(group="N2 network", assignee="  ", actor=HOTLINE, at=at(3)),
        match="already assigned to N2 network",
    )


def test_reassigning_to_another_person_of_the_same_group_is_accepted() -> None:
    incident = assigned()
    incident.assign(group="N2 network", assignee="alice", actor=HOTLINE, at=at(3))

    assert (incident.assignment_group, incident.assignee) == ("N2 network", "alice")
    assert incident.status == ASSIGNED


def test_assigning_without_a_group_is_refused() -> None:
    incident = acknowledged()

    assert_refused(
        incident,
        InvalidCommand,
        lambda: incident.assign(group=" ", actor=HOTLINE, at=at(2)),
        match="group is required",
    )


def test_assigning_while_on_hold_keeps_it_on_hold_and_resuming_returns_to_assigned() -> None:
    incident = acknowledged()
    incident.hold(reason="awaiting_customer", actor=HOTLINE, at=at(2))
    incident.assign(group="N2 network", assignee="bob", actor=HOTLINE, at=at(3))

    assert incident.status == ON_HOLD
    assert incident.hold_reason == "awaiting_customer"
    assert incident.assignment_group == "N2 network"

    incident.resume(actor=HOTLINE, at=at(4))

    assert incident.status == ASSIGNED
    assert incident.hold_reason is None


def test_assigning_a_restored_incident_keeps_service_restored() -> None:
    incident = restored()
    incident.assign(group="N3 systems", actor=TECHNICIAN, at=at(5))

    assert incident.status == RESTORED
    assert incident.assignment_group == "N3 systems"


# -- hold and resume ------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", HOLD_REASONS)
def test_putting_on_hold_records_the_reason(reason: str) -> None:
    incident = assigned()
    incident.hold(reason=reason, note="see ticket", actor=TECHNICIAN, at=at(3))

    assert incident.status == ON_HOLD
    assert incident.hold_reason == reason
    assert event_names(incident)[-1] == "PutOnHold"


def test_putting_on_hold_twice_is_refused() -> None:
    incident = on_hold()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.hold(reason="awaiting_customer", actor=TECHNICIAN, at=at(4)),
        match=r"already on hold \(awaiting_supplier\)",
    )


@pytest.mark.parametrize("reason", ["lunch", "", "Awaiting_Supplier", None])
def test_putting_on_hold_for_an_unknown_reason_is_refused(reason: Any) -> None:
    incident = assigned()

    assert_refused(
        incident,
        InvalidCommand,
        lambda: incident.hold(reason=reason, actor=TECHNICIAN, at=at(3)),
        match="reason must be one of",
    )


@pytest.mark.parametrize("status", [RESOLVED, CLOSED, CANCELLED])
def test_putting_a_finished_incident_on_hold_is_refused(status: str) -> None:
    incident = BUILDERS[status]()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.hold(reason="awaiting_customer", actor=TECHNICIAN, at=LATER),
    )


@pytest.mark.parametrize(
    ("builder", "status_after"),
    [(new, NEW), (acknowledged, ACKNOWLEDGED), (assigned, ASSIGNED), (restored, RESTORED)],
)
def test_resuming_returns_to_the_status_before_the_hold(builder: Callable[[], Incident], status_after: str) -> None:
    incident = builder()
    incident.hold(reason="awaiting_change", actor=TECHNICIAN, at=at(10))
    incident.resume(actor=TECHNICIAN, at=at(11))

    assert incident.status == status_after
    assert incident.hold_reason is None
    assert event_names(incident)[-2:] == ["PutOnHold", "Resumed"]


@pytest.mark.parametrize("status", [NEW, ACKNOWLEDGED, ASSIGNED, RESTORED, RESOLVED, CLOSED])
def test_resuming_an_incident_that_is_not_on_hold_is_refused(status: str) -> None:
    incident = BUILDERS[status]()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.resume(actor=TECHNICIAN, at=LATER),
        match="not on hold",
    )


# -- restore --------------------------------------------------------------------------------------


def test_restoring_service_records_the_gtr_stop_point() -> None:
    incident = assigned()
    incident.restore(note="backup 4G link up", actor=TECHNICIAN, at=at(4))

    assert incident.status == RESTORED
    assert incident.restored_at == at(4)
    assert incident.is_open
    assert event_names(incident)[-1] == "ServiceRestored"


def test_restoring_service_twice_is_refused() -> None:
    incident = restored()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.restore(actor=TECHNICIAN, at=at(5)),
        match="already restored",
    )
    assert incident.restored_at == at(4)


def test_restoring_service_while_on_hold_takes_it_off_hold() -> None:
    incident = on_hold()
    incident.restore(actor=TECHNICIAN, at=at(4))

    assert incident.status == RESTORED
    assert incident.hold_reason is None


def test_restoring_service_on_a_restored_incident_put_on_hold_is_refused() -> None:
    incident = restored()
    incident.hold(reason="awaiting_customer", actor=TECHNICIAN, at=at(5))

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.restore(actor=TECHNICIAN, at=at(6)),
        match="already restored",
    )


def test_restoring_service_on_a_resolved_incident_is_refused() -> None:
    incident = resolved()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.restore(actor=TECHNICIAN, at=at(6)),
        match="reopen it first",
    )


# -- resolve --------------------------------------------------------------------------------------


def test_resolving_without_prior_restoration_restores_service_first() -> None:
    incident = assigned()
    incident.collect_events()

    incident.resolve(code="fixed", actor=TECHNICIAN, at=at(7))

    assert event_names(incident) == ["ServiceRestored", "Resolved"]
    assert incident.status == RESOLVED
    assert incident.restored_at == at(7)
    assert incident.resolved_at == at(7)
    assert incident.resolution_code == "fixed"
    assert not incident.is_open


def test_resolving_after_restoration_keeps_the_earlier_gtr_stop_point() -> None:
    incident = restored()
    incident.collect_events()

    incident.resolve(code="workaround", notes="static route", actor=TECHNICIAN, at=at(9))

    assert event_names(incident) == ["Resolved"]
    assert incident.restored_at == at(4)
    assert incident.resolved_at == at(9)


def test_resolving_an_incident_on_hold_is_accepted() -> None:
    incident = on_hold()
    incident.resolve(code="third_party", actor=TECHNICIAN, at=at(8))

    assert incident.status == RESOLVED
    assert incident.hold_reason is None


@pytest.mark.parametrize("code", RESOLUTION_CODES)
def test_resolving_accepts_every_resolution_code(code: str) -> None:
    incident = restored()
    incident.resolve(code=code, actor=TECHNICIAN, at=at(9))

    assert incident.resolution_code == code


@pytest.mark.parametrize("code", ["solved", "", None, "FIXED"])
def test_resolving_with_an_unknown_code_is_refused(code: Any) -> None:
    incident = assigned()

    assert_refused(
        incident,
        InvalidCommand,
        lambda: incident.resolve(code=code, actor=TECHNICIAN, at=at(9)),
        match="resolution code must be one of",
    )
    assert incident.restored_at is None


@pytest.mark.parametrize("status", [RESOLVED, CLOSED, CANCELLED])
def test_resolving_a_finished_incident_is_refused(status: str) -> None:
    incident = BUILDERS[status]()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.resolve(code="fixed", actor=TECHNICIAN, at=LATER),
    )


# -- reopen ---------------------------------------------------------------------------------------


def test_reopening_a_resolved_incident_means_service_is_down_again() -> None:
    incident = resolved()
    incident.reopen(reason="router fails again", actor=HOTLINE, at=at(20))

    assert incident.status == ASSIGNED
    assert incident.is_open
    assert incident.restored_at is None
    assert incident.resolved_at is None
    assert incident.resolution_code is None
    assert incident.assignment_group == "N2 network"
    assert event_names(incident)[-1] == "Reopened"


def test_reopening_an_unassigned_incident_returns_it_to_acknowledged() -> None:
    incident = acknowledged()
    incident.resolve(code="user_error", actor=HOTLINE, at=at(2))
    incident.reopen(reason="it was not the user", actor=HOTLINE, at=at(3))

    assert incident.status == ACKNOWLEDGED
    assert incident.restored_at is None


def test_a_reopened_incident_can_be_restored_and_resolved_again() -> None:
    incident = resolved()
    incident.reopen(reason="router fails again", actor=HOTLINE, at=at(20))
    incident.restore(actor=TECHNICIAN, at=at(30))
    incident.resolve(code="fixed", actor=TECHNICIAN, at=at(40))

    assert incident.status == RESOLVED
    assert incident.restored_at == at(30)


def test_reopening_without_a_reason_is_refused() -> None:
    incident = resolved()

    assert_refused(
        incident,
        InvalidCommand,
        lambda: incident.reopen(reason="  ", actor=HOTLINE, at=at(20)),
        match="reason is required",
    )


@pytest.mark.parametrize("status", [NEW, ACKNOWLEDGED, ASSIGNED, ON_HOLD, RESTORED, CANCELLED])
def test_reopening_an_incident_that_is_not_resolved_is_refused(status: str) -> None:
    incident = BUILDERS[status]()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.reopen(reason="down again", actor=HOTLINE, at=LATER),
        match="cannot reopen",
    )


def test_reopening_a_closed_incident_is_refused() -> None:
    incident = closed()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.reopen(reason="down again", actor=HOTLINE, at=LATER),
        match="a closed incident cannot be reopened, log a new one",
    )


# -- close ----------------------------------------------------------------------------------------


def test_closing_a_resolved_incident_closes_it_for_good() -> None:
    incident = resolved()
    incident.close(actor=HOTLINE, at=at(6))

    assert incident.status == CLOSED
    assert incident.closed_at == at(6)
    assert not incident.is_open
    assert event_names(incident)[-1] == "Closed"


def test_closing_an_unresolved_incident_is_refused() -> None:
    incident = assigned()

    error = assert_refused(incident, IllegalTransition, lambda: incident.close(actor=HOTLINE, at=at(3)))
    assert "resolved" in str(error)
    assert str(incident.id) in str(error)


@pytest.mark.parametrize("status", [NEW, ACKNOWLEDGED, ASSIGNED, ON_HOLD, RESTORED])
def test_closing_a_never_resolved_incident_is_refused_with_the_reason(status: str) -> None:
    incident = BUILDERS[status]()

    error = assert_refused(incident, IllegalTransition, lambda: incident.close(actor=HOTLINE, at=LATER))
    assert "resolved" in str(error)


def test_closing_a_restored_incident_says_it_must_be_resolved_first() -> None:
    incident = restored()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.close(actor=HOTLINE, at=at(5)),
        match="must be resolved first",
    )


@pytest.mark.parametrize("status", [CLOSED, CANCELLED])
def test_closing_a_closed_or_cancelled_incident_is_refused(status: str) -> None:
    incident = BUILDERS[status]()

    assert_refused(incident, IllegalTransition, lambda: incident.close(actor=HOTLINE, at=LATER))


# -- cancel ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [NEW, ACKNOWLEDGED, ASSIGNED, ON_HOLD])
def test_cancelling_before_service_is_restored_is_accepted(status: str) -> None:
    incident = BUILDERS[status]()
    incident.cancel(reason="duplicate", actor=HOTLINE, at=LATER)

    assert incident.status == CANCELLED
    assert incident.cancelled_at == LATER
    assert not incident.is_open
    assert event_names(incident)[-1] == "Cancelled"


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (RESTORED, "service was restored, resolve it instead"),
        (RESOLVED, "it was resolved, close it instead"),
        (CLOSED, "it is closed"),
        (CANCELLED, "it is cancelled"),
    ],
)
def test_cancelling_after_service_was_restored_is_refused(status: str, why: str) -> None:
    incident = BUILDERS[status]()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.cancel(reason="duplicate", actor=HOTLINE, at=LATER),
        match=why,
    )


def test_cancelling_a_restored_incident_put_on_hold_is_refused() -> None:
    incident = restored()
    incident.hold(reason="awaiting_customer", actor=TECHNICIAN, at=at(5))

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.cancel(reason="duplicate", actor=HOTLINE, at=at(6)),
    )


def test_resolving_a_restored_incident_on_hold_takes_it_off_hold() -> None:
    incident = restored()
    incident.hold(reason="awaiting_customer", actor=TECHNICIAN, at=at(5))
    incident.resolve(code="fixed", actor=TECHNICIAN, at=at(6))

    assert incident.hold_reason is None
    incident.reopen(reason="down again", actor=HOTLINE, at=at(7))
    assert (incident.status, incident.hold_reason) == (ASSIGNED, None)


def test_cancelling_an_incident_on_hold_takes_it_off_hold() -> None:
    incident = on_hold()
    incident.cancel(reason="duplicate", actor=HOTLINE, at=at(9))

    assert (incident.status, incident.hold_reason) == (CANCELLED, None)


def test_cancelling_without_a_reason_is_refused() -> None:
    incident = acknowledged()

    assert_refused(
        incident,
        InvalidCommand,
        lambda: incident.cancel(reason="", actor=HOTLINE, at=at(2)),
        match="reason is required",
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_on_a_cancelled_incident_is_refused(command: str) -> None:
    incident = cancelled()

    assert_refused(incident, IllegalTransition, lambda: COMMANDS[command](incident, LATER))


@pytest.mark.parametrize("command", [name for name in COMMANDS if name not in ("reopen", "close")])
def test_only_reopen_and_close_are_accepted_on_a_resolved_incident(command: str) -> None:
    incident = resolved()

    assert_refused(incident, IllegalTransition, lambda: COMMANDS[command](incident, LATER))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_on_a_closed_incident_is_refused(command: str) -> None:
    incident = closed()

    assert_refused(incident, IllegalTransition, lambda: COMMANDS[command](incident, LATER))


# -- instants and actors --------------------------------------------------------------------------


COMMAND_STATES = {
    "acknowledge": new,
    "assign": acknowledged,
    "hold": assigned,
    "resume": on_hold,
    "restore": assigned,
    "resolve": restored,
    "reopen": resolved,
    "close": resolved,
    "cancel": assigned,
}
"""For each command, an incident on which it would be accepted at a valid instant."""


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_dated_before_the_last_recorded_step_is_refused(command: str) -> None:
    incident = COMMAND_STATES[command]()
    earlier = incident.last_at - timedelta(seconds=1)

    assert_refused(
        incident,
        InvalidCommand,
        lambda: COMMANDS[command](incident, earlier),
        match="before its last recorded step",
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_at_the_same_instant_as_the_last_step_is_accepted(command: str) -> None:
    incident = COMMAND_STATES[command]()
    version = incident.version

    COMMANDS[command](incident, incident.last_at)

    assert incident.version > version


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_with_a_naive_instant_is_refused(command: str) -> None:
    incident = COMMAND_STATES[command]()

    assert_refused(
        incident,
        InvalidCommand,
        lambda: COMMANDS[command](incident, datetime(2025, 3, 3, 12, 0)),
        match="time zone",
    )


def test_instants_in_other_time_zones_are_compared_as_instants() -> None:
    incident = new()
    paris_winter = timezone(timedelta(hours=1))

    incident.acknowledge(actor=HOTLINE, at=datetime(2025, 3, 3, 10, 30, tzinfo=paris_winter))

    assert incident.last_at == at(30)
    assert_refused(
        incident,
        InvalidCommand,
        lambda: incident.assign(group="N2 network", actor=HOTLINE, at=at(29)),
        match="before its last recorded step",
    )


@pytest.mark.parametrize("actor", ["", "   ", None])
def test_a_command_without_an_actor_is_refused(actor: Any) -> None:
    incident = new()

    assert_refused(
        incident,
        InvalidCommand,
        lambda: incident.acknowledge(actor=actor, at=at(1)),
        match="actor is required",
    )


# -- replay ---------------------------------------------------------------------------------------


def test_replaying_the_events_rebuilds_the_same_incident() -> None:
    incident = on_hold()
    incident.resume(actor=TECHNICIAN, at=at(4))
    incident.resolve(code="fixed", actor=TECHNICIAN, at=at(5))
    incident.reopen(reason="down again", actor=HOTLINE, at=at(6))
    incident.resolve(code="workaround", actor=TECHNICIAN, at=at(7))
    incident.close(actor=HOTLINE, at=at(8))

    replayed: Incident | None = None
    for domain_event in incident.collect_events():
        replayed = domain_event.mutate(replayed)

    assert replayed is not None
    assert replayed.summary() == incident.summary()


# -- category ---------------------------------------------------------------------------------------


def test_logging_records_the_category_trimmed() -> None:
    assert log(category="  payment terminal ").category == "payment terminal"
    assert log(category="  ").category is None
    assert log().category is None


def test_categorising_records_the_new_and_the_previous_category() -> None:
    incident = log(category="network")
    incident.categorise(category="payment terminal", actor=HOTLINE, at=at(1))

    assert incident.category == "payment terminal"
    last = incident.collect_events()[-1]
    assert isinstance(last, Incident.Categorised)
    assert (last.category, last.previous_category) == ("payment terminal", "network")


def test_categorising_a_resolved_incident_is_accepted() -> None:
    incident = resolved()
    incident.categorise(category="network", actor=HOTLINE, at=at(6))

    assert incident.category == "network"


def test_categorising_in_the_same_category_is_refused() -> None:
    incident = log(category="network")

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.categorise(category=" network ", actor=HOTLINE, at=at(1)),
        match="already in category 'network'",
    )


@pytest.mark.parametrize("category", ["", "  ", None])
def test_categorising_without_a_category_is_refused(category: Any) -> None:
    incident = new()

    assert_refused(
        incident, InvalidCommand, lambda: incident.categorise(category=category, actor=HOTLINE, at=at(1)), "category"
    )


@pytest.mark.parametrize("status", [CLOSED, CANCELLED])
def test_categorising_a_closed_or_cancelled_incident_is_refused(status: str) -> None:
    incident = BUILDERS[status]()

    assert_refused(
        incident, IllegalTransition, lambda: incident.categorise(category="network", actor=HOTLINE, at=LATER)
    )


# -- priority matrix of the account ---------------------------------------------------------------

STRICT_MATRIX = {(i, u): 1 if i == 1 else 2 for i in (1, 2, 3) for u in (1, 2, 3)}
"""An account where anything of high impact is critical and everything else high."""


def test_logging_takes_the_priority_from_the_accounts_matrix() -> None:
    assert log(impact=1, urgency=3, matrix=STRICT_MATRIX).priority == 1
    assert log(impact=3, urgency=3, matrix=STRICT_MATRIX).priority == 2
    assert log(impact=1, urgency=3).priority == 3  # the common matrix by default


def test_reprioritising_uses_the_accounts_matrix() -> None:
    incident = log(impact=3, urgency=3, matrix=STRICT_MATRIX)
    incident.reprioritise(impact=1, urgency=3, actor=HOTLINE, at=at(1), matrix=STRICT_MATRIX)

    last = incident.collect_events()[-1]
    assert isinstance(last, Incident.Reprioritised)
    assert (last.previous_priority, last.priority, incident.priority) == (2, 1, 1)


# -- functional escalation ------------------------------------------------------------------------


def at_hotline() -> Incident:
    incident = acknowledged()
    incident.assign(group="N1 hotline", assignee="julie", actor=HOTLINE, at=at(2))
    return incident


def test_the_support_groups_have_tiers() -> None:
    assert ASSIGNMENT_GROUPS == {
        "N1 hotline": 1,
        "N2 systems": 2,
        "N2 network": 2,
        "field technicians": 2,
        "N3 experts": 3,
    }


def test_escalating_functionally_hands_the_incident_to_a_higher_tier_group_and_nobody_in_it() -> None:
    incident = at_hotline()
    incident.escalate_functionally(to_group="N2 network", reason="carrier link suspected", actor=HOTLINE, at=at(3))

    assert (incident.status, incident.assignment_group, incident.assignee) == (ASSIGNED, "N2 network", None)
    last = incident.collect_events()[-1]
    assert isinstance(last, Incident.FunctionallyEscalated)
    assert (last.from_group, last.to_group, last.reason) == ("N1 hotline", "N2 network", "carrier link suspected")
    assert incident.summary()["support_tier"] == 2


def test_escalating_from_tier_two_to_tier_three_is_accepted() -> None:
    incident = assigned()  # N2 network
    incident.escalate_functionally(to_group="N3 experts", reason="BGP flapping", actor=TECHNICIAN, at=at(3))

    assert incident.assignment_group == "N3 experts"


def test_escalating_while_on_hold_keeps_it_on_hold() -> None:
    incident = at_hotline()
    incident.hold(reason="awaiting_customer", actor=HOTLINE, at=at(3))
    incident.escalate_functionally(to_group="N2 systems", reason="server side", actor=HOTLINE, at=at(4))

    assert (incident.status, incident.assignment_group) == (ON_HOLD, "N2 systems")
    incident.resume(actor=HOTLINE, at=at(5))
    assert incident.status == ASSIGNED


@pytest.mark.parametrize(
    ("to_group", "message"),
    [
        (
            "N2 systems",
            r"from N2 network \(tier 2\) to N2 systems \(tier 2\): a functional escalation goes to a higher tier",
        ),
        ("N1 hotline", r"from N2 network \(tier 2\) to N1 hotline \(tier 1\)"),
        ("N2 network", r"\(tier 2\) to N2 network \(tier 2\)"),
    ],
)
def test_escalating_to_the_same_or_a_lower_tier_is_refused(to_group: str, message: str) -> None:
    incident = assigned()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.escalate_functionally(to_group=to_group, reason="r", actor=TECHNICIAN, at=at(3)),
        match=message,
    )


def test_escalating_an_unassigned_incident_is_refused() -> None:
    incident = acknowledged()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.escalate_functionally(to_group="N2 network", reason="r", actor=HOTLINE, at=at(2)),
        match="not assigned to a group yet, assign it first",
    )


def test_escalating_to_a_group_of_unknown_tier_is_refused() -> None:
    incident = at_hotline()

    assert_refused(
        incident,
        InvalidCommand,
        lambda: incident.escalate_functionally(to_group="Carrier X", reason="r", actor=HOTLINE, at=at(3)),
        match="support tier is unknown; escalate to one of N1 hotline, N2 systems",
    )


def test_escalating_from_a_group_of_unknown_tier_is_refused() -> None:
    incident = acknowledged()
    incident.assign(group="Carrier X", actor=HOTLINE, at=at(2))

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.escalate_functionally(to_group="N3 experts", reason="r", actor=HOTLINE, at=at(3)),
        match="the tier of Carrier X is unknown, assign it instead",
    )


def test_escalating_without_a_reason_is_refused() -> None:
    incident = at_hotline()

    assert_refused(
        incident,
        InvalidCommand,
        lambda: incident.escalate_functionally(to_group="N2 network", reason=" ", actor=HOTLINE, at=at(3)),
        match="reason is required",
    )


@pytest.mark.parametrize("status", [RESOLVED, CLOSED, CANCELLED])
def test_escalating_a_finished_incident_is_refused(status: str) -> None:
    incident = BUILDERS[status]()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.escalate_functionally(to_group="N3 experts", reason="r", actor=HOTLINE, at=LATER),
        match=f"cannot escalate incident {INCIDENT_ID}: it is {status}",
    )


# -- hierarchical escalation ------------------------------------------------------------------------


def test_escalating_hierarchically_to_the_roc_then_to_management() -> None:
    incident = assigned()
    incident.escalate_hierarchically(level="roc", reason="GTR at 90 %", actor=TECHNICIAN, at=at(3))
    assert incident.escalation_level == "roc"

    incident.escalate_hierarchically(level="management", reason="GTR breached", actor=TECHNICIAN, at=at(4))

    assert incident.escalation_level == "management"
    assert event_names(incident)[-2:] == ["HierarchicallyEscalated", "HierarchicallyEscalated"]


@pytest.mark.parametrize(
    ("first", "then", "message"),
    [
        ("roc", "roc", "already escalated to the ROC"),
        ("management", "roc", "cannot escalate incident .* to the ROC: it was already escalated to management"),
        ("management", "management", "already escalated to management"),
    ],
)
def test_escalating_hierarchically_to_the_same_or_a_lower_level_is_refused(first: str, then: str, message: str) -> None:
    incident = assigned()
    incident.escalate_hierarchically(level=first, reason="r", actor=TECHNICIAN, at=at(3))

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.escalate_hierarchically(level=then, reason="r", actor=TECHNICIAN, at=at(4)),
        match=message,
    )


@pytest.mark.parametrize("level", ["director", "", None, "ROC"])
def test_escalating_hierarchically_to_an_unknown_level_is_refused(level: Any) -> None:
    incident = assigned()

    assert_refused(
        incident,
        InvalidCommand,
        lambda: incident.escalate_hierarchically(level=level, reason="r", actor=TECHNICIAN, at=at(3)),
        match="level must be one of roc, management",
    )


@pytest.mark.parametrize("status", [RESOLVED, CLOSED, CANCELLED])
def test_escalating_a_finished_incident_hierarchically_is_refused(status: str) -> None:
    incident = BUILDERS[status]()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.escalate_hierarchically(level="roc", reason="r", actor=TECHNICIAN, at=LATER),
    )


# -- major incident -----------------------------------------------------------------------------------


def test_declaring_a_major_incident() -> None:
    incident = assigned()
    assert not incident.is_major

    incident.declare_major(reason="40 restaurants cannot take card payments", actor=HOTLINE, at=at(3))

    assert incident.is_major
    assert incident.major_declared_at == at(3)
    assert incident.summary()["is_major"] is True
    assert event_names(incident)[-1] == "MajorIncidentDeclared"


def test_declaring_a_major_incident_twice_is_refused() -> None:
    incident = assigned()
    incident.declare_major(reason="r", actor=HOTLINE, at=at(3))

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.declare_major(reason="r", actor=HOTLINE, at=at(4)),
        match="already is a major incident",
    )


@pytest.mark.parametrize("status", [RESOLVED, CLOSED, CANCELLED])
def test_declaring_a_finished_incident_major_is_refused(status: str) -> None:
    incident = BUILDERS[status]()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.declare_major(reason="r", actor=HOTLINE, at=LATER),
        match=f"cannot declare a major incident on incident {INCIDENT_ID}: it is {status}",
    )


def test_declaring_a_major_incident_without_a_reason_is_refused() -> None:
    incident = assigned()

    assert_refused(
        incident, InvalidCommand, lambda: incident.declare_major(reason="", actor=HOTLINE, at=at(3)), "reason"
    )


# -- parent and children (mass outages) ----------------------------------------------------------


def other(number: int, account: str = "resto-chain") -> Incident:
    return log(id=UUID(int=number), account=account, ci=f"router-resto-{number:03d}")


def test_attaching_a_child_records_the_link_on_both_incidents() -> None:
    parent = log(ci="carrier-link-orange-paca", title="Carrier link down")
    child = other(7)

    attach(child, parent, actor=HOTLINE, at=at(1))

    assert parent.children == [child.id]
    assert child.parent_id == parent.id
    assert event_names(parent)[-1] == "ChildAttached"
    assert event_names(child)[-1] == "AttachedToParent"
    assert parent.summary()["children"] == [child.id]
    assert child.summary()["parent_id"] == parent.id


def test_a_parent_gathers_many_children() -> None:
    parent = log(ci="carrier-link-orange-paca")
    children = [other(n) for n in range(1, 6)]
    for n, child in enumerate(children, start=1):
        attach(child, parent, actor=HOTLINE, at=at(n))

    assert parent.children == [c.id for c in children]


def assert_attach_refused(child: Incident, parent: Incident, match: str, when: datetime | None = None) -> None:
    before = (child.summary(), parent.summary(), len(child.pending_events), len(parent.pending_events))
    with pytest.raises(DomainError, match=match):
        attach(child, parent, actor=HOTLINE, at=when or at(30))
    assert (child.summary(), parent.summary(), len(child.pending_events), len(parent.pending_events)) == before


def test_attaching_an_incident_to_itself_is_refused() -> None:
    incident = new()

    assert_attach_refused(incident, incident, "cannot attach incident .* to itself")
    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.attach_child(child_id=INCIDENT_ID, actor=HOTLINE, at=at(1)),
        match="to itself",
    )
    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.attach_to_parent(parent_id=INCIDENT_ID, actor=HOTLINE, at=at(1)),
        match="to itself",
    )


def test_attaching_a_child_that_already_has_a_parent_is_refused() -> None:
    parent, second_parent, child = log(), other(2), other(3)
    attach(child, parent, actor=HOTLINE, at=at(1))

    assert_attach_refused(child, second_parent, f"it is already a child of incident {parent.id}")
    assert_attach_refused(child, parent, f"it is already a child of incident {parent.id}")


def test_attaching_to_a_parent_that_is_itself_a_child_is_refused() -> None:
    parent, middle, child = log(), other(2), other(3)
    attach(middle, parent, actor=HOTLINE, at=at(1))

    assert_attach_refused(child, middle, f"it is itself a child of incident {parent.id}")


def test_attaching_a_parent_under_another_parent_is_refused() -> None:
    parent, child, top = log(), other(2), other(3)
    attach(child, parent, actor=HOTLINE, at=at(1))

    assert_attach_refused(parent, top, r"it is itself the parent of 1 incident\(s\)")


def test_attaching_incidents_of_different_accounts_is_refused() -> None:
    parent, child = log(), other(2, account="bakery-chain")

    assert_attach_refused(child, parent, "of account bakery-chain to incident .*: that one is on account resto-chain")


@pytest.mark.parametrize("status", [CLOSED, CANCELLED])
def test_attaching_a_closed_or_cancelled_child_is_refused(status: str) -> None:
    child = BUILDERS[status]()
    parent = other(9)

    assert_attach_refused(child, parent, f"cannot attach incident {INCIDENT_ID}: it is {status}")


@pytest.mark.parametrize("status", [CLOSED, CANCELLED])
def test_attaching_to_a_closed_or_cancelled_parent_is_refused(status: str) -> None:
    parent = BUILDERS[status]()
    child = other(9)

    assert_attach_refused(child, parent, f"cannot attach a child to incident {INCIDENT_ID}: it is {status}")


def test_attaching_before_the_last_step_of_either_incident_is_refused() -> None:
    parent, child = log(), other(2)
    child.acknowledge(actor=HOTLINE, at=at(10))

    assert_attach_refused(child, parent, "before its last recorded step", when=at(5))


def test_a_resolved_incident_can_still_be_attached() -> None:
    parent, child = other(2), resolved()
    attach(child, parent, actor=HOTLINE, at=at(10))

    assert child.parent_id == parent.id


# -- reopen period ------------------------------------------------------------------------------------


def test_reopening_on_the_last_instant_of_the_reopen_period_is_accepted() -> None:
    incident = resolved()  # at(5)
    incident.reopen(reason="down again", actor=HOTLINE, at=at(5) + timedelta(days=7))

    assert incident.status == ASSIGNED


def test_reopening_after_the_reopen_period_is_refused_and_says_to_log_a_related_incident() -> None:
    incident = resolved()

    error = assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.reopen(reason="down again", actor=HOTLINE, at=at(5) + timedelta(days=7, seconds=1)),
        match="more than 7 days ago",
    )
    assert "log a new incident related to this one" in str(error)


def test_the_reopen_period_is_the_accounts() -> None:
    incident = resolved()
    late = at(5) + timedelta(hours=25)

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.reopen(reason="r", actor=HOTLINE, at=late, reopen_within=timedelta(days=1)),
        match="more than 1 day ago",
    )
    incident.reopen(reason="r", actor=HOTLINE, at=late, reopen_within=timedelta(days=2))
    assert incident.is_open


def test_a_new_incident_may_follow_up_an_earlier_one() -> None:
    earlier = UUID(int=77)
    incident = log(related_incident=earlier)

    assert incident.related_incident == earlier
    assert incident.summary()["related_incident"] == earlier


def test_an_incident_cannot_follow_up_itself() -> None:
    with pytest.raises(InvalidCommand, match="cannot be related to itself"):
        log(related_incident=INCIDENT_ID)


def test_a_related_incident_must_be_an_id() -> None:
    with pytest.raises(InvalidCommand, match="related incident must be a UUID"):
        log(related_incident=str(UUID(int=77)))


# -- problems and workarounds ---------------------------------------------------------------------

PROBLEM = UUID("5e000000-0000-4000-8000-000000000001")
OTHER_PROBLEM = UUID("5e000000-0000-4000-8000-000000000002")


def test_linking_a_problem_records_it() -> None:
    incident = assigned()
    incident.link_problem(problem_id=PROBLEM, actor="problem-manager", at=at(3))
    incident.link_problem(problem_id=OTHER_PROBLEM, actor="problem-manager", at=at(4))

    assert incident.problem_ids == [PROBLEM, OTHER_PROBLEM]
    assert event_names(incident)[-1] == "ProblemLinked"


def test_linking_the_same_problem_twice_is_refused() -> None:
    incident = assigned()
    incident.link_problem(problem_id=PROBLEM, actor="problem-manager", at=at(3))

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.link_problem(problem_id=PROBLEM, actor="problem-manager", at=at(4)),
        match=f"cannot link incident {INCIDENT_ID} to problem {PROBLEM}: it is already linked",
    )


def test_a_closed_incident_can_be_linked_to_the_problem_that_caused_it() -> None:
    incident = closed()
    incident.link_problem(problem_id=PROBLEM, actor="problem-manager", at=LATER)

    assert incident.problem_ids == [PROBLEM]


def test_noting_a_workaround_makes_it_visible_on_the_incident() -> None:
    incident = assigned()
    incident.link_problem(problem_id=PROBLEM, actor="problem-manager", at=at(3))
    incident.note_workaround(problem_id=PROBLEM, workaround=" switch the TPE to 4G ", actor="pm", at=at(4))

    assert (incident.workaround, incident.workaround_problem_id) == ("switch the TPE to 4G", PROBLEM)
    summary = incident.summary()
    assert (summary["workaround"], summary["workaround_problem_id"]) == ("switch the TPE to 4G", PROBLEM)
    last = incident.collect_events()[-1]
    assert isinstance(last, Incident.WorkaroundNoted)
    assert (last.problem_id, last.workaround) == (PROBLEM, "switch the TPE to 4G")


def test_a_later_workaround_replaces_the_earlier_one() -> None:
    incident = assigned()
    incident.link_problem(problem_id=PROBLEM, actor="pm", at=at(3))
    incident.note_workaround(problem_id=PROBLEM, workaround="reboot the router", actor="pm", at=at(4))
    incident.note_workaround(problem_id=PROBLEM, workaround="switch to the backup link", actor="pm", at=at(5))

    assert incident.workaround == "switch to the backup link"


def test_noting_a_workaround_of_a_problem_not_linked_is_refused() -> None:
    incident = assigned()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.note_workaround(problem_id=PROBLEM, workaround="reboot", actor="pm", at=at(3)),
        match=f"it is not linked to problem {PROBLEM}, link it first",
    )


def test_noting_the_same_workaround_twice_is_refused() -> None:
    incident = assigned()
    incident.link_problem(problem_id=PROBLEM, actor="pm", at=at(3))
    incident.note_workaround(problem_id=PROBLEM, workaround="reboot", actor="pm", at=at(4))

    assert_refused(
        incident,
        IllegalTransition,
        lambda: incident.note_workaround(problem_id=PROBLEM, workaround="reboot", actor="pm", at=at(5)),
        match="already noted",
    )


def test_noting_an_empty_workaround_is_refused() -> None:
    incident = assigned()
    incident.link_problem(problem_id=PROBLEM, actor="pm", at=at(3))

    assert_refused(
        incident,
        InvalidCommand,
        lambda: incident.note_workaround(problem_id=PROBLEM, workaround="  ", actor="pm", at=at(4)),
        match="workaround is required",
    )


def test_a_problem_id_must_be_an_id() -> None:
    incident = assigned()

    assert_refused(
        incident,
        InvalidCommand,
        lambda: incident.link_problem(problem_id=str(PROBLEM), actor="pm", at=at(3)),  # type: ignore[arg-type]
        match="problem id must be a UUID",
    )


# -- comments -----------------------------------------------------------------------------------


def comment(incident: Incident, minutes: int, text: Any = "Still no line at 10:00.", **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "text": text, "author": "J. Martin", "customer_visible": True, "actor": "j.martin@resto-chain.fr",
        "at": at(minutes),
    }  # fmt: skip
    fields.update(overrides)
    incident.comment(**fields)


def test_a_comment_is_recorded_with_its_author_visibility_and_instant() -> None:
    incident = assigned()

    comment(incident, 10, text="  The terminal restarts every ten minutes.  ")

    last = incident.collect_events()[-1]
    assert isinstance(last, Incident.Commented)
    assert (last.text, last.author, last.customer_visible) == (
        "The terminal restarts every ten minutes.",
        "J. Martin",
        True,
    )
    assert (last.actor, last.at) == ("j.martin@resto-chain.fr", at(10))
    assert (incident.comment_count, incident.last_commented_at, incident.last_at) == (1, at(10), at(2))


def test_a_work_note_is_a_comment_the_customer_does_not_see() -> None:
    incident = assigned()

    comment(
        incident, 10, text="carrier ticket 4411 opened", author=TECHNICIAN, customer_visible=False, actor=TECHNICIAN
    )

    [note] = [e for e in incident.collect_events() if isinstance(e, Incident.Commented)]
    assert (note.customer_visible, note.author) == (False, TECHNICIAN)


def test_the_incident_keeps_the_count_of_its_comments_not_their_texts() -> None:
    incident = assigned()

    for minutes in (10, 20, 30):
        comment(incident, minutes, text=f"update number {minutes}")

    summary = incident.summary()
    assert (summary["comment_count"], summary["last_commented_at"]) == (3, at(30))
    incident.collect_events()  # the events hold the texts; the state left once they are saved does not
    assert "update number" not in repr(vars(incident))


@pytest.mark.parametrize("status", [NEW, ACKNOWLEDGED, ASSIGNED, ON_HOLD, RESTORED, RESOLVED])
def test_an_open_or_resolved_incident_takes_comments_and_keeps_its_status(status: str) -> None:
    incident = BUILDERS[status]()
    before = incident.summary()

    comment(incident, 60)

    after = incident.summary()
    assert after["status"] == status and after["comment_count"] == 1
    unchanged = {k: v for k, v in before.items() if k not in ("version", "comment_count", "last_commented_at")}
    assert {k: after[k] for k in unchanged} == unchanged


def test_a_comment_on_a_resolved_incident_does_not_reopen_it() -> None:
    incident = resolved()

    comment(incident, 60, text="Works again, thank you.")

    assert (incident.status, incident.resolved_at, incident.resolution_code) == (RESOLVED, at(5), "fixed")


def test_a_comment_written_before_the_last_step_keeps_its_instant_and_moves_no_step() -> None:
    """The customer writes at 10:00, the engineer acknowledges at 10:05, the extranet's message comes after."""
    incident = assigned()
    incident.resolve(code="fixed", actor=HOTLINE, at=at(20))

    comment(incident, 15)
    comment(incident, 12)

    assert [e.at for e in incident.collect_events() if isinstance(e, Incident.Commented)] == [at(15), at(12)]
    assert (incident.comment_count, incident.last_commented_at, incident.last_at) == (2, at(15), at(20))
    with pytest.raises(InvalidCommand, match="before its last recorded step"):
        incident.close(actor=HOTLINE, at=at(18))  # the steps themselves still go forward only


def test_a_comment_without_a_time_zone_is_refused() -> None:
    incident = assigned()
    assert_refused(incident, InvalidCommand, lambda: comment(incident, 60, at=datetime(2025, 3, 3, 12, 0)), "time zone")


def test_commenting_a_closed_incident_is_refused_and_says_to_log_a_related_one() -> None:
    incident = closed()

    assert_refused(
        incident,
        IllegalTransition,
        lambda: comment(incident, 60),
        match=f"cannot comment on incident {INCIDENT_ID}: it is closed; a closed incident takes no more comments,"
        " log a new one related to it",
    )


def test_commenting_a_cancelled_incident_is_refused() -> None:
    incident = cancelled()

    assert_refused(
        incident, IllegalTransition, lambda: comment(incident, 60), match="it is cancelled; a cancelled incident takes"
    )


@pytest.mark.parametrize("text", ["", "   ", None])
def test_a_comment_without_text_is_refused(text: object) -> None:
    incident = assigned()

    assert_refused(incident, InvalidCommand, lambda: comment(incident, 60, text=text), "the comment's text is required")


def test_a_comment_up_to_the_longest_allowed_is_accepted_and_a_longer_one_refused() -> None:
    incident = assigned()

    comment(incident, 60, text="x" * COMMENT_MAX_LENGTH)
    assert_refused(
        incident,
        InvalidCommand,
        lambda: comment(incident, 61, text="x" * (COMMENT_MAX_LENGTH + 1)),
        match="a comment is at most 20,000 characters long; this one has 20,001",
    )
    assert incident.comment_count == 1


def test_a_comment_without_author_is_refused() -> None:
    incident = assigned()

    assert_refused(
        incident, InvalidCommand, lambda: comment(incident, 60, author=" "), "the comment's author is required"
    )


@pytest.mark.parametrize("visible", [None, "yes", 1])
def test_a_comment_must_say_plainly_whether_the_customer_sees_it(visible: object) -> None:
    incident = assigned()

    assert_refused(
        incident, InvalidCommand, lambda: comment(incident, 60, customer_visible=visible), "visible to the customer"
    )


# -- new commands: instants, summary, replay, stored events -------------------------------------

NEW_COMMANDS: dict[str, Callable[[Incident, datetime], None]] = {
    "categorise": lambda i, t: i.categorise(category="network", actor=HOTLINE, at=t),
    "escalate": lambda i, t: i.escalate_functionally(to_group="N3 experts", reason="r", actor=HOTLINE, at=t),
    "escalate hierarchically": lambda i, t: i.escalate_hierarchically(level="roc", reason="r", actor=HOTLINE, at=t),
    "declare major": lambda i, t: i.declare_major(reason="r", actor=HOTLINE, at=t),
    "attach child": lambda i, t: i.attach_child(child_id=UUID(int=5), actor=HOTLINE, at=t),
    "attach to parent": lambda i, t: i.attach_to_parent(parent_id=UUID(int=5), actor=HOTLINE, at=t),
    "link problem": lambda i, t: i.link_problem(problem_id=PROBLEM, actor=HOTLINE, at=t),
}
"""Commands that change the incident (a comment changes nothing and keeps its own instant: see its test)."""


@pytest.mark.parametrize("command", NEW_COMMANDS)
def test_a_new_command_dated_before_the_last_recorded_step_is_refused(command: str) -> None:
    incident = assigned()

    assert_refused(
        incident,
        InvalidCommand,
        lambda: NEW_COMMANDS[command](incident, incident.last_at - timedelta(seconds=1)),
        match="before its last recorded step",
    )


@pytest.mark.parametrize("command", NEW_COMMANDS)
def test_a_new_command_with_a_naive_instant_is_refused(command: str) -> None:
    incident = assigned()

    assert_refused(
        incident, InvalidCommand, lambda: NEW_COMMANDS[command](incident, datetime(2025, 3, 3, 12, 0)), "time zone"
    )


def test_replaying_the_new_events_rebuilds_the_same_incident() -> None:
    incident = log(category="network", related_incident=UUID(int=99))
    incident.assign(group="N1 hotline", actor=HOTLINE, at=at(1))
    incident.escalate_functionally(to_group="N2 network", reason="link", actor=HOTLINE, at=at(2))
    incident.escalate_hierarchically(level="roc", reason="many sites", actor=HOTLINE, at=at(3))
    incident.declare_major(reason="40 sites", actor=HOTLINE, at=at(4))
    incident.categorise(category="carrier link", actor=HOTLINE, at=at(5))
    incident.attach_child(child_id=UUID(int=1), actor=HOTLINE, at=at(6))
    incident.link_problem(problem_id=PROBLEM, actor="pm", at=at(7))
    incident.note_workaround(problem_id=PROBLEM, workaround="backup link", actor="pm", at=at(8))
    incident.comment(text="carrier ticket 4411", author=HOTLINE, customer_visible=False, actor=HOTLINE, at=at(9))

    replayed: Incident | None = None
    for domain_event in incident.collect_events():
        replayed = domain_event.mutate(replayed)

    assert replayed is not None
    assert replayed.summary() == incident.summary()


def test_a_logged_event_stored_before_categories_and_follow_ups_still_loads() -> None:
    logged = new().collect_events()[0]
    state = {k: v for k, v in logged.__dict__.items() if k not in ("category", "related_incident")}
    older = object.__new__(Incident.Logged)
    object.__setattr__(older, "__dict__", state)

    incident = older.mutate(None)

    assert incident is not None
    assert (incident.category, incident.related_incident, incident.is_major) == (None, None, False)
    assert (incident.children, incident.problem_ids, incident.parent_id) == ([], [], None)
