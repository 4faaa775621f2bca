"""The account view of incidents: per account, open incidents; per incident, its detail and timeline."""

from __future__ import annotations

import json
import logging
import operator
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from domain.events import aggregate_name, event_kind
from domain.incident import Incident
from projections.db import Transaction
from projections.tracking import Delivery, PartitionGap, Projection

log = logging.getLogger(__name__)

NAME = "account_incidents"
OPEN_STATUSES = ("new", "acknowledged", "assigned", "on_hold", "restored")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS view_incidents (
        incident_id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        title TEXT NOT NULL,
        service TEXT,
        ci TEXT,
        channel TEXT NOT NULL,
        reporter TEXT NOT NULL,
        impact INTEGER NOT NULL,
        urgency INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        status TEXT NOT NULL,
        status_before_hold TEXT,
        hold_reason TEXT,
        assignment_group TEXT,
        assignee TEXT,
        logged_at TEXT NOT NULL,
        acknowledged_at TEXT,
        restored_at TEXT,
        resolved_at TEXT,
        resolution_code TEXT,
        closed_at TEXT,
        cancelled_at TEXT,
        category TEXT,
        related_incident TEXT,
        is_major INTEGER NOT NULL,
        escalation_level TEXT,
        parent_id TEXT,
        children TEXT NOT NULL,
        problem_ids TEXT NOT NULL,
        workaround TEXT,
        updated_at TEXT NOT NULL,
        version INTEGER NOT NULL,
        position BIGINT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS view_incidents_account_status ON view_incidents (account, status)",
    """CREATE TABLE IF NOT EXISTS view_incident_timeline (
        incident_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        position BIGINT NOT NULL,
        event_type TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        actor TEXT NOT NULL,
        summary TEXT NOT NULL,
        details TEXT NOT NULL,
        PRIMARY KEY (incident_id, version)
    )""",
)

_COLUMNS = (
    "incident_id", "account", "title", "service", "ci", "channel", "reporter", "impact",
    "urgency", "priority", "status", "status_before_hold", "hold_reason", "assignment_group",
    "assignee", "logged_at", "acknowledged_at", "restored_at", "resolved_at", "resolution_code",
    "closed_at", "cancelled_at", "category", "related_incident", "is_major", "escalation_level",
    "parent_id", "children", "problem_ids", "workaround", "updated_at", "version", "position",
)  # fmt: skip
"""`children` and `problem_ids` hold JSON lists of ids; `is_major` is 0 or 1."""
_UPSERT = (
    f"INSERT INTO view_incidents ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
    " ON CONFLICT (incident_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "incident_id")
    + " WHERE view_incidents.version < excluded.version"
)
_DETAIL_EXTRAS = (
    "account", "channel", "reporter", "impact", "urgency", "acknowledged_at", "resolved_at",
    "resolution_code", "closed_at", "cancelled_at", "updated_at", "related_incident", "escalation_level",
    "workaround",
)  # fmt: skip
PRIORITY_NAMES = {1: "critical", 2: "high", 3: "medium", 4: "low"}
ESCALATION_NAMES = {"roc": "the ROC", "management": "management"}

_INCIDENT = aggregate_name(Incident)
_LOGGED = event_kind(Incident.Logged)
_ACKNOWLEDGED = event_kind(Incident.Acknowledged)
_REPRIORITISED = event_kind(Incident.Reprioritised)
_ASSIGNED = event_kind(Incident.Assigned)
_PUT_ON_HOLD = event_kind(Incident.PutOnHold)
_RESUMED = event_kind(Incident.Resumed)
_SERVICE_RESTORED = event_kind(Incident.ServiceRestored)
_RESOLVED = event_kind(Incident.Resolved)
_REOPENED = event_kind(Incident.Reopened)
_CLOSED = event_kind(Incident.Closed)
_CANCELLED = event_kind(Incident.Cancelled)
_CATEGORISED = event_kind(Incident.Categorised)
_FUNCTIONALLY_ESCALATED = event_kind(Incident.FunctionallyEscalated)
_HIERARCHICALLY_ESCALATED = event_kind(Incident.HierarchicallyEscalated)
_MAJOR_INCIDENT_DECLARED = event_kind(Incident.MajorIncidentDeclared)
_CHILD_ATTACHED = event_kind(Incident.ChildAttached)
_ATTACHED_TO_PARENT = event_kind(Incident.AttachedToParent)
_PROBLEM_LINKED = event_kind(Incident.ProblemLinked)
_PROBLEM_UNLINKED = event_kind(Incident.ProblemUnlinked)
_WORKAROUND_NOTED = event_kind(Incident.WorkaroundNoted)
_COMMENTED = event_kind(Incident.Commented)


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


