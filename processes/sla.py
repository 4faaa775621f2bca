"""The SLA process: incident events start, pause, resume and stop the incident's SLA clocks.

It reacts to `itil.events` and issues commands; the ticker asks the clocks that fall due to record
their thresholds and breaches. Redelivered events are no-ops (the clocks know the last incident
version they applied), and the clocks' id is derived from the incident's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.commands import (
    CancelSlaClocks,
    CheckSlaClocks,
    PauseSlaClocks,
    RestartSlaClocks,
    ResumeSlaClocks,
    RetargetSlaClocks,
    SlaCommand,
    StartSlaClocks,
    StopSlaClock,
)
from domain.events import aggregate_name, event_kind
from domain.incident import Incident
from processes.ports import SlaClocks
from projections.db import Database
from projections.tracking import Process

log = logging.getLogger(__name__)

SCHEDULE_SCHEMA = """CREATE TABLE IF NOT EXISTS sla_schedule (
    incident_id TEXT PRIMARY KEY,
    due_us BIGINT NOT NULL
)"""
SCHEDULE_INDEX = "CREATE INDEX IF NOT EXISTS sla_schedule_due ON sla_schedule (due_us)"

_INCIDENT = aggregate_name(Incident)
_LOGGED = event_kind(Incident.Logged)
_ACKNOWLEDGED = event_kind(Incident.Acknowledged)
_PUT_ON_HOLD = event_kind(Incident.PutOnHold)
_RESUMED = event_kind(Incident.Resumed)
_SERVICE_RESTORED = event_kind(Incident.ServiceRestored)
_RESOLVED = event_kind(Incident.Resolved)
_REOPENED = event_kind(Incident.Reopened)
_REPRIORITISED = event_kind(Incident.Reprioritised)
_CANCELLED = event_kind(Incident.Cancelled)


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def command_for(envelope: dict[str, Any]) -> SlaCommand | None:
    """The SLA command an incident event calls for, if any."""
    if envelope["aggregate_type"] != _INCIDENT:
        return None
    kind = envelope["event_type"].split(".")[-1]
    p = envelope["payload"]
    incident_id = UUID(str(envelope["aggregate_id"]))
    at = _when(envelope["occurred_at"])
    version = int(envelope["aggregate_version"])
    if kind == _LOGGED:
        return StartSlaClocks(incident_id, p["account"], p.get("service"), int(p["priority"]), at)
    if kind == _ACKNOWLEDGED:
        return StopSlaClock(incident_id, "response", "acknowledged", at, version, ends_hold=False)
    if kind == _PUT_ON_HOLD:
        return PauseSlaClocks(incident_id, p["reason"], at, version)
    if kind == _RESUMED:
        return ResumeSlaClocks(incident_id, "resumed", at, version)
    if kind == _SERVICE_RESTORED:
        return StopSlaClock(incident_id, "restoration", "service restored", at, version, ends_hold=True)
    if kind == _RESOLVED:
        return StopSlaClock(incident_id, "resolution", f"resolved ({p['code']})", at, version, ends_hold=True)
    if kind == _REOPENED:
        return RestartSlaClocks(incident_id, ("restoration", "resolution"), f"reopened: {p['reason']}", at, version)
    if kind == _REPRIORITISED:
        reason = f"priority changed from P{p['previous_priority']} to P{p['priority']}"
        return RetargetSlaClocks(incident_id, int(p["priority"]), reason, at, version)
    if kind == _CANCELLED:
        return CancelSlaClocks(incident_id, f"incident cancelled: {p['reason']}", at, version)
    return None


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


class SlaSchedule:
    """When each incident's clocks next fall due: an index, so nothing polls every incident."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_tables(self) -> None:
        with self.db.transaction() as tx:
            tx.execute(SCHEDULE_SCHEMA)
            tx.execute(SCHEDULE_INDEX)

    def set(self, incident_id: UUID, due: datetime | None) -> None:
        """When the incident's clocks next fall due (None: never, they are stopped)."""
        self.set_many([(incident_id, due)])

    def set_many(self, dues: list[tuple[UUID, datetime | None]]) -> None:
        """`set` each in turn, in one transaction."""
        if not dues:
            return
        with self.db.transaction() as tx:
            for incident_id, due in dues:
                if due is None:
                    tx.execute("DELETE FROM sla_schedule WHERE incident_id = ?", (str(incident_id),))
                else:
                    tx.execute(
                        "INSERT INTO sla_schedule (incident_id, due_us) VALUES (?, ?)"
                        " ON CONFLICT (incident_id) DO UPDATE SET due_us = excluded.due_us",
                        (str(incident_id), _us(due)),
                    )

    def due(self, now: datetime, limit: int = 500) -> list[UUID]:
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT incident_id FROM sla_schedule WHERE due_us <= ? ORDER BY due_us LIMIT ?",
                (_us(now), limit),
            ).all()
        return [UUID(r["incident_id"]) for r in rows]


