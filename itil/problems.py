"""Problem management: its commands, their handlers, and the routes of /api/problems.

Importing this module registers the handlers (with `handles`) and the routes (in EXTRA_ROUTES).
"""

from __future__ import annotations

import asyncio
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from aiohttp import web
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import IntegrityError
from marshmallow import Schema, fields, validate

from domain.change import CLOSED as CHANGE_CLOSED
from domain.change import FAILED as CHANGE_FAILED
from domain.change import IMPLEMENTED as CHANGE_IMPLEMENTED
from domain.change import REVIEW as CHANGE_REVIEW
from domain.change import Change
from domain.errors import IllegalTransition, InvalidCommand, NotFound
from domain.events import event_kind
from domain.incident import Incident
from domain.problem import Problem, link, linked_incidents, log_for, unlink
from itil.application import CONFLICT_RETRIES, ConcurrencyConflict, ItilApplication, handles
from itil.web import EXTRA_ROUTES, Route, WebApi, read_body, reply
from streams.envelope import envelope_of

# -- commands -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogProblem:
    id: UUID
    account: str
    title: str
    actor: str
    at: datetime
    description: str = ""
    ci: str | None = None
    category: str | None = None
    incident_ids: tuple[UUID, ...] = ()


@dataclass(frozen=True)
class AddIncidentToProblem:
    problem_id: UUID
    incident_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class RemoveIncidentFromProblem:
    problem_id: UUID
    incident_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class StartInvestigation:
    problem_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class RecordRootCause:
    problem_id: UUID
    analysis: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class PublishWorkaround:
    problem_id: UUID
    workaround: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class ProposeChange:
    problem_id: UUID
    change_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class ResolveProblem:
    problem_id: UUID
    actor: str
    at: datetime
    via_change_id: UUID | None = None
    notes: str = ""


@dataclass(frozen=True)
class ReopenInvestigation:
    problem_id: UUID
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class CloseProblem:
    problem_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class CancelProblem:
    problem_id: UUID
    reason: str
    actor: str
    at: datetime


# -- handlers -------------------------------------------------------------------------------------

_PROBLEM = "problem"
_IMPLEMENTED_STATUSES = (CHANGE_IMPLEMENTED, CHANGE_REVIEW, CHANGE_CLOSED)


def unused_id(app: ItilApplication, aggregate_id: UUID, what: str) -> None:
    """Refuse a client-chosen id already taken by a record of another kind."""
    if aggregate_id in app.repository:
        raise IllegalTransition(f"cannot create {what} {aggregate_id}: that id is already used by another record")


def history_of(app: ItilApplication, problem: Problem) -> list[DomainEventProtocol[UUID]]:
    """The problem's events up to the version loaded, oldest first."""
    return list(app.events.get(problem.id, lte=problem.version))


class LinkedIncidents:
    """The incidents linked to recently read problems, folded from their histories.

    A problem's state counts its incidents but does not list them; a long-lived problem has
    thousands of events. Each problem's list is kept with the version it was folded up to, and
    brought up to date by reading only the events after it (events never change once stored).
    """

    def __init__(self, app: ItilApplication, size: int = 256) -> None:
        self.app = app
        self.size = size
        self._lock = threading.Lock()
        self._folded: OrderedDict[UUID, tuple[int, tuple[UUID, ...]]] = OrderedDict()

    def of(self, problem: Problem) -> tuple[UUID, ...]:
        """The incidents linked to the problem as loaded (at its version), in the order they were linked."""
        with self._lock:
            version, linked = self._folded.get(problem.id, (0, ()))
        if version > problem.version:
            version, linked = 0, ()  # an older state of the problem than the one kept: fold it afresh
        if version < problem.version:
            linked = linked_incidents(self.app.events.get(problem.id, gt=version, lte=problem.version), linked)
        with self._lock:
            if self._folded.get(problem.id, (0, ()))[0] <= problem.version:
                self._folded[problem.id] = (problem.version, linked)
            self._folded.move_to_end(problem.id)
            while len(self._folded) > self.size:
                self._folded.popitem(last=False)
        return linked


_LINKED: weakref.WeakKeyDictionary[ItilApplication, LinkedIncidents] = weakref.WeakKeyDictionary()
_LINKED_LOCK = threading.Lock()


def incidents_of(app: ItilApplication, problem: Problem) -> tuple[UUID, ...]:
    """The incidents linked to the problem (as loaded), in the order they were linked, from its history."""
    with _LINKED_LOCK:
        kept = _LINKED.get(app)
        if kept is None:
            kept = _LINKED[app] = LinkedIncidents(app)
    return kept.of(problem)


def is_linked(app: ItilApplication, problem: Problem, incident: Incident) -> bool:
    """Whether the incident is linked to the problem now (read from the incident, or from the
    history of a problem logged before the incidents named their problems)."""
    return problem.is_linked(incident, _history_if_needed(app, problem))


