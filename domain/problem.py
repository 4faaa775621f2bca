"""The Problem aggregate: the cause of one or more incidents, from logging to known error and closure."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import IllegalTransition, InvalidCommand
from domain.incident import Incident
from domain.rules import StatusFlow, TextsChecked, aware, check_name, check_uuid, optional, required

NEW = "new"
UNDER_INVESTIGATION = "under_investigation"
ROOT_CAUSE_KNOWN = "root_cause_known"
KNOWN_ERROR = "known_error"
RESOLVED = "resolved"
CLOSED = "closed"
CANCELLED = "cancelled"

STATUSES = (NEW, UNDER_INVESTIGATION, ROOT_CAUSE_KNOWN, KNOWN_ERROR, RESOLVED, CLOSED, CANCELLED)
OPEN_STATUSES = (NEW, UNDER_INVESTIGATION, ROOT_CAUSE_KNOWN, KNOWN_ERROR)
"""Statuses in which the cause is still being looked for or fixed."""


def _incident_ids(values: Iterable[object]) -> tuple[UUID, ...]:
    if isinstance(values, str | bytes | UUID):
        raise InvalidCommand(f"incident ids must be a list of UUIDs, not {values!r}")
    ids: list[UUID] = []
    for value in values:
        incident_id = check_uuid("an incident id", value)
        if incident_id in ids:
            raise InvalidCommand(f"incident {incident_id} is listed twice")
        ids.append(incident_id)
    return tuple(ids)


class Problem(TextsChecked, StatusFlow, Aggregate):
    """A problem on a customer account: find the cause of its incidents, work around it, fix it.

    Its state counts the incidents linked to it but does not list them, so that a problem with ten
    thousand incidents loads (from its snapshot) as fast as one with ten: each linked incident names
    the problem (`Incident.problem_ids`), and both are changed together by `link` and `unlink`. The
    list of linked incidents is read from the problem's history (`linked_incidents`).
    """

    class_version = 2
    """Of the state its snapshots hold: version 1 listed the linked incidents."""

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A snapshot taken by version 1 listed the linked incidents, which the incidents did not all name."""
        state["incident_count"] = len(state.pop("_incident_ids", ()))
        state["links_on_incidents"] = False

    class Event(Aggregate.Event):
        actor: str
        at: datetime

    class Logged(Event, Aggregate.Created):
        account: str
        title: str
        description: str
        ci: str | None
        category: str | None
        incident_ids: tuple[UUID, ...]
        links_on_incidents: bool
        """Whether each linked incident names the problem too (always, since version 2)."""

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 recorded links on the problem only; the incidents it linked may not name it."""
            state.setdefault("links_on_incidents", False)

    class IncidentLinked(Event):
        incident_id: UUID

    class IncidentUnlinked(Event):
        incident_id: UUID

    class InvestigationStarted(Event):
        pass

    class RootCauseRecorded(Event):
        analysis: str

    class WorkaroundPublished(Event):
        workaround: str

    class ChangeProposed(Event):
        change_id: UUID

    class Resolved(Event):
        via_change_id: UUID | None
        notes: str

    class InvestigationReopened(Event):
        reason: str

    class Closed(Event):
        pass

    class Cancelled(Event):
        reason: str

    @event(Logged)
    def __init__(
        self,
        *,
        account: str,
        title: str,
        description: str,
        ci: str | None,
        category: str | None,
        incident_ids: tuple[UUID, ...],
        links_on_incidents: bool,
        actor: str,
        at: datetime,
    ) -> None:
        self.account = account
        self.title = title
        self.description = description
        self.ci = ci
        self.category = category
        self.incident_count = len(incident_ids)
        self.links_on_incidents = links_on_incidents
        self._change_ids: tuple[UUID, ...] = ()
        self.logged_at = at
        self.last_at = at
        self.status = NEW
        self.investigation_started_at: datetime | None = None
        self._root_cause: str | None = None
        self.root_cause_recorded_at: datetime | None = None
        self._workaround: str | None = None
        self.workaround_published_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.resolved_via_change_id: UUID | None = None
        self.resolution_notes: str | None = None
        self.reopen_reason: str | None = None
        self.closed_at: datetime | None = None
        self.cancelled_at: datetime | None = None
        self.cancellation_reason: str | None = None

    @classmethod
    def log(
        cls,
        *,
        id: UUID,  # noqa: A002 - the application chooses ids, the aggregate never does
        account: str,
        title: str,
        description: str,
        actor: str,
        at: datetime,
        ci: str | None = None,
        category: str | None = None,
        incident_ids: Iterable[UUID] = (),
    ) -> Problem:
        """Log a problem, by hand or from the incidents it is thought to cause.

        The incidents must name it too: use `log_for` to change them at the same time.
        """
        return cls._create(
            cls.Logged,
            id=id,
            account=check_name("account", account),
            title=required("title", title),
            description=description.strip() if isinstance(description, str) else "",
            ci=optional(ci),
            category=optional(category),
            incident_ids=_incident_ids(incident_ids),
            links_on_incidents=True,
            actor=required("actor", actor),
            at=aware(at),
        )

    # -- properties ---------------------------------------------------------------

    @property
    def change_ids(self) -> tuple[UUID, ...]:
        """The changes proposed to remove the cause, in the order they were proposed."""
        return self._change_ids

    @property
    def root_cause(self) -> str | None:
        return self._root_cause

    @property
    def workaround(self) -> str | None:
        return self._workaround

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    # -- commands -----------------------------------------------------------------

    def is_linked(self, incident: Incident, linked_by_history: Collection[UUID] | None = None) -> bool:
        """Whether the incident is linked to this problem now.

        The incident says so; for a problem logged by version 1 (`links_on_incidents` false) its
        history does, given as `linked_by_history` (see `linked_incidents`).
        """
        if self.links_on_incidents:
            return self.id in incident.problem_ids
        if linked_by_history is None:
            raise ValueError(f"problem {self.id} predates links kept on the incidents: give its linked incidents")
        return incident.id in linked_by_history

    def investigate(self, *, actor: str, at: datetime) -> None:
        """Start looking for the root cause."""
        self._check("investigate", actor, at)
        self._refuse_unless("investigate", (NEW,))
        self._investigation_started(actor=actor, at=at)

    def record_root_cause(self, *, analysis: str, actor: str, at: datetime) -> None:
        """Record the root cause found by the investigation.

        A known error published before its cause was found stays a known error.
        """
        self._check("record the root cause of", actor, at)
        if self.status == KNOWN_ERROR and self._root_cause is not None:
            raise IllegalTransition(
                f"cannot record the root cause of problem {self.id}: it was already recorded"
                f" ({self._root_cause!r}); reopen the investigation to revise it"
            )
        self._refuse_unless("record the root cause of", (UNDER_INVESTIGATION, KNOWN_ERROR))
        self._root_cause_recorded(analysis=required("analysis", analysis), actor=actor, at=at)

    def publish_workaround(self, *, workaround: str, actor: str, at: datetime) -> None:
        """Publish a workaround: the problem becomes a known error."""
        self._check("publish a workaround for", actor, at)
        self._refuse_unless("publish a workaround for", (UNDER_INVESTIGATION, ROOT_CAUSE_KNOWN))
        self._workaround_published(workaround=required("workaround", workaround), actor=actor, at=at)

    def propose_change(self, *, change_id: UUID, actor: str, at: datetime) -> None:
        """Link the change that should remove the cause."""
        self._check("propose a change for", actor, at)
        self._refuse_unless("propose a change for", OPEN_STATUSES)
        change_id = check_uuid("change id", change_id)
        if change_id in self._change_ids:
            raise IllegalTransition(f"cannot propose change {change_id} for problem {self.id}: it is already proposed")
        self._change_proposed(change_id=change_id, actor=actor, at=at)

    def resolve(self, *, via_change_id: UUID | None, notes: str = "", actor: str, at: datetime) -> None:
        """Resolve the problem once its cause is removed, by one of its changes or otherwise."""
        self._check("resolve", actor, at)
        self._refuse_unless("resolve", (ROOT_CAUSE_KNOWN, KNOWN_ERROR))
        if via_change_id is None:
            notes = required("notes (how it was resolved without a change)", notes)
        else:
            via_change_id = check_uuid("via change id", via_change_id)
            if via_change_id not in self._change_ids:
                raise IllegalTransition(
                    f"cannot resolve problem {self.id} via change {via_change_id}: that change was"
                    " never proposed for it; propose it first"
                )
            notes = notes.strip() if isinstance(notes, str) else ""
        self._resolved(via_change_id=via_change_id, notes=notes, actor=actor, at=at)

    def reopen_investigation(self, *, reason: str, actor: str, at: datetime) -> None:
        """Investigate again, e.g. when the change meant to fix the cause failed."""
        self._check("reopen the investigation of", actor, at)
        self._refuse_unless("reopen the investigation of", (ROOT_CAUSE_KNOWN, KNOWN_ERROR, RESOLVED))
        self._investigation_reopened(reason=required("reason", reason), actor=actor, at=at)

    def close(self, *, actor: str, at: datetime) -> None:
        """Close a resolved problem for good."""
        self._check("close", actor, at)
        self._refuse_unless("close", (RESOLVED,))
        self._closed(actor=actor, at=at)

    def cancel(self, *, reason: str, actor: str, at: datetime) -> None:
        """Cancel a problem logged by mistake or as a duplicate, before it was resolved."""
        self._check("cancel", actor, at)
        self._refuse_unless("cancel", OPEN_STATUSES)
        self._cancelled(reason=required("reason", reason), actor=actor, at=at)

    # -- rules --------------------------------------------------------------------

    def _name(self) -> str:
        return f"problem {self.id}"

    def _refusal(self, verb: str) -> str:
        return f"{_STATUS_TEXT[self.status]}{_WHY.get((verb, self.status), '')}"

    # -- mutators: only assign state ---------------------------------------------

    @event(IncidentLinked)
    def _incident_linked(self, incident_id: UUID, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.incident_count += 1

    @event(IncidentUnlinked)
    def _incident_unlinked(self, incident_id: UUID, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.incident_count -= 1

    @event(InvestigationStarted)
    def _investigation_started(self, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.investigation_started_at = at
        self.status = UNDER_INVESTIGATION

    @event(RootCauseRecorded)
    def _root_cause_recorded(self, analysis: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self._root_cause = analysis
        self.root_cause_recorded_at = at
        if self.status == UNDER_INVESTIGATION:
            self.status = ROOT_CAUSE_KNOWN

    @event(WorkaroundPublished)
    def _workaround_published(self, workaround: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self._workaround = workaround
        self.workaround_published_at = at
        self.status = KNOWN_ERROR

    @event(ChangeProposed)
    def _change_proposed(self, change_id: UUID, actor: str, at: datetime) -> None:
        self._stamp(at)
        self._change_ids = (*self._change_ids, change_id)

    @event(Resolved)
    def _resolved(self, via_change_id: UUID | None, notes: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.resolved_at = at
        self.resolved_via_change_id = via_change_id
        self.resolution_notes = notes
        self.status = RESOLVED

    @event(InvestigationReopened)
    def _investigation_reopened(self, reason: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.reopen_reason = reason
        self.resolved_at = None
        self.resolved_via_change_id = None
        self.resolution_notes = None
        self.status = UNDER_INVESTIGATION

    @event(Closed)
    def _closed(self, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.closed_at = at
        self.status = CLOSED

    @event(Cancelled)
    def _cancelled(self, reason: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.cancelled_at = at
        self.cancellation_reason = reason
        self.status = CANCELLED

    def summary(self) -> dict[str, Any]:
        """The problem's current state as plain values (its linked incidents come from its history)."""
        return {
            "id": str(self.id),
            "version": self.version,
            "account": self.account,
            "title": self.title,
            "description": self.description,
            "ci": self.ci,
            "category": self.category,
            "status": self.status,
            "incident_count": self.incident_count,
            "change_ids": [str(c) for c in self._change_ids],
            "root_cause": self._root_cause,
            "workaround": self._workaround,
            "resolved_via_change_id": str(self.resolved_via_change_id) if self.resolved_via_change_id else None,
            "resolution_notes": self.resolution_notes,
            "reopen_reason": self.reopen_reason,
            "cancellation_reason": self.cancellation_reason,
            "logged_at": self.logged_at,
            "investigation_started_at": self.investigation_started_at,
            "root_cause_recorded_at": self.root_cause_recorded_at,
            "workaround_published_at": self.workaround_published_at,
            "resolved_at": self.resolved_at,
            "closed_at": self.closed_at,
            "cancelled_at": self.cancelled_at,
        }


