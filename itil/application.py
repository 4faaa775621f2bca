"""The command side: load an aggregate, call it, save it. One table maps commands to handlers."""

from __future__ import annotations

import copy
import functools
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent, project_aggregate
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, IntegrityError

from domain.account import DEFAULT_REOPEN_PERIOD, Account, account_id, profile_of
from domain.contract import ServiceContract, SlaTerms, Terms, contract_id
from domain.errors import DomainError, IllegalTransition, InvalidCommand, NotFound
from domain.incident import Incident, attach
from domain.priority import DEFAULT_MATRIX
from domain.problem import Problem
from domain.sla import IncidentSla, sla_id
from itil.eventsourcing_internals import is_postgres_datastore, take_snapshots

CONFLICT_RETRIES = 5
STORED = "stored versions"
"""Key, in group commit's batch cache, of the stored versions of what the batch's commands read."""


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
    category: str | None = None
    related_incident: UUID | None = None
    """An earlier incident of the same account this one follows up (e.g. past its reopen period)."""


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


@dataclass(frozen=True)
class CategoriseIncident:
    incident_id: UUID
    category: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class EscalateIncidentFunctionally:
    incident_id: UUID
    to_group: str
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class EscalateIncidentHierarchically:
    incident_id: UUID
    level: str
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class DeclareMajorIncident:
    incident_id: UUID
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class LinkIncidentToProblem:
    incident_id: UUID
    problem_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class NoteWorkaround:
    incident_id: UUID
    problem_id: UUID
    workaround: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class CommentIncident:
    """Add a comment to an incident: customer-visible, or an internal work note (`customer_visible=False`)."""

    incident_id: UUID
    text: str
    author: str
    customer_visible: bool
    actor: str
    at: datetime


@dataclass(frozen=True)
class AttachIncident:
    """Attach a child incident to the parent incident of the same outage; both are saved together."""

    child_id: UUID
    parent_id: UUID
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
    | CategoriseIncident
    | EscalateIncidentFunctionally
    | EscalateIncidentHierarchically
    | DeclareMajorIncident
    | LinkIncidentToProblem
    | NoteWorkaround
    | CommentIncident
)

_INCIDENT_METHODS: Mapping[type, Callable[[ItilApplication, Incident, Any], None]] = {
    AcknowledgeIncident: lambda a, i, c: i.acknowledge(actor=c.actor, at=c.at),
    ReprioritiseIncident: lambda a, i, c: i.reprioritise(
        impact=c.impact, urgency=c.urgency, actor=c.actor, at=c.at, matrix=a.priority_matrix(i.account)
    ),
    AssignIncident: lambda a, i, c: i.assign(group=c.group, assignee=c.assignee, actor=c.actor, at=c.at),
    HoldIncident: lambda a, i, c: i.hold(reason=c.reason, note=c.note, actor=c.actor, at=c.at),
    ResumeIncident: lambda a, i, c: i.resume(actor=c.actor, at=c.at),
    RestoreService: lambda a, i, c: i.restore(note=c.note, actor=c.actor, at=c.at),
    ResolveIncident: lambda a, i, c: i.resolve(code=c.code, notes=c.notes, actor=c.actor, at=c.at),
    ReopenIncident: lambda a, i, c: i.reopen(
        reason=c.reason, actor=c.actor, at=c.at, reopen_within=a.reopen_period(i.account)
    ),
    CloseIncident: lambda a, i, c: i.close(actor=c.actor, at=c.at),
    CancelIncident: lambda a, i, c: i.cancel(reason=c.reason, actor=c.actor, at=c.at),
    CategoriseIncident: lambda a, i, c: i.categorise(category=c.category, actor=c.actor, at=c.at),
    EscalateIncidentFunctionally: lambda a, i, c: i.escalate_functionally(
        to_group=c.to_group, reason=c.reason, actor=c.actor, at=c.at
    ),
    EscalateIncidentHierarchically: lambda a, i, c: i.escalate_hierarchically(
        level=c.level, reason=c.reason, actor=c.actor, at=c.at
    ),
    DeclareMajorIncident: lambda a, i, c: i.declare_major(reason=c.reason, actor=c.actor, at=c.at),
    LinkIncidentToProblem: lambda a, i, c: i.link_problem(problem_id=c.problem_id, actor=c.actor, at=c.at),
    NoteWorkaround: lambda a, i, c: i.note_workaround(
        problem_id=c.problem_id, workaround=c.workaround, actor=c.actor, at=c.at
    ),
    CommentIncident: lambda a, i, c: i.comment(
        text=c.text, author=c.author, customer_visible=c.customer_visible, actor=c.actor, at=c.at
    ),
}
"""Each command on an existing incident, and the aggregate method that carries it out (given the app, to
read the account's settings: its priority matrix, its reopen period)."""


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
    recipients: tuple[tuple[str, str | None], ...] = ()


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