COMMENT_SHOWN = 200
"""How much of a comment its timeline summary shows; the details hold all of it."""


def _comment(p: dict[str, Any]) -> str:
    kind = "Comment (customer-visible)" if p["customer_visible"] else "Work note"
    text = p["text"] if len(p["text"]) <= COMMENT_SHOWN else p["text"][: COMMENT_SHOWN - 1] + "…"
    return f"{kind} by {p['author']}: {text}"


_SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    _LOGGED: lambda p: (
        f"Logged via {p['channel']} by {p['reporter']}: P{p['priority']}"
        f" {PRIORITY_NAMES.get(p['priority'], '')} (impact {p['impact']}, urgency {p['urgency']})"
        + (f", category {p['category']}" if p.get("category") else "")
        + (f", follows up incident {p['related_incident']}" if p.get("related_incident") else "")
    ),
    _ACKNOWLEDGED: lambda p: "Acknowledged",
    _REPRIORITISED: lambda p: (
        f"Priority P{p['previous_priority']} -> P{p['priority']} (impact {p['impact']}, urgency {p['urgency']})"
    ),
    _ASSIGNED: lambda p: f"Assigned to {p['group']}" + (f" ({p['assignee']})" if p.get("assignee") else ""),
    _PUT_ON_HOLD: lambda p: (
        f"Put on hold: {p['reason'].replace('_', ' ')}" + (f" ({p['note']})" if p.get("note") else "")
    ),
    _RESUMED: lambda p: "Resumed",
    _SERVICE_RESTORED: lambda p: "Service restored" + (f": {p['note']}" if p.get("note") else ""),
    _RESOLVED: lambda p: f"Resolved ({p['code'].replace('_', ' ')})" + (f": {p['notes']}" if p.get("notes") else ""),
    _REOPENED: lambda p: f"Reopened: {p['reason']}",
    _CLOSED: lambda p: "Closed",
    _CANCELLED: lambda p: f"Cancelled: {p['reason']}",
    _CATEGORISED: lambda p: (
        f"Categorised as {p['category']}" + (f" (was {p['previous_category']})" if p.get("previous_category") else "")
    ),
    _FUNCTIONALLY_ESCALATED: lambda p: f"Escalated from {p['from_group']} to {p['to_group']}: {p['reason']}",
    _HIERARCHICALLY_ESCALATED: lambda p: f"Escalated to {ESCALATION_NAMES.get(p['level'], p['level'])}: {p['reason']}",
    _MAJOR_INCIDENT_DECLARED: lambda p: f"Declared a major incident: {p['reason']}",
    _CHILD_ATTACHED: lambda p: f"Incident {p['child_id']} attached as a child of this one",
    _ATTACHED_TO_PARENT: lambda p: f"Attached to parent incident {p['parent_id']}",
    _PROBLEM_LINKED: lambda p: f"Linked to problem {p['problem_id']}",
    _PROBLEM_UNLINKED: lambda p: f"Unlinked from problem {p['problem_id']}",
    _WORKAROUND_NOTED: lambda p: f"Workaround from problem {p['problem_id']}: {p['workaround']}",
    _COMMENTED: _comment,
}


