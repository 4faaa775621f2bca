"""One small SQL gateway over SQLite or PostgreSQL, configured like the event store."""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SQLITE = "sqlite"
POSTGRES = "postgres"


_COLUMN_TYPES: dict[str, dict[str, str]] = {}
"""PostgreSQL column types by table, for `Transaction.insert_many` (the projections' tables do not change)."""


class Transaction:
    """A cursor that speaks `?` placeholders on both dialects and returns rows as dicts."""

    def __init__(self, cursor: Any, dialect: str) -> None:
        self._cursor = cursor
        self.dialect = dialect

    def _sql(self, sql: str) -> str:
        return sql if self.dialect == SQLITE else sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Transaction:
        self._cursor.execute(self._sql(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), rows)

    def insert_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """`executemany` for one `INSERT INTO t (columns) VALUES (?, …) [ON CONFLICT …]` whose rows
        have distinct keys: on PostgreSQL, one statement for all the rows, each column sent as an
        array (`SELECT * FROM unnest(…)`). psycopg's `executemany` costs a protocol round of
        Python per row, several times the row's own work; SQLite, in process, runs the prepared
        statement once per row.
        """
        if not rows:
            return
        if self.dialect == SQLITE:
            self._cursor.executemany(sql, rows)
            return
        head, _, rest = sql.partition(" VALUES ")
        tail = rest.partition(")")[2]
        table, _, listed = head.removeprefix("INSERT INTO ").partition(" (")
        columns = [c.strip() for c in listed.rstrip(")").split(",")]
        types = self._column_types(table.strip())
        arrays = [list(values) for values in zip(*rows, strict=True)]
        for column, values in zip(columns, arrays, strict=True):
            if types[column] == "double precision":
                values[:] = [float(v) if type(v) is int else v for v in values]
            if len(set(map(type, values)) - {type(None)}) > 1:  # an array holds one type: row by row
                self._cursor.executemany(self._sql(sql), rows)
                return
        placeholders = ", ".join(f"%b::{types[c]}[]" for c in columns)
        self._cursor.execute(f"{head} SELECT * FROM unnest({placeholders}){tail}", arrays)

    def _column_types(self, table: str) -> dict[str, str]:
        found = _COLUMN_TYPES.get(table)
        if found is None:
            self._cursor.execute(
                "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table,),
            )
            found = _COLUMN_TYPES[table] = {r["attname"]: r["type"] for r in self._cursor.fetchall()}
        return found

    def one(self) -> dict[str, Any] | None:
        row = self._cursor.fetchone()
        return None if row is None else dict(row)

    def all(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._cursor.fetchall()]


class WriterLock:
    """The lock every writer of one SQLite file takes for its write transaction: a re-entrant lock
    among the threads of this process, and an advisory lock on a file beside the database among
    processes (`itil up` runs the worker, the intake and the relay apart).

    SQLite lets one writer in at a time, and a writer that finds the file locked sleeps in its
    busy handler (up to 100 ms a time) rather than waking when the lock is released: with a
    dozen consumers, the intake and the event store writing at once, most of a storm went by in
    those sleeps. Queued on these locks, writers get the file as soon as it is free.
    """

    def __init__(self, path: str) -> None:
        self.path = path + ".writer-lock"
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not self._threads.acquire(blocking, timeout):
            return False
        if self._depth == 0:
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_WRITERS: dict[str, WriterLock] = {}
_WRITERS_GUARD = threading.Lock()


def sqlite_writer_lock(path: str) -> WriterLock:
    """The writer lock of this SQLite file (one per file in a process)."""
    key = os.path.realpath(path)
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(key, WriterLock(key))


