"""Command intake: incident lifecycles through the application, side by side with baselines.

Many clients (threads) each carry incidents through their life: log, acknowledge, assign,
restore, resolve, close. Measured in the same run, on the same kind of store:
  plain   the eventsourcing application saving one aggregate per command (load, call, save);
  crud    a classic ticket tool: one INSERT, then one UPDATE of the incident's row per command;
  engine  the engine's group commit (application.batching): concurrent commands share a transaction,
          each still checked against its aggregate's state, refusals still per command.
Targets: engine at least 5x plain on each store, and not slower than crud. All three use the same
client threads, the same store settings (SQLite in WAL mode with its default synchronous=FULL;
PostgreSQL's synchronous_commit=on) and a fresh store each; the engine's clients call it as the
web handlers do (submit, then wait for the answer).

    .venv/bin/python -m bench.command_intake [--incidents 2000] [--clients 32] [--rounds 1] [--store ...] [--quick]
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

from application.app import ItilApplication
from application.batching import GroupCommitter
from bench.common import PG, T0, arguments, report, store_env, stores
from domain import commands as cmd


def lifecycle_commands(n: int) -> list[Any]:
    incident = uuid.UUID(int=(1 << 64) + n)
    at = T0 + timedelta(seconds=n)
    return [
        cmd.LogIncident(id=incident, account=f"account-{n % 20}", title=f"incident {n}", impact=1 + n % 3,
                        urgency=2, channel="monitoring", reporter="nagios", actor="nagios", at=at, ci=f"ci-{n}"),
        cmd.AcknowledgeIncident(incident, actor="n1", at=at + timedelta(minutes=1)),
        cmd.AssignIncident(incident, group="N2 network", actor="n1", at=at + timedelta(minutes=2), assignee="eve"),
        cmd.RestoreService(incident, actor="eve", at=at + timedelta(minutes=30)),
        cmd.ResolveIncident(incident, code="fixed", actor="eve", at=at + timedelta(minutes=40)),
        cmd.CloseIncident(incident, actor="n1", at=at + timedelta(hours=1)),
    ]  # fmt: skip


def drive(clients: int, incidents: int, run: Callable[[Any], Any], cpu: list[float] | None = None) -> float:
    """Commands per second when `clients` threads each carry their share of lifecycles through `run`.

    `cpu`, when given, is told this process's CPU time per command (µs; the database server's not counted).
    """
    errors: list[BaseException] = []

    def client(k: int) -> None:
        try:
            for n in range(k, incidents, clients):
                for command in lifecycle_commands(n):
                    run(command)
        except BaseException as error:  # report after the run
            errors.append(error)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    began, cpu_began = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if cpu is not None:
        cpu.append((time.process_time() - cpu_began) / (incidents * 6) * 1e6)
    if errors:
        raise errors[0]
    return incidents * 6 / elapsed


class PlainApplication(ItilApplication):
    """The library used plainly: no aggregate cache, one aggregate loaded and saved per command."""

    env: ClassVar[dict[str, str]] = {}


class Crud:
    """The classic ticket tool's writes: a row per incident, updated in place."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.local = threading.local()
        with self.connection() as conn:
            self._execute(conn, "CREATE TABLE IF NOT EXISTS tickets (id TEXT PRIMARY KEY, account TEXT, title TEXT,"
                                " status TEXT, assignee TEXT, updated_at TEXT)")  # fmt: skip

    def connection(self) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            if self.env["PERSISTENCE_MODULE"].endswith("sqlite"):
                conn = sqlite3.connect(self.env["SQLITE_DBNAME"] + ".crud", timeout=60, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
            else:
                import psycopg

                conn = psycopg.connect(dbname=self.env["POSTGRES_DBNAME"], **PG)  # type: ignore[arg-type]
            self.local.conn = conn
        return conn

    def _execute(self, conn: Any, sql: str, params: tuple[Any, ...] = ()) -> None:
        if not isinstance(conn, sqlite3.Connection):
            sql = sql.replace("?", "%s")
        conn.execute(sql, params)
        conn.commit()

    def __call__(self, command: Any) -> None:
        conn = self.connection()
        if isinstance(command, cmd.LogIncident):
            self._execute(conn, "INSERT INTO tickets VALUES (?, ?, ?, 'new', NULL, ?)",
                          (str(command.id), command.account, command.title, command.at.isoformat()))  # fmt: skip
        else:
            status = type(command).__name__.replace("Incident", "").lower()
            self._execute(conn, "UPDATE tickets SET status = ?, updated_at = ? WHERE id = ?",
                          (status, command.at.isoformat(), str(command.incident_id)))  # fmt: skip


def main() -> None:
    args = arguments(
        __doc__ or "", incidents=(int, 2000, "lifecycles per variant"), clients=(int, 32, "threads"),
        rounds=(int, 1, "rounds of the three variants, one after the other (figures: the median, and the range)"),
    )  # fmt: skip
    incidents = 200 if args.quick else args.incidents
    for kind in stores(args.store):
        rates: dict[str, list[float]] = {"plain": [], "crud": [], "engine": []}
        cpu: dict[str, list[float]] = {"plain": [], "crud": [], "engine": []}
        commands = batches = 0
        for _ in range(max(args.rounds, 1)):
            with store_env(kind) as env:
                rates["plain"].append(drive(args.clients, incidents, PlainApplication(env=env).handle, cpu["plain"]))
            with store_env(kind) as env:
                rates["crud"].append(drive(args.clients, incidents, Crud(env), cpu["crud"]))
            with store_env(kind) as env:
                committer = GroupCommitter(ItilApplication(env=env)).start()
                rates["engine"].append(drive(args.clients, incidents, committer.handle, cpu["engine"]))
                committer.stop()
                commands, batches = commands + committer.commands, batches + committer.batches
        plain, crud, engine = (statistics.median(rates[k]) for k in ("plain", "crud", "engine"))
        figures: dict[str, Any] = {
            "plain eventsourcing, commands/s": plain,
            "crud, commands/s": crud,
            "engine (group commit), commands/s": engine,
            "engine: mean commands per transaction": commands / max(batches, 1),
            **{f"{name}: process CPU per command, µs": statistics.median(v) for name, v in cpu.items()},
            "ratio engine / plain": engine / plain,
            "ratio engine / crud": engine / crud,
            "target: >= 5x plain": "met" if engine >= 5 * plain else "NOT met",
            "target: not slower than crud": "met" if engine >= crud else "NOT met",
        }
        if args.rounds > 1:
            for name, values in rates.items():
                figures[f"{name}: each round"] = " ".join(f"{v:,.0f}" for v in values)
            ratios = [e / p for e, p in zip(rates["engine"], rates["plain"], strict=True)]
            figures["ratio engine / plain: each round"] = " ".join(f"{r:.1f}" for r in ratios)
            ratios = [e / c for e, c in zip(rates["engine"], rates["crud"], strict=True)]
            figures["ratio engine / crud: each round"] = " ".join(f"{r:.2f}" for r in ratios)
        report(f"command intake ({kind}, {incidents * 6:,} commands, {args.clients} clients)", figures, args.json)


if __name__ == "__main__":
    main()
