"""One small SQL gateway over SQLite or PostgreSQL, configured like the event store."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SQLITE = "sqlite"
POSTGRES = "postgres"


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
            self._cursor.executemany(self._sql(sql), [tuple(r) for r in rows])

    def one(self) -> dict[str, Any] | None:
        row = self._cursor.fetchone()
        return None if row is None else dict(row)

    def all(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._cursor.fetchall()]


class Database:
    """Connections (one per thread) to the database the store uses, for views and positions."""

    def __init__(self, dialect: str, params: Mapping[str, Any]) -> None:
        self.dialect = dialect
        self.params = dict(params)
        self._local = threading.local()

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

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            try:
                conn.close()
            except Exception:
                pass