@dataclass(frozen=True)
class AddContractVersion:
    account: str
    effective_from: datetime
    terms: Terms
    actor: str
    at: datetime
    service: str | None = None
    name: str = ""


class _ContractsRead:
    """Contracts as last read, kept while their stored version stays the same.

    Every logged incident starts its clocks against its account's contract; getting it from the
    repository each time (a read, then a deep copy of all its versions) cost more than starting
    the clocks. Given the version stored now (one query, for a whole batch), a contract already
    known at that version is used as it is. Readers get an object nobody changes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: weakref.WeakKeyDictionary[ItilApplication, dict[str, ServiceContract]] = (
            weakref.WeakKeyDictionary()
        )

    def current(self, app: ItilApplication, account: str, stored_version: int | None) -> ServiceContract | None:
        """The account's contract as stored at `stored_version` (None: no contract was ever stored)."""
        if stored_version is None:
            return None
        with self._lock:
            known = self._known.setdefault(app, {}).get(account)
        if known is not None and known.version == stored_version:
            return known
        fresh = app.find_contract(account)  # a copy of its own: the repository's cache keeps another
        if fresh is not None:
            with self._lock:
                contracts = self._known.setdefault(app, {})
                if account not in contracts or contracts[account].version < fresh.version:
                    contracts[account] = fresh
        return fresh


_CONTRACTS = _ContractsRead()


def _terms_in(contract: ServiceContract | None) -> TermsLookup:
    """The terms lookup of one contract already read (None: no contract, nothing covered)."""

    def lookup(_account: str, service: str | None, priority: int, at: datetime) -> SlaTerms | None:
        return None if contract is None else contract.terms_for(service=service, priority=priority, at=at)

    return lookup


