"""Shared helpers of the benchmarks: temporary stores, quick story generation, reporting."""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from domain.incident import Incident

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
PG: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def arguments(description: str, **extra: Any) -> argparse.Namespace:
    """The benchmark's command line. A SIGTERM (`timeout`, a CI job cancelled) ends the benchmark as an
    exception would, so the engine it started is stopped and its temporary files removed."""
    signal.signal(signal.SIGTERM, _terminated)
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a small size for smoke tests (figures meaningless)")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object too")
    for name, (kind, default, help_text) in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default, help=help_text)
    return parser.parse_args()


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def stores(choice: str) -> list[str]:
    return ["sqlite", "postgres"] if choice == "both" else [choice]


@contextmanager
def store_env(kind: str) -> Iterator[dict[str, str]]:
    """A fresh, empty store of this kind, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(Path(directory) / "bench.sqlite")}
        return
    import psycopg

    name = f"itil_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": name, "POSTGRES_HOST": PG["host"],
            "POSTGRES_PORT": str(PG["port"]), "POSTGRES_USER": PG["user"], "POSTGRES_PASSWORD": "",
        }  # fmt: skip
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def lifecycle(n: int, accounts: int = 50) -> Incident:
    """One incident's whole life in memory: logged, acknowledged, assigned, restored, resolved, closed."""
    at = T0 + timedelta(seconds=n)
    incident = Incident.log(
        id=uuid.UUID(int=n + 1), account=f"account-{n % accounts}", title=f"incident {n}", impact=1 + n % 3,
        urgency=1 + (n // 3) % 3, channel="monitoring", reporter="nagios", actor="nagios", at=at, ci=f"ci-{n}",
    )  # fmt: skip
    incident.acknowledge(actor="n1", at=at + timedelta(minutes=1))
    incident.assign(group="N2 network", assignee="eve", actor="n1", at=at + timedelta(minutes=2))
    incident.restore(actor="eve", at=at + timedelta(minutes=30))
    incident.resolve(code="fixed", actor="eve", at=at + timedelta(minutes=40))
    incident.close(actor="n1", at=at + timedelta(hours=1))
    return incident


def report(name: str, figures: dict[str, Any], as_json: bool) -> None:
    print(f"== {name}")
    for key, value in figures.items():
        print(f"  {key:<42} {value:,.1f}" if isinstance(value, float) else f"  {key:<42} {value}")
    if as_json:
        print(json.dumps({"benchmark": name, **figures}))


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - began


def cpu_count() -> int:
    return os.cpu_count() or 1
