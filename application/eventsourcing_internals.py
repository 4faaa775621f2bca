"""The private parts of eventsourcing that the engine bends, behind one door.

Every private method of the library overridden or called, and every private attribute replaced,
is here, nowhere else: the recorders' insert of a transaction's events (application.pgrecorder,
application.sqliterecorder), the snapshots of an application that records its own way
(`ItilApplication.record`), and the writer lock of the SQLite connection pool.
`tests/unit/test_library_internals.py` fails as soon as one of them moves or changes shape, and
pyproject.toml pins the version they were read from (eventsourcing 9.5).

Nothing here imports eventsourcing.postgres (nor psycopg): a SQLite engine never loads them.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteDatastore, SQLiteRecorder


class LibraryChanged(RuntimeError):
    """eventsourcing no longer has a private part the engine relies on: the pinned version was left."""


class WriterLock(Protocol):
    """What the SQLite connection pool does with its writer lock: `acquire(timeout=…)` and `release()`."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...


def take_snapshots(app: Application[Any], processing_event: ProcessingEvent[Any]) -> None:
    """The snapshots `Application.save` takes once the events are recorded (its private
    `_take_snapshots`), for an application that records them its own way."""
    app._take_snapshots(processing_event)


def is_postgres_datastore(datastore: object) -> bool:
    """True for eventsourcing's PostgreSQL datastore, False for its SQLite one; TypeError for anything else."""
    if isinstance(datastore, SQLiteDatastore):
        return False
    from eventsourcing.postgres import PostgresDatastore  # reached on PostgreSQL only, where it is loaded

    if isinstance(datastore, PostgresDatastore):
        return True
    raise TypeError(f"not an eventsourcing PostgreSQL or SQLite datastore: {type(datastore).__qualname__}")


def share_writer_lock(recorder: object, lock: WriterLock | None) -> None:
    """Make the writers of an SQLite event store take `lock` (the views' writer lock of the same file,
    `Database.writer_lock`) instead of the connection pool's own: its private `_writer_lock`, which
    it acquires for each connection it hands out for writing and releases when it is put back.

    `lock` None (a PostgreSQL database): nothing to share. An event store that is not on SQLite
    while the views' database is, or a pool without `_writer_lock`, raises.
    """
    if lock is None:
        return
    if not isinstance(recorder, SQLiteRecorder):
        raise TypeError(f"the views are on SQLite but the event store's recorder is {type(recorder).__qualname__}")
    pool = recorder.datastore.pool
    if "_writer_lock" not in vars(pool):
        raise LibraryChanged(f"{type(pool).__qualname__} has no _writer_lock to share")
    pool._writer_lock = lock  # type: ignore[assignment]


class PostgresInsertHook:
    """For a subclass of eventsourcing's `PostgresApplicationRecorder`: its own INSERT of a
    transaction's events (`insert_rows`), in the library's place.

    The library's `insert_events` calls the private `_insert_stored_events` in the transaction, then
    reads the notification ids from the same cursor; that method takes the table lock and sends the
    NOTIFY (the private `_lock_table` and `_notify_channel`) before its INSERT. Here the same, with
    `insert_rows` for the INSERT, whose rows must be what the library's INSERT returns (`RETURNING
    notification_id`), for `insert_events` to read.
    """

    @abstractmethod
    def insert_rows(self, curs: Any, stored_events: Sequence[StoredEvent]) -> None:
        """INSERT the transaction's events with `curs`, returning their notification ids on it."""

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        recorder: Any = self  # a PostgresApplicationRecorder
        recorder._lock_table(curs)
        recorder._notify_channel(curs)
        self.insert_rows(curs, stored_events)


class SQLiteInsertHook:
    """For a subclass of eventsourcing's `SQLiteApplicationRecorder`: its own INSERT of a
    transaction's events (`insert_rows`), in the library's place.

    The library's `insert_events` calls the private `_insert_events` in the write transaction and
    returns what it returns: the events' notification ids (rowids), in order.
    """

    @abstractmethod
    def insert_rows(self, c: Any, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None:
        """INSERT the transaction's events with `c`; their notification ids (rowids), in order."""

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int] | None:
        return self.insert_rows(c, stored_events)