def _history_if_needed(app: ItilApplication, problem: Problem) -> tuple[UUID, ...] | None:
    return None if problem.links_on_incidents else incidents_of(app, problem)


@handles(LogProblem)
def log_problem(app: ItilApplication, c: LogProblem) -> Problem:
    """Log the problem and link its incidents to it, in one save."""
    for _attempt in range(CONFLICT_RETRIES):
        existing = app.find(c.id, Problem)
        if existing is not None:
            return existing  # the same LogProblem carried out twice has the effect of once
        unused_id(app, c.id, _PROBLEM)
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
    [problem] = app.update([(problem_id, Problem, _PROBLEM)], act)
    result: Problem = problem
    return result


def _on_link(
    app: ItilApplication, problem_id: UUID, incident_id: UUID, act: Callable[[Problem, Incident], None]
) -> Problem:
    """Change the problem and the incident together: one save, retried on fresh state on a concurrent one."""
    problem, _ = app.update([(problem_id, Problem, _PROBLEM), (incident_id, Incident, "incident")], act)
    result: Problem = problem
    return result


@handles(AddIncidentToProblem)
def add_incident(app: ItilApplication, c: AddIncidentToProblem) -> Problem:
    def act(problem: Problem, incident: Incident) -> None:
        link(problem, incident, actor=c.actor, at=c.at, linked_by_history=_history_if_needed(app, problem))

    return _on_link(app, c.problem_id, c.incident_id, act)


@handles(RemoveIncidentFromProblem)
def remove_incident(app: ItilApplication, c: RemoveIncidentFromProblem) -> Problem:
    def act(problem: Problem, incident: Incident) -> None:
        unlink(problem, incident, actor=c.actor, at=c.at, linked_by_history=_history_if_needed(app, problem))

    return _on_link(app, c.problem_id, c.incident_id, act)


@handles(StartInvestigation)
def start_investigation(app: ItilApplication, c: StartInvestigation) -> Problem:
    return _on_problem(app, c.problem_id, lambda p: p.investigate(actor=c.actor, at=c.at))


@handles(RecordRootCause)
def record_root_cause(app: ItilApplication, c: RecordRootCause) -> Problem:
    return _on_problem(app, c.problem_id, lambda p: p.record_root_cause(analysis=c.analysis, actor=c.actor, at=c.at))


@handles(PublishWorkaround)
def publish_workaround(app: ItilApplication, c: PublishWorkaround) -> Problem:
    return _on_problem(
        app, c.problem_id, lambda p: p.publish_workaround(workaround=c.workaround, actor=c.actor, at=c.at)
    )


@handles(ProposeChange)
def propose_change(app: ItilApplication, c: ProposeChange) -> Problem:
    def act(problem: Problem, change: Change) -> None:
        if change.account != problem.account:
            raise InvalidCommand(
                f"cannot propose change {c.change_id} for problem {c.problem_id}: the change is on"
                f" account {change.account}, the problem on account {problem.account}"
            )
        problem.propose_change(change_id=c.change_id, actor=c.actor, at=c.at)

    problem, _ = app.update([(c.problem_id, Problem, _PROBLEM), (c.change_id, Change, "change")], act)
    result: Problem = problem
    return result


@handles(ResolveProblem)
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

    problem, _ = app.update([(c.problem_id, Problem, _PROBLEM), (via, Change, "change")], act)
    result: Problem = problem
    return result


@handles(ReopenInvestigation)
def reopen_investigation(app: ItilApplication, c: ReopenInvestigation) -> Problem:
    return _on_problem(app, c.problem_id, lambda p: p.reopen_investigation(reason=c.reason, actor=c.actor, at=c.at))


@handles(CloseProblem)
def close_problem(app: ItilApplication, c: CloseProblem) -> Problem:
    return _on_problem(app, c.problem_id, lambda p: p.close(actor=c.actor, at=c.at))


@handles(CancelProblem)
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


# -- HTTP -----------------------------------------------------------------------------------------


class CommandBody(Schema):
    """What every command body may carry: when it happened and, without X-Actor, who acted."""

    at = fields.AwareDateTime(load_default=None, metadata={"description": "when it happened; default now"})
    actor = fields.String(load_default=None, validate=validate.Length(min=1, max=200))


def _text(max_length: int = 20000, required: bool = True) -> fields.String:
    if required:
        return fields.String(required=True, validate=validate.Length(min=1, max=max_length))
    return fields.String(load_default="", validate=validate.Length(max=max_length))


class LogProblemBody(CommandBody):
    id = fields.UUID(load_default=None, metadata={"description": "client-chosen id makes retries safe"})
    account = _text(200)
    title = _text(500)
    description = _text(required=False)
    ci = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    category = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    incident_ids = fields.List(fields.UUID(), load_default=list)


