"""Problem management: the handlers of its commands, and what the API reads of a problem (its routes:
`web.problems`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError

from application.app import ItilApplication
from application.conflicts import CONFLICT_RETRIES, ConcurrencyConflict
from domain.change import CLOSED as CHANGE_CLOSED
from domain.change import FAILED as CHANGE_FAILED
from domain.change import IMPLEMENTED as CHANGE_IMPLEMENTED
from domain.change import REVIEW as CHANGE_REVIEW
from domain.change import Change
from domain.commands import (
    AddIncidentToProblem,
    CancelProblem,
    CloseProblem,
    LogProblem,
    ProposeChange,
    PublishWorkaround,
    RecordRootCause,
    RemoveIncidentFromProblem,
    ReopenInvestigation,
    ResolveProblem,
    StartInvestigation,
)
from domain.errors import IllegalTransition, InvalidCommand
from domain.events import event_kind
from domain.incident import Incident
from domain.problem import Problem, link, linked_incidents, log_for, unlink
from projections.records import envelope_of

# -- handlers -------------------------------------------------------------------------------------

PROBLEM = "problem"
_IMPLEMENTED_STATUSES = (CHANGE_IMPLEMENTED, CHANGE_REVIEW, CHANGE_CLOSED)


def unused_id(app: ItilApplication, aggregate_id: UUID, what: str) -> None:
    """Refuse a client-chosen id already taken by a record of another kind."""
    if aggregate_id in app.repository:
        raise IllegalTransition(f"cannot create {what} {aggregate_id}: that id is already used by another record")


def history_of(app: ItilApplication, problem: Problem) -> list[DomainEventProtocol[UUID]]:
    """The problem's events up to the version loaded, oldest first."""
    return list(app.events.get(problem.id, lte=problem.version))


def incidents_of(app: ItilApplication, problem: Problem) -> tuple[UUID, ...]:
    """The incidents linked to the problem (as loaded), in the order they were linked, from its history."""
    return app.incidents_of(problem)


def is_linked(app: ItilApplication, problem: Problem, incident: Incident) -> bool:
    """Whether the incident is linked to the problem now (see `ItilApplication.is_linked`)."""
    return app.is_linked(problem, incident)


def _history_if_needed(app: ItilApplication, problem: Problem) -> tuple[UUID, ...] | None:
    return None if problem.links_on_incidents else app.incidents_of(problem)


def log_problem(app: ItilApplication, c: LogProblem) -> Problem:
    """Log the problem and link its incidents to it, in one save."""
    for _attempt in range(CONFLICT_RETRIES):
        existing = app.find(c.id, Problem)
        if existing is not None:
            return existing  # the same LogProblem carried out twice has the effect of once
        unused_id(app, c.id, PROBLEM)
        incidents = [app.load(i, Incident, "incident") for i in c.incident_ids]
        problem = log_for(
            incidents, id=c.id, account=c.account, title=c.title, description=c.description, actor=c.actor,
            at=c.at, ci=c.ci, category=c.category,
        )  # fmt: skip
        try:
            app.save(problem, *(i for i in incidents if i.pending_events))
        except IntegrityError:
            continue  # logged meanwhile (then found above), or one of its incidents changed: check again
        app.saved()
        return problem
    raise ConcurrencyConflict(f"the incidents of problem {c.id} kept changing while it was logged; try again")


def _on_problem(app: ItilApplication, problem_id: UUID, act: Callable[[Problem], None]) -> Problem:
    [problem] = app.update([(problem_id, Problem, PROBLEM)], act)
    result: Problem = problem
    return result


def _on_link(
    app: ItilApplication, problem_id: UUID, incident_id: UUID, act: Callable[[Problem, Incident], None]
) -> Problem:
    """Change the problem and the incident together: one save, retried on fresh state on a concurrent one."""
    problem, _ = app.update([(problem_id, Problem, PROBLEM), (incident_id, Incident, "incident")], act)
    result: Problem = problem
    return result


def add_incident(app: ItilApplication, c: AddIncidentToProblem) -> Problem:
    def act(problem: Problem, incident: Incident) -> None:
        link(problem, incident, actor=c.actor, at=c.at, linked_by_history=_history_if_needed(app, problem))

    return _on_link(app, c.problem_id, c.incident_id, act)


def remove_incident(app: ItilApplication, c: RemoveIncidentFromProblem) -> Problem:
    def act(problem: Problem, incident: Incident) -> None:
        unlink(problem, incident, actor=c.actor, at=c.at, linked_by_history=_history_if_needed(app, problem))

    return _on_link(app, c.problem_id, c.incident_id, act)


def start_investigation(app: ItilApplication, c: StartInvestigation) -> Problem:
    return _on_problem(app, c.problem_id, lambda p: p.investigate(actor=c.actor, at=c.at))


def record_root_cause(app: ItilApplication, c: RecordRootCause) -> Problem:
    return _on_problem(app, c.problem_id, lambda p: p.record_root_cause(analysis=c.analysis, actor=c.actor, at=c.at))


def publish_workaround(app: ItilApplication, c: PublishWorkaround) -> Problem:
    return _on_problem(
        app, c.problem_id, lambda p: p.publish_workaround(workaround=c.workaround, actor=c.actor, at=c.at)
    )


def propose_change(app: ItilApplication, c: ProposeChange) -> Problem:
    def act(problem: Problem, change: Change) -> None:
        if change.account != problem.account:
            raise InvalidCommand(
                f"cannot propose change {c.change_id} for problem {c.problem_id}: the change is on"
                f" account {change.account}, the problem on account {problem.account}"
            )
        problem.propose_change(change_id=c.change_id, actor=c.actor, at=c.at)

    problem, _ = app.update([(c.problem_id, Problem, PROBLEM), (c.change_id, Change, "change")], act)
    result: Problem = problem
    return result


