"""The engine's application: carry out a command through its table of handlers; read what handlers and
queries need (accounts, contracts, SLA clocks, incidents and problems), with caches of what is read
often. How aggregates are stored and read back is `application.store`'s."""

from __future__ import annotations

import copy
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, project_aggregate
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import IntegrityError

from application.conflicts import CONFLICT_RETRIES, ConcurrencyConflict
from application.incidents import INCIDENT_CHANGES
from application.store import StoreApplication
from domain.account import DEFAULT_REOPEN_PERIOD, Account, account_id, profile_of
from domain.commands import (
    AddContractVersion,
    CancelSlaClocks,
    CheckSlaClocks,
    LogIncident,
    PauseSlaClocks,
    RestartSlaClocks,
    ResumeSlaClocks,
    RetargetSlaClocks,
    SlaCommand,
    StartSlaClocks,
    StopSlaClock,
)
from domain.contract import ServiceContract, SlaTerms, contract_id
from domain.errors import InvalidCommand, NotFound
from domain.incident import Incident
from domain.priority import DEFAULT_MATRIX
from domain.problem import Problem, linked_incidents
from domain.sla import IncidentSla, sla_id

STORED = "stored versions"
"""Key, in group commit's batch cache, of the stored versions of what the batch's commands read."""


# -- SLA ------------------------------------------------------------------------------


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
        sla.check(command.now, dict(command.recipients))
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


class _ContractsRead:
    """Contracts as last read, kept while their stored version stays the same.

    Every logged incident starts its clocks against its account's contract; getting it from the
    repository each time (a read, then a deep copy of all its versions) cost more than starting
    the clocks. Given the version stored now (one query, for a whole batch), a contract already
    known at that version is used as it is. Readers get an object nobody changes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, ServiceContract] = {}

    def current(self, app: ItilApplication, account: str, stored_version: int | None) -> ServiceContract | None:
        """The account's contract as stored at `stored_version` (None: no contract was ever stored)."""
        if stored_version is None:
            return None
        with self._lock:
            known = self._known.get(account)
        if known is not None and known.version == stored_version:
            return known
        fresh = app.find_contract(account)  # a copy of its own: the repository's cache keeps another
        if fresh is not None:
            with self._lock:
                contracts = self._known
                if account not in contracts or contracts[account].version < fresh.version:
                    contracts[account] = fresh
        return fresh


def _terms_in(contract: ServiceContract | None) -> TermsLookup:
    """The terms lookup of one contract already read (None: no contract, nothing covered)."""

    def lookup(_account: str, service: str | None, priority: int, at: datetime) -> SlaTerms | None:
        return None if contract is None else contract.terms_for(service=service, priority=priority, at=at)

    return lookup


@functools.lru_cache(maxsize=4096)
def _contract_id(account: str) -> UUID:
    return contract_id(account)


Handler = Callable[["ItilApplication", Any], Any]
"""Carries out one command on the application; returns what it changed."""


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