@functools.lru_cache(maxsize=4096)
def _contract_id(account: str) -> UUID:
    return contract_id(account)


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
    env: ClassVar[dict[str, str]] = {
        # Keep recently used aggregates in memory; each read still fetches any newer events
        # (fast-forward), so writers in other processes are seen. Saves a full reload per command.
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        # The library's JSON, same bytes, written and read by orjson (see itil.transcoder).
        "TRANSCODER_TOPIC": "itil.transcoder:OrjsonTranscoder",
    }
    # A long-lived problem (thousands of linked incidents) loads from its latest snapshot plus the
    # few events after it. (Accounts have their own read cache; their state is not snapshot-ready.)
    snapshotting_intervals = {Problem: 100}  # type: ignore[assignment]

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env=env)
        self.saved = SaveListeners()
        self._log_lock = threading.Lock()
        self._versions_statement: Any = None
        self._version_at_statement: Any = None

    def construct_recorder(self) -> ApplicationRecorder:
        """The library's recorder, with a cheaper insert of a transaction's events: on PostgreSQL
        one that sends the batch as plain arrays, on SQLite one `executemany`."""
        factory: Any = self.factory
        if factory.env.get(factory.APPLICATION_RECORDER_TOPIC):
            pass  # chosen by the settings
        elif (
            type(factory).__module__ == "eventsourcing.postgres"
            and factory.datastore.originator_id_type == "uuid"
            and not factory.datastore.enable_db_functions
        ):
            factory.env[factory.APPLICATION_RECORDER_TOPIC] = "itil.pgrecorder:ArrayInsertRecorder"
        elif type(factory).__module__ == "eventsourcing.sqlite":
            factory.env[factory.APPLICATION_RECORDER_TOPIC] = "itil.sqliterecorder:ManyInsertRecorder"
        return super().construct_recorder()

    def save(self, *objs: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """The library's save: collect the pending events, then record them (see `record`)."""
        self.record(self.collect(*objs, **kwargs))

    def collect(self, *objs: Any, **kwargs: Any) -> ProcessingEvent[UUID]:
        """The pending events of these aggregates (now no longer pending), ready for `record`.

        As the library's, but telling aggregates apart by their class: the library asks each object
        whether it follows its runtime-checkable protocols, which on Python 3.11 costs some 15 µs
        per aggregate, a tenth of group commit's whole work per command.
        """
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            elif obj is not None:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        return processing_event

    def record(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Store collected events in one transaction (IntegrityError: another writer saved first).

        As the library's, less the `Recording` (event, notification) it makes of every stored event
        for the hooks of its process applications, which the engine does not use and nothing here
        reads: a tenth of the intake's work for a new alarm. Hence nothing returned.
        """
        stored = list(map(self.mapper.to_stored_event, processing_event.events))
        self.recorder.insert_events(stored, tracking=processing_event.tracking, **processing_event.saved_kwargs)
        if self.repository.cache and not self.repository.fastforward:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                self.repository.cache.put(aggregate_id, aggregate)
        take_snapshots(self, processing_event)

    def handle(self, command: Any) -> Any:
        """Carry out one command; returns the aggregate it changed, as it stands afterwards."""
        handler = COMMAND_HANDLERS.get(type(command))
        if handler is not None:
            return handler(self, command)
        if isinstance(command, LogIncident):
            return self._log(command)
        if isinstance(command, AttachIncident):
            return self._attach(command)
        method = _INCIDENT_METHODS[type(command)]
        for _attempt in range(CONFLICT_RETRIES):
            incident = self.get_incident(command.incident_id)
            method(self, incident, command)
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
        incident = self._new_incident(command)
        try:
            self.save(incident)
        except IntegrityError:
            found = self._find(command.id)
            if found is None:
                raise
            return found
        self.saved()
        return incident

    def stored_versions(self, ids: Sequence[UUID]) -> dict[UUID, int]:
        """The latest stored version of each of these aggregates (absent: never stored), in one query."""
        if not ids:
            return {}
        recorder: Any = self.recorder
        table = recorder.events_table_name
        by_hex = {i.hex: i for i in ids}  # ids go and come back as text: cheaper than as UUIDs
        if is_postgres_datastore(recorder.datastore):
            if self._versions_statement is None:
                from psycopg.sql import SQL, Identifier

                # One text in, one text out ("id version id version…"): the driver's per-value work
                # (arrays of UUIDs, a row per aggregate) was half the cost of the query.
                self._versions_statement = SQL(
                    "SELECT string_agg(replace(originator_id::text, '-', '') || ' ' || version, ' ') AS found"
                    " FROM (SELECT originator_id, MAX(originator_version) AS version FROM {schema}.{table}"
                    " WHERE originator_id = ANY(string_to_array(%s, ' ')::uuid[]) GROUP BY originator_id) AS latest"
                ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(table))
            with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(self._versions_statement, [" ".join(by_hex)], prepare=True)
                row = curs.fetchone()
            found = (row or {}).get("found")
            if not found:
                return {}
            words = found.split(" ")
            return {by_hex[words[k]]: int(words[k + 1]) for k in range(0, len(words), 2)}
        # One SELECT is a read transaction of its own: no BEGIN and ROLLBACK around it.
        with recorder.datastore.get_connection(commit=False) as conn:
            c = conn.cursor()
            c.execute(
                f"SELECT originator_id, MAX(originator_version) FROM {table}"
                f" WHERE originator_id IN ({','.join('?' * len(by_hex))}) GROUP BY originator_id",
                list(by_hex),
            )
            return {by_hex[row[0]]: row[1] for row in c.fetchall()}

    def version_at(self, aggregate_id: UUID, position: int) -> int | None:
        """The aggregate's last version stored at or before `position` of the notification log (None:
        nothing of it yet): how a process reads an aggregate as it stood when the event it reacts to
        was stored, whatever was stored since."""
        recorder: Any = self.recorder
        table = recorder.events_table_name
        if is_postgres_datastore(recorder.datastore):
            if self._version_at_statement is None:
                from psycopg.sql import SQL, Identifier

                self._version_at_statement = SQL(
                    "SELECT MAX(originator_version) AS version FROM {schema}.{table}"
                    " WHERE originator_id = %s AND notification_id <= %s"
                ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(table))
            with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(self._version_at_statement, [aggregate_id, position], prepare=True)
                row = curs.fetchone()
            found = (row or {}).get("version")
            return None if found is None else int(found)
        with recorder.datastore.get_connection(commit=False) as conn:
            c = conn.cursor()
            c.execute(
                f"SELECT MAX(originator_version) FROM {table} WHERE originator_id = ? AND rowid <= ?",
                [aggregate_id.hex, position],
            )
            row = c.fetchone()
        return None if row is None or row[0] is None else int(row[0])

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
        return isinstance(command, LogIncident) or type(command) in _INCIDENT_METHODS

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
                found = self._new_incident(command, matrices[command.account])
            cache[command.id] = found
            return found
        incident = cache.get(command.incident_id)
        if incident is None:
            incident = self.get_incident(command.incident_id)  # NotFound when it was never stored
        cache[incident.id] = incident
        _INCIDENT_METHODS[type(command)](self, incident, command)
        return incident

    def _new_incident(self, command: LogIncident, matrix: Mapping[tuple[int, int], int] | None = None) -> Incident:
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

    def _attach(self, command: AttachIncident) -> Incident:
        """Attach a child to its parent: both incidents change and are saved in one go, or neither."""
        ids = [(command.child_id, Incident, "incident"), (command.parent_id, Incident, "incident")]
        child, _parent = self.update(ids, lambda c, p: attach(c, p, actor=command.actor, at=command.at))
        return child

    # -- accounts -------------------------------------------------------------------

    def find_account(self, account: str) -> Account | None:
        """The account as stored, to read (not to change); None while never registered (it runs on the defaults)."""
        if not isinstance(account, str) or not account.strip():
            return None
        return _ACCOUNTS.current(self, account_id(account))

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
        found = None if version is None else _ACCOUNTS.current(self, aggregate_id, version)
        return DEFAULT_MATRIX if found is None else found.matrix

    def reopen_period(self, account: str) -> timedelta:
        """How long after resolution the account's incidents may still be reopened."""
        found = self.find_account(account)
        return DEFAULT_REOPEN_PERIOD if found is None else found.reopen_period

    def account_profile(self, account: str) -> dict[str, Any]:
        """The account's settings and ROC informs; the defaults when it was never registered."""
        found = self.find_account(account)
        return profile_of(account=account) if found is None else found.profile()

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
                contract = _CONTRACTS.current(self, command.account, stored.get(_contract_id(command.account)))
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
        return _CONTRACTS.current(self, account, stored.get(_contract_id(account)))

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

    def comments(self, incident_id: UUID) -> list[Incident.Commented]:
        """An incident's comments, oldest first: read from its events, as the aggregate keeps only their count."""
        return [e for e in self.history(incident_id) if isinstance(e, Incident.Commented)]


# -- accounts -------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterAccount:
    account: str
    actor: str
    at: datetime
    name: str = ""
    roc: str | None = None


@dataclass(frozen=True)
class SetAccountRoc:
    account: str
    roc: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class SetPriorityMatrix:
    account: str
    matrix: Mapping[tuple[int, int], int]
    actor: str
    at: datetime


@dataclass(frozen=True)
class SetReopenPeriod:
    account: str
    period: timedelta
    actor: str
    at: datetime


@dataclass(frozen=True)
class InformRoc:
    """Inform the account's ROC about a subject; the same subject and reason are informed once only."""

    account: str
    subject_id: UUID
    subject: str
    reason: str
    actor: str
    at: datetime


@handles(RegisterAccount)
def register_account(app: ItilApplication, command: RegisterAccount) -> Account:
    """Register an account once; registering it again with the same details changes nothing."""
    account = Account.register(
        account=command.account, name=command.name, roc=command.roc, actor=command.actor, at=command.at
    )
    registered = app.create(account.id, Account, lambda: account)
    if (registered.name, registered.roc) != (account.name, account.roc):
        raise IllegalTransition(
            f"cannot register account {account.account}: it is already registered (as {registered.name!r},"
            f" ROC {registered.roc or 'none'}); change its ROC or settings instead"
        )
    return registered


def _registered(app: ItilApplication, account: str) -> list[tuple[UUID, type[Aggregate], str]]:
    """The ids for `app.update` of a registered account; NotFound when it was never registered."""
    if not isinstance(account, str) or not account.strip():
        raise InvalidCommand("account is required")
    if app.find_account(account) is None:
        raise NotFound(f"there is no registered account {account.strip()!r}; register it first")
    return [(account_id(account), Account, "account")]


@handles(SetAccountRoc, SetPriorityMatrix, SetReopenPeriod)
def change_account(app: ItilApplication, command: SetAccountRoc | SetPriorityMatrix | SetReopenPeriod) -> Account:
    """Change one of a registered account's settings; setting the value it already has changes nothing."""

    def change(account: Account) -> None:
        if isinstance(command, SetAccountRoc):
            account.set_roc(roc=command.roc, actor=command.actor, at=command.at)
        elif isinstance(command, SetPriorityMatrix):
            account.set_priority_matrix(matrix=command.matrix, actor=command.actor, at=command.at)
        else:
            account.set_reopen_period(period=command.period, actor=command.actor, at=command.at)

    [account] = app.update(_registered(app, command.account), change)
    return account


@handles(InformRoc)
def inform_roc(app: ItilApplication, command: InformRoc) -> Account:
    """Inform the ROC; carried out again (a redelivered event), it informs nobody twice."""
    if app.find_account(command.account) is None:
        raise IllegalTransition(
            f"cannot inform the ROC of account {command.account} about {command.subject}: the account has no ROC"
            " (it is not registered); register it with its ROC first"
        )

    def inform(account: Account) -> None:
        account.inform_roc(
            subject_id=command.subject_id, subject=command.subject, reason=command.reason,
            actor=command.actor, at=command.at,
        )  # fmt: skip

    [account] = app.update(_registered(app, command.account), inform)
    return account


class _AccountsRead:
    """Accounts as last read, brought up to date with only the events stored since.

    Every incident logged or reprioritised reads its account's matrix, while an account's history
    grows with every ROC inform; replaying it all each time would slow logging during a mass outage.
    One query per read still sees what other processes stored. Readers get an object nobody changes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: weakref.WeakKeyDictionary[ItilApplication, dict[UUID, Account]] = weakref.WeakKeyDictionary()

    def current(self, app: ItilApplication, aggregate_id: UUID, stored_version: int | None = None) -> Account | None:
        """The account as stored; given its `stored_version` (just read), one already known at it is not read."""
        with self._lock:
            known = self._known.setdefault(app, {}).get(aggregate_id)
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
                accounts = self._known.setdefault(app, {})
                if aggregate_id not in accounts or accounts[aggregate_id].version < fresh.version:
                    accounts[aggregate_id] = fresh
        return fresh


_ACCOUNTS = _AccountsRead()


@functools.lru_cache(maxsize=4096)
def _account_id(account: str) -> UUID:
    return account_id(account)
