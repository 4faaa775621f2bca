"""The SQLite event store's insert, with a transaction's events sent in one `executemany`.

eventsourcing's SQLite application recorder inserts a transaction's events one `execute` at a
time, to read each one's rowid (its notification id) back. Here they go in one `executemany`,
and the ids are read once afterwards: rowids of a table without AUTOINCREMENT are handed out as
the largest so far plus one, and nobody else can insert between our rows (the transaction holds
SQLite's write lock from its first insert), so a batch's ids are the `len(batch)` numbers ending
at `last_insert_rowid()`. Same table, same rows, same order, same ids returned: readers cannot tell.

Chosen by `ItilApplication.construct_recorder` for SQLite stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from application.eventsourcing_internals import SQLiteInsertHook


class ManyInsertRecorder(SQLiteInsertHook, SQLiteApplicationRecorder):
    """SQLiteApplicationRecorder whose insert is one `executemany` per transaction."""

    def insert_rows(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None:
        """In the library's write transaction (see SQLiteInsertHook)."""
        if not stored_events:
            return []
        c.executemany(
            self.insert_events_statement,
            [
                (s.originator_id.hex if type(s.originator_id) is UUID else s.originator_id, s.originator_version,
                 s.topic, s.state)
                for s in stored_events
            ],
        )  # fmt: skip
        c.execute("SELECT last_insert_rowid()")
        last = int(c.fetchone()[0])
        return list(range(last - len(stored_events) + 1, last + 1))