def resolve_problem(app: ItilApplication, c: ResolveProblem) -> Problem:
    if c.via_change_id is None:
        return _on_problem(
            app, c.problem_id, lambda p: p.resolve(via_change_id=None, notes=c.notes, actor=c.actor, at=c.at)
        )
    via = c.via_change_id

    def act(problem: Problem, change: Change) -> None:
        if change.status not in _IMPLEMENTED_STATUSES:
            state = "failed" if change.status == CHANGE_FAILED else f"is {change.status}"
            raise IllegalTransition(
                f"cannot resolve problem {c.problem_id} via change {via}: the change {state};"
                " only an implemented change removes the cause"
            )
        problem.resolve(via_change_id=via, notes=c.notes, actor=c.actor, at=c.at)

    problem, _ = app.update([(c.problem_id, Problem, PROBLEM), (via, Change, "change")], act)
    result: Problem = problem
    return result


def reopen_investigation(app: ItilApplication, c: ReopenInvestigation) -> Problem:
    return _on_problem(app, c.problem_id, lambda p: p.reopen_investigation(reason=c.reason, actor=c.actor, at=c.at))


def close_problem(app: ItilApplication, c: CloseProblem) -> Problem:
    return _on_problem(app, c.problem_id, lambda p: p.close(actor=c.actor, at=c.at))


def cancel_problem(app: ItilApplication, c: CancelProblem) -> Problem:
    return _on_problem(app, c.problem_id, lambda p: p.cancel(reason=c.reason, actor=c.actor, at=c.at))


# -- history --------------------------------------------------------------------------------------

_DETAIL = {
    event_kind(Problem.Logged): "title",
    event_kind(Problem.IncidentLinked): "incident_id",
    event_kind(Problem.IncidentUnlinked): "incident_id",
    event_kind(Problem.RootCauseRecorded): "analysis",
    event_kind(Problem.WorkaroundPublished): "workaround",
    event_kind(Problem.ChangeProposed): "change_id",
    event_kind(Problem.Resolved): "notes",
    event_kind(Problem.InvestigationReopened): "reason",
    event_kind(Problem.Cancelled): "reason",
    event_kind(Change.Cancelled): "reason",
    event_kind(Change.Requested): "title",
    event_kind(Change.Assessed): "risk",
    event_kind(Change.CabConvened): "members",
    event_kind(Change.Approved): "approver",
    event_kind(Change.Rejected): "reason",
    event_kind(Change.Authorised): "basis",
    event_kind(Change.Completed): "notes",
    event_kind(Change.Failed): "reason",
    event_kind(Change.Reviewed): "outcome",
}
_SCHEDULED = event_kind(Change.Scheduled)


def _words(kind: str) -> str:
    """`RootCauseRecorded` -> `Root cause recorded` (CAB stays CAB)."""
    words = re.findall(r"Cab|[A-Z][a-z]*", kind)
    text = " ".join("CAB" if w == "Cab" else w.lower() for w in words)
    return text[:1].upper() + text[1:]


def timeline(app: ItilApplication, aggregate_id: UUID) -> list[dict[str, Any]]:
    """Every stored event of one problem or change, oldest first, as it reads in its history."""
    return timeline_of(app.events.get(aggregate_id))


def timeline_of(events: Iterable[DomainEventProtocol[UUID]]) -> list[dict[str, Any]]:
    """These events (of one problem or change, oldest first) as they read in its history."""
    entries = []
    for e in events:
        envelope = envelope_of(e, None)
        kind = envelope["event_type"].split(".")[-1]
        payload = envelope["payload"]
        detail = payload.get(_DETAIL.get(kind, ""))
        if isinstance(detail, list | tuple):
            detail = ", ".join(str(d) for d in detail)
        summary = _words(kind) + (f": {detail}" if detail not in (None, "") else "")
        if kind == _SCHEDULED:
            summary += f": {payload['start']} – {payload['end']}"
            if payload.get("outside_maintenance_window"):
                summary += " (outside the maintenance windows)"
        entries.append(
            {
                "version": envelope["aggregate_version"],
                "event_type": envelope["event_type"],
                "occurred_at": envelope["occurred_at"],
                "actor": envelope["actor"],
                "summary": summary,
                "details": payload,
            }
        )
    return entries


def problem_body(app: ItilApplication, problem: Problem) -> dict[str, Any]:
    """What the API answers about a problem: its state and the incidents linked to it."""
    return {**problem.summary(), "linked_incidents": [str(i) for i in incidents_of(app, problem)]}


def problem_story(app: ItilApplication, problem: Problem) -> dict[str, Any]:
    """The problem, the incidents linked to it and its timeline, from one reading of its history."""
    history = history_of(app, problem)
    linked = [str(i) for i in linked_incidents(history)]
    return {**problem.summary(), "linked_incidents": linked, "timeline": timeline_of(history)}


HANDLERS = MappingProxyType(
    {
        LogProblem: log_problem,
        AddIncidentToProblem: add_incident,
        RemoveIncidentFromProblem: remove_incident,
        StartInvestigation: start_investigation,
        RecordRootCause: record_root_cause,
        PublishWorkaround: publish_workaround,
        ProposeChange: propose_change,
        ResolveProblem: resolve_problem,
        ReopenInvestigation: reopen_investigation,
        CloseProblem: close_problem,
        CancelProblem: cancel_problem,
    }
)
"""Command class -> handler(app, command) of this area; the application's table is built from these."""
