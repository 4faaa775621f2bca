"""The SLA dashboard: per account, contract, priority and month; the at-risk and breach lists.

Fed by the IncidentSla events on `itil.events`. The statement arithmetic (`statement`) is a pure
function of per-clock rows, shared by the live dashboard and the what-if replay.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from domain.calendar import CalendarSpec
from domain.events import aggregate_name, event_kind
from domain.sla import IncidentSla, calendar_of
from projections.db import Transaction
from projections.tracking import Projection

NAME = "sla_dashboard"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sla_clocks (
        incident_id TEXT NOT NULL,
        metric TEXT NOT NULL,
        clock_id TEXT NOT NULL,
        account TEXT NOT NULL,
        service TEXT,
        priority INTEGER NOT NULL,
        contract_version INTEGER NOT NULL,
        logged_at TEXT NOT NULL,
        month TEXT NOT NULL,
        calendar TEXT NOT NULL,
        target_seconds BIGINT NOT NULL,
        state TEXT NOT NULL,
        elapsed_seconds DOUBLE PRECISION,
        met INTEGER,
        breached_at TEXT,
        deadline TEXT,
        deadline_us BIGINT,
        last_threshold INTEGER,
        paused_reason TEXT,
        version INTEGER NOT NULL,
        PRIMARY KEY (incident_id, metric)
    )""",
    "CREATE INDEX IF NOT EXISTS sla_clocks_account_month ON sla_clocks (account, month)",
    "CREATE INDEX IF NOT EXISTS sla_clocks_clock ON sla_clocks (clock_id)",
    "CREATE INDEX IF NOT EXISTS sla_clocks_running ON sla_clocks (state, deadline_us)",
    """CREATE TABLE IF NOT EXISTS sla_timeline (
        incident_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        position BIGINT NOT NULL,
        event_type TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        summary TEXT NOT NULL,
        PRIMARY KEY (incident_id, version)
    )""",
)
_COLUMNS = (
    "incident_id", "metric", "clock_id", "account", "service", "priority", "contract_version", "logged_at", "month",
    "calendar", "target_seconds", "state", "elapsed_seconds", "met", "breached_at", "deadline",
    "deadline_us", "last_threshold", "paused_reason", "version",
)  # fmt: skip
_UPSERT = (
    f"INSERT INTO sla_clocks ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
    " ON CONFLICT (incident_id, metric) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c not in ("incident_id", "metric"))
    + " WHERE sla_clocks.version < excluded.version"
)


_INCIDENT_SLA = aggregate_name(IncidentSla)
_CLOCKS_STARTED = event_kind(IncidentSla.ClocksStarted)
_CLOCKS_PAUSED = event_kind(IncidentSla.ClocksPaused)
_CLOCKS_RESUMED = event_kind(IncidentSla.ClocksResumed)
_CLOCK_STOPPED = event_kind(IncidentSla.ClockStopped)
_CLOCK_RESTARTED = event_kind(IncidentSla.ClockRestarted)
_RETARGETED = event_kind(IncidentSla.Retargeted)
_THRESHOLD_REACHED = event_kind(IncidentSla.ThresholdReached)
_BREACHED = event_kind(IncidentSla.Breached)
_ESCALATED = event_kind(IncidentSla.Escalated)
_CLOCKS_CANCELLED = event_kind(IncidentSla.ClocksCancelled)


def _dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _us(value: str | None) -> int | None:
    return None if not value else int(_dt(value).timestamp() * 1_000_000)


def _month_of(at: datetime, calendar: dict[str, Any]) -> str:
    return at.astimezone(ZoneInfo(calendar.get("timezone") or "Europe/Paris")).strftime("%Y-%m")