def timeline_entry(envelope: dict[str, Any]) -> dict[str, Any]:
    """How one event reads in an incident's timeline."""
    p = envelope["payload"]
    kind = envelope["event_type"].rsplit(".", 1)[-1]
    summarise = _SUMMARIES.get(kind)
    summary = summarise(p) if summarise is not None else kind
    return {
        "version": envelope["aggregate_version"],
        "position": envelope["position"],
        "event_type": envelope["event_type"],
        "occurred_at": _iso(envelope["occurred_at"]),
        "actor": envelope["actor"],
        "summary": summary,
        "details": p,
    }


_DETAILS = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
"""The timeline's details: the payload as published (keys sorted), whether it came off the
broker or straight from the store; one encoder for all (`json.dumps` with options builds one a call)."""


def _no_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_details_c = (
    _make_encoder(None, _no_default, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True)
    if _make_encoder is not None
    else None
)


def _details(payload: dict[str, Any]) -> str:
    """`_DETAILS.encode(payload)`, from the C encoder made once (`encode` makes one a call);
    payloads are JSON-ready trees, so no circular-reference bookkeeping."""
    return "".join(_details_c(payload, 0)) if _details_c is not None else _DETAILS.encode(payload)


_row_values = operator.itemgetter(*_COLUMNS)


def _timeline_row(incident_id: str, e: dict[str, Any]) -> tuple[Any, ...]:
    """`timeline_entry` as the timeline table's row."""
    p = e["payload"]
    event_type = e["event_type"]
    summarise = _SUMMARIES.get(event_type.rpartition(".")[2])
    return (
        incident_id, e["aggregate_version"], e["position"], event_type, _iso(e["occurred_at"]), e["actor"],
        summarise(p) if summarise is not None else event_type.rpartition(".")[2], _details(p),
    )  # fmt: skip


def _apply(row: dict[str, Any] | None, e: dict[str, Any]) -> dict[str, Any]:
    """The incident's row after one event (the view's copy of the aggregate's rules)."""
    return _apply_in_place(None if row is None else dict(row), e)


_EMPTY_ROW = dict.fromkeys(_COLUMNS)


def _apply_in_place(row: dict[str, Any] | None, e: dict[str, Any]) -> dict[str, Any]:
    """`_apply`, changing `row` itself (a row the caller owns: no copy per event)."""
    p = e["payload"]
    kind = e["event_type"].rpartition(".")[2]
    at = _iso(e["occurred_at"])
    if kind == _LOGGED:
        row = _EMPTY_ROW.copy()
        row.update(
            incident_id=str(e["aggregate_id"]), account=p["account"], title=p["title"],
            service=p.get("service"), ci=p.get("ci"), channel=p["channel"],
            reporter=p["reporter"], impact=p["impact"], urgency=p["urgency"],
            priority=p["priority"], status="new", logged_at=at, category=p.get("category"),
            related_incident=p.get("related_incident"), is_major=0, children="[]", problem_ids="[]",
        )  # fmt: skip
    assert row is not None
    if kind == _ACKNOWLEDGED:
        row["acknowledged_at"] = at
        if row["status"] == "new":
            row["status"] = "acknowledged"
        elif row["status"] == "on_hold" and row["status_before_hold"] == "new":
            row["status_before_hold"] = "acknowledged"
    elif kind == _REPRIORITISED:
        row["impact"], row["urgency"], row["priority"] = p["impact"], p["urgency"], p["priority"]
    elif kind in (_ASSIGNED, _FUNCTIONALLY_ESCALATED):
        if kind == _ASSIGNED:
            row["assignment_group"], row["assignee"] = p["group"], p.get("assignee")
        else:
            row["assignment_group"], row["assignee"] = p["to_group"], None
        if row["status"] in ("new", "acknowledged"):
            row["status"] = "assigned"
        elif row["status"] == "on_hold" and row["status_before_hold"] in ("new", "acknowledged"):
            row["status_before_hold"] = "assigned"
    elif kind == _PUT_ON_HOLD:
        row["status_before_hold"], row["status"] = row["status"], "on_hold"
        row["hold_reason"] = p["reason"]
    elif kind == _RESUMED:
        row["status"] = row["status_before_hold"] or "acknowledged"
        row["status_before_hold"] = row["hold_reason"] = None
    elif kind == _SERVICE_RESTORED:
        row["restored_at"], row["status"] = at, "restored"
        row["status_before_hold"] = row["hold_reason"] = None
    elif kind == _RESOLVED:
        row["resolved_at"], row["resolution_code"], row["status"] = at, p["code"], "resolved"
        row["status_before_hold"] = row["hold_reason"] = None
    elif kind == _REOPENED:
        row["restored_at"] = row["resolved_at"] = row["resolution_code"] = None
        row["status"] = "assigned" if row["assignment_group"] else "acknowledged" if row["acknowledged_at"] else "new"
    elif kind == _CLOSED:
        row["closed_at"], row["status"] = at, "closed"
    elif kind == _CANCELLED:
        row["cancelled_at"], row["status"] = at, "cancelled"
        row["status_before_hold"] = row["hold_reason"] = None
    elif kind == _CATEGORISED:
        row["category"] = p["category"]
    elif kind == _HIERARCHICALLY_ESCALATED:
        row["escalation_level"] = p["level"]
    elif kind == _MAJOR_INCIDENT_DECLARED:
        row["is_major"] = 1
    elif kind == _CHILD_ATTACHED:
        row["children"] = json.dumps([*json.loads(row["children"]), p["child_id"]])
    elif kind == _ATTACHED_TO_PARENT:
        row["parent_id"] = p["parent_id"]
    elif kind == _PROBLEM_LINKED:
        row["problem_ids"] = json.dumps([*json.loads(row["problem_ids"]), p["problem_id"]])
    elif kind == _PROBLEM_UNLINKED:
        row["problem_ids"] = json.dumps([i for i in json.loads(row["problem_ids"]) if i != p["problem_id"]])
    elif kind == _WORKAROUND_NOTED:
        row["workaround"] = p["workaround"]
    row["updated_at"] = at
    row["version"] = e["aggregate_version"]
    row["position"] = e["position"]
    return row


