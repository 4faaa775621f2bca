"""The command side: load an aggregate, call it, save it. One table maps commands to handlers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import IntegrityError

from domain.contract import ServiceContract, SlaTerms, Terms, contract_id
from domain.errors import DomainError, NotFound
from domain.incident import Incident
from domain.sla import IncidentSla, sla_id

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
class ReprioritiseIncident:
    incident_id: UUID
    impact: int
    urgency: int
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
    | ReprioritiseIncident
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
    ReprioritiseIncident: lambda i, c: i.reprioritise(impact=c.impact, urgency=c.urgency, actor=c.actor, at=c.at),
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


# -- SLA ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartSlaClocks:
    incident_id: UUID
    account: str
    service: str | None
    priority: int
    at: datetime


@dataclass(frozen=True)
class StopSlaClock:
    incident_id: UUID
    metric: str
    reason: str
    at: datetime
    incident_version: int
    ends_hold: bool


@dataclass(frozen=True)
class PauseSlaClocks:
    incident_id: UUID
    reason: str
    at: datetime
    incident_version: int


@dataclass(frozen=True)
class ResumeSlaClocks:
    incident_id: UUID
    reason: str
    at: datetime
    incident_version: int


@dataclass(frozen=True)
class RestartSlaClocks:
    incident_id: UUID
    metrics: tuple[str, ...]
    reason: str
    at: datetime
    incident_version: int


@dataclass(frozen=True)
class RetargetSlaClocks:
    incident_id: UUID
    priority: int
    reason: str
    at: datetime
    incident_version: int


@dataclass(frozen=True)
class CancelSlaClocks:
    incident_id: UUID
    reason: str
    at: datetime
    incident_version: int


@dataclass(frozen=True)
class CheckSlaClocks:
    incident_id: UUID
    now: datetime


SlaCommand = (
    StartSlaClocks
    | StopSlaClock
    | PauseSlaClocks
    | ResumeSlaClocks
    | RestartSlaClocks
    | RetargetSlaClocks
    | CancelSlaClocks
    | CheckSlaClocks
)

TermsLookup = Callable[[str, "str | None", int, datetime], "SlaTerms | None"]
"""(account, service, priority, instant) -> the terms in force, or None when no contract covers it."""


def carry_out(sla: IncidentSla | None, command: SlaCommand, terms_for: TermsLookup) -> IncidentSla | None:
    """Apply one SLA command to an incident's clocks (None: not started). Pure: no store."""
    if isinstance(command, StartSlaClocks):
        if sla is not None:
            return sla
        terms = terms_for(command.account, command.service, command.priority, command.at)
        if terms is None:
            return None
        return IncidentSla.start(incident_id=command.incident_id, account=command.account, terms=terms, at=command.at)
    if sla is None:
        return None
    if isinstance(command, CheckSlaClocks):
        sla.check(command.now)
        return sla
    if sla.is_stale(command.incident_version):
        return sla
    if isinstance(command, StopSlaClock):
        if command.ends_hold:
            sla.resume(reason=command.reason, at=command.at, incident_version=command.incident_version)
        sla.stop(metric=command.metric, reason=command.reason, at=command.at, incident_version=command.incident_version)
    elif isinstance(command, PauseSlaClocks):
        sla.pause(reason=command.reason, at=command.at, incident_version=command.incident_version)
    elif isinstance(command, ResumeSlaClocks):
        sla.resume(reason=command.reason, at=command.at, incident_version=command.incident_version)
    elif isinstance(command, RestartSlaClocks):
        sla.restart(
            metrics=command.metrics, reason=command.reason, at=command.at, incident_version=command.incident_version
        )
    elif isinstance(command, RetargetSlaClocks):
        terms = terms_for(sla.account, sla.terms.service, command.priority, sla.started_at)
        if terms is not None:
            sla.retarget(terms=terms, reason=command.reason, at=command.at, incident_version=command.incident_version)
    elif isinstance(command, CancelSlaClocks):
        sla.cancel(reason=command.reason, at=command.at, incident_version=command.incident_version)
    return sla


# -- contracts ------------------------------------------------------------------------


@dataclass(frozen=True)
class AddContractVersion:
    account: str
    effective_from: datetime
    terms: Terms
    actor: str
    at: datetime
    service: str | None = None
    name: str = ""


# -- handlers of the other areas (problems, changes, configuration, accounts) ------------

COMMAND_HANDLERS: dict[type, Callable[[ItilApplication, Any], Any]] = {}
"""Command class -> handler(app, command). Each area's module registers its own with `handles`."""

