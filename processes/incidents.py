"""Incident processes: a mass outage's children follow their parent; a major incident informs the ROC.

Also the small base every command-issuing process of this package shares (`CommandProcess`): commands
go through the application's `handle`; a domain refusal (the step is already done, or not allowed) is
logged and the event counts as handled, so a redelivered event neither crashes the worker nor loops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.commands import InformRoc, ResolveIncident, RestoreService
from domain.errors import ConcurrencyConflict, DomainError
from domain.events import aggregate_name, event_kind, event_name
from domain.incident import ACKNOWLEDGED, ASSIGNED, CLOSED, NEW, ON_HOLD, RESOLVED, Incident
from processes.ports import Commands
from projections.db import Database
from projections.tracking import Process

log = logging.getLogger(__name__)

NOT_RESTORED = (NEW, ACKNOWLEDGED, ASSIGNED, ON_HOLD)
"""Open statuses in which service is still down."""

_INCIDENT = aggregate_name(Incident)


def when(value: Any) -> datetime:
    """An envelope's instant (ISO text once it went through the broker) as a datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def kind_of(envelope: dict[str, Any]) -> str:
    """`Incident.Resolved` -> `Resolved`."""
    return str(envelope["event_type"]).split(".")[-1]


def later(at: datetime, *aggregates: Any) -> datetime:
    """The instant of a command caused by an event at `at`: never before the target's last step.

    A process may run behind the people working the same aggregates; its command then takes the
    aggregate's last instant, which the aggregate accepts, rather than be refused as out of order.
    """
    return max([at, *(a.last_at for a in aggregates if a is not None)])


def happened_since(
    app: Commands,
    aggregate_id: UUID,
    kind: type,
    since: datetime | None = None,
    match: Callable[[Any], bool] = lambda _: True,
) -> bool:
    """Whether the aggregate's history holds a `kind` event (at or after `since`) that `match`es.

    How a process knows it already did something whose effect was undone since (an incident
    reopened by hand after the process resolved it): it must not do it again on redelivery.
    """
    return any(
        isinstance(e, kind) and (since is None or getattr(e, "at") >= since) and match(e)  # noqa: B009
        for e in app.events.get(aggregate_id)
    )


class CommandProcess(Process):
    """A process manager that issues commands to the application; refusals are logged, not raised."""

    name = "command_process"
    actor = "itil-engine"

    def __init__(self, db: Database, app: Commands) -> None:
        super().__init__(db)
        self.app = app
        self.issued = 0
        self.refused = 0

    def issue(self, command: Any) -> Any | None:
        """Carry out a command; None when the domain refused it (logged: the event is still handled).

        A concurrency conflict is not a refusal: it propagates, the batch's positions are not recorded,
        and the redelivered events are reacted to again (every reaction checks what is already done).
        """
        try:
            result = self.app.handle(command)
        except ConcurrencyConflict:
            raise
        except DomainError as refusal:
            self.refused += 1
            log.warning("%s: %s refused: %s", self.name, type(command).__name__, refusal)
            return None
        self.issued += 1
        return result

    def incident(self, incident_id: UUID) -> Incident | None:
        """The incident as stored, to read only: the application's cached object, not a copy.

        Processes only decide from it (a deep copy of an incident cost more than the rest of
        reacting to its event); every command they issue is checked on a fresh copy.
        """
        try:
            found: Any = self.app.repository.get(incident_id, deepcopy_from_cache=False)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, Incident) else None


_SERVICE_RESTORED = event_kind(Incident.ServiceRestored)
_RESOLVED = event_kind(Incident.Resolved)
_ATTACHED_TO_PARENT = event_kind(Incident.AttachedToParent)
_FOLLOWED = frozenset({_SERVICE_RESTORED, _RESOLVED, _ATTACHED_TO_PARENT})
"""The kinds of incident event a mass outage's children follow their parent on."""