class AccountIncidentsProjection(Projection):
    """Maintains the account view from `itil.events`; owns its tables and their queries."""

    name = NAME
    reads = (_INCIDENT,)

    def schema(self) -> Sequence[str]:
        return SCHEMA

    def apply_events(self, tx: Transaction, envelopes: list[dict[str, Any]]) -> int:
        """Rows are read 500 incidents to a query, changed in memory (each row a dict of its own,
        changed in place), and written with two `insert_many`s: one upsert per incident, one
        timeline row per event, the details as sorted-key JSON as the published payload is."""
        events = [(str(e["aggregate_id"]), e) for e in envelopes if e["aggregate_type"] == _INCIDENT]
        rows: dict[str, dict[str, Any] | None] = dict.fromkeys(i for i, _e in events)
        ids = list(rows)
        for start in range(0, len(ids), 500):  # one query per 500 incidents, not one each
            chunk = ids[start : start + 500]
            found = tx.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM view_incidents"
                f" WHERE incident_id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            ).all()
            rows.update({r["incident_id"]: r for r in found})
        changed: dict[str, dict[str, Any]] = {}
        timeline: list[tuple[Any, ...]] = []
        for incident_id, e in events:
            row = rows[incident_id]
            have = row["version"] if row else 0
            version = e["aggregate_version"]
            if version <= have:
                continue
            if version != have + 1:
                # Cannot happen while partitions are read in order; never guess, log loudly.
                log.error("incident %s: version %s follows %s; event not applied", incident_id, version, have)
                continue
            rows[incident_id] = changed[incident_id] = _apply_in_place(row, e)
            timeline.append(_timeline_row(incident_id, e))
        tx.insert_many(_UPSERT, [_row_values(row) for row in changed.values()])
        tx.insert_many(
            "INSERT INTO view_incident_timeline (incident_id, version, position, event_type,"
            " occurred_at, actor, summary, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (incident_id, version) DO NOTHING",
            timeline,
        )
        return len(timeline)

    # -- reading ------------------------------------------------------------------

    def account_incidents(
        self, account: str, now: datetime, include_closed: bool = False, limit: int | None = None, offset: int = 0
    ) -> dict[str, Any]:
        """One account's incidents: open ones first by priority, with age and assignee; a page of them."""
        sql = "SELECT * FROM view_incidents WHERE account = ?"
        params: list[Any] = [account]
        if not include_closed:
            sql += f" AND status IN ({', '.join('?' for _ in OPEN_STATUSES)})"
            params += OPEN_STATUSES
        sql += " ORDER BY priority, logged_at, incident_id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(sql, params).all()
            major = tx.execute(
                f"SELECT COUNT(*) AS n FROM view_incidents WHERE account = ? AND is_major = 1"
                f" AND status IN ({', '.join('?' for _ in OPEN_STATUSES)})",
                (account, *OPEN_STATUSES),
            ).one()
            counts = tx.execute(
                "SELECT status, priority, COUNT(*) AS n FROM view_incidents WHERE account = ?"
                " GROUP BY status, priority",
                (account,),
            ).all()
        by_status: dict[str, int] = {}
        open_by_priority: dict[str, int] = {}
        for c in counts:
            by_status[c["status"]] = by_status.get(c["status"], 0) + c["n"]
            if c["status"] in OPEN_STATUSES:
                key = f"P{c['priority']}"
                open_by_priority[key] = open_by_priority.get(key, 0) + c["n"]
        return {
            "account": account,
            "as_of": now.isoformat(),
            "incidents": [_listing(r, now) for r in rows],
            "total": sum(n for status, n in by_status.items() if include_closed or status in OPEN_STATUSES),
            "offset": offset,
            "major_open": major["n"] if major else 0,
            "open_by_priority": open_by_priority,
            "by_status": by_status,
        }

    def incident_detail(self, incident_id: str, now: datetime) -> dict[str, Any] | None:
        with self.db.transaction(write=False) as tx:
            row = tx.execute("SELECT * FROM view_incidents WHERE incident_id = ?", (incident_id,)).one()
            if row is None:
                return None
            entries = tx.execute(
                "SELECT version, position, event_type, occurred_at, actor, summary, details"
                " FROM view_incident_timeline WHERE incident_id = ? ORDER BY version",
                (incident_id,),
            ).all()
        detail = _listing(row, now)
        for extra in _DETAIL_EXTRAS:
            detail[extra] = row[extra]
        detail["children"] = json.loads(row["children"])
        detail["timeline"] = [dict(e, details=json.loads(e["details"])) for e in entries]
        return detail

    def account_of(self, incident_id: str) -> str | None:
        with self.db.transaction(write=False) as tx:
            row = tx.execute("SELECT account FROM view_incidents WHERE incident_id = ?", (incident_id,)).one()
        return None if row is None else str(row["account"])


def _listing(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    logged = datetime.fromisoformat(row["logged_at"])
    end = row["closed_at"] or row["cancelled_at"] or row["resolved_at"]
    age_until = datetime.fromisoformat(end) if end else now
    return {
        "id": row["incident_id"],
        "title": row["title"],
        "priority": f"P{row['priority']}",
        "priority_name": PRIORITY_NAMES.get(row["priority"], ""),
        "status": row["status"],
        "hold_reason": row["hold_reason"],
        "age_seconds": max(0, int((age_until - logged).total_seconds())),
        "assignment_group": row["assignment_group"],
        "assignee": row["assignee"],
        "service": row["service"],
        "ci": row["ci"],
        "logged_at": row["logged_at"],
        "restored_at": row["restored_at"],
        "category": row["category"],
        "is_major": bool(row["is_major"]),
        "parent_id": row["parent_id"],
        "children_count": len(json.loads(row["children"])),
        "problem_ids": json.loads(row["problem_ids"]),
        "has_workaround": row["workaround"] is not None,
        "version": row["version"],
    }


__all__ = ["AccountIncidentsProjection", "Delivery", "PartitionGap", "timeline_entry"]
