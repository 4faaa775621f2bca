"""The command side: load an aggregate, call it, save it. One table maps commands to handlers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError

from domain.errors import DomainError, NotFound
from domain.incident import Incident

CONFLICT_RETRIES = 5


class ConcurrencyConflict(DomainError):
    """The incident kept changing under the command; try again."""


@dataclass(frozen=True)
class LogIncident:
    id: UUID
    account: str
    title: str
    impact: int
    urgency: int
    channel: str
    reporter: str
    actor: str
    at: datetime
    service: str | None = None
    ci: str | None = None
    description: str = ""


@dataclass(frozen=True)
class AcknowledgeIncident:
    incident_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class AssignIncident:
    incident_id: UUID
    group: str
    actor: str
    at: datetime
    assignee: str | None = None


@dataclass(frozen=True)
class HoldIncident:
    incident_id: UUID
    reason: str
    actor: str
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class ResumeIncident:
    incident_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class RestoreService:
    incident_id: UUID
    actor: str
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class ResolveIncident:
    incident_id: UUID
    code: str
    actor: str
    at: datetime
    notes: str = ""


@dataclass(frozen=True)
class ReopenIncident:
    incident_id: UUID
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class CloseIncident:
    incident_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class CancelIncident:
    incident_id: UUID
    reason: str
    actor: str
    at: datetime


IncidentCommand = (
    AcknowledgeIncident
    | AssignIncident
    | HoldIncident
    | ResumeIncident
    | RestoreService
    | ResolveIncident
    | ReopenIncident
    | CloseIncident
    | CancelIncident
)

_INCIDENT_METHODS: Mapping[type, Callable[[Incident, Any], None]] = {
    AcknowledgeIncident: lambda i, c: i.acknowledge(actor=c.actor, at=c.at),
    AssignIncident: lambda i, c: i.assign(group=c.group, assignee=c.assignee, actor=c.actor, at=c.at),
    HoldIncident: lambda i, c: i.hold(reason=c.reason, note=c.note, actor=c.actor, at=c.at),
    ResumeIncident: lambda i, c: i.resume(actor=c.actor, at=c.at),
    RestoreService: lambda i, c: i.restore(note=c.note, actor=c.actor, at=c.at),
    ResolveIncident: lambda i, c: i.resolve(code=c.code, notes=c.notes, actor=c.actor, at=c.at),
    ReopenIncident: lambda i, c: i.reopen(reason=c.reason, actor=c.actor, at=c.at),
    CloseIncident: lambda i, c: i.close(actor=c.actor, at=c.at),
    CancelIncident: lambda i, c: i.cancel(reason=c.reason, actor=c.actor, at=c.at),
}
"""Each command on an existing incident, and the aggregate method that carries it out."""


@dataclass
class SaveListeners:
    """Callbacks told after every successful save (the relay's wake-up)."""

    callbacks: list[Callable[[], None]] = field(default_factory=list)

    def __call__(self) -> None:
        for callback in self.callbacks:
            callback()


class ItilApplication(Application[UUID]):
    """The engine's event-sourced application: the store of incidents and their commands."""

    name = "itil"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env=env)
        self.saved = SaveListeners()
        self._log_lock = threading.Lock()

    def handle(self, command: LogIncident | IncidentCommand) -> Incident:
        """Carry out one command; returns the incident as it stands afterwards."""
        if isinstance(command, LogIncident):
            return self._log(command)
        method = _INCIDENT_METHODS[type(command)]
        for _attempt in range(CONFLICT_RETRIES):
            incident = self.get_incident(command.incident_id)
            method(incident, command)
            try:
                self.save(incident)
            except IntegrityError:
                continue  # someone saved first: reload and re-check the rules
            self.saved()
            return incident
        raise ConcurrencyConflict(
            f"incident {command.incident_id} changed too often while the command ran; try again"
        )

    def _log(self, command: LogIncident) -> Incident:
        existing = self._find(command.id)
        if existing is not None:
            return existing  # the same LogIncident carried out twice has the effect of once
        incident = Incident.log(
            id=command.id,
            account=command.account,
            title=command.title,
            impact=command.impact,
            urgency=command.urgency,
            channel=command.channel,
            reporter=command.reporter,
            actor=command.actor,
            at=command.at,
            service=command.service,
            ci=command.ci,
            description=command.description,
        )
        try:
            self.save(incident)
        except IntegrityError:
            found = self._find(command.id)
            if found is None:
                raise
            return found
        self.saved()
        return incident

    def get_incident(self, incident_id: UUID) -> Incident:
        incident = self._find(incident_id)
        if incident is None:
            raise NotFound(f"there is no incident {incident_id}")
        return incident

    def _find(self, incident_id: UUID) -> Incident | None:
        try:
            aggregate: Any = self.repository.get(incident_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, Incident):
            return None
        return aggregate

    def history(self, incident_id: UUID) -> list[DomainEventProtocol[UUID]]:
        """Every stored event of one incident, oldest first."""
        events = list(self.events.get(incident_id))
        if not events or not isinstance(events[0], Incident.Logged):
            raise NotFound(f"there is no incident {incident_id}")
        return events