class Database:
    """Connections (one per thread) to the database the store uses, for views and positions."""

    def __init__(self, dialect: str, params: Mapping[str, Any]) -> None:
        self.dialect = dialect
        self.params = dict(params)
        self._local = threading.local()
        self._writers = sqlite_writer_lock(self.params["path"]) if dialect == SQLITE else None

    def share_writer_lock(self, recorder: Any) -> None:
        """Make the event store's writer (eventsourcing's SQLite connection pool) take the same lock."""
        pool = getattr(getattr(recorder, "datastore", None), "pool", None)
        if self._writers is not None and pool is not None and hasattr(pool, "_writer_lock"):
            pool._writer_lock = self._writers

    @classmethod
    def from_store_env(cls, env: Mapping[str, str]) -> Database:
        """The database named by the eventsourcing environment (PERSISTENCE_MODULE, ...)."""
        module = env.get("PERSISTENCE_MODULE", "eventsourcing.sqlite")
        if module.endswith("postgres"):
            return cls(
                POSTGRES,
                {
                    "dbname": env.get("POSTGRES_DBNAME", "postgres"),
                    "host": env.get("POSTGRES_HOST", "127.0.0.1"),
                    "port": int(env.get("POSTGRES_PORT", "5432")),
                    "user": env.get("POSTGRES_USER", "postgres"),
                    "password": env.get("POSTGRES_PASSWORD", ""),
                    "schema": env.get("POSTGRES_SCHEMA", ""),
                },
            )
        if module.endswith("sqlite"):
            path = env.get("SQLITE_DBNAME", "")
            if not path or path == ":memory:" or path.startswith("file::memory:"):
                raise ValueError("the SQLite store must be a file shared by the engine's processes")
            return cls(SQLITE, {"path": path})
        raise ValueError(
            f"unsupported PERSISTENCE_MODULE {module!r}: use eventsourcing.sqlite or eventsourcing.postgres"
        )

    def _connect(self) -> Any:
        if self.dialect == SQLITE:
            Path(self.params["path"]).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.params["path"], timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        import psycopg
        from psycopg.rows import dict_row

        p = self.params
        pg: Any = psycopg.connect(
            dbname=p["dbname"], host=p["host"], port=p["port"], user=p["user"],
            password=p["password"] or None, row_factory=dict_row, autocommit=False,
        )  # fmt: skip
        if p.get("schema"):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p["schema"]):
                raise ValueError(f"invalid POSTGRES_SCHEMA {p['schema']!r}")
            with pg.cursor() as cur:
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{p["schema"]}"')
                cur.execute(f'SET search_path TO "{p["schema"]}"')
            pg.commit()
        return pg

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Transaction]:
        """One transaction: committed if the block ends normally, rolled back otherwise."""
        conn = self._connection()
        writers = self._writers if write else None
        if writers is not None:
            writers.acquire()
        try:
            if self.dialect == SQLITE:
                cur = conn.cursor()
                cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            else:
                cur = conn.cursor()
            yield Transaction(cur, self.dialect)
            conn.commit() if self.dialect == POSTGRES else cur.execute("COMMIT")
        except BaseException:
            try:
                conn.rollback()
            except Exception:
                self.close()
            raise
        finally:
            if writers is not None:
                writers.release()

    @contextmanager
    def rebuilding(self) -> Iterator[None]:
        """This thread's connection tuned for a rebuild's long run of large write transactions.

        SQLite: a 64 MB page cache (the timeline indexes outgrow the default 2 MB when ids are
        random), and a checkpoint every 64 MB of log instead of every 4 MB (each one syncs the
        file twice and copies back pages that the next transactions change again). `synchronous`
        stays NORMAL: in WAL mode commits do not sync anyway, and OFF would put the whole file,
        event store included, at risk on a power loss. PostgreSQL: commits do not wait for the
        WAL flush (a crash may lose the last transactions, rows and positions together).
        """
        conn = self._connection()
        if self.dialect == SQLITE:
            cache, checkpoint = (
                conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("cache_size", "wal_autocheckpoint")
            )
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA wal_autocheckpoint=16384")
            try:
                yield
            finally:
                conn.execute(f"PRAGMA cache_size={int(cache)}")
                conn.execute(f"PRAGMA wal_autocheckpoint={int(checkpoint)}")
            return
        with conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
        conn.commit()
        try:
            yield
        finally:
            with conn.cursor() as cur:
                cur.execute("RESET synchronous_commit")
            conn.commit()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            try:
                conn.close()
            except Exception:
                pass
