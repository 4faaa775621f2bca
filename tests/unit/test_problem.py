"""Every rule of the Problem aggregate, called directly with explicit instants."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import StoredEvent

from application import problems as prb
from application.app import ItilApplication, LinkedIncidents
from domain import commands as cmd
from domain.commands import LinkIncidentToProblem, LogIncident
from domain.errors import DomainError, IllegalTransition, InvalidCommand
from domain.incident import Incident
from domain.problem import (
    CANCELLED,
    CLOSED,
    KNOWN_ERROR,
    NEW,
    OPEN_STATUSES,
    RESOLVED,
    ROOT_CAUSE_KNOWN,
    STATUSES,
    UNDER_INVESTIGATION,
    Problem,
    link,
    linked_incidents,
    log_for,
    unlink,
)

PROBLEM_ID = UUID("7a2d0c1b-0000-4000-8000-000000000007")
INCIDENT_1 = UUID("6f1c1e0a-0000-4000-8000-000000000001")
INCIDENT_2 = UUID("6f1c1e0a-0000-4000-8000-000000000002")
INCIDENT_3 = UUID("6f1c1e0a-0000-4000-8000-000000000003")
CHANGE_1 = UUID("c4a11e00-0000-4000-8000-000000000001")
CHANGE_2 = UUID("c4a11e00-0000-4000-8000-000000000002")
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
PROBLEM_MANAGER = "problem-manager"
ENGINEER = "n3-network"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


LATER = at(600)


def log(**overrides: Any) -> Problem:
    fields: dict[str, Any] = {
        "id": PROBLEM_ID,
        "account": "resto-chain",
        "title": "Routers of restaurants reboot every night",
        "description": "Nightly reboots of the 4G backup routers since the firmware push",
        "actor": PROBLEM_MANAGER,
        "at": at(0),
    }
    fields.update(overrides)
    return Problem.log(**fields)


def incident(incident_id: UUID, *naming: Problem, account: str = "resto-chain") -> Incident:
    """An incident logged before the problem, naming the given problems (as linking them left it)."""
    logged = Incident.log(
        id=incident_id, account=account, title="Restaurant router reboots", impact=2, urgency=2, channel="phone",
        reporter="restaurant manager", actor="hotline-n1", at=T0 - timedelta(hours=1), ci="router-resto-042",
    )  # fmt: skip
    for problem in naming:
        logged.link_problem(problem_id=problem.id, actor=PROBLEM_MANAGER, at=T0)
    return logged


def linked(problem: Problem) -> tuple[UUID, ...]:
    """The incidents linked to the problem, as its history (its pending events here) says."""
    return linked_incidents(problem.pending_events)


def event_names(problem: Problem) -> list[str]:
    return [type(e).__name__ for e in problem.pending_events]


def assert_refused(
    problem: Problem,
    error: type[DomainError],
    command: Callable[[], object],
    match: str | None = None,
) -> DomainError:
    """The command raises `error` and leaves the problem exactly as it was: no event, no change."""
    pending = len(problem.pending_events)
    version = problem.version
    before = problem.summary()
    state = copy.deepcopy(vars(problem))
    with pytest.raises(error, match=match) as refusal:
        command()
    assert len(problem.pending_events) == pending
    assert problem.version == version
    assert problem.summary() == before
    assert vars(problem) == state
    if isinstance(refusal.value, IllegalTransition):
        assert str(problem.id) in str(refusal.value)
    return refusal.value


# -- problems in each status -------------------------------------------------------------------


def new() -> Problem:
    return log(incident_ids=(INCIDENT_1,))


def under_investigation() -> Problem:
    problem = new()
    problem.investigate(actor=ENGINEER, at=at(1))
    return problem


def root_cause_known() -> Problem:
    problem = under_investigation()
    problem.record_root_cause(analysis="firmware 7.2 watchdog bug", actor=ENGINEER, at=at(2))
    return problem


def known_error() -> Problem:
    problem = root_cause_known()
    problem.publish_workaround(workaround="disable the watchdog", actor=ENGINEER, at=at(3))
    return problem


def resolved() -> Problem:
    problem = known_error()
    problem.propose_change(change_id=CHANGE_1, actor=ENGINEER, at=at(4))
    problem.resolve(via_change_id=CHANGE_1, notes="firmware 7.3 rolled out", actor=ENGINEER, at=at(5))
    return problem


def closed() -> Problem:
    problem = resolved()
    problem.close(actor=PROBLEM_MANAGER, at=at(6))
    return problem


def cancelled() -> Problem:
    problem = under_investigation()
    problem.cancel(reason="duplicate of another problem", actor=PROBLEM_MANAGER, at=at(2))
    return problem


BUILDERS: dict[str, Callable[[], Problem]] = {
    NEW: new,
    UNDER_INVESTIGATION: under_investigation,
    ROOT_CAUSE_KNOWN: root_cause_known,
    KNOWN_ERROR: known_error,
    RESOLVED: resolved,
    CLOSED: closed,
    CANCELLED: cancelled,
}

COMMANDS: dict[str, Callable[[Problem, datetime], None]] = {
    "link_incident": lambda p, t: link(p, incident(INCIDENT_2), actor=ENGINEER, at=t),
    "unlink_incident": lambda p, t: unlink(p, incident(INCIDENT_1, p), actor=ENGINEER, at=t),
    "investigate": lambda p, t: p.investigate(actor=ENGINEER, at=t),
    "record_root_cause": lambda p, t: p.record_root_cause(analysis="bad cable", actor=ENGINEER, at=t),
    "publish_workaround": lambda p, t: p.publish_workaround(workaround="reboot", actor=ENGINEER, at=t),
    "propose_change": lambda p, t: p.propose_change(change_id=CHANGE_2, actor=ENGINEER, at=t),
    "resolve": lambda p, t: p.resolve(via_change_id=None, notes="cable replaced", actor=ENGINEER, at=t),
    "reopen_investigation": lambda p, t: p.reopen_investigation(reason="back again", actor=ENGINEER, at=t),
    "close": lambda p, t: p.close(actor=PROBLEM_MANAGER, at=t),
    "cancel": lambda p, t: p.cancel(reason="logged by mistake", actor=PROBLEM_MANAGER, at=t),
}

COMMAND_STATES: dict[str, Callable[[], Problem]] = {
    "link_incident": new,
    "unlink_incident": new,
    "investigate": new,
    "record_root_cause": under_investigation,
    "publish_workaround": under_investigation,
    "propose_change": under_investigation,
    "resolve": root_cause_known,
    "reopen_investigation": known_error,
    "close": resolved,
    "cancel": new,
}
"""For each command, a problem on which it would be accepted at a valid instant."""


# -- logging --------------------------------------------------------------------------------------


def test_logging_records_a_new_problem_with_its_details() -> None:
    problem = log(ci=" router-resto-042 ", category=" firmware ")

    assert problem.id == PROBLEM_ID
    assert problem.version == 1
    assert problem.status == NEW
    assert problem.is_open
    assert problem.account == "resto-chain"
    assert problem.title == "Routers of restaurants reboot every night"
    assert problem.description.startswith("Nightly reboots")
    assert (problem.ci, problem.category) == ("router-resto-042", "firmware")
    assert (linked(problem), problem.incident_count) == ((), 0)
    assert problem.links_on_incidents
    assert problem.change_ids == ()
    assert problem.root_cause is None
    assert problem.workaround is None
    assert problem.logged_at == problem.last_at == at(0)
    assert event_names(problem) == ["Logged"]


def test_logging_from_incidents_links_them_in_order() -> None:
    problem = log(incident_ids=[INCIDENT_2, INCIDENT_1])

    assert linked(problem) == (INCIDENT_2, INCIDENT_1)
    assert problem.incident_count == 2
    assert event_names(problem) == ["Logged"]


def test_logging_for_incidents_makes_each_of_them_name_the_problem() -> None:
    first, second = incident(INCIDENT_1), incident(INCIDENT_2)
    problem = log_for(
        [second, first], id=PROBLEM_ID, account="resto-chain", title="Routers reboot", description="",
        actor=PROBLEM_MANAGER, at=at(0),
    )  # fmt: skip

    assert (linked(problem), problem.incident_count) == ((INCIDENT_2, INCIDENT_1), 2)
    for one in (first, second):
        assert one.problem_ids == [PROBLEM_ID]
        assert [type(e).__name__ for e in one.pending_events][-1] == "ProblemLinked"


def test_an_incident_that_moved_on_since_names_the_problem_from_its_own_last_step() -> None:
    worked_on = incident(INCIDENT_1)
    worked_on.acknowledge(actor="hotline-n1", at=at(30))
    problem = log_for([worked_on], id=PROBLEM_ID, account="resto-chain", title="x", description="",
                      actor=PROBLEM_MANAGER, at=at(0))  # fmt: skip

    assert problem.logged_at == at(0)
    named = worked_on.pending_events[-1]
    assert (type(named).__name__, named.at) == ("ProblemLinked", at(30))  # type: ignore[attr-defined]


def test_logging_for_an_incident_of_another_account_is_refused() -> None:
    elsewhere = incident(INCIDENT_1, account="hotel-chain")

    with pytest.raises(InvalidCommand, match="the incident is on account hotel-chain, the problem on account resto"):
        log_for([elsewhere], id=PROBLEM_ID, account="resto-chain", title="x", description="", actor=PROBLEM_MANAGER,
                at=at(0))  # fmt: skip
    assert elsewhere.problem_ids == []


def test_logging_without_a_ci_or_category_leaves_them_empty() -> None:
    problem = log(ci="  ", category="")

    assert (problem.ci, problem.category) == (None, None)


def test_logging_with_an_empty_description_is_accepted() -> None:
    assert log(description="").description == ""


INVALID_LOGGINGS: list[tuple[dict[str, Any], str]] = [
    ({"title": ""}, "title is required"),
    ({"title": "  "}, "title is required"),
    ({"title": None}, "title is required"),
    ({"account": ""}, "account is required"),
    ({"actor": " "}, "actor is required"),
    ({"actor": None}, "actor is required"),
    ({"at": datetime(2025, 3, 3, 9, 0)}, "time zone"),
    ({"at": "2025-03-03T09:00:00+00:00"}, "time zone"),
    ({"incident_ids": (INCIDENT_1, INCIDENT_1)}, f"incident {INCIDENT_1} is listed twice"),
    ({"incident_ids": ("not-a-uuid",)}, "an incident id must be a UUID"),
    ({"incident_ids": str(INCIDENT_1)}, "incident ids must be a list of UUIDs"),
    ({"incident_ids": INCIDENT_1}, "incident ids must be a list of UUIDs"),
]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [pytest.param(o, m, id=",".join(f"{k}={v!r}" for k, v in o.items())) for o, m in INVALID_LOGGINGS],
)
def test_logging_with_invalid_details_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        log(**overrides)


# -- linking incidents ------------------------------------------------------------------------------


def assert_untouched(incident: Incident, command: Callable[[], object], error: type[DomainError], match: str) -> None:
    """The command is refused and the incident is left exactly as it was too."""
    pending, state = len(incident.pending_events), copy.deepcopy(vars(incident))
    with pytest.raises(error, match=match):
        command()
    assert (len(incident.pending_events), vars(incident)) == (pending, state)


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_linking_an_incident_counts_it_on_an_open_problem_and_the_incident_names_it(status: str) -> None:
    problem = BUILDERS[status]()
    caused = incident(INCIDENT_2)
    link(problem, caused, actor=ENGINEER, at=LATER)

    assert linked(problem) == (INCIDENT_1, INCIDENT_2)
    assert problem.incident_count == 2
    assert problem.status == status
    assert event_names(problem)[-1] == "IncidentLinked"
    assert caused.problem_ids == [PROBLEM_ID]
    assert caused.pending_events[-1].at == LATER  # type: ignore[attr-defined]


def test_linking_an_incident_already_linked_is_refused() -> None:
    problem = new()
    caused = incident(INCIDENT_1, problem)

    error = assert_refused(
        problem,
        IllegalTransition,
        lambda: link(problem, caused, actor=ENGINEER, at=at(1)),
        match="already linked",
    )
    assert str(INCIDENT_1) in str(error)
    assert_untouched(caused, lambda: link(problem, caused, actor=ENGINEER, at=at(1)), IllegalTransition, "already")


def test_linking_an_incident_of_another_account_is_refused() -> None:
    problem = new()
    elsewhere = incident(INCIDENT_2, account="hotel-chain")

    assert_refused(
        problem,
        InvalidCommand,
        lambda: link(problem, elsewhere, actor=ENGINEER, at=at(1)),
        match=f"cannot link incident {INCIDENT_2} to problem {PROBLEM_ID}: the incident is on account hotel-chain",
    )
    assert elsewhere.problem_ids == []


def test_linking_an_incident_to_a_resolved_problem_says_to_reopen_it() -> None:
    problem = resolved()
    caused = incident(INCIDENT_2)

    assert_refused(
        problem,
        IllegalTransition,
        lambda: link(problem, caused, actor=ENGINEER, at=LATER),
        match="it is resolved; reopen the investigation if the cause is back",
    )
    assert caused.problem_ids == []


@pytest.mark.parametrize("status", [CLOSED, CANCELLED])
def test_linking_an_incident_to_a_finished_problem_is_refused(status: str) -> None:
    problem = BUILDERS[status]()
    caused = incident(INCIDENT_2)

    assert_refused(
        problem,
        IllegalTransition,
        lambda: link(problem, caused, actor=ENGINEER, at=LATER),
        match=f"cannot link an incident to problem {PROBLEM_ID}: it is {status}",
    )
    assert caused.problem_ids == []


def test_unlinking_an_incident_removes_it_and_keeps_the_others() -> None:
    problem = log(incident_ids=(INCIDENT_1, INCIDENT_2, INCIDENT_3))
    mistaken = incident(INCIDENT_2, problem)
    unlink(problem, mistaken, actor=ENGINEER, at=at(1))

    assert linked(problem) == (INCIDENT_1, INCIDENT_3)
    assert problem.incident_count == 2
    assert event_names(problem)[-1] == "IncidentUnlinked"
    assert mistaken.problem_ids == []
    assert [type(e).__name__ for e in mistaken.pending_events][-1] == "ProblemUnlinked"


def test_an_unlinked_incident_can_be_linked_again() -> None:
    problem = new()
    caused = incident(INCIDENT_1, problem)
    unlink(problem, caused, actor=ENGINEER, at=at(1))
    link(problem, caused, actor=ENGINEER, at=at(2))

    assert (linked(problem), problem.incident_count) == ((INCIDENT_1,), 1)
    assert caused.problem_ids == [PROBLEM_ID]


def test_unlinking_an_incident_that_is_not_linked_is_refused() -> None:
    problem = new()
    other = incident(INCIDENT_2)

    error = assert_refused(
        problem,
        IllegalTransition,
        lambda: unlink(problem, other, actor=ENGINEER, at=at(1)),
        match="it is not linked to it",
    )
    assert str(INCIDENT_2) in str(error)
    assert_untouched(other, lambda: unlink(problem, other, actor=ENGINEER, at=at(1)), IllegalTransition, "not linked")


@pytest.mark.parametrize("status", [RESOLVED, CLOSED, CANCELLED])
def test_unlinking_an_incident_from_a_finished_problem_is_refused(status: str) -> None:
    problem = BUILDERS[status]()
    caused = incident(INCIDENT_1, problem)

    assert_refused(
        problem,
        IllegalTransition,
        lambda: unlink(problem, caused, actor=ENGINEER, at=LATER),
        match="cannot unlink an incident from problem",
    )
    assert caused.problem_ids == [PROBLEM_ID]


def test_an_incident_refuses_to_forget_a_problem_it_does_not_name() -> None:
    other = incident(INCIDENT_2)

    assert_untouched(
        other,
        lambda: other.unlink_problem(problem_id=PROBLEM_ID, actor=ENGINEER, at=at(1)),
        IllegalTransition,
        f"cannot unlink incident {INCIDENT_2} from problem {PROBLEM_ID}: it is not linked to it",
    )


# -- problems logged by version 1: links on the problem only ----------------------------------------


def version_1(*incident_ids: UUID) -> Problem:
    """A problem as version 1 logged it: its incidents did not name it."""
    problem = log(incident_ids=incident_ids)
    problem.links_on_incidents = False
    return problem


def test_a_problem_of_version_1_is_asked_about_its_links_with_its_history() -> None:
    problem = version_1(INCIDENT_1)
    not_naming_it = incident(INCIDENT_1)

    assert problem.is_linked(not_naming_it, linked_by_history=(INCIDENT_1,))
    with pytest.raises(ValueError, match="give its linked incidents"):
        problem.is_linked(not_naming_it)


def test_linking_to_a_problem_of_version_1_follows_its_history_and_names_it_on_the_incident() -> None:
    problem = version_1(INCIDENT_1)
    first, second = incident(INCIDENT_1), incident(INCIDENT_2)

    assert_refused(
        problem,
        IllegalTransition,
        lambda: link(problem, first, actor=ENGINEER, at=at(1), linked_by_history=linked(problem)),
        match="already linked",
    )
    link(problem, second, actor=ENGINEER, at=at(1), linked_by_history=linked(problem))
    assert (linked(problem), problem.incident_count) == ((INCIDENT_1, INCIDENT_2), 2)
    assert second.problem_ids == [PROBLEM_ID]


def test_unlinking_from_a_problem_of_version_1_an_incident_that_never_named_it() -> None:
    problem = version_1(INCIDENT_1)
    not_naming_it = incident(INCIDENT_1)

    unlink(problem, not_naming_it, actor=ENGINEER, at=at(1), linked_by_history=linked(problem))

    assert (linked(problem), problem.incident_count) == ((), 0)
    assert not_naming_it.pending_events[-1].__class__.__name__ == "Logged"  # nothing to undo on the incident


# -- investigation ----------------------------------------------------------------------------------


def test_investigating_a_new_problem_starts_the_investigation() -> None:
    problem = new()
    problem.investigate(actor=ENGINEER, at=at(1))

    assert problem.status == UNDER_INVESTIGATION
    assert problem.investigation_started_at == at(1)
    assert event_names(problem)[-1] == "InvestigationStarted"


@pytest.mark.parametrize("status", [s for s in STATUSES if s != NEW])
def test_investigating_a_problem_that_is_not_new_is_refused(status: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.investigate(actor=ENGINEER, at=LATER),
        match=f"cannot investigate problem {PROBLEM_ID}: it",
    )


def test_recording_the_root_cause_makes_it_known() -> None:
    problem = under_investigation()
    problem.record_root_cause(analysis="  firmware 7.2 watchdog bug ", actor=ENGINEER, at=at(2))

    assert problem.status == ROOT_CAUSE_KNOWN
    assert problem.root_cause == "firmware 7.2 watchdog bug"
    assert problem.root_cause_recorded_at == at(2)
    assert event_names(problem)[-1] == "RootCauseRecorded"


def test_recording_a_root_cause_without_analysis_is_refused() -> None:
    problem = under_investigation()

    assert_refused(
        problem,
        InvalidCommand,
        lambda: problem.record_root_cause(analysis=" ", actor=ENGINEER, at=at(2)),
        match="analysis is required",
    )


def test_recording_the_root_cause_of_a_new_problem_says_to_investigate_first() -> None:
    problem = new()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.record_root_cause(analysis="bad cable", actor=ENGINEER, at=at(1)),
        match="it is new; start the investigation first",
    )


def test_recording_a_second_root_cause_says_to_reopen_the_investigation() -> None:
    problem = root_cause_known()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.record_root_cause(analysis="bad cable", actor=ENGINEER, at=at(3)),
        match="its root cause is known; reopen the investigation to revise it",
    )
    assert problem.root_cause == "firmware 7.2 watchdog bug"


def test_recording_the_root_cause_of_a_known_error_found_before_its_cause_keeps_it_a_known_error() -> None:
    problem = under_investigation()
    problem.publish_workaround(workaround="reboot the router", actor=ENGINEER, at=at(2))
    problem.record_root_cause(analysis="firmware 7.2 watchdog bug", actor=ENGINEER, at=at(3))

    assert problem.status == KNOWN_ERROR
    assert problem.root_cause == "firmware 7.2 watchdog bug"
    assert problem.workaround == "reboot the router"


def test_recording_a_second_root_cause_of_a_known_error_is_refused() -> None:
    problem = known_error()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.record_root_cause(analysis="bad cable", actor=ENGINEER, at=at(4)),
        match="it was already recorded .*; reopen the investigation to revise it",
    )


@pytest.mark.parametrize("status", [RESOLVED, CLOSED, CANCELLED])
def test_recording_the_root_cause_of_a_finished_problem_is_refused(status: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.record_root_cause(analysis="bad cable", actor=ENGINEER, at=LATER),
        match=f"cannot record the root cause of problem {PROBLEM_ID}: it is {status}",
    )


# -- workaround ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [under_investigation, root_cause_known])
def test_publishing_a_workaround_makes_the_problem_a_known_error(builder: Callable[[], Problem]) -> None:
    problem = builder()
    problem.publish_workaround(workaround=" disable the watchdog ", actor=ENGINEER, at=at(3))

    assert problem.status == KNOWN_ERROR
    assert problem.workaround == "disable the watchdog"
    assert problem.workaround_published_at == at(3)
    assert event_names(problem)[-1] == "WorkaroundPublished"


def test_publishing_a_workaround_keeps_the_root_cause() -> None:
    problem = known_error()

    assert problem.root_cause == "firmware 7.2 watchdog bug"


def test_publishing_an_empty_workaround_is_refused() -> None:
    problem = root_cause_known()

    assert_refused(
        problem,
        InvalidCommand,
        lambda: problem.publish_workaround(workaround="", actor=ENGINEER, at=at(3)),
        match="workaround is required",
    )


def test_publishing_a_workaround_for_a_new_problem_says_to_investigate_first() -> None:
    problem = new()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.publish_workaround(workaround="reboot", actor=ENGINEER, at=at(1)),
        match="start the investigation first",
    )


def test_publishing_a_second_workaround_is_refused() -> None:
    problem = known_error()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.publish_workaround(workaround="reboot", actor=ENGINEER, at=at(4)),
        match="it is a known error; a workaround is already published",
    )
    assert problem.workaround == "disable the watchdog"


@pytest.mark.parametrize("status", [RESOLVED, CLOSED, CANCELLED])
def test_publishing_a_workaround_for_a_finished_problem_is_refused(status: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.publish_workaround(workaround="reboot", actor=ENGINEER, at=LATER),
        match=f"cannot publish a workaround for problem {PROBLEM_ID}",
    )


# -- changes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_proposing_a_change_links_it_to_an_open_problem(status: str) -> None:
    problem = BUILDERS[status]()
    problem.propose_change(change_id=CHANGE_1, actor=ENGINEER, at=LATER)
    problem.propose_change(change_id=CHANGE_2, actor=ENGINEER, at=LATER)

    assert problem.change_ids == (CHANGE_1, CHANGE_2)
    assert problem.status == status
    assert event_names(problem)[-2:] == ["ChangeProposed", "ChangeProposed"]


def test_proposing_the_same_change_twice_is_refused() -> None:
    problem = root_cause_known()
    problem.propose_change(change_id=CHANGE_1, actor=ENGINEER, at=at(3))

    error = assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.propose_change(change_id=CHANGE_1, actor=ENGINEER, at=at(4)),
        match="already proposed",
    )
    assert str(CHANGE_1) in str(error)


def test_proposing_something_that_is_not_a_change_id_is_refused() -> None:
    problem = root_cause_known()

    assert_refused(
        problem,
        InvalidCommand,
        lambda: problem.propose_change(change_id="CHG-1", actor=ENGINEER, at=at(3)),  # type: ignore[arg-type]
        match="change id must be a UUID",
    )


@pytest.mark.parametrize(
    ("status", "why"), [(RESOLVED, "reopen the investigation"), (CLOSED, "closed"), (CANCELLED, "cancelled")]
)
def test_proposing_a_change_for_a_finished_problem_is_refused(status: str, why: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.propose_change(change_id=CHANGE_2, actor=ENGINEER, at=LATER),
        match=why,
    )


# -- resolve -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [root_cause_known, known_error])
def test_resolving_via_a_proposed_change_records_that_change(builder: Callable[[], Problem]) -> None:
    problem = builder()
    problem.propose_change(change_id=CHANGE_1, actor=ENGINEER, at=at(4))
    problem.propose_change(change_id=CHANGE_2, actor=ENGINEER, at=at(5))
    problem.resolve(via_change_id=CHANGE_2, actor=ENGINEER, at=at(6))

    assert problem.status == RESOLVED
    assert problem.resolved_via_change_id == CHANGE_2
    assert problem.resolution_notes == ""
    assert problem.resolved_at == at(6)
    assert not problem.is_open
    assert event_names(problem)[-1] == "Resolved"


def test_resolving_without_a_change_records_how_it_was_resolved() -> None:
    problem = root_cause_known()
    problem.resolve(via_change_id=None, notes=" supplier replaced the cable ", actor=ENGINEER, at=at(3))

    assert problem.status == RESOLVED
    assert problem.resolved_via_change_id is None
    assert problem.resolution_notes == "supplier replaced the cable"


def test_resolving_without_a_change_nor_notes_is_refused() -> None:
    problem = root_cause_known()

    assert_refused(
        problem,
        InvalidCommand,
        lambda: problem.resolve(via_change_id=None, notes=" ", actor=ENGINEER, at=at(3)),
        match=r"notes \(how it was resolved without a change\) is required",
    )


def test_resolving_via_a_change_never_proposed_is_refused() -> None:
    problem = known_error()
    problem.propose_change(change_id=CHANGE_1, actor=ENGINEER, at=at(4))

    error = assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.resolve(via_change_id=CHANGE_2, actor=ENGINEER, at=at(5)),
        match="that change was never proposed for it; propose it first",
    )
    assert str(CHANGE_2) in str(error)


def test_resolving_via_something_that_is_not_a_change_id_is_refused() -> None:
    problem = known_error()

    assert_refused(
        problem,
        InvalidCommand,
        lambda: problem.resolve(via_change_id="CHG-1", actor=ENGINEER, at=at(5)),  # type: ignore[arg-type]
        match="via change id must be a UUID",
    )


@pytest.mark.parametrize("status", [NEW, UNDER_INVESTIGATION])
def test_resolving_before_the_root_cause_is_known_is_refused(status: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.resolve(via_change_id=None, notes="fixed", actor=ENGINEER, at=LATER),
        match="its root cause must be known first",
    )


@pytest.mark.parametrize("status", [RESOLVED, CLOSED, CANCELLED])
def test_resolving_a_finished_problem_is_refused(status: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.resolve(via_change_id=None, notes="fixed", actor=ENGINEER, at=LATER),
        match=f"cannot resolve problem {PROBLEM_ID}: it is {status}",
    )


# -- reopen the investigation ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [ROOT_CAUSE_KNOWN, KNOWN_ERROR, RESOLVED])
def test_reopening_the_investigation_puts_the_problem_back_under_investigation(status: str) -> None:
    problem = BUILDERS[status]()
    problem.reopen_investigation(reason="change failed", actor=ENGINEER, at=LATER)

    assert problem.status == UNDER_INVESTIGATION
    assert problem.reopen_reason == "change failed"
    assert event_names(problem)[-1] == "InvestigationReopened"


def test_reopening_a_resolved_problem_forgets_the_resolution_but_keeps_what_was_learnt() -> None:
    problem = resolved()
    problem.reopen_investigation(reason="reboots are back", actor=ENGINEER, at=at(7))

    assert (problem.resolved_at, problem.resolved_via_change_id, problem.resolution_notes) == (None, None, None)
    assert problem.root_cause == "firmware 7.2 watchdog bug"
    assert problem.workaround == "disable the watchdog"
    assert problem.change_ids == (CHANGE_1,)
    assert problem.is_open


def test_a_reopened_investigation_can_record_a_new_root_cause() -> None:
    problem = root_cause_known()
    problem.reopen_investigation(reason="the fix did not hold", actor=ENGINEER, at=at(3))
    problem.record_root_cause(analysis="power supply overheating", actor=ENGINEER, at=at(4))

    assert problem.status == ROOT_CAUSE_KNOWN
    assert problem.root_cause == "power supply overheating"


def test_reopening_the_investigation_without_a_reason_is_refused() -> None:
    problem = known_error()

    assert_refused(
        problem,
        InvalidCommand,
        lambda: problem.reopen_investigation(reason="", actor=ENGINEER, at=at(4)),
        match="reason is required",
    )


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (NEW, "it is new; start the investigation first"),
        (UNDER_INVESTIGATION, "it is under investigation; it is still being investigated"),
        (CLOSED, "a closed problem cannot be reopened, log a new one"),
        (CANCELLED, "it is cancelled"),
    ],
)
def test_reopening_the_investigation_is_refused_unless_it_had_moved_on(status: str, why: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.reopen_investigation(reason="back again", actor=ENGINEER, at=LATER),
        match=why,
    )


# -- close and cancel ----------------------------------------------------------------------------------


def test_closing_a_resolved_problem_closes_it_for_good() -> None:
    problem = resolved()
    problem.close(actor=PROBLEM_MANAGER, at=at(6))

    assert problem.status == CLOSED
    assert problem.closed_at == at(6)
    assert event_names(problem)[-1] == "Closed"


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_closing_an_unresolved_problem_is_refused(status: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.close(actor=PROBLEM_MANAGER, at=LATER),
        match="only a resolved problem can be closed",
    )


@pytest.mark.parametrize("status", [CLOSED, CANCELLED])
def test_closing_a_closed_or_cancelled_problem_is_refused(status: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.close(actor=PROBLEM_MANAGER, at=LATER),
        match=f"it is {status}",
    )


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_cancelling_a_problem_before_it_is_resolved_is_accepted(status: str) -> None:
    problem = BUILDERS[status]()
    problem.cancel(reason="duplicate", actor=PROBLEM_MANAGER, at=LATER)

    assert problem.status == CANCELLED
    assert problem.cancelled_at == LATER
    assert problem.cancellation_reason == "duplicate"
    assert not problem.is_open
    assert event_names(problem)[-1] == "Cancelled"


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (RESOLVED, "it was resolved, close it instead"),
        (CLOSED, "it is closed"),
        (CANCELLED, "it is cancelled"),
    ],
)
def test_cancelling_a_problem_once_resolved_is_refused(status: str, why: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.cancel(reason="duplicate", actor=PROBLEM_MANAGER, at=LATER),
        match=why,
    )


def test_cancelling_without_a_reason_is_refused() -> None:
    problem = new()

    assert_refused(
        problem,
        InvalidCommand,
        lambda: problem.cancel(reason=" ", actor=PROBLEM_MANAGER, at=at(1)),
        match="reason is required",
    )


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("status", [CLOSED, CANCELLED])
def test_every_command_on_a_closed_or_cancelled_problem_is_refused(status: str, command: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(problem, IllegalTransition, lambda: COMMANDS[command](problem, LATER))


# -- instants and actors --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_dated_before_the_last_recorded_step_is_refused(command: str) -> None:
    problem = COMMAND_STATES[command]()
    earlier = problem.last_at - timedelta(seconds=1)

    error = assert_refused(
        problem,
        InvalidCommand,
        lambda: COMMANDS[command](problem, earlier),
        match="before its last recorded step",
    )
    assert str(PROBLEM_ID) in str(error)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_at_the_same_instant_as_the_last_step_is_accepted(command: str) -> None:
    problem = COMMAND_STATES[command]()
    version = problem.version

    COMMANDS[command](problem, problem.last_at)

    assert problem.version == version + 1
    assert problem.pending_events[-1].at == problem.last_at  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_with_a_naive_instant_is_refused(command: str) -> None:
    problem = COMMAND_STATES[command]()

    assert_refused(
        problem,
        InvalidCommand,
        lambda: COMMANDS[command](problem, datetime(2025, 3, 3, 12, 0)),
        match="time zone",
    )


@pytest.mark.parametrize("actor", ["", "   ", None])
def test_a_command_without_an_actor_is_refused(actor: Any) -> None:
    problem = new()

    assert_refused(
        problem,
        InvalidCommand,
        lambda: problem.investigate(actor=actor, at=at(1)),
        match="actor is required",
    )


def test_every_event_records_who_did_it_and_when() -> None:
    problem = resolved()

    assert [(e.actor, e.at) for e in problem.pending_events] == [  # type: ignore[attr-defined]
        (PROBLEM_MANAGER, at(0)),
        (ENGINEER, at(1)),
        (ENGINEER, at(2)),
        (ENGINEER, at(3)),
        (ENGINEER, at(4)),
        (ENGINEER, at(5)),
    ]


# -- summary and replay -----------------------------------------------------------------------------------


def test_the_summary_gives_plain_values() -> None:
    summary = resolved().summary()

    assert summary["id"] == str(PROBLEM_ID)
    assert summary["status"] == RESOLVED
    assert summary["incident_count"] == 1
    assert "linked_incidents" not in summary  # read from its history, see linked_incidents
    assert summary["change_ids"] == [str(CHANGE_1)]
    assert summary["resolved_via_change_id"] == str(CHANGE_1)
    assert summary["root_cause"] == "firmware 7.2 watchdog bug"
    assert summary["workaround"] == "disable the watchdog"
    assert summary["resolved_at"] == at(5)


def _full_history() -> Problem:
    problem = log(incident_ids=(INCIDENT_1, INCIDENT_2), ci="router-resto-042", category="firmware")
    link(problem, incident(INCIDENT_3), actor=ENGINEER, at=at(1))
    unlink(problem, incident(INCIDENT_1, problem), actor=ENGINEER, at=at(2))
    problem.investigate(actor=ENGINEER, at=at(3))
    problem.publish_workaround(workaround="reboot nightly", actor=ENGINEER, at=at(4))
    problem.record_root_cause(analysis="watchdog bug", actor=ENGINEER, at=at(5))
    problem.propose_change(change_id=CHANGE_1, actor=ENGINEER, at=at(6))
    problem.resolve(via_change_id=CHANGE_1, notes="firmware 7.3", actor=ENGINEER, at=at(7))
    problem.reopen_investigation(reason="change failed on 3 sites", actor=ENGINEER, at=at(8))
    problem.record_root_cause(analysis="watchdog bug and bad PSU", actor=ENGINEER, at=at(9))
    problem.propose_change(change_id=CHANGE_2, actor=ENGINEER, at=at(10))
    problem.resolve(via_change_id=CHANGE_2, notes="PSU replaced", actor=ENGINEER, at=at(11))
    problem.close(actor=PROBLEM_MANAGER, at=at(12))
    return problem


def test_replaying_the_events_rebuilds_the_same_problem() -> None:
    problem = _full_history()

    history = problem.collect_events()
    replayed: Problem | None = None
    for domain_event in history:
        replayed = domain_event.mutate(replayed)

    assert replayed is not None
    assert replayed.summary() == problem.summary()
    assert replayed.incident_count == 2
    assert linked_incidents(history) == (INCIDENT_2, INCIDENT_3)
    assert replayed.change_ids == (CHANGE_1, CHANGE_2)


def test_a_problem_stored_and_read_back_has_the_same_summary() -> None:
    problem = _full_history()
    app: Application[UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(problem)

    stored: Problem = app.repository.get(PROBLEM_ID)

    assert stored.summary() == problem.summary()
    assert linked_incidents(app.events.get(PROBLEM_ID)) == (INCIDENT_2, INCIDENT_3)


# -- stored by version 1: the problem listed its incidents, which did not all name it ------------------


def _app(tmp_path: Path) -> ItilApplication:
    return ItilApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")})


def _incidents(app: ItilApplication, *ids: UUID) -> None:
    for incident_id in ids:
        app.handle(
            LogIncident(id=incident_id, account="resto-chain", title="router reboots", impact=2, urgency=2,
                        channel="phone", reporter="manager", actor="hotline-n1", at=T0 - timedelta(hours=1), ci="router-resto-042")
        )  # fmt: skip


def _stored(version: int, topic: str, state: dict[str, Any]) -> StoredEvent:
    header = {"timestamp": {"_type_": "datetime_iso", "_data_": "2025-03-03T09:00:01+00:00"}, "actor": "pm"}
    return StoredEvent(
        originator_id=PROBLEM_ID,
        originator_version=version,
        topic=f"domain.problem:Problem.{topic}",
        state=json.dumps({**header, **state}).encode(),
    )


def _hex(incident_id: UUID) -> dict[str, str]:
    return {"_type_": "uuid_hex", "_data_": incident_id.hex}


# Exactly what version 1 stored: a Logged event without `links_on_incidents` (class version 1), then a link.
V1_HISTORY = [
    _stored(1, "Logged", {
        "at": {"_type_": "datetime_iso", "_data_": "2025-03-03T09:00:00+00:00"},
        "originator_topic": "domain.problem:Problem", "account": "resto-chain", "title": "Routers reboot",
        "description": "", "ci": "router-resto-042", "category": None, "incident_ids": [_hex(INCIDENT_1)],
    }),
    _stored(2, "IncidentLinked", {
        "at": {"_type_": "datetime_iso", "_data_": "2025-03-03T09:05:00+00:00"}, "incident_id": _hex(INCIDENT_2),
    }),
]  # fmt: skip


def test_a_problem_stored_by_version_1_loads_and_its_links_follow_its_history(tmp_path: Path) -> None:
    app = _app(tmp_path)
    _incidents(app, INCIDENT_1, INCIDENT_2, INCIDENT_3)
    app.recorder.insert_events(V1_HISTORY)
    app.handle(LinkIncidentToProblem(INCIDENT_2, PROBLEM_ID, actor="pm", at=at(5)))  # version 1 named it on INCIDENT_2

    problem = app.load(PROBLEM_ID, Problem, "problem")
    assert (problem.incident_count, problem.links_on_incidents) == (2, False)
    assert prb.incidents_of(app, problem) == (INCIDENT_1, INCIDENT_2)
    with pytest.raises(
        IllegalTransition, match=f"cannot link incident {INCIDENT_1} to problem .*: it is already linked"
    ):
        app.handle(cmd.AddIncidentToProblem(PROBLEM_ID, INCIDENT_1, actor="pm", at=at(10)))

    app.handle(cmd.RemoveIncidentFromProblem(PROBLEM_ID, INCIDENT_1, actor="pm", at=at(11)))  # never named it
    app.handle(cmd.RemoveIncidentFromProblem(PROBLEM_ID, INCIDENT_2, actor="pm", at=at(12)))
    problem = app.handle(cmd.AddIncidentToProblem(PROBLEM_ID, INCIDENT_3, actor="pm", at=at(13)))

    assert prb.incidents_of(app, problem) == (INCIDENT_3,) and problem.incident_count == 1
    assert [app.get_incident(i).problem_ids for i in (INCIDENT_1, INCIDENT_2, INCIDENT_3)] == [[], [], [PROBLEM_ID]]
    with pytest.raises(IllegalTransition, match=f"cannot unlink incident {INCIDENT_1} .*: it is not linked to it"):
        app.handle(cmd.RemoveIncidentFromProblem(PROBLEM_ID, INCIDENT_1, actor="pm", at=at(14)))


def test_a_snapshot_taken_by_version_1_loads_with_the_count_of_its_incidents(tmp_path: Path) -> None:
    app = _app(tmp_path)
    app.recorder.insert_events(V1_HISTORY)
    problem = app.load(PROBLEM_ID, Problem, "problem")
    state = {k: v for k, v in vars(problem).items() if k not in ("_id", "_version", "_pending_events")}
    del state["incident_count"], state["links_on_incidents"]
    state["_incident_ids"] = (INCIDENT_1, INCIDENT_2)  # what version 1's state held instead (no class_version)
    assert app.snapshots is not None
    app.snapshots.put(
        [Snapshot(originator_id=PROBLEM_ID, originator_version=2, timestamp=Snapshot.create_timestamp(),
                  topic="domain.problem:Problem", state=state)]
    )  # fmt: skip

    [snapshot] = app.snapshots.get(PROBLEM_ID)
    loaded = snapshot.mutate(None)
    assert isinstance(loaded, Problem) and not hasattr(loaded, "_incident_ids")
    assert (loaded.version, loaded.incident_count, loaded.links_on_incidents) == (2, 2, False)
    assert _app(tmp_path).load(PROBLEM_ID, Problem, "problem").summary() == problem.summary()


def test_snapshots_hold_the_count_of_incidents_not_their_ids(tmp_path: Path) -> None:
    app = _app(tmp_path)
    _incidents(app, INCIDENT_1, INCIDENT_2)
    app.handle(cmd.LogProblem(PROBLEM_ID, account="resto-chain", title="x", actor="pm", at=at(0),
                              incident_ids=(INCIDENT_1, INCIDENT_2)))  # fmt: skip
    app.take_snapshot(PROBLEM_ID)

    assert app.snapshots is not None
    [stored] = app.snapshots.recorder.select_events(PROBLEM_ID)
    state = json.loads(stored.state)["state"]
    assert (state["incident_count"], state["links_on_incidents"], state["class_version"]) == (2, True, 2)
    assert INCIDENT_1.hex not in stored.state.decode() and INCIDENT_2.hex not in stored.state.decode()


def test_the_incidents_kept_for_a_problem_follow_its_versions(tmp_path: Path) -> None:
    app = _app(tmp_path)
    _incidents(app, INCIDENT_1, INCIDENT_2, INCIDENT_3)
    app.handle(cmd.LogProblem(PROBLEM_ID, account="resto-chain", title="x", actor="pm", at=at(0),
                              incident_ids=(INCIDENT_1,)))  # fmt: skip
    earlier = app.handle(cmd.AddIncidentToProblem(PROBLEM_ID, INCIDENT_2, actor="pm", at=at(1)))
    kept = LinkedIncidents(app)
    assert (earlier.version, kept.of(earlier)) == (2, (INCIDENT_1, INCIDENT_2))

    app.handle(cmd.RemoveIncidentFromProblem(PROBLEM_ID, INCIDENT_1, actor="pm", at=at(2)))
    latest = app.handle(cmd.AddIncidentToProblem(PROBLEM_ID, INCIDENT_3, actor="pm", at=at(3)))

    assert kept.of(latest) == (INCIDENT_2, INCIDENT_3) == linked_incidents(app.events.get(PROBLEM_ID))
    assert kept.of(earlier) == (INCIDENT_1, INCIDENT_2)  # an older state of it, read afresh
    assert kept.of(latest) == (INCIDENT_2, INCIDENT_3)