_STATUS_TEXT = {
    NEW: "it is new",
    UNDER_INVESTIGATION: "it is under investigation",
    ROOT_CAUSE_KNOWN: "its root cause is known",
    KNOWN_ERROR: "it is a known error",
    RESOLVED: "it is resolved",
    CLOSED: "it is closed",
    CANCELLED: "it is cancelled",
}

_INVESTIGATE_FIRST = "; start the investigation first"
_FIND_CAUSE_FIRST = "; its root cause must be known first"
_ONLY_RESOLVED_CLOSE = "; only a resolved problem can be closed"
_REOPEN_IF_BACK = "; reopen the investigation if the cause is back"

_WHY = {
    ("record the root cause of", NEW): _INVESTIGATE_FIRST,
    ("record the root cause of", ROOT_CAUSE_KNOWN): "; reopen the investigation to revise it",
    ("publish a workaround for", NEW): _INVESTIGATE_FIRST,
    ("publish a workaround for", KNOWN_ERROR): "; a workaround is already published",
    ("resolve", NEW): _FIND_CAUSE_FIRST,
    ("resolve", UNDER_INVESTIGATION): _FIND_CAUSE_FIRST,
    ("reopen the investigation of", NEW): _INVESTIGATE_FIRST,
    ("reopen the investigation of", UNDER_INVESTIGATION): "; it is still being investigated",
    ("reopen the investigation of", CLOSED): "; a closed problem cannot be reopened, log a new one",
    ("close", NEW): _ONLY_RESOLVED_CLOSE,
    ("close", UNDER_INVESTIGATION): _ONLY_RESOLVED_CLOSE,
    ("close", ROOT_CAUSE_KNOWN): _ONLY_RESOLVED_CLOSE,
    ("close", KNOWN_ERROR): _ONLY_RESOLVED_CLOSE,
    ("cancel", RESOLVED): "; it was resolved, close it instead",
    ("link an incident to", RESOLVED): _REOPEN_IF_BACK,
    ("propose a change for", RESOLVED): _REOPEN_IF_BACK,
}


