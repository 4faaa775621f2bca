"""The PostgreSQL event store's insert, with the batch sent as four arrays rather than composites.

eventsourcing sends a transaction's events as one array of a composite type, which psycopg's
pure-Python build escapes field by field with regular expressions: about half of the CPU of
storing an event. Here the same `INSERT … SELECT FROM unnest(…) RETURNING notification_id` takes
one array per column (ids, versions, topics, states) in binary. Same table, same rows, same
order, same table lock and NOTIFY first, same notification ids returned: readers cannot tell.

Imported only when the store is PostgreSQL (`ItilApplication.construct_recorder`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Composed, Identifier

from application.eventsourcing_internals import PostgresInsertHook


class ArrayInsertRecorder(PostgresInsertHook, PostgresApplicationRecorder):
    """PostgresApplicationRecorder whose insert sends one array per column."""

    _arrays_statement: Composed | None = None

    def insert_rows(self, curs: Any, stored_events: Sequence[StoredEvent]) -> None:
        """After the library's table lock and NOTIFY (see PostgresInsertHook)."""
        if self._arrays_statement is None:
            self._arrays_statement = SQL(
                "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
                " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"
                " RETURNING notification_id"
            ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        curs.execute(
            self._arrays_statement,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
            prepare=True,
        )
