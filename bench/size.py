"""Size: 100,000 open incidents with their SLA clocks.

Stores N open incidents (50 accounts) with their SLA clocks, lets a real worker (`itil worker`,
embedded broker, relay) build the views from the stream, then measures:
  worker memory   resident size of the worker once it has applied everything (target < 500 MB),
                  beside its size when it had just joined (baseline, same run);
  queries         account view (its first page, as the API serves it), SLA at-risk list and SLA
                  dashboard of one account, p99 over
                  random accounts (target < 50 ms), beside `SELECT 1` (baseline, same run).

    .venv/bin/python -m bench.size [--incidents 100000] [--quick]
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from application.app import ItilApplication
from bench.common import T0, arguments, report
from domain.contract import standard_terms
from domain.incident import Incident
from domain.sla import IncidentSla
from projections.account_incidents import AccountIncidentsProjection
from projections.db import Database
from projections.sla import SlaDashboardProjection
from streams.broker import EmbeddedBroker
from streams.relay import Relay

ACCOUNTS = 50


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fill(app: ItilApplication, incidents: int) -> None:
    terms = {p: standard_terms().targets[p] for p in (1, 2, 3, 4)}
    for start in range(0, incidents, 1000):
        batch = []
        for n in range(start, min(incidents, start + 1000)):
            at = T0 + timedelta(seconds=n * 7)
            incident = Incident.log(id=uuid.UUID(int=n + 1), account=f"account-{n % ACCOUNTS}", title=f"site {n} down",
                                    impact=1 + n % 3, urgency=1 + (n // 3) % 3, channel="monitoring",
                                    reporter="nagios", actor="nagios", at=at, ci=f"site-{n}")  # fmt: skip
            from domain.contract import SlaTerms

            sla = IncidentSla.start(
                incident_id=incident.id, account=incident.account,
                terms=SlaTerms(contract_version=1, service=None, priority=incident.priority,
                               targets=terms[incident.priority], calendar=standard_terms().calendar),
                at=at,
            )  # fmt: skip
            batch += [incident, sla]
        app.save(*batch)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    args = arguments(__doc__ or "", incidents=(int, 100_000, "open incidents"))
    incidents = 2_000 if args.quick else args.incidents
    with tempfile.TemporaryDirectory() as directory, EmbeddedBroker(log_file=Path(directory) / "broker.log") as broker:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(Path(directory) / "itil.sqlite")}
        app = ItilApplication(env=env)
        db = Database.from_store_env(env)
        began = time.perf_counter()
        fill(app, incidents)
        fill_seconds = time.perf_counter() - began
        relay = Relay(app, db, broker.bootstrap, "itil.events", 4)
        stop = threading.Event()
        threading.Thread(target=relay.run, args=(stop,), daemon=True).start()

        worker_env = {**os.environ, **env, "ITIL_DATA_DIR": directory, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}
        log = open(Path(directory) / "worker.log", "wb")  # noqa: SIM115
        worker = subprocess.Popen([sys.executable, "-m", "itil.cli", "--loglevel", "warn", "worker"], env=worker_env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            time.sleep(3)
            joined_mb = rss_mb(worker.pid)
            view = sqlite3.connect(env["SQLITE_DBNAME"], timeout=30)
            began = time.perf_counter()
            while True:
                try:
                    have = view.execute("SELECT COUNT(*) FROM sla_clocks WHERE metric = 'restoration'").fetchone()[0]
                    rows = view.execute("SELECT COUNT(*) FROM view_incidents").fetchone()[0]
                except sqlite3.OperationalError:  # the worker has not made its tables yet
                    have = rows = 0
                if have >= incidents and rows >= incidents:
                    break
                if time.perf_counter() - began > 1800:
                    raise TimeoutError(f"views incomplete: {rows} incidents, {have} clocks")
                time.sleep(1)
            stream_seconds = time.perf_counter() - began
            worker_mb = rss_mb(worker.pid)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
            stop.set()
            log.close()

        accounts = AccountIncidentsProjection(db)
        sla = SlaDashboardProjection(db)
        now = datetime.now(timezone.utc)
        month = (T0 + timedelta(seconds=incidents * 7 // 2)).strftime("%Y-%m")
        timings: dict[str, list[float]] = {"select 1": [], "account view": [], "at-risk": [], "dashboard": []}
        rng = random.Random(7)

        def select_one() -> None:
            with db.transaction(write=False) as tx:
                tx.execute("SELECT 1").one()

        for _ in range(100 if args.quick else 300):
            account = f"account-{rng.randrange(ACCOUNTS)}"
            for name, query in (
                ("select 1", select_one),
                ("account view", lambda a=account: accounts.account_incidents(a, now, limit=200)),
                ("at-risk", lambda a=account: sla.at_risk(now, a, limit=50)),
                ("dashboard", lambda a=account: sla.dashboard(a, month)),
            ):
                t = time.perf_counter()
                query()
                timings[name].append((time.perf_counter() - t) * 1000)
        figures: dict[str, object] = {
            "store fill (incidents + clocks), s": fill_seconds,
            "stream to views (relay + worker), s": stream_seconds,
            "worker memory just joined (baseline), MB": joined_mb,
            "worker memory with everything applied, MB": worker_mb,
            "target: worker < 500 MB": "met" if worker_mb < 500 else "NOT met",
        }
        for name, values in timings.items():
            figures[f"{name}: p50 ms"] = percentile(values, 50)
            figures[f"{name}: p99 ms"] = percentile(values, 99)
        worst = max(percentile(timings[k], 99) for k in ("account view", "at-risk", "dashboard"))
        figures["target: queries p99 < 50 ms"] = "met" if worst < 50 else "NOT met"
        report(f"size ({incidents:,} open incidents, {ACCOUNTS} accounts, SQLite)", figures, args.json)


if __name__ == "__main__":
    main()