# -- a problem and its incidents, changed together ----------------------------------------------------


def _same_account(problem_id: UUID, account: str, incident: Incident) -> None:
    if incident.account != account:
        raise InvalidCommand(
            f"cannot link incident {incident.id} to problem {problem_id}: the incident is on account"
            f" {incident.account}, the problem on account {account}"
        )


def _on_incident(at: datetime, incident: Incident) -> datetime:
    """The incident records the link at the problem's instant, or at its own last step when that is later
    (a problem logged, or an incident linked, after the fact: the incident has moved on since)."""
    return max(at, incident.last_at)


def log_for(
    incidents: Sequence[Incident],
    *,
    id: UUID,  # noqa: A002 - the application chooses ids, the aggregate never does
    account: str,
    title: str,
    description: str,
    actor: str,
    at: datetime,
    ci: str | None = None,
    category: str | None = None,
) -> Problem:
    """Log a problem thought to cause these incidents; each of them names it from then on."""
    problem = Problem.log(
        id=id, account=account, title=title, description=description, actor=actor, at=at, ci=ci,
        category=category, incident_ids=[i.id for i in incidents],
    )  # fmt: skip
    for incident in incidents:
        _same_account(problem.id, problem.account, incident)
    for incident in incidents:
        if problem.id not in incident.problem_ids:
            incident.link_problem(problem_id=problem.id, actor=actor, at=_on_incident(at, incident))
    return problem


