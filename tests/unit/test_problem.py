"""Every rule of the Problem aggregate, called directly with explicit instants."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application

from domain.errors import DomainError, IllegalTransition, InvalidCommand
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
    "link_incident": lambda p, t: p.link_incident(incident_id=INCIDENT_2, actor=ENGINEER, at=t),
    "unlink_incident": lambda p, t: p.unlink_incident(incident_id=INCIDENT_1, actor=ENGINEER, at=t),
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
    assert problem.linked_incidents == ()
    assert problem.change_ids == ()
    assert problem.root_cause is None
    assert problem.workaround is None
    assert problem.logged_at == problem.last_at == at(0)
    assert event_names(problem) == ["Logged"]


def test_logging_from_incidents_links_them_in_order() -> None:
    problem = log(incident_ids=[INCIDENT_2, INCIDENT_1])

    assert problem.linked_incidents == (INCIDENT_2, INCIDENT_1)
    assert event_names(problem) == ["Logged"]


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


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_linking_an_incident_adds_it_to_an_open_problem(status: str) -> None:
    problem = BUILDERS[status]()
    problem.link_incident(incident_id=INCIDENT_2, actor=ENGINEER, at=LATER)

    assert problem.linked_incidents == (INCIDENT_1, INCIDENT_2)
    assert problem.status == status
    assert event_names(problem)[-1] == "IncidentLinked"


def test_linking_an_incident_already_linked_is_refused() -> None:
    problem = new()

    error = assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.link_incident(incident_id=INCIDENT_1, actor=ENGINEER, at=at(1)),
        match="already linked",
    )
    assert str(INCIDENT_1) in str(error)


def test_linking_something_that_is_not_an_incident_id_is_refused() -> None:
    problem = new()

    assert_refused(
        problem,
        InvalidCommand,
        lambda: problem.link_incident(incident_id=str(INCIDENT_2), actor=ENGINEER, at=at(1)),  # type: ignore[arg-type]
        match="incident id must be a UUID",
    )


def test_linking_an_incident_to_a_resolved_problem_says_to_reopen_it() -> None:
    problem = resolved()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.link_incident(incident_id=INCIDENT_2, actor=ENGINEER, at=LATER),
        match="it is resolved; reopen the investigation if the cause is back",
    )


@pytest.mark.parametrize("status", [CLOSED, CANCELLED])
def test_linking_an_incident_to_a_finished_problem_is_refused(status: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.link_incident(incident_id=INCIDENT_2, actor=ENGINEER, at=LATER),
        match=f"cannot link an incident to problem {PROBLEM_ID}: it is {status}",
    )


def test_unlinking_an_incident_removes_it_and_keeps_the_others() -> None:
    problem = log(incident_ids=(INCIDENT_1, INCIDENT_2, INCIDENT_3))
    problem.unlink_incident(incident_id=INCIDENT_2, actor=ENGINEER, at=at(1))

    assert problem.linked_incidents == (INCIDENT_1, INCIDENT_3)
    assert event_names(problem)[-1] == "IncidentUnlinked"


def test_an_unlinked_incident_can_be_linked_again() -> None:
    problem = new()
    problem.unlink_incident(incident_id=INCIDENT_1, actor=ENGINEER, at=at(1))
    problem.link_incident(incident_id=INCIDENT_1, actor=ENGINEER, at=at(2))

    assert problem.linked_incidents == (INCIDENT_1,)


def test_unlinking_an_incident_that_is_not_linked_is_refused() -> None:
    problem = new()

    error = assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.unlink_incident(incident_id=INCIDENT_2, actor=ENGINEER, at=at(1)),
        match="it is not linked to it",
    )
    assert str(INCIDENT_2) in str(error)


@pytest.mark.parametrize("status", [RESOLVED, CLOSED, CANCELLED])
def test_unlinking_an_incident_from_a_finished_problem_is_refused(status: str) -> None:
    problem = BUILDERS[status]()

    assert_refused(
        problem,
        IllegalTransition,
        lambda: problem.unlink_incident(incident_id=INCIDENT_1, actor=ENGINEER, at=LATER),
        match="cannot unlink an incident from problem",
    )


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
    assert summary["linked_incidents"] == [str(INCIDENT_1)]
    assert summary["change_ids"] == [str(CHANGE_1)]
    assert summary["resolved_via_change_id"] == str(CHANGE_1)
    assert summary["root_cause"] == "firmware 7.2 watchdog bug"
    assert summary["workaround"] == "disable the watchdog"
    assert summary["resolved_at"] == at(5)


def _full_history() -> Problem:
    problem = log(incident_ids=(INCIDENT_1, INCIDENT_2), ci="router-resto-042", category="firmware")
    problem.link_incident(incident_id=INCIDENT_3, actor=ENGINEER, at=at(1))
    problem.unlink_incident(incident_id=INCIDENT_1, actor=ENGINEER, at=at(2))
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

    replayed: Problem | None = None
    for domain_event in problem.collect_events():
        replayed = domain_event.mutate(replayed)

    assert replayed is not None
    assert replayed.summary() == problem.summary()
    assert replayed.linked_incidents == (INCIDENT_2, INCIDENT_3)
    assert replayed.change_ids == (CHANGE_1, CHANGE_2)


def test_a_problem_stored_and_read_back_has_the_same_summary() -> None:
    problem = _full_history()
    app: Application[UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(problem)

    stored: Problem = app.repository.get(PROBLEM_ID)

    assert stored.summary() == problem.summary()
    assert stored.linked_incidents == (INCIDENT_2, INCIDENT_3)