class ItilApplication(StoreApplication):
    """The engine's event-sourced application: its commands' table, and what handlers and queries read
    often (accounts, contracts, the incidents linked to a problem, SLA clocks)."""

    name = "itil"
    # A long-lived problem (thousands of linked incidents) loads from its latest snapshot plus the
    # few events after it. (Accounts have their own read cache; their state is not snapshot-ready.)
    snapshotting_intervals = {Problem: 100}  # type: ignore[assignment]

    def __init__(self, env: Mapping[str, str] | None = None, handlers: Mapping[type, Handler] | None = None) -> None:
        """`handlers`: command class -> handler (the composition root passes `application.handlers.command_handlers()`;
        None, for tests and scripts, means that same whole table)."""
        super().__init__(env=env)
        if handlers is None:
            from application.handlers import command_handlers  # the areas' modules import this one

            handlers = command_handlers()
        self.handlers: Mapping[type, Handler] = handlers
        self._contracts = _ContractsRead()
        self._accounts = _AccountsRead()
        self._linked = LinkedIncidents(self)
        self._log_lock = threading.Lock()

    def handle(self, command: Any) -> Any:
        """Carry out one command; returns the aggregate it changed, as it stands afterwards."""
        handler = self.handlers.get(type(command))
        if handler is None:
            raise TypeError(f"no handler for {type(command).__name__}: the application's table does not name it")
        return handler(self, command)

    def find_incident(self, incident_id: UUID) -> Incident | None:
        """The incident, or None when it was never stored."""
        return self._find(incident_id)

    def read_by(self, command: Any) -> tuple[UUID, ...]:
        """The aggregates `prepare` reads for this command whose stored versions group commit checks first.

        The incident, and for a new incident its account (for the priority matrix): with their
        versions from the batch's one query, an account nobody changed is not read again.
        """
        if isinstance(command, LogIncident):
            account = command.account
            if isinstance(account, str) and account.strip():
                return (command.id, _account_id(account))
            return (command.id,)
        incident_id = getattr(command, "incident_id", None)
        return (incident_id,) if isinstance(incident_id, UUID) else ()

    def can_prepare(self, command: Any) -> bool:
        """Whether `prepare` can carry out this command (for group commit)."""
        return isinstance(command, LogIncident) or type(command) in INCIDENT_CHANGES

    def prepare(self, command: Any, cache: dict[Any, Any]) -> Aggregate:
        """Carry out an incident command on the cached (or stored) incident without saving it.

        Group commit calls this for each command of a batch, then saves every changed
        aggregate in one transaction; commands on one incident see each other's effects.
        `cache[STORED]`, when there, holds the stored versions of what `read_by` named.
        """
        if isinstance(command, LogIncident):
            found = cache[command.id] if command.id in cache else self._find(command.id)
            if found is None:
                matrices = cache.setdefault("matrices", {})  # one account read per batch
                if command.account not in matrices:
                    matrices[command.account] = self._matrix_as_stored(command.account, cache.get(STORED))
                found = self.new_incident(command, matrices[command.account])
            cache[command.id] = found
            return found
        incident = cache.get(command.incident_id)
        if incident is None:
            incident = self.get_incident(command.incident_id)  # NotFound when it was never stored
        cache[incident.id] = incident
        INCIDENT_CHANGES[type(command)](self, incident, command)
        return incident

    def new_incident(self, command: LogIncident, matrix: Mapping[tuple[int, int], int] | None = None) -> Incident:
        if command.related_incident is not None and command.related_incident != command.id:
            related = self.get_incident(command.related_incident)
            if isinstance(command.account, str) and related.account != command.account.strip():
                raise InvalidCommand(
                    f"incident {command.related_incident} is on account {related.account}, not"
                    f" {command.account.strip()}: a new incident can only follow up one of its own account"
                )
        return Incident.log(
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
            category=command.category,
            related_incident=command.related_incident,
            matrix=matrix if matrix is not None else self.priority_matrix(command.account),
        )

    # -- accounts -------------------------------------------------------------------

    def find_account(self, account: str) -> Account | None:
        """The account as stored, to read (not to change); None while never registered (it runs on the defaults)."""
        if not isinstance(account, str) or not account.strip():
            return None
        return self._accounts.current(self, account_id(account))

    def priority_matrix(self, account: str) -> Mapping[tuple[int, int], int]:
        """The account's impact × urgency -> priority matrix (the common one unless it has its own)."""
        found = self.find_account(account)
        return DEFAULT_MATRIX if found is None else found.matrix

    def _matrix_as_stored(self, account: str, stored: Mapping[UUID, int] | None) -> Mapping[tuple[int, int], int]:
        """The account's matrix, given its stored version (absent from `stored`: never registered)."""
        if stored is None or not isinstance(account, str) or not account.strip():
            return self.priority_matrix(account)
        aggregate_id = _account_id(account)
        version = stored.get(aggregate_id)
        found = None if version is None else self._accounts.current(self, aggregate_id, version)
        return DEFAULT_MATRIX if found is None else found.matrix

    def reopen_period(self, account: str) -> timedelta:
        """How long after resolution the account's incidents may still be reopened."""
        found = self.find_account(account)
        return DEFAULT_REOPEN_PERIOD if found is None else found.reopen_period

    def account_profile(self, account: str) -> dict[str, Any]:
        """The account's settings and ROC informs; the defaults when it was never registered."""
        found = self.find_account(account)
        return profile_of(account=account) if found is None else found.profile()

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

    def start_sla_clocks(self, commands: Sequence[StartSlaClocks]) -> list[IncidentSla | Exception | None]:
        """Start many incidents' clocks as `handle_sla` would, saved in one transaction; each
        command's outcome (its clocks, None when no contract covers it, or the error), in order.

        One query finds which clocks already exist and the contracts' versions. Clocks already
        started (a redelivery), and all of them when the save meets another writer's, are handled
        one by one. An error on one incident is its outcome only: the others are still saved.
        """
        stored = self.stored_versions(
            [*{sla_id(c.incident_id) for c in commands}, *{_contract_id(c.account) for c in commands}]
        )
        outcomes: dict[UUID, IncidentSla | Exception | None] = {}
        started: list[IncidentSla] = []
        for command in commands:
            if command.incident_id in outcomes or sla_id(command.incident_id) in stored:
                continue
            try:
                contract = self._contracts.current(self, command.account, stored.get(_contract_id(command.account)))
                sla = carry_out(None, command, _terms_in(contract))
            except Exception as error:  # the batch's other incidents go on
                outcomes[command.incident_id] = error
                continue
            outcomes[command.incident_id] = sla
            if sla is not None:
                started.append(sla)
        if started:
            try:
                self.save(*started)
            except IntegrityError:
                for sla in started:
                    del outcomes[sla.incident_id]  # someone started some first: each one again, alone
            else:
                self.saved()
        results: list[IncidentSla | Exception | None] = []
        for command in commands:
            if command.incident_id not in outcomes:
                try:
                    outcomes[command.incident_id] = self.handle_sla(command)
                except Exception as error:  # as above
                    outcomes[command.incident_id] = error
            results.append(outcomes[command.incident_id])
        return results

    def find_sla(self, incident_id: UUID) -> IncidentSla | None:
        try:
            found: Any = self.repository.get(sla_id(incident_id))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, IncidentSla) else None

    def terms_for(self, account: str, service: str | None, priority: int, at: datetime) -> SlaTerms | None:
        contract = self.current_contract(account)
        return None if contract is None else contract.terms_for(service=service, priority=priority, at=at)

    def current_contract(self, account: str) -> ServiceContract | None:
        """The account's contract as stored, to read (not to change): one version query, no copy."""
        if not isinstance(account, str):
            return self.find_contract(account)
        stored = self.stored_versions([_contract_id(account)])
        return self._contracts.current(self, account, stored.get(_contract_id(account)))

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

    def incidents_of(self, problem: Problem) -> tuple[UUID, ...]:
        """The incidents linked to the problem (as loaded), in the order they were linked, from its history."""
        return self._linked.of(problem)

    def is_linked(self, problem: Problem, incident: Incident) -> bool:
        """Whether the incident is linked to the problem now (read from the incident, or from the
        history of a problem logged before the incidents named their problems)."""
        return problem.is_linked(incident, None if problem.links_on_incidents else self.incidents_of(problem))

    def comments(self, incident_id: UUID) -> list[Incident.Commented]:
        """An incident's comments, oldest first: read from its events, as the aggregate keeps only their count."""
        return [e for e in self.history(incident_id) if isinstance(e, Incident.Commented)]


class _AccountsRead:
    """Accounts as last read, brought up to date with only the events stored since.

    Every incident logged or reprioritised reads its account's matrix, while an account's history
    grows with every ROC inform; replaying it all each time would slow logging during a mass outage.
    One query per read still sees what other processes stored. Readers get an object nobody changes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[UUID, Account] = {}

    def current(self, app: ItilApplication, aggregate_id: UUID, stored_version: int | None = None) -> Account | None:
        """The account as stored; given its `stored_version` (just read), one already known at it is not read."""
        with self._lock:
            known = self._known.get(aggregate_id)
        if known is not None and stored_version == known.version:
            return known
        if known is None:
            fresh = app.find(aggregate_id, Account)
        else:
            newer = list(app.events.get(aggregate_id, gt=known.version))
            if not newer:
                return known
            fresh = project_aggregate(copy.deepcopy(known), newer)
        if fresh is not None:
            with self._lock:
                accounts = self._known
                if aggregate_id not in accounts or accounts[aggregate_id].version < fresh.version:
                    accounts[aggregate_id] = fresh
        return fresh


@functools.lru_cache(maxsize=4096)
def _account_id(account: str) -> UUID:
    return account_id(account)
