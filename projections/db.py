"""One small SQL gateway over SQLite or PostgreSQL, configured like the event store."""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import threading
import time
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


SQLITE_LOCK_TIMEOUT = 30.0
"""Seconds a writer waits for the SQLite file, unless the store's SQLITE_LOCK_TIMEOUT says otherwise
(eventsourcing reads the same setting; `itil` sets it to 30)."""


class WriterLockTimeout(TimeoutError):
    """Another process held the writer lock of a SQLite file for longer than a writer may wait."""


class WriterLock:
    """The lock every writer of one SQLite file takes for its write transaction: a re-entrant lock
    among the threads of this process, and an advisory lock on a file beside the database among
    processes (`itil up` runs the worker, the intake and the relay apart).

    SQLite lets one writer in at a time, and a writer that finds the file locked sleeps in its
    busy handler (up to 100 ms a time) rather than waking when the lock is released: with a
    dozen consumers, the intake and the event store writing at once, most of a storm went by in
    those sleeps. Queued on these locks, writers get the file as soon as it is free.

    A writer waits for another process at most `timeout` seconds (as long as SQLite would have let
    it wait for the file), or less if it asks for less, as eventsourcing's pool does.
    """

    def __init__(self, path: str, timeout: float = SQLITE_LOCK_TIMEOUT) -> None:
        self.path = path + ".writer-lock"
        self.timeout = timeout
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._queue: _FileQueue | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        started = None
        if not self._threads.acquire(False):
            started = time.monotonic()
            if not self._threads.acquire(blocking, timeout):
                return False
        if self._depth == 0:
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if not blocking:
                        self._threads.release()
                        return False
                    if timeout >= 0 and started is not None:
                        timeout = max(0.0, timeout - (time.monotonic() - started))
                    self._wait_for_file(self.timeout if timeout < 0 else min(timeout, self.timeout))
            except BaseException:
                self._threads.release()
                raise
        self._depth += 1
        return True

    def _wait_for_file(self, timeout: float) -> None:
        """Another process holds the file: wait in the kernel's queue for it, up to `timeout` seconds."""
        if self._queue is None:
            self._queue = _FileQueue(self.path)
        assert self._fd is not None
        fd = self._queue.take(self._fd, timeout)
        if fd is None:
            raise WriterLockTimeout(
                f"gave up on the writer lock {self.path} after {timeout:.1f} s: other processes held it"
                " all that time (the store's SQLITE_LOCK_TIMEOUT bounds how long a writer waits)"
            )
        self._fd = fd

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


class _FileQueue:
    """A thread that waits for a lock file in the kernel's queue on behalf of the writers of its process,
    so that a writer can give up after a timeout; a lock that comes when nobody waits for it any
    more is let go at once. (Polling with a non-blocking `flock` instead lets a process whose
    threads write one after the other starve a process that writes alone, for seconds.)
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # the open file it waits with next
        self._state = "idle"  # idle, waiting (in `flock`), locked (for a writer that waits)
        self._wanted = False
        self._changed = threading.Condition(threading.Lock())
        threading.Thread(target=self._serve, name="writer-lock-queue", daemon=True).start()

    def _serve(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._state == "waiting")
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            with self._changed:
                if self._wanted:
                    self._state = "locked"
                    self._changed.notify_all()
                else:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    self._state = "idle"

    def take(self, fd: int, timeout: float) -> int | None:
        """The open file that holds the lock (`fd`, which holds none, is used for the next wait), or
        None if the lock did not come within `timeout` seconds."""
        with self._changed:
            if self._state == "idle":
                self._state = "waiting"
                self._changed.notify_all()
            self._wanted = True
            self._changed.wait_for(lambda: self._state == "locked", timeout)
            self._wanted = False
            if self._state != "locked":
                return None
            locked, self._fd, self._state = self._fd, fd, "idle"
            return locked


_WRITERS: dict[str, WriterLock] = {}
_WRITERS_GUARD = threading.Lock()


def sqlite_writer_lock(path: str, timeout: float = SQLITE_LOCK_TIMEOUT) -> WriterLock:
    """The writer lock of this SQLite file (one per file in a process, with the first caller's timeout)."""
    key = os.path.realpath(path)
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(key, WriterLock(key, timeout))


class Database:
    """Connections (one per thread) to the database the store uses, for views and positions."""

    def __init__(self, dialect: str, params: Mapping[str, Any]) -> None:
        self.dialect = dialect
        self.params = dict(params)
        self._local = threading.local()
        self._writers = (
            sqlite_writer_lock(self.params["path"], self.params.get("lock_timeout", SQLITE_LOCK_TIMEOUT))
            if dialect == SQLITE
            else None
        )

    @property
    def writer_lock(self) -> WriterLock | None:
        """The lock every writer of the SQLite file takes (None on PostgreSQL): the composition root
        has the event store's writers take it too."""
        return self._writers

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
            timeout = float(env.get("SQLITE_LOCK_TIMEOUT") or SQLITE_LOCK_TIMEOUT)
            return cls(SQLITE, {"path": path, "lock_timeout": timeout})
        raise ValueError(
            f"unsupported PERSISTENCE_MODULE {module!r}: use eventsourcing.sqlite or eventsourcing.postgres"
        )

    def _connect(self) -> Any:
        if self.dialect == SQLITE:
            Path(self.params["path"]).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.params["path"], timeout=self.params.get("lock_timeout", SQLITE_LOCK_TIMEOUT),
                isolation_level=None, check_same_thread=False,
            )  # fmt: skip
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