def sla_summary(envelope: dict[str, Any]) -> str:
    """How one SLA event reads in an explanation of the figures."""
    p = envelope["payload"]
    kind = envelope["event_type"].split(".")[-1]
    if kind == _CLOCKS_STARTED:
        t = p["terms"]
        targets = ", ".join(f"{m} {_human(s)}" for m, s in t["targets"].items())
        return f"Clocks started: P{t['priority']}, contract version {t['contract_version']}: {targets}"
    if kind == _CLOCKS_PAUSED:
        return f"Paused ({p['reason'].replace('_', ' ')}): {', '.join(p['metrics'])}"
    if kind == _CLOCKS_RESUMED:
        return f"Resumed ({p['reason']}): {', '.join(p['metrics'])}"
    if kind == _CLOCK_STOPPED:
        outcome = "met" if p["met"] else "missed"
        return (
            f"{p['metric'].capitalize()} clock stopped ({p['reason']}) after {_human(p['elapsed_seconds'])}: {outcome}"
        )
    if kind == _CLOCK_RESTARTED:
        return f"{p['metric'].capitalize()} clock restarted ({p['reason']})"
    if kind == _RETARGETED:
        return f"Retargeted ({p['reason']}): " + ", ".join(f"{m} {_human(s)}" for m, s in p["targets"].items())
    if kind == _THRESHOLD_REACHED:
        return f"{p['metric'].capitalize()} at {p['threshold']} % of its {_human(p['target_seconds'])} target"
    if kind == _BREACHED:
        return f"{p['metric'].capitalize()} target of {_human(p['target_seconds'])} breached"
    if kind == _ESCALATED:
        who = {"roc": "the ROC", "assignment_group": "the assignment group"}.get(p["notify"], p["notify"])
        named = f" ({p['recipient']})" if p.get("recipient") else ""
        return f"Escalated to {who}{named} at {p['threshold']} % of {p['metric']}"
    if kind == _CLOCKS_CANCELLED:
        return f"Clocks cancelled ({p['reason']})"
    return kind