def link(
    problem: Problem,
    incident: Incident,
    *,
    actor: str,
    at: datetime,
    linked_by_history: Collection[UUID] | None = None,
) -> None:
    """Link one more incident caused by the problem: the problem counts it, the incident names the problem.

    `linked_by_history`: only for a problem logged by version 1 (see `Problem.is_linked`).
    """
    problem._check("link an incident to", actor, at)
    problem._refuse_unless("link an incident to", OPEN_STATUSES)
    _same_account(problem.id, problem.account, incident)
    if problem.is_linked(incident, linked_by_history):
        raise IllegalTransition(f"cannot link incident {incident.id} to problem {problem.id}: it is already linked")
    if problem.id not in incident.problem_ids:
        incident.link_problem(problem_id=problem.id, actor=actor, at=_on_incident(at, incident))
    problem._incident_linked(incident_id=incident.id, actor=actor, at=at)


def unlink(
    problem: Problem,
    incident: Incident,
    *,
    actor: str,
    at: datetime,
    linked_by_history: Collection[UUID] | None = None,
) -> None:
    """Unlink an incident found not to be caused by the problem: neither names the other any more.

    `linked_by_history`: only for a problem logged by version 1 (see `Problem.is_linked`).
    """
    problem._check("unlink an incident from", actor, at)
    problem._refuse_unless("unlink an incident from", OPEN_STATUSES)
    if not problem.is_linked(incident, linked_by_history):
        raise IllegalTransition(
            f"cannot unlink incident {incident.id} from problem {problem.id}: it is not linked to it"
        )
    if problem.id in incident.problem_ids:
        incident.unlink_problem(problem_id=problem.id, actor=actor, at=_on_incident(at, incident))
    problem._incident_unlinked(incident_id=incident.id, actor=actor, at=at)


def linked_incidents(history: Iterable[object], linked_before: Iterable[UUID] = ()) -> tuple[UUID, ...]:
    """The incidents a problem's history (its events, oldest first) leaves linked, in the order they were linked.

    `linked_before`: what the events before `history` left linked, when it holds only the later ones.
    """
    linked = dict.fromkeys(linked_before)
    for e in history:
        if isinstance(e, Problem.Logged):
            linked = dict.fromkeys(e.incident_ids)
        elif isinstance(e, Problem.IncidentLinked):
            linked[e.incident_id] = None
        elif isinstance(e, Problem.IncidentUnlinked):
            linked.pop(e.incident_id, None)
    return tuple(linked)