class MassOutageProcess(CommandProcess):
    """Brings the children of a mass outage's parent incident along: restored, then resolved, with it."""

    name = "mass_outage_process"
    reads = (_INCIDENT,)
    actor = "mass-outage-process"

    def react(self, envelope: dict[str, Any]) -> None:
        if envelope["aggregate_type"] != _INCIDENT:
            return
        kind = kind_of(envelope)
        if kind not in _FOLLOWED:
            return
        incident_id = UUID(str(envelope["aggregate_id"]))
        at = when(envelope["occurred_at"])
        if kind == _ATTACHED_TO_PARENT:
            self._attached(incident_id, UUID(str(envelope["payload"]["parent_id"])), at)
            return
        parent = self.incident(incident_id)
        if parent is None or not parent.children:
            return
        if kind == _SERVICE_RESTORED and parent.restored_at == at:
            for child_id in parent.children:
                self._restore(parent, child_id, at)
        elif kind == _RESOLVED and parent.status in (RESOLVED, CLOSED) and parent.resolved_at == at:
            code = str(envelope["payload"]["code"])
            for child_id in parent.children:
                self._resolve(parent, child_id, code, at)

    def _attached(self, child_id: UUID, parent_id: UUID, at: datetime) -> None:
        """A child attached once its parent's service is back (or resolved) follows it at once."""
        parent = self.incident(parent_id)
        if parent is None:
            return
        if parent.status in (RESOLVED, CLOSED) and parent.resolution_code is not None:
            self._resolve(parent, child_id, parent.resolution_code, at)
        elif parent.restored_at is not None:
            self._restore(parent, child_id, at)

    def _restore(self, parent: Incident, child_id: UUID, at: datetime) -> None:
        child = self.incident(child_id)
        if child is None or child.status not in NOT_RESTORED:
            return
        if happened_since(self.app, child_id, Incident.ServiceRestored, at):
            return  # restored with the parent already, and down again since: people handle it now
        note = f'service restored with its parent incident "{parent.title}" ({parent.id})'
        self.issue(RestoreService(child_id, actor=self.actor, at=later(at, child), note=note))

    def _resolve(self, parent: Incident, child_id: UUID, code: str, at: datetime) -> None:
        child = self.incident(child_id)
        if child is None or not child.is_open:
            return
        if happened_since(self.app, child_id, Incident.Resolved, at):
            return  # resolved with the parent already, and reopened since
        notes = f'resolved with its parent incident "{parent.title}" ({parent.id})'
        self.issue(ResolveIncident(child_id, code=code, actor=self.actor, at=later(at, child), notes=notes))


MAJOR_INCIDENT_REASON = "major incident declared"


ESCALATION_LEVELS = {"roc": "the ROC", "management": "management"}

_INCIDENT_MAJOR_INCIDENT_DECLARED = event_name(Incident.MajorIncidentDeclared)
_INCIDENT_HIERARCHICALLY_ESCALATED = event_name(Incident.HierarchicallyEscalated)


class MajorIncidentProcess(CommandProcess):
    """Informs the account's ROC of each major incident and each hierarchical escalation, once.

    An account without a ROC is logged, not retried.
    """

    name = "major_incident_process"
    reads = (_INCIDENT,)
    actor = "major-incident-process"

    def react(self, envelope: dict[str, Any]) -> None:
        kind = envelope["event_type"]
        if kind not in (_INCIDENT_MAJOR_INCIDENT_DECLARED, _INCIDENT_HIERARCHICALLY_ESCALATED):
            return
        incident = self.incident(UUID(str(envelope["aggregate_id"])))
        if incident is None:
            return
        p = envelope["payload"]
        if kind == _INCIDENT_MAJOR_INCIDENT_DECLARED:
            reason = f"{MAJOR_INCIDENT_REASON}: {p['reason']}"
            subject = f'major incident "{incident.title}" (P{incident.priority})'
        else:
            reason = f"hierarchical escalation to {ESCALATION_LEVELS.get(p['level'], p['level'])}: {p['reason']}"
            subject = f'escalated incident "{incident.title}" (P{incident.priority})'
        account = self.app.find_account(incident.account)
        if account is not None and account.was_informed(incident.id, reason):
            return
        command = InformRoc(
            account=incident.account, subject_id=incident.id, subject=subject, reason=reason,
            actor=self.actor, at=when(envelope["occurred_at"]),
        )  # fmt: skip
        self.issue(command)