def _human(seconds: float) -> str:
    seconds = int(round(float(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(p for p in parts if p) or "0 s"


def _apply(rows: dict[str, dict[str, Any]], e: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The clock rows (by metric) of one incident after one SLA event."""
    p = e["payload"]
    kind = e["event_type"].split(".")[-1]
    rows = {m: dict(r) for m, r in rows.items()}
    if kind == _CLOCKS_STARTED:
        t = p["terms"]
        at = _dt(e["occurred_at"])
        for metric, seconds in t["targets"].items():
            rows[metric] = {
                "incident_id": str(p["incident_id"]), "metric": metric, "clock_id": str(e["aggregate_id"]),
                "account": p["account"],
                "service": t.get("service"), "priority": t["priority"], "contract_version": t["contract_version"],
                "logged_at": at.isoformat(), "month": _month_of(at, t["calendar"]),
                "calendar": json.dumps(t["calendar"], sort_keys=True), "target_seconds": seconds,
                "state": "running", "elapsed_seconds": None, "met": None, "breached_at": None,
                "deadline": p["deadlines"].get(metric), "deadline_us": _us(p["deadlines"].get(metric)),
                "last_threshold": None, "paused_reason": None,
            }  # fmt: skip
    elif kind == _CLOCKS_PAUSED:
        for metric in p["metrics"]:
            rows[metric].update(state="paused", deadline=None, deadline_us=None, paused_reason=p["reason"])
    elif kind in (_CLOCKS_RESUMED, _CLOCK_RESTARTED):
        deadlines = p["deadlines"] if kind == _CLOCKS_RESUMED else {p["metric"]: p["deadline"]}
        for metric, deadline in deadlines.items():
            rows[metric].update(state="running", deadline=deadline, deadline_us=_us(deadline), paused_reason=None)
            if kind == _CLOCK_RESTARTED:
                rows[metric].update(met=None, elapsed_seconds=None)
    elif kind == _CLOCK_STOPPED:
        rows[p["metric"]].update(
            state="stopped", elapsed_seconds=p["elapsed_seconds"], met=1 if p["met"] else 0,
            deadline=None, deadline_us=None, paused_reason=None,
        )  # fmt: skip
    elif kind == _RETARGETED:
        for metric, row in rows.items():
            row["priority"] = p["priority"]
            if metric in p["targets"]:
                row["target_seconds"] = p["targets"][metric]
            if metric in p["deadlines"]:
                row.update(deadline=p["deadlines"][metric], deadline_us=_us(p["deadlines"][metric]))
    elif kind == _THRESHOLD_REACHED:
        rows[p["metric"]]["last_threshold"] = p["threshold"]
    elif kind == _BREACHED:
        rows[p["metric"]].update(breached_at=_dt(e["occurred_at"]).isoformat(), last_threshold=100)
    elif kind == _CLOCKS_CANCELLED:
        for row in rows.values():
            row.update(state="cancelled", deadline=None, deadline_us=None)
    for row in rows.values():
        row["version"] = e["aggregate_version"]
    return rows


def statement(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per contract version, priority and metric: counted, met, breached, compliance, means, worst."""
    groups: dict[tuple[int, int, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["state"] == "cancelled":
            continue
        groups.setdefault((r["contract_version"], r["priority"], r["metric"]), []).append(r)
    out = []
    for (version, priority, metric), members in sorted(groups.items()):
        breached = [r for r in members if r["breached_at"] or r["met"] == 0]
        met = [r for r in members if r["met"] == 1 and not r["breached_at"]]
        stopped = [r for r in members if r["state"] == "stopped"]
        decided = len(met) + len(breached)
        worst = sorted(
            (r for r in stopped if r["elapsed_seconds"] is not None),
            key=lambda r: r["elapsed_seconds"] / r["target_seconds"],
            reverse=True,
        )[:3]
        out.append(
            {
                "contract_version": version,
                "priority": f"P{priority}",
                "metric": metric,
                "target_seconds": members[0]["target_seconds"],
                "counted": len(members),
                "met": len(met),
                "breached": len(breached),
                "open": len(members) - decided,
                "compliance_percent": round(100 * len(met) / decided, 2) if decided else None,
                "mean_elapsed_seconds": (
                    round(sum(r["elapsed_seconds"] for r in stopped) / len(stopped), 1) if stopped else None
                ),
                "worst": [
                    {
                        "incident_id": r["incident_id"],
                        "elapsed_seconds": r["elapsed_seconds"],
                        "target_seconds": r["target_seconds"],
                    }
                    for r in worst
                ],  # fmt: skip
            }
        )
    return out


class SlaDashboardProjection(Projection):
    """Maintains the SLA clock rows and their explanations; answers the dashboard queries."""

    name = NAME
    reads = (_INCIDENT_SLA,)

    def schema(self) -> Sequence[str]:
        return SCHEMA

    def apply_events(self, tx: Transaction, envelopes: list[dict[str, Any]]) -> int:
        events = [(str(e["aggregate_id"]), e) for e in envelopes if e["aggregate_type"] == _INCIDENT_SLA]
        cache: dict[str, dict[str, dict[str, Any]]] = {clock: {} for clock, _e in events}
        clocks = list(cache)
        for start in range(0, len(clocks), 500):  # one query per 500 clocks, not one each
            chunk = clocks[start : start + 500]
            found = tx.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM sla_clocks WHERE clock_id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            ).all()
            for r in found:
                cache[r["clock_id"]][r["metric"]] = r
        changed: dict[str, None] = {}
        timeline: list[tuple[Any, ...]] = []
        for clock, e in events:
            rows = cache[clock]
            have = next(iter(rows.values()))["version"] if rows else 0
            if e["aggregate_version"] != have + 1:
                continue  # already applied (or, impossible in partition order, a gap: never guess)
            rows = cache[clock] = _apply(rows, e)
            for row in rows.values():
                row["clock_id"] = clock
            incident = next(iter(rows.values()))["incident_id"]
            timeline.append(
                (incident, e["aggregate_version"], e["position"], e["event_type"],
                 _dt(e["occurred_at"]).isoformat(), sla_summary(e))
            )  # fmt: skip
            changed[clock] = None
        tx.insert_many(_UPSERT, [[r[c] for c in _COLUMNS] for clock in changed for r in cache[clock].values()])
        tx.insert_many(
            "INSERT INTO sla_timeline (incident_id, version, position, event_type, occurred_at, summary)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id, version) DO NOTHING",
            timeline,
        )
        return len(timeline)

    # -- queries -------------------------------------------------------------------

    def rows(self, account: str, month: str) -> list[dict[str, Any]]:
        with self.db.transaction(write=False) as tx:
            return tx.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM sla_clocks WHERE account = ? AND month = ?"
                " ORDER BY logged_at, incident_id, metric",
                (account, month),
            ).all()

    def dashboard(self, account: str, month: str) -> dict[str, Any]:
        """The month's figures, aggregated by the database (the same figures `statement` computes)."""
        live = "state <> 'cancelled'"
        with self.db.transaction(write=False) as tx:
            groups = tx.execute(
                "SELECT contract_version, priority, metric, MIN(target_seconds) AS target_seconds,"
                " COUNT(*) AS counted,"
                " SUM(CASE WHEN met = 1 AND breached_at IS NULL THEN 1 ELSE 0 END) AS met,"
                " SUM(CASE WHEN breached_at IS NOT NULL OR met = 0 THEN 1 ELSE 0 END) AS breached,"
                " AVG(CASE WHEN state = 'stopped' THEN elapsed_seconds END) AS mean_elapsed"
                f" FROM sla_clocks WHERE account = ? AND month = ? AND {live}"
                " GROUP BY contract_version, priority, metric ORDER BY contract_version, priority, metric",
                (account, month),
            ).all()
            worst = tx.execute(
                "SELECT contract_version, priority, metric, incident_id, elapsed_seconds, target_seconds FROM ("
                " SELECT contract_version, priority, metric, incident_id, elapsed_seconds, target_seconds,"
                " ROW_NUMBER() OVER (PARTITION BY contract_version, priority, metric"
                "  ORDER BY elapsed_seconds * 1.0 / target_seconds DESC) AS rank"
                f" FROM sla_clocks WHERE account = ? AND month = ? AND {live}"
                "  AND state = 'stopped' AND elapsed_seconds IS NOT NULL) ranked WHERE rank <= 3"
                " ORDER BY contract_version, priority, metric, rank",
                (account, month),
            ).all()
        worst_of: dict[tuple[int, int, str], list[dict[str, Any]]] = {}
        for w in worst:
            worst_of.setdefault((w["contract_version"], w["priority"], w["metric"]), []).append(
                {"incident_id": w["incident_id"], "elapsed_seconds": w["elapsed_seconds"],
                 "target_seconds": w["target_seconds"]}
            )  # fmt: skip
        figures = []
        for g in groups:
            decided = g["met"] + g["breached"]
            mean = g["mean_elapsed"]
            figures.append(
                {
                    "contract_version": g["contract_version"],
                    "priority": f"P{g['priority']}",
                    "metric": g["metric"],
                    "target_seconds": g["target_seconds"],
                    "counted": g["counted"],
                    "met": g["met"],
                    "breached": g["breached"],
                    "open": g["counted"] - decided,
                    "compliance_percent": round(100 * g["met"] / decided, 2) if decided else None,
                    "mean_elapsed_seconds": round(float(mean), 1) if mean is not None else None,
                    "worst": worst_of.get((g["contract_version"], g["priority"], g["metric"]), []),
                }
            )
        return {"account": account, "month": month, "figures": figures}

    def monthly_statement(self, account: str, month: str) -> dict[str, Any]:
        rows = self.rows(account, month)
        incidents: dict[str, dict[str, Any]] = {}
        for r in rows:
            entry = incidents.setdefault(
                r["incident_id"],
                {"incident_id": r["incident_id"], "priority": f"P{r['priority']}", "logged_at": r["logged_at"],
                 "contract_version": r["contract_version"], "clocks": {}},
            )  # fmt: skip
            entry["clocks"][r["metric"]] = _clock(r)
        return {
            "account": account,
            "month": month,
            "figures": statement(rows),
            "incidents": list(incidents.values()),
        }

    def at_risk(self, now: datetime, account: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Running clocks, soonest breach first, with the covered time left before it."""
        sql = (
            "SELECT c.*, v.title, v.status, v.assignee, v.assignment_group FROM sla_clocks c"
            " LEFT JOIN view_incidents v ON v.incident_id = c.incident_id"
            " WHERE c.state = 'running' AND c.breached_at IS NULL"
        )
        params: list[Any] = []
        if account:
            sql += " AND c.account = ?"
            params.append(account)
        sql += " ORDER BY c.deadline_us LIMIT ?"
        params.append(limit)
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(sql, params).all()
        out = []
        for r in rows:
            deadline = _dt(r["deadline"])
            calendar = calendar_of(CalendarSpec.from_dict(json.loads(r["calendar"])))
            left = calendar.measure(now, deadline).total_seconds() if deadline > now else 0.0
            out.append(
                {**_clock(r), "incident_id": r["incident_id"], "account": r["account"], "metric": r["metric"],
                 "priority": f"P{r['priority']}", "title": r.get("title"), "status": r.get("status"),
                 "assignee": r.get("assignee"), "assignment_group": r.get("assignment_group"),
                 "time_left_seconds": left, "time_left": _human(left)}
            )  # fmt: skip
        return out

    def breaches(self, account: str, month: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM sla_clocks WHERE account = ? AND breached_at IS NOT NULL AND state <> 'cancelled'"
        params: list[Any] = [account]
        if month:
            sql += " AND month = ?"
            params.append(month)
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(sql + " ORDER BY breached_at", params).all()
        return [
            {**_clock(r), "incident_id": r["incident_id"], "metric": r["metric"], "priority": f"P{r['priority']}"}
            for r in rows
        ]

    def explanation(self, incident_id: str) -> list[dict[str, Any]]:
        with self.db.transaction(write=False) as tx:
            return tx.execute(
                "SELECT version, position, event_type, occurred_at, summary FROM sla_timeline"
                " WHERE incident_id = ? ORDER BY version",
                (incident_id,),
            ).all()


def _clock(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": r["state"],
        "target_seconds": r["target_seconds"],
        "elapsed_seconds": r["elapsed_seconds"],
        "met": None if r["met"] is None else bool(r["met"]),
        "breached_at": r["breached_at"],
        "deadline": r["deadline"],
        "last_threshold": r["last_threshold"],
        "paused_reason": r["paused_reason"],
    }
