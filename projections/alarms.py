"""The view of alarms: each alarm's latest state, per account, as supervision and the engine left it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.events import aggregate_name, event_kind
from domain.monitoring import (
    CLEARED,
    Alarm,
)
from projections.db import Transaction
from projections.tracking import Projection

log = logging.getLogger(__name__)

# -- the view of alarms ---------------------------------------------------------------------------------

VIEW_NAME = "alarms_view"
VIEW_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS view_alarms (
        alarm_id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        ci TEXT,
        check_name TEXT,
        severity TEXT,
        summary TEXT NOT NULL,
        episode INTEGER NOT NULL,
        status TEXT,
        started_at TEXT,
        last_seen TEXT,
        count INTEGER NOT NULL,
        hold_until TEXT,
        incident_id TEXT,
        cleared_at TEXT,
        source TEXT NOT NULL,
        version INTEGER NOT NULL,
        position BIGINT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS view_alarms_account_status ON view_alarms (account, status, last_seen)",
)
_VIEW_COLUMNS = (
    "alarm_id", "account", "dedup_key", "ci", "check_name", "severity", "summary", "episode", "status",
    "started_at", "last_seen", "count", "hold_until", "incident_id", "cleared_at", "source", "version", "position",
)  # fmt: skip
_VIEW_UPSERT = (
    f"INSERT INTO view_alarms ({', '.join(_VIEW_COLUMNS)}) VALUES ({', '.join('?' for _ in _VIEW_COLUMNS)})"
    " ON CONFLICT (alarm_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _VIEW_COLUMNS if c != "alarm_id")
    + " WHERE view_alarms.version < excluded.version"
)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


_ALARM = aggregate_name(Alarm)
_TRACKED = event_kind(Alarm.Tracked)
_RAISED = event_kind(Alarm.Raised)
_REPEATED = event_kind(Alarm.Repeated)
_INCIDENT_OPENED = event_kind(Alarm.IncidentOpened)
_CLEARED = event_kind(Alarm.Cleared)


class AlarmsProjection(Projection):
    """The alarms of each account, current episode first: what the supervision team and the ROC watch."""

    name = VIEW_NAME
    reads = (_ALARM,)

    def schema(self) -> Sequence[str]:
        return VIEW_SCHEMA

    def apply_events(self, tx: Transaction, envelopes: list[dict[str, Any]]) -> int:
        alarms = [(str(e["aggregate_id"]), e) for e in envelopes if e["aggregate_type"] == _ALARM]
        rows = self._rows(tx, {key for key, _ in alarms})  # one query for the batch, not one per alarm
        changed: dict[str, dict[str, Any]] = {}
        applied = 0
        for key, e in alarms:
            row = self._apply_one(key, rows.get(key), e)
            if row is not None:
                rows[key] = changed[key] = row
                applied += 1
        tx.executemany(_VIEW_UPSERT, [[r[c] for c in _VIEW_COLUMNS] for r in changed.values()])
        return applied

    @staticmethod
    def _rows(tx: Transaction, keys: set[str]) -> dict[str, dict[str, Any]]:
        """The stored rows of these alarms, 500 to a query."""
        found: dict[str, dict[str, Any]] = {}
        ordered = sorted(keys)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in tx.execute(
                f"SELECT {', '.join(_VIEW_COLUMNS)} FROM view_alarms WHERE alarm_id IN ({marks})", chunk
            ).all():
                found[row["alarm_id"]] = row
        return found

    @staticmethod
    def _apply_one(key: str, row: dict[str, Any] | None, e: dict[str, Any]) -> dict[str, Any] | None:
        have = row["version"] if row else 0
        version = int(e["aggregate_version"])
        if version <= have:
            return None
        if version != have + 1:
            log.error("alarm %s: version %s follows %s; event not applied", key, version, have)
            return None
        p = e["payload"]
        kind = str(e["event_type"]).split(".")[-1]
        at = _iso(e["occurred_at"])
        if kind == _TRACKED:
            row = {c: None for c in _VIEW_COLUMNS}
            row.update(alarm_id=key, account=p["account"], dedup_key=p["dedup_key"], summary="", episode=0, count=0)
        if row is None:
            log.error("alarm %s: %s before it was tracked; event not applied", key, kind)
            return None
        row = dict(row)
        if kind == _RAISED:
            row.update(
                episode=p["episode"], ci=p["ci"], check_name=p["check"], severity=p["severity"], summary=p["summary"],
                status="held" if p.get("hold_until") else "open", started_at=at, last_seen=at, count=1,
                hold_until=_iso(p.get("hold_until")), incident_id=None, cleared_at=None,
            )  # fmt: skip
        elif kind == _REPEATED:
            row.update(count=row["count"] + 1, last_seen=at, severity=p["severity"])
            if p.get("summary"):
                row["summary"] = p["summary"]
        elif kind == _INCIDENT_OPENED:
            row.update(status="open", incident_id=str(p["incident_id"]))
        elif kind == _CLEARED:
            row.update(status=CLEARED, cleared_at=at)
        if kind in (_TRACKED, _RAISED):
            row["source"] = e["actor"]
        row["version"] = version
        row["position"] = e["position"]
        return row

    def alarms(self, account: str, active: bool = True, limit: int = 500) -> list[dict[str, Any]]:
        """The account's alarms, the most recently seen first: the active ones (held or open), or all."""
        sql = f"SELECT {', '.join(_VIEW_COLUMNS)} FROM view_alarms WHERE account = ?"
        params: list[Any] = [account]
        if active:
            sql += " AND status IN ('held', 'open')"
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(sql + " ORDER BY last_seen DESC, dedup_key LIMIT ?", (*params, limit)).all()
        return [
            {
                "alarm_id": r["alarm_id"],
                "dedup_key": r["dedup_key"],
                "ci": r["ci"],
                "check": r["check_name"],
                "severity": r["severity"],
                "summary": r["summary"],
                "episode": r["episode"],
                "status": r["status"],
                "started_at": r["started_at"],
                "last_seen": r["last_seen"],
                "count": r["count"],
                "hold_until": r["hold_until"],
                "incident_id": r["incident_id"],
                "cleared_at": r["cleared_at"],
                "source": r["source"],
            }  # fmt: skip
            for r in rows
        ]