class IncidentBody(CommandBody):
    incident_id = fields.UUID(required=True)


class AnalysisBody(CommandBody):
    analysis = _text()


class WorkaroundBody(CommandBody):
    workaround = _text()


class ChangeIdBody(CommandBody):
    change_id = fields.UUID(required=True)


class ResolveProblemBody(CommandBody):
    via_change_id = fields.UUID(load_default=None, metadata={"description": "the change that removed the cause"})
    notes = _text(required=False)


class ReasonBody(CommandBody):
    reason = _text(5000)


PROBLEM_COMMANDS: dict[str, tuple[Schema, type]] = {
    "link-incident": (IncidentBody(), AddIncidentToProblem),
    "unlink-incident": (IncidentBody(), RemoveIncidentFromProblem),
    "investigate": (CommandBody(), StartInvestigation),
    "root-cause": (AnalysisBody(), RecordRootCause),
    "workaround": (WorkaroundBody(), PublishWorkaround),
    "propose-change": (ChangeIdBody(), ProposeChange),
    "resolve": (ResolveProblemBody(), ResolveProblem),
    "reopen-investigation": (ReasonBody(), ReopenInvestigation),
    "close": (CommandBody(), CloseProblem),
    "cancel": (ReasonBody(), CancelProblem),
}
"""POST /api/problems/{problem_id}/{command}: the body's schema and the command it becomes."""


def id_in_path(request: web.Request, key: str, what: str) -> UUID:
    text = request.match_info[key]
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(f"there is no {what} {text!r}: not a {what} id") from None


async def load_in_path(api: WebApi, request: web.Request, key: str, kind: type[Aggregate], what: str) -> Any:
    """The aggregate named in the path (404 when there is none)."""
    return await asyncio.to_thread(api.app.load, id_in_path(request, key, what), kind, what)


async def problem_account(api: WebApi, request: web.Request) -> str | None:
    problem: Problem = await load_in_path(api, request, "problem_id", Problem, _PROBLEM)
    return problem.account


async def command_of(api: WebApi, request: web.Request, commands: dict[str, tuple[Schema, type]], **ids: Any) -> Any:
    """The command named by the path's {command}, built from the validated body."""
    name = request.match_info["command"]
    if name not in commands:
        raise NotFound(f"unknown command {name!r}; use one of {', '.join(commands)}")
    schema, command_class = commands[name]
    data = schema.load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    data.update(actor=actor, at=at, **ids)
    return command_class(**data)


async def log_problem_route(api: WebApi, request: web.Request) -> web.Response:
    data = LogProblemBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    command = LogProblem(
        id=data["id"] or uuid4(), account=data["account"], title=data["title"], actor=actor, at=at,
        description=data["description"], ci=data["ci"], category=data["category"],
        incident_ids=tuple(data["incident_ids"]),
    )  # fmt: skip
    problem = await asyncio.to_thread(api.app.handle, command)
    body = await asyncio.to_thread(problem_body, api.app, problem)
    return reply(body, status=201, headers={"Location": f"/api/problems/{problem.id}"})


async def problem_command_route(api: WebApi, request: web.Request) -> web.Response:
    problem_id = id_in_path(request, "problem_id", _PROBLEM)
    command = await command_of(api, request, PROBLEM_COMMANDS, problem_id=problem_id)
    problem = await asyncio.to_thread(api.app.handle, command)
    return reply(await asyncio.to_thread(problem_body, api.app, problem))


async def get_problem_route(api: WebApi, request: web.Request) -> web.Response:
    """The problem as the store has it now, with its whole story."""
    problem: Problem = await load_in_path(api, request, "problem_id", Problem, _PROBLEM)
    return reply(await asyncio.to_thread(problem_story, api.app, problem))


def problem_body(app: ItilApplication, problem: Problem) -> dict[str, Any]:
    """What the API answers about a problem: its state and the incidents linked to it."""
    return {**problem.summary(), "linked_incidents": [str(i) for i in incidents_of(app, problem)]}


def problem_story(app: ItilApplication, problem: Problem) -> dict[str, Any]:
    """The problem, the incidents linked to it and its timeline, from one reading of its history."""
    history = history_of(app, problem)
    linked = [str(i) for i in linked_incidents(history)]
    return {**problem.summary(), "linked_incidents": linked, "timeline": timeline_of(history)}


EXTRA_ROUTES.extend(
    [
        Route("POST", "/api/problems", log_problem_route, "problem.log", "body"),
        Route("GET", "/api/problems/{problem_id}", get_problem_route, "problem.read", problem_account),
        Route("POST", "/api/problems/{problem_id}/{command}", problem_command_route, "problem.update", problem_account),
    ]
)
