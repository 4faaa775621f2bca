"""How the engine stores aggregates and reads them back: the eventsourcing application, with a cheaper
save (no per-event recordings, aggregates told apart by class), the recorder chosen for the store,
the stored versions of many aggregates in one query, and load / create / update with retries."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing import persistence
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ApplicationRecorder, IntegrityError

from application.conflicts import CONFLICT_RETRIES, ConcurrencyConflict
from application.eventsourcing_internals import is_postgres_datastore, take_snapshots
from domain.errors import NotFound

A = TypeVar("A", bound=Aggregate)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # connections refused or reset, timeouts (WriterLockTimeout is a TimeoutError)
    ConcurrencyConflict,
    persistence.OperationalError,
    persistence.InterfaceError,
    persistence.ConnectionUnavailableError,
    sqlite3.OperationalError,
)
"""Failures that pass when the store or its lock comes back: retried for as long as they last (and the
PostgreSQL driver's operational and interface errors, see `transient`)."""


def transient(error: BaseException) -> bool:
    """Whether the error says the store (or its lock, or a connection to it) is away for now: try again later."""
    if isinstance(error, TRANSIENT_ERRORS):
        return True
    module = type(error).__module__  # the driver is imported only where PostgreSQL is used
    return (
        module.startswith("psycopg")
        and type(error).__name__ in ("OperationalError", "InterfaceError")
        or any(
            c.__module__.startswith("psycopg") and c.__name__ in ("OperationalError", "InterfaceError")
            for c in type(error).__mro__
        )
    )


@dataclass
class SaveListeners:
    """Callbacks told after every successful save (the relay's wake-up)."""

    callbacks: list[Callable[[], None]] = field(default_factory=list)

    def __call__(self) -> None:
        for callback in self.callbacks:
            callback()


class StoreApplication(Application[UUID]):
    """The library's application with the engine's store: what any of its applications saves and loads."""

    env: ClassVar[dict[str, str]] = {
        # Keep recently used aggregates in memory; each read still fetches any newer events
        # (fast-forward), so writers in other processes are seen. Saves a full reload per command.
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        # The library's JSON, same bytes, written and read by orjson (see application.transcoder).
        "TRANSCODER_TOPIC": "application.transcoder:OrjsonTranscoder",
    }

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env=env)
        self.saved = SaveListeners()
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
            factory.env[factory.APPLICATION_RECORDER_TOPIC] = "application.pgrecorder:ArrayInsertRecorder"
        elif type(factory).__module__ == "eventsourcing.sqlite":
            factory.env[factory.APPLICATION_RECORDER_TOPIC] = "application.sqliterecorder:ManyInsertRecorder"
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