A = TypeVar("A", bound=Aggregate)


def handles(
    *command_types: type,
) -> Callable[[Callable[[ItilApplication, Any], Any]], Callable[[ItilApplication, Any], Any]]:
    """Register a function as the handler of these command classes."""

    def register(handler: Callable[[ItilApplication, Any], Any]) -> Callable[[ItilApplication, Any], Any]:
        for command_type in command_types:
            COMMAND_HANDLERS[command_type] = handler
        return handler

    return register


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

    def handle(self, command: Any) -> Any:
        """Carry out one command; returns the aggregate it changed, as it stands afterwards."""
        handler = COMMAND_HANDLERS.get(type(command))
        if handler is not None:
            return handler(self, command)
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
        raise ConcurrencyConflict(f"incident {command.incident_id} changed too often while the command ran; try again")

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

    # -- generic load, call, save ------------------------------------------------------

    def find(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """The aggregate with this id if it exists and is a `kind`, else None."""
        try:
            found: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, kind) else None

    def load(self, aggregate_id: UUID, kind: type[A], what: str) -> A:
        found = self.find(aggregate_id, kind)
        if found is None:
            raise NotFound(f"there is no {what} {aggregate_id}")
        return found

    def create(self, aggregate_id: UUID, kind: type[A], make: Callable[[], A]) -> A:
        """Create an aggregate once: the same creation carried out twice has the effect of once."""
        existing = self.find(aggregate_id, kind)
        if existing is not None:
            return existing
        aggregate = make()
        try:
            self.save(aggregate)
        except IntegrityError:
            found = self.find(aggregate_id, kind)
            if found is None:
                raise
            return found
        self.saved()
        return aggregate

    def update(self, ids: Sequence[tuple[UUID, type[Aggregate], str]], change: Callable[..., Any]) -> list[Any]:
        """Load these aggregates, let `change` call their commands, save them all in one go.

        On a concurrent save the whole command is tried again on fresh state, so rules are always
        checked against what is stored; a refused command saves nothing.
        """
        for _attempt in range(CONFLICT_RETRIES):
            aggregates = [self.load(i, kind, what) for i, kind, what in ids]
            versions = [a.version for a in aggregates]
            change(*aggregates)
            changed = [a for a, v in zip(aggregates, versions, strict=True) if a.version != v]
            if not changed:
                return aggregates
            try:
                self.save(*changed)
            except IntegrityError:
                continue
            self.saved()
            return aggregates
        raise ConcurrencyConflict(
            f"{', '.join(str(i) for i, _, _ in ids)} kept changing while the command ran; try again"
        )

    # -- SLA ------------------------------------------------------------------------

    def handle_sla(self, command: SlaCommand) -> IncidentSla | None:
        """Carry out an SLA command from the SLA process; None when no contract covers the incident."""
        for _attempt in range(CONFLICT_RETRIES):
            sla = self.find_sla(command.incident_id)
            version = sla.version if sla is not None else 0
            sla = carry_out(sla, command, self.terms_for)
            if sla is None or sla.version == version:
                return sla
            try:
                self.save(sla)
            except IntegrityError:
                continue
            self.saved()
            return sla
        raise ConcurrencyConflict(f"the SLA clocks of incident {command.incident_id} kept changing; try again")

    def find_sla(self, incident_id: UUID) -> IncidentSla | None:
        try:
            found: Any = self.repository.get(sla_id(incident_id))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, IncidentSla) else None

    def terms_for(self, account: str, service: str | None, priority: int, at: datetime) -> SlaTerms | None:
        contract = self.find_contract(account)
        return None if contract is None else contract.terms_for(service=service, priority=priority, at=at)

    def find_contract(self, account: str) -> ServiceContract | None:
        try:
            found: Any = self.repository.get(contract_id(account))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, ServiceContract) else None

    def add_contract_version(self, command: AddContractVersion) -> ServiceContract:
        """Register the account's contract if needed and add a version of its terms."""
        for _attempt in range(CONFLICT_RETRIES):
            contract = self.find_contract(command.account)
            if contract is None:
                contract = ServiceContract.register(
                    account=command.account, name=command.name or command.account, actor=command.actor, at=command.at
                )
            contract.add_version(
                effective_from=command.effective_from, terms=command.terms, service=command.service,
                actor=command.actor, at=command.at,
            )  # fmt: skip
            try:
                self.save(contract)
            except IntegrityError:
                continue
            self.saved()
            return contract
        raise ConcurrencyConflict(f"the contract of {command.account} kept changing; try again")

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