class SlaProcess:
    """Turns incident events into SLA commands and keeps the schedule of the next thresholds."""

    def __init__(self, app: SlaClocks, schedule: SlaSchedule, clock: Callable[[], datetime]) -> None:
        self.app = app
        self.schedule = schedule
        self.clock = clock

    def react(self, envelope: dict[str, Any]) -> None:
        command = command_for(envelope)
        if command is None:
            return
        sla = self.app.handle_sla(command)
        if sla is not None:
            self.schedule.set(sla.incident_id, sla.next_due())

    def react_many(self, envelopes: list[dict[str, Any]]) -> None:
        """React to a batch's events as one by one, starting its incidents' clocks together.

        An incident's Logged event comes before its others, and one incident's clocks never depend
        on another's: the batch's clocks are started first, in one query and one save (their
        schedule in one transaction), then its other commands are carried out in order. An error
        starting one incident's clocks leaves the others started, and its incident's later commands
        find no clocks (a no-op); it is raised at the end, so the whole batch comes again.
        """
        commands: list[SlaCommand] = []
        failure: Exception | None = None
        for envelope in envelopes:
            try:
                command = command_for(envelope)
            except Exception as error:  # the events before it are still reacted to
                failure = error
                break
            if command is not None:
                commands.append(command)
        starts = [c for c in commands if isinstance(c, StartSlaClocks)]
        if len(starts) > 1:
            dues: list[tuple[UUID, datetime | None]] = []
            for start, outcome in zip(starts, self.app.start_sla_clocks(starts), strict=True):
                if isinstance(outcome, Exception):
                    failure = failure or outcome
                elif outcome is not None:
                    dues.append((start.incident_id, outcome.next_due()))
            self.schedule.set_many(dues)
            commands = [c for c in commands if not isinstance(c, StartSlaClocks)]
        for command in commands:
            sla = self.app.handle_sla(command)
            if sla is not None:
                self.schedule.set(sla.incident_id, sla.next_due())
        if failure is not None:
            raise failure

    def recipients(self, incident_id: UUID) -> tuple[tuple[str, str | None], ...]:
        """Who stands behind each escalation target of this incident now."""
        incident = self.app.find(incident_id, Incident)
        return (("assignment_group", incident.assignment_group if incident else None),)

    def tick(self, now: datetime | None = None) -> int:
        """Record the thresholds and breaches due by `now`; returns how many clocks were checked."""
        now = now or self.clock()
        checked = 0
        while True:
            due = self.schedule.due(now)
            if not due:
                return checked
            for incident_id in due:
                sla = self.app.handle_sla(CheckSlaClocks(incident_id, now, self.recipients(incident_id)))
                self.schedule.set(incident_id, sla.next_due() if sla is not None else None)
                checked += 1


class SlaConsumer(Process):
    """Feeds the SLA process from `itil.events`, each incident event once."""

    name = "sla_process"
    reads = (_INCIDENT,)

    def __init__(self, db: Database, process: SlaProcess) -> None:
        super().__init__(db)
        self.process = process

    def react(self, envelope: dict[str, Any]) -> None:
        self.process.react(envelope)

    def react_many(self, envelopes: list[dict[str, Any]]) -> None:
        self.process.react_many(envelopes)
