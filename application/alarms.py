"""The alarm application: alarms become incidents, once each, and a mass outage one parent incident.

`AlarmProcess` carries out supervision's alarm messages (alarm.raised / alarm.updated / alarm.cleared,
handed over by the intake adapter `streams.alarm_intake`) and the automation platform's
`automation.result`:

- an alarm's episode opens one incident (channel "monitoring", impact and urgency from the account's
  rule for the check and severity), at once or, for a rule with a hold, when the hold expires
  (`tick`) unless the alarm cleared meanwhile (a flap opens nothing);
- alarms on one CI within the correlation window share its incident;
- when alarms open incidents on `threshold` CIs or more that depend (depends_on / located_at, directly
  or not) on one upstream CI within `window_seconds` (the account's `Correlation`, else the default),
  they become ONE parent incident on that CI with the others attached as children; later alarms
  behind it join it while alarms keep coming. The parent is the upstream CI's own incident when its
  alarm came first, else a new one on that CI which the upstream's alarm joins: the same storm gives
  the same outage in any order;
- the parent's impact and urgency are at least those of the worst alarm or child in its outage,
  raised (never lowered, with a work note saying why) as alarms join or get worse;
- an alarm that gets worse (alarm.updated with a higher severity) raises its incident's impact and
  urgency to what the account's rule for the new severity gives, never lowering them (an outage's
  incident raises its parent instead);
- a clear restores service on the incident once the last alarm on it cleared (or, per rule, annotates
  the alarm and leaves an internal work note on the incident); the parent is restored when the last
  alarm of the whole outage cleared, or, if the account's `upstream_clear` is `restore`, when the
  upstream CI's alarm clears (a work note either way);
- a rule's automation action is requested from the automation platform; its success restores service.

Every step is idempotent: the ids of what the process creates are uuid5s, the alarm refuses sightings
it already knows, and each message's handling settles what its predecessors left half-done, so a
redelivered message finds what it already did. The process keeps its own tables (holds, correlation,
which alarms are on which incident); `projections.alarms` keeps the view of open alarms;
`processes.alarms` tells this process what the store's events change (CI graphs, rules, incidents
no longer open).

One module of some 1,300 lines: the process is one object whose steps share its in-memory state
(alarms cached, the batch being written, the correlation tables) under one lock; its caches of CI
graphs and alarm rules are in `application.alarm_context`.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import IntegrityError

from application.alarm_context import DEFAULT_RELATIONS_TTL, CiGraph, CiGraphs, PolicyCache
from application.app import ItilApplication
from application.conflicts import CONFLICT_RETRIES, ConcurrencyConflict
from domain.commands import (
    AttachIncident,
    CommentIncident,
    LogIncident,
    ReprioritiseIncident,
    RestoreService,
)
from domain.errors import DomainError, IllegalTransition, InvalidCommand, NotFound
from domain.incident import ACKNOWLEDGED, ASSIGNED, CANCELLED, CLOSED, NEW, ON_HOLD, Incident
from domain.monitoring import (
    MAX_WINDOW_SECONDS,
    MIN_WINDOW_SECONDS,
    RESTORE,
    Alarm,
    AlarmRule,
    Correlation,
    alarm_id,
    at_least,
    automation_request_id,
    episode_incident_id,
)
from projections.configuration import CiRegistryProjection
from projections.db import Database, Transaction

log = logging.getLogger(__name__)

MONITORING = "monitoring"
"""The incident channel of everything supervision opens."""
ENGINE = "itil-engine"
DEFAULT_WINDOW = timedelta(seconds=120)
DEFAULT_THRESHOLD = 3
ALARM_CACHE_SIZE = 20_000
NOT_RESTORED = (NEW, ACKNOWLEDGED, ASSIGNED, ON_HOLD)

_OUTAGE_NS = uuid5(NAMESPACE_URL, "urn:itil-engine:mass-outage")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

T = TypeVar("T")


class AlarmMessage(Protocol):
    """A message of supervision or of the automation platform, validated against its contract at the
    intake's door (the intake's `IntakeMessage` is one)."""

    @property
    def type(self) -> str: ...

    @property
    def data(self) -> Mapping[str, Any]: ...

    @property
    def source(self) -> str: ...

    @property
    def at(self) -> datetime: ...


Publisher = Callable[[dict[str, Any]], None]
"""Sends one automation request (the composition root gives a Kafka one; without it, requests are logged)."""
"""Sends one automation.request message (a JSON-ready dict) to `itil.automation.requests`."""


def us(at: datetime) -> int:
    """An instant as whole microseconds since the epoch (exact, for indexes)."""
    return (at - _EPOCH) // timedelta(microseconds=1)


def instant(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def outage_parent_id(account: str, upstream: str, started: datetime) -> UUID:
    """The parent incident of the mass outage behind `upstream` that started at `started`."""
    return uuid5(_OUTAGE_NS, f"{account}/{upstream}/{us(started)}")


SCHEMA = (
    """CREATE TABLE IF NOT EXISTS alarm_holds (
        alarm_id TEXT PRIMARY KEY,
        due_us BIGINT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS alarm_holds_due ON alarm_holds (due_us)",
    """CREATE TABLE IF NOT EXISTS alarm_members (
        incident_id TEXT NOT NULL,
        alarm_id TEXT NOT NULL,
        episode INTEGER NOT NULL,
        outage_id TEXT,
        PRIMARY KEY (incident_id, alarm_id, episode)
    )""",
    "CREATE INDEX IF NOT EXISTS alarm_members_outage ON alarm_members (outage_id)",
    """CREATE TABLE IF NOT EXISTS alarm_ci_incidents (
        account TEXT NOT NULL,
        ci TEXT NOT NULL,
        incident_id TEXT NOT NULL,
        opened_us BIGINT NOT NULL,
        PRIMARY KEY (account, ci)
    )""",
    "CREATE INDEX IF NOT EXISTS alarm_ci_incidents_incident ON alarm_ci_incidents (incident_id)",
    "CREATE INDEX IF NOT EXISTS alarm_ci_incidents_opened ON alarm_ci_incidents (opened_us)",
    """CREATE TABLE IF NOT EXISTS alarm_outage_hits (
        account TEXT NOT NULL,
        upstream TEXT NOT NULL,
        ci TEXT NOT NULL,
        last_us BIGINT NOT NULL,
        incident_id TEXT NOT NULL,
        PRIMARY KEY (account, upstream, ci)
    )""",
    "CREATE INDEX IF NOT EXISTS alarm_outage_hits_recent ON alarm_outage_hits (account, upstream, last_us)",
    "CREATE INDEX IF NOT EXISTS alarm_outage_hits_last ON alarm_outage_hits (last_us)",
    "CREATE INDEX IF NOT EXISTS alarm_outage_hits_incident ON alarm_outage_hits (incident_id)",
    """CREATE TABLE IF NOT EXISTS alarm_outages (
        account TEXT NOT NULL,
        upstream TEXT NOT NULL,
        started_us BIGINT NOT NULL,
        last_us BIGINT NOT NULL,
        parent_id TEXT NOT NULL,
        parent_is_new INTEGER NOT NULL,
        urgency INTEGER NOT NULL,
        actor TEXT NOT NULL,
        ready INTEGER NOT NULL,
        PRIMARY KEY (account, upstream)
    )""",
    "CREATE INDEX IF NOT EXISTS alarm_outages_parent ON alarm_outages (parent_id)",
    """CREATE TABLE IF NOT EXISTS alarm_outage_children (
        parent_id TEXT NOT NULL,
        ci TEXT NOT NULL,
        incident_id TEXT NOT NULL,
        PRIMARY KEY (parent_id, ci)
    )""",
    "CREATE INDEX IF NOT EXISTS alarm_outage_children_incident ON alarm_outage_children (incident_id)",
    """CREATE TABLE IF NOT EXISTS alarm_automations (
        request_id TEXT PRIMARY KEY,
        alarm_id TEXT NOT NULL
    )""",
)
"""The alarm process's own tables: hold schedule, alarms per incident, correlation, automation requests."""


# -- the process --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outage:
    """A mass outage in progress behind one upstream CI, as the process's table has it."""

    account: str
    upstream: str
    started_us: int
    last_us: int
    parent_id: UUID
    parent_is_new: bool
    urgency: int
    actor: str
    ready: bool

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Outage:
        return cls(
            account=row["account"], upstream=row["upstream"], started_us=int(row["started_us"]),
            last_us=int(row["last_us"]), parent_id=UUID(row["parent_id"]), parent_is_new=bool(row["parent_is_new"]),
            urgency=int(row["urgency"]), actor=row["actor"], ready=bool(row["ready"]),
        )  # fmt: skip


@dataclass
class Counters:
    """What the process did since it started (for logs and benchmarks)."""

    alarms: int = 0
    incidents: int = 0
    joined: int = 0
    outages: int = 0
    attached: int = 0
    restored: int = 0
    reprioritised: int = 0
    automations: int = 0
    refused: list[str] = field(default_factory=list)


@dataclass
class _Batch:
    """What a batch of sightings changed in memory and has not saved yet."""

    pending: dict[UUID, Alarm | Incident] = field(default_factory=dict)
    absent: set[UUID] = field(default_factory=set)
    """Alarms known not to be stored (no need to look for them)."""
    prepared: dict[Any, Any] = field(default_factory=dict)
    """The application's cache for LogIncident commands carried out without saving."""
    sighting: bool = False
    """A sighting is being carried out: its changes wait for the next save."""
    writes: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    """Rows of the process's tables to write, in one transaction, before the next save."""
    ci_incidents: dict[tuple[str, str], tuple[UUID, int]] = field(default_factory=dict)
    """The latest incident each CI's alarms opened (and when): as stored when the batch began, or
    opened by the batch (rows not written yet)."""
    ci_looked_up: set[tuple[str, str]] = field(default_factory=set)
    """CIs whose stored row (if any) is in `ci_incidents`: no need to read it again."""
    registry_version: int | None = None
    """The CI registry's version, read once for the batch."""


class AlarmProcess:
    """Turns supervision alarms into incidents: dedup, flapping holds, mass-outage correlation, automation."""

    def __init__(
        self,
        app: ItilApplication,
        db: Database,
        registry: CiRegistryProjection,
        publisher: Publisher | None = None,
        clock: Callable[[], datetime] | None = None,
        *,
        window: timedelta = DEFAULT_WINDOW,
        threshold: int = DEFAULT_THRESHOLD,
        relations_ttl: float = DEFAULT_RELATIONS_TTL,
    ) -> None:
        if threshold < 2:
            raise ValueError("a mass outage needs alarms on at least 2 CIs (threshold >= 2)")
        if window <= timedelta(0):
            raise ValueError("the correlation window must be longer than zero")
        self.app = app
        self.db = db
        self.publisher = publisher
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.window = window
        self.threshold = threshold
        self.default_correlation = Correlation(
            window_seconds=max(MIN_WINDOW_SECONDS, int(window.total_seconds())), threshold=threshold
        )
        """What an account that never set its correlation gets (the window and threshold given here)."""
        self.graphs = CiGraphs(registry, relations_ttl)
        self.policies = PolicyCache(app)
        self.counters = Counters()
        self._lock = threading.RLock()
        self._alarms: OrderedDict[UUID, Alarm] = OrderedDict()
        self._batch: _Batch | None = None
        self._parent_floor: dict[UUID, tuple[int, int]] = {}
        """outage parent -> the (impact, urgency) it was last seen to have at least (see `_raise_parent`)"""

    def correlation(self, account: str) -> Correlation:
        """How the account's alarms correlate: its own settings, else the default ones."""
        return self.policies.correlation(account) or self.default_correlation

    def create_tables(self) -> None:
        with self.db.transaction() as tx:
            for statement in SCHEMA:
                tx.execute(statement)

    # -- intake ---------------------------------------------------------------------------------

    def sighted(self, message: AlarmMessage) -> Alarm | None:
        """alarm.raised / alarm.updated: a new episode (held or opening its incident) or a repeat."""
        d = message.data
        account, key = d["account"].strip(), d["dedup_key"].strip()
        with self._lock:
            opened: list[UUID | None] = []
            was: list[str | None] = [None]

            def sight(alarm: Alarm) -> str:
                was[0] = alarm.severity if alarm.is_active else None
                if alarm.is_active:
                    rule = None  # a repeat: the episode's hold was decided when it started
                else:
                    rule = self.policies.rule(account, d["check"].strip(), d["severity"])
                outcome = alarm.raise_alarm(
                    ci=d["ci"], check=d["check"], severity=d["severity"], summary=d.get("summary") or "",
                    hold_seconds=rule.hold_seconds if rule else 0, actor=message.source, at=message.at,
                )  # fmt: skip
                if outcome == "raised":  # its incident at once, saved with the raise (a redelivery finds it)
                    assert rule is not None
                    incident_id, outage = self._incident_for(alarm, rule, message.at, message.source)
                    alarm.open_incident(incident_id=incident_id, actor=message.source, at=message.at)
                    opened[:] = [outage]
                return outcome

            alarm, outcome = self._change(account, key, message.source, message.at, sight, create=True)
            assert alarm is not None
            self.counters.alarms += 1
            if outcome == "raised":
                if opened == [None]:
                    self._automate(alarm, message.source)
            elif outcome == "repeated":
                assert alarm.severity is not None
                if was[0] is not None and alarm.severity != was[0] and at_least(alarm.severity, was[0]):
                    self._worsened(alarm, message.source, message.at)
            else:
                self._settle(alarm, message.source)
            return alarm

    def cleared(self, message: AlarmMessage) -> Alarm | None:
        """alarm.cleared: the episode ends; its incident is restored (or annotated) once its last alarm cleared."""
        d = message.data
        account, key = d["account"].strip(), d["dedup_key"].strip()
        with self._lock:

            def clear(alarm: Alarm) -> str:
                return alarm.clear(summary=d.get("summary") or "", actor=message.source, at=message.at)

            alarm, outcome = self._change(account, key, message.source, message.at, clear, create=False)
            self.counters.alarms += 1
            if alarm is None:
                return None
            redelivered = outcome == "not_active" and alarm.cleared_at == message.at
            if outcome in ("cleared", "flap") or redelivered:
                self._after_clear(alarm, message.source, message.at, d.get("summary") or "", redelivered)
            return alarm

    def automation_result(self, message: AlarmMessage) -> Alarm:
        """automation.result: recorded on the alarm that asked; a success restores service on its incident."""
        d = message.data
        request_id: UUID = d["request_id"]
        with self._lock:
            with self.db.transaction(write=False) as tx:
                row = tx.execute(
                    "SELECT alarm_id FROM alarm_automations WHERE request_id = ?", (str(request_id),)
                ).one()
            if row is None:
                raise NotFound(f"no alarm requested automation {request_id}")
            found = self._load(UUID(row["alarm_id"]))
            if found is None:
                raise NotFound(f"the alarm that requested automation {request_id} is not stored")
            request = found.automations.get(request_id)
            if request is None:
                raise NotFound(f"{found.dedup_key} of {found.account} never requested automation {request_id}")
            if request["incident_id"] != d["incident_id"]:
                raise InvalidCommand(
                    f"automation {request_id} was requested for incident {request['incident_id']},"
                    f" not {d['incident_id']}"
                )
            succeeded = d["outcome"] == "success"

            def record(alarm: Alarm) -> bool:
                return alarm.record_automation_result(
                    request_id=request_id, succeeded=succeeded, detail=d.get("detail") or "", actor=message.source,
                    at=message.at,
                )  # fmt: skip

            alarm, first = self._change(found.account, found.dedup_key, message.source, message.at, record, False)
            assert alarm is not None
            if succeeded:
                incident_id: UUID = request["incident_id"]
                if first or not _restored_since(self.app, incident_id, message.at):
                    note = f"service restored by automation {d['action']}" + (
                        f": {d['detail']}" if d.get("detail") else ""
                    )
                    self._restore(incident_id, message.source, message.at, note)
            return alarm

    def take(self, messages: Sequence[AlarmMessage]) -> list[Any]:
        """Carry out a batch of alarm and automation messages in order; each one's result or DomainError.

        During a storm most messages raise or repeat alarms: those change only new or open alarms
        and log new incidents, so they are carried out in memory and everything they changed is
        saved in one transaction (group commit). Before anything that needs those aggregates
        stored (attaching to an outage, restoring, asking for automation, a clear), what is
        pending is saved first, so one alarm's messages keep their order. Should a save meet a
        concurrent one, the messages it held are carried out again one by one.
        """
        results: list[Any] = [None] * len(messages)
        with self._lock:
            self._batch = _Batch()
            try:
                self._prefetch(messages)
                for i, message in enumerate(messages):
                    if message.type in ("alarm.raised", "alarm.updated"):
                        self._batch.sighting = True
                        try:
                            results[i] = self.sighted(message)
                        except DomainError as refusal:
                            results[i] = refusal
                        finally:
                            self._batch.sighting = False
                        continue
                    self._flush()
                    results[i] = self._one(message)
                self._flush()
            finally:
                self._batch = None
                self.policies.release()
        return results

    def _prefetch(self, messages: Sequence[AlarmMessage]) -> None:
        """Which of the batch's alarms (and their first incidents) are not stored yet, in one query."""
        batch = self._batch
        assert batch is not None
        sightings = {
            alarm_id(m.data["account"], m.data["dedup_key"]): m
            for m in messages
            if m.type in ("alarm.raised", "alarm.updated")
        }
        if not sightings:
            return
        batch.registry_version = self.graphs.registry_version()
        ids = {i for i in sightings if i not in self._alarms}  # (keys() - keys() would hash the whole cache)
        if ids:
            firsts = {episode_incident_id(i, 1): i for i in ids}
            stored = self.app.stored_versions([*ids, *firsts])
            batch.absent = {i for i in ids if i not in stored}
            for incident_id, alarm in firsts.items():
                if incident_id not in stored and alarm in batch.absent:
                    batch.prepared[incident_id] = None  # LogIncident need not look for it
        starting = {  # the CIs of alarms that may start an episode, hence open or join an incident
            (m.data["account"].strip(), m.data["ci"])
            for i, m in sightings.items()
            if i in batch.absent or (i in self._alarms and not self._alarms[i].is_active)
        }
        self._look_up_ci_incidents(starting)
        self.policies.confirm({account for account, _ in starting})

    def _look_up_ci_incidents(self, cis: set[tuple[str, str]]) -> None:
        """The stored latest incident of each of these CIs, in one query per 500."""
        assert self._batch is not None
        names = sorted({ci for _, ci in cis})
        with self.db.transaction(write=False) as tx:
            for start in range(0, len(names), 500):
                chunk = names[start : start + 500]
                rows = tx.execute(
                    "SELECT account, ci, incident_id, opened_us FROM alarm_ci_incidents"
                    f" WHERE ci IN ({', '.join('?' for _ in chunk)})",
                    chunk,
                ).all()
                for r in rows:
                    if (r["account"], r["ci"]) in cis:
                        self._batch.ci_incidents[(r["account"], r["ci"])] = (UUID(r["incident_id"]), r["opened_us"])
        self._batch.ci_looked_up |= cis

    def _flush(self) -> None:
        """Save what the batch changed so far, in one transaction.

        Should it meet a concurrent save, nothing of it is kept (not even in the caches) and the
        error goes up: the intake carries the batch out again, its messages finding what is stored.
        """
        batch = self._batch
        if batch is None:
            return
        self._write_tables()
        if not batch.pending:
            return
        pending = list(batch.pending.values())
        batch.pending.clear()
        try:
            self.app.save(*pending)
        except IntegrityError:
            batch.prepared.clear()
            batch.ci_incidents.clear()
            batch.ci_looked_up.clear()
            for aggregate in pending:
                self._alarms.pop(aggregate.id, None)
                if isinstance(aggregate, Incident):
                    self.forget_incident(aggregate.id)  # never stored: nothing may join it
            raise
        self.app.saved()
        for aggregate in pending:
            if isinstance(aggregate, Alarm):
                self._cache(aggregate.id, aggregate)
                batch.absent.discard(aggregate.id)

    def _write_tables(self) -> None:
        """Write the rows the batch's sightings left for the process's tables, in one transaction."""
        batch = self._batch
        if batch is None or not batch.writes:
            return
        writes, batch.writes = batch.writes, []
        with self.db.transaction() as tx:
            for sql, params in writes:
                tx.execute(sql, params)

    def _defer(self, aggregate: Alarm | Incident) -> None:
        """Keep a changed aggregate for the batch's next save (the message being carried out changed it)."""
        assert self._batch is not None
        self._batch.pending[aggregate.id] = aggregate

    def _one(self, message: AlarmMessage) -> Any:
        handle = {
            "alarm.raised": self.sighted,
            "alarm.updated": self.sighted,
            "alarm.cleared": self.cleared,
            "automation.result": self.automation_result,
        }[message.type]
        try:
            return handle(message)
        except DomainError as refusal:
            return refusal

    # -- time -----------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> int:
        """Open the incidents of held alarms whose hold expired by `now`; returns how many were opened."""
        now = now or self.clock()
        opened = 0
        with self._lock:
            while True:
                with self.db.transaction(write=False) as tx:
                    rows = tx.execute(
                        "SELECT alarm_id FROM alarm_holds WHERE due_us <= ? ORDER BY due_us LIMIT 500", (us(now),)
                    ).all()
                if not rows:
                    break
                for row in rows:
                    alarm = self._load(UUID(row["alarm_id"]))
                    if alarm is not None and alarm.is_held and alarm.hold_until is not None and alarm.hold_until <= now:
                        self._open(alarm, alarm.hold_until, alarm.raised_by or MONITORING)
                        opened += 1
                    with self.db.transaction() as tx:
                        tx.execute(
                            "DELETE FROM alarm_holds WHERE alarm_id = ? AND due_us <= ?", (row["alarm_id"], us(now))
                        )
            self._prune(now)
        return opened

    def _prune(self, now: datetime) -> None:
        """Forget correlation rows no alarm can reach any more."""
        horizon = us(now - max(10 * self.window, 2 * timedelta(seconds=MAX_WINDOW_SECONDS)))
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM alarm_outage_hits WHERE last_us < ?", (horizon,))
            tx.execute("DELETE FROM alarm_ci_incidents WHERE opened_us < ?", (horizon,))

    # -- what an alarm calls for ----------------------------------------------------------------

    def _settle(self, alarm: Alarm, actor: str) -> None:
        """Bring what the alarm's state calls for up to date: its hold scheduled, or its incident opened."""
        if alarm.is_held:
            assert alarm.hold_until is not None
            with self.db.transaction() as tx:
                tx.execute(
                    "INSERT INTO alarm_holds (alarm_id, due_us) VALUES (?, ?)"
                    " ON CONFLICT (alarm_id) DO UPDATE SET due_us = excluded.due_us",
                    (str(alarm.id), us(alarm.hold_until)),
                )
        elif alarm.is_active and alarm.incident_id is None:
            assert alarm.started_at is not None
            self._open(alarm, alarm.started_at, actor)
        elif alarm.is_active and alarm.incident_id is not None:
            self._automate(alarm, actor)

    def _open(self, alarm: Alarm, at: datetime, actor: str) -> None:
        """Open (or join) the incident of the alarm's episode, record it on the alarm, then automate."""
        assert alarm.ci is not None and alarm.check is not None and alarm.severity is not None
        rule = self.policies.rule(alarm.account, alarm.check, alarm.severity)
        incident_id, outage = self._incident_for(alarm, rule, at, actor)
        opened, _ = self._change(
            alarm.account, alarm.dedup_key, actor, at,
            lambda a: a.open_incident(incident_id=incident_id, actor=actor, at=at), create=False,
        )  # fmt: skip
        assert opened is not None
        if outage is None:
            self._automate(opened, actor)

    def _incident_for(self, alarm: Alarm, rule: AlarmRule, at: datetime, actor: str) -> tuple[UUID, UUID | None]:
        """The incident the alarm goes on, and the outage's parent when it is part of a mass outage."""
        assert alarm.ci is not None
        account, ci, t = alarm.account, alarm.ci, us(at)
        correlation = self.correlation(account)
        window_us = correlation.window_seconds * 1_000_000
        graph = self.graphs.graph(account, self._batch.registry_version if self._batch is not None else None)
        ups = graph.ancestors(ci)
        candidates = graph.most_upstream_first([*ups, ci]) if graph.has_dependents(ci) else ups
        batch = self._batch if self._batch is not None and self._batch.sighting else None
        if batch is not None and not candidates:
            return self._incident_alone(alarm, rule, at, actor, batch, window_us), None
        self._write_tables()  # the correlation below reads every row the batch has made so far
        if candidates:
            outage = self._active_outage(account, candidates, t, graph, window_us)
            if outage is not None:
                return self._join_outage(outage, alarm, rule, at, actor), outage.parent_id
        with self.db.transaction(write=False) as tx:
            row = tx.execute(
                "SELECT incident_id FROM alarm_ci_incidents WHERE account = ? AND ci = ? AND opened_us >= ?",
                (account, ci, t - window_us),
            ).one()
        if row is not None:
            incident_id = UUID(row["incident_id"])
            with self.db.transaction() as tx:
                adopted = tx.execute(
                    "SELECT parent_id FROM alarm_outage_children WHERE incident_id = ?", (str(incident_id),)
                ).one()
                parent = UUID(adopted["parent_id"]) if adopted else None
                self._insert_member(tx, incident_id, alarm, parent)
            self.counters.joined += 1
            return incident_id, parent
        own = alarm.episode_incident_id
        self._log(own, alarm, rule, at, actor)
        hits = [(account, u, ci, t, str(own)) for u in candidates]
        with self.db.transaction() as tx:
            self._remember_ci_incident(tx, account, ci, own, t)
            tx.executemany(
                "INSERT INTO alarm_outage_hits (account, upstream, ci, last_us, incident_id) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (account, upstream, ci) DO UPDATE SET last_us = excluded.last_us,"
                " incident_id = excluded.incident_id WHERE alarm_outage_hits.last_us < excluded.last_us",
                hits,
            )
            self._insert_member(tx, own, alarm, None)
            counts: dict[str, int] = {}
            if candidates:
                marks = ", ".join("?" for _ in candidates)
                rows = tx.execute(
                    f"SELECT upstream, COUNT(*) AS n FROM alarm_outage_hits WHERE account = ? AND upstream IN ({marks})"
                    " AND ci <> upstream AND last_us >= ? GROUP BY upstream",
                    (account, *candidates, t - window_us),
                ).all()
                counts = {r["upstream"]: int(r["n"]) for r in rows}
        for upstream in candidates:
            if counts.get(upstream, 0) >= correlation.threshold:
                outage = self._start_outage(account, upstream, t, rule, actor, correlation)
                if outage is not None:
                    return (outage.parent_id if upstream == ci else own), outage.parent_id
        return own, None

    def _incident_alone(
        self, alarm: Alarm, rule: AlarmRule, at: datetime, actor: str, batch: _Batch, window_us: int
    ) -> UUID:
        """The incident of an alarm on a CI outside any dependency (no outage to join or start):
        the one its CI's other alarms opened within the window, else its own. Its rows are written
        with the batch's next save."""
        assert alarm.ci is not None
        account, ci, t = alarm.account, alarm.ci, us(at)
        known = batch.ci_incidents.get((account, ci))
        if known is not None and known[1] < t - window_us:
            known = None  # the batch's and the stored row are both older than the window
        if known is None and (account, ci) not in batch.ci_looked_up:
            with self.db.transaction(write=False) as tx:
                row = tx.execute(
                    "SELECT incident_id, opened_us FROM alarm_ci_incidents WHERE account = ? AND ci = ?"
                    " AND opened_us >= ?",
                    (account, ci, t - window_us),
                ).one()
            known = (UUID(row["incident_id"]), int(row["opened_us"])) if row is not None else None
        if known is not None:
            incident_id = known[0]
            with self.db.transaction(write=False) as tx:
                adopted = tx.execute(
                    "SELECT parent_id FROM alarm_outage_children WHERE incident_id = ?", (str(incident_id),)
                ).one()
            parent = UUID(adopted["parent_id"]) if adopted else None
            batch.writes.append(_member_row(incident_id, alarm, parent))
            self.counters.joined += 1
            return incident_id
        own = alarm.episode_incident_id
        self._log(own, alarm, rule, at, actor)
        batch.ci_incidents[(account, ci)] = (own, t)
        batch.writes += [_ci_incident_row(account, ci, own, t), _member_row(own, alarm, None)]
        return own

    # -- mass outages ---------------------------------------------------------------------------

    def _active_outage(
        self, account: str, candidates: Sequence[str], t: int, graph: CiGraph, window_us: int
    ) -> Outage | None:
        marks = ", ".join("?" for _ in candidates)
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(
                f"SELECT * FROM alarm_outages WHERE account = ? AND upstream IN ({marks}) AND last_us >= ?",
                (account, *candidates, t - window_us),
            ).all()
        if not rows:
            return None
        order = {name: i for i, name in enumerate(graph.most_upstream_first(r["upstream"] for r in rows))}
        outage = Outage.of(min(rows, key=lambda r: order[r["upstream"]]))
        if not outage.ready:
            self._complete(outage)
        return outage

    def _start_outage(
        self, account: str, upstream: str, t: int, rule: AlarmRule, actor: str, correlation: Correlation
    ) -> Outage | None:
        """Recognise a mass outage behind `upstream` (unless another worker just did) and complete it."""
        horizon = t - correlation.window_seconds * 1_000_000
        with self.db.transaction() as tx:
            hits = tx.execute(
                "SELECT ci, last_us, incident_id FROM alarm_outage_hits"
                " WHERE account = ? AND upstream = ? AND last_us >= ?",
                (account, upstream, horizon),
            ).all()
            below = [h for h in hits if h["ci"] != upstream]
            if len(below) < correlation.threshold:
                return None
            started = min(int(h["last_us"]) for h in below)
            own = next((h for h in hits if h["ci"] == upstream), None)
            parent_id = UUID(own["incident_id"]) if own else outage_parent_id(account, upstream, instant(started))
            tx.execute(
                "INSERT INTO alarm_outages (account, upstream, started_us, last_us, parent_id, parent_is_new, urgency,"
                " actor, ready) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (account, upstream) DO UPDATE SET"
                " started_us = excluded.started_us, last_us = excluded.last_us, parent_id = excluded.parent_id,"
                " parent_is_new = excluded.parent_is_new, urgency = excluded.urgency, actor = excluded.actor, ready = 0"
                " WHERE alarm_outages.last_us < ?",
                (account, upstream, started, t, str(parent_id), 0 if own else 1, rule.urgency, actor, horizon),
            )
            row = tx.execute(
                "SELECT * FROM alarm_outages WHERE account = ? AND upstream = ?", (account, upstream)
            ).one()
        assert row is not None
        outage = Outage.of(row)
        self.counters.outages += 1
        log.info("mass outage behind %s on %s: %d CIs alarmed; parent incident %s", upstream, account,
                 len(below), outage.parent_id)  # fmt: skip
        self._complete(outage)
        return outage

    def _complete(self, outage: Outage) -> None:
        """Log the outage's parent (if it is a new incident) and attach every incident behind it so far."""
        self._flush()  # the incidents to attach are stored first
        account, upstream, parent = outage.account, outage.upstream, outage.parent_id
        correlation = self.correlation(account)
        started = instant(outage.started_us)
        if outage.parent_is_new:
            self.app.handle(
                LogIncident(
                    id=parent,
                    account=account,
                    title=f"Mass outage behind {upstream}",
                    impact=1,
                    urgency=outage.urgency,
                    channel=MONITORING,
                    reporter=outage.actor,
                    actor=outage.actor,
                    at=started,
                    ci=upstream,
                    description=(
                        f"Alarms on {correlation.threshold} or more CIs that depend on {upstream} within"
                        f" {correlation.window_seconds} s; their incidents are attached to this one."
                    ),
                )  # fmt: skip
            )
            self.counters.incidents += 1
        with self.db.transaction(write=False) as tx:
            hits = tx.execute(
                "SELECT ci, incident_id FROM alarm_outage_hits WHERE account = ? AND upstream = ? AND last_us >= ?"
                " AND ci <> upstream ORDER BY last_us, ci",
                (account, upstream, outage.started_us),
            ).all()
            known = {
                r["ci"]
                for r in tx.execute("SELECT ci FROM alarm_outage_children WHERE parent_id = ?", (str(parent),)).all()
            }
        at = instant(outage.last_us)
        for hit in hits:
            if hit["ci"] in known or UUID(hit["incident_id"]) == parent:
                continue
            self._adopt(parent, hit["ci"], UUID(hit["incident_id"]), at, outage.actor)
        self._raise_to_children(parent, at, outage.actor)
        with self.db.transaction() as tx:
            tx.execute("UPDATE alarm_members SET outage_id = ? WHERE incident_id = ?", (str(parent), str(parent)))
            tx.execute(
                "UPDATE alarm_outages SET ready = 1 WHERE account = ? AND upstream = ? AND parent_id = ?",
                (account, upstream, str(parent)),
            )

    def _adopt(self, parent: UUID, ci: str, child: UUID, at: datetime, actor: str) -> None:
        """Attach `child` (the incident of `ci`) to the outage's parent and count its alarms in the outage."""
        self._attach(child, parent, at, actor)
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO alarm_outage_children (parent_id, ci, incident_id) VALUES (?, ?, ?)"
                " ON CONFLICT (parent_id, ci) DO UPDATE SET incident_id = excluded.incident_id",
                (str(parent), ci, str(child)),
            )
            tx.execute("UPDATE alarm_members SET outage_id = ? WHERE incident_id = ?", (str(parent), str(child)))

    def _join_outage(self, outage: Outage, alarm: Alarm, rule: AlarmRule, at: datetime, actor: str) -> UUID:
        """The alarm joins the outage: the parent (on the upstream CI), its CI's child, or a new child."""
        assert alarm.ci is not None
        parent, t = outage.parent_id, us(at)
        self.counters.joined += 1
        incident_id: UUID | None = None
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE alarm_outages SET last_us = ? WHERE account = ? AND upstream = ? AND last_us < ?",
                (t, outage.account, outage.upstream, t),
            )
            if alarm.ci == outage.upstream:
                self._insert_member(tx, parent, alarm, parent)
                incident_id = parent
            else:
                child = tx.execute(
                    "SELECT c.incident_id, (SELECT COUNT(*) FROM alarm_members m WHERE m.incident_id = c.incident_id)"
                    " AS n FROM alarm_outage_children c WHERE c.parent_id = ? AND c.ci = ?",
                    (str(parent), alarm.ci),
                ).one()
                if child is not None and int(child["n"]) > 0:  # else its alarms cleared: it was restored
                    incident_id = UUID(child["incident_id"])
                    self._insert_member(tx, incident_id, alarm, parent)
        if incident_id is None:
            incident_id = alarm.episode_incident_id
            self._log(incident_id, alarm, rule, at, actor)
            with self.db.transaction() as tx:
                self._remember_ci_incident(tx, alarm.account, alarm.ci, incident_id, t)
                self._insert_member(tx, incident_id, alarm, parent)
            self._adopt(parent, alarm.ci, incident_id, at, actor)
        why = "its alarm on the upstream CI" if incident_id == parent else "an alarm behind it joined"
        self._raise_parent(parent, rule, alarm, why, at, actor)
        return incident_id

    # -- clears ---------------------------------------------------------------------------------

    def _after_clear(self, alarm: Alarm, actor: str, at: datetime, summary: str, redelivered: bool = False) -> None:
        """The alarm left its incident: restore (or annotate) it once no alarm is left on it.

        Carried out again for a redelivered clear, it restores nothing that was restored since the clear
        (and then, maybe, reopened by people).
        """
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM alarm_holds WHERE alarm_id = ?", (str(alarm.id),))
        if alarm.incident_id is None:
            return  # a flap: it cleared while held and opened nothing
        incident = str(alarm.incident_id)
        with self.db.transaction() as tx:
            member = tx.execute(
                "SELECT outage_id FROM alarm_members WHERE incident_id = ? AND alarm_id = ? AND episode = ?",
                (incident, str(alarm.id), alarm.episode),
            ).one()
            tx.execute(
                "DELETE FROM alarm_members WHERE incident_id = ? AND alarm_id = ? AND episode = ?",
                (incident, str(alarm.id), alarm.episode),
            )
            left = tx.execute("SELECT COUNT(*) AS n FROM alarm_members WHERE incident_id = ?", (incident,)).one()
            outage_id = member["outage_id"] if member else None
            if outage_id is None:
                parent_row = tx.execute(
                    "SELECT parent_id FROM alarm_outage_children WHERE incident_id = ?", (incident,)
                ).one()
                outage_id = parent_row["parent_id"] if parent_row else None
            outage_left = (
                tx.execute("SELECT COUNT(*) AS n FROM alarm_members WHERE outage_id = ?", (outage_id,)).one()
                if outage_id is not None
                else None
            )
        assert alarm.check is not None and alarm.severity is not None
        rule = self.policies.rule(alarm.account, alarm.check, alarm.severity)
        what = f"alarm {alarm.check} on {alarm.ci} cleared" + (f": {summary}" if summary else "")
        if left is not None and int(left["n"]) == 0 and incident != outage_id:
            self._on_clear(alarm, rule, alarm.incident_id, actor, at, what, redelivered)
        if outage_id is not None and outage_left is not None and int(outage_left["n"]) == 0:
            parent = UUID(outage_id)
            self._on_clear(
                alarm, rule, parent, actor, at, f"the last alarm of the outage cleared ({what})", redelivered
            )
        elif outage_id is not None and incident == outage_id and left is not None and int(left["n"]) == 0:
            self._upstream_cleared(alarm, UUID(outage_id), actor, at, what, redelivered)

    def _upstream_cleared(
        self, alarm: Alarm, parent: UUID, actor: str, at: datetime, what: str, redelivered: bool
    ) -> None:
        """The upstream CI's alarm cleared while alarms behind it are still active: what the account's
        correlation says (`upstream_clear`), with a work note on the parent either way."""
        correlation = self.correlation(alarm.account)
        if correlation.upstream_clear == RESTORE:
            note = (
                f"{what}: the upstream CI is back, so the outage is restored though alarms behind it are still"
                " active; the incidents behind it are restored with it (correlation rule upstream_clear: restore)"
            )
            if not (redelivered and _commented_since(self.app, parent, at, note)):
                self._work_note(parent, note, actor, at)
            self.forget_incident(parent)
            if not (redelivered and _restored_since(self.app, parent, at)):
                self._restore(parent, actor, at, f"{what}; the upstream CI is back: outage restored")
            return
        note = (
            f"{what}: the outage stays open until the alarms still active behind it clear"
            " (correlation rule upstream_clear: wait)"
        )
        if not (redelivered and _commented_since(self.app, parent, at, note)):
            self._work_note(parent, note, actor, at)

    def _on_clear(
        self, alarm: Alarm, rule: AlarmRule, incident_id: UUID, actor: str, at: datetime, what: str, redelivered: bool
    ) -> None:
        self.forget_incident(incident_id)
        if rule.on_clear == RESTORE:
            if not (redelivered and _restored_since(self.app, incident_id, at)):
                self._restore(incident_id, actor, at, f"{what}; service restored")
            return
        note = f"{what}; incident {incident_id} left for the team to restore (rule on_clear: annotate)"
        self._change(alarm.account, alarm.dedup_key, actor, at, lambda a: a.annotate(note=note, actor=actor, at=at))
        work_note = f"{what}; service not restored automatically: the alarm rule leaves it to the team"
        if not (redelivered and _commented_since(self.app, incident_id, at, work_note)):
            self._work_note(incident_id, work_note, actor, at)

    def _work_note(self, incident_id: UUID, text: str, actor: str, at: datetime) -> None:
        """An internal work note on the incident (none on an incident closed or cancelled meanwhile)."""
        self._flush()
        incident = self.app.find(incident_id, Incident)
        if incident is None or incident.status in (CLOSED, CANCELLED):
            return
        self._issue(
            CommentIncident(
                incident_id=incident_id,
                text=text,
                author=actor,
                customer_visible=False,
                actor=actor,
                at=at,
            )
        )

    # -- automation -----------------------------------------------------------------------------

    def _automate(self, alarm: Alarm, actor: str) -> None:
        """Request the rule's corrective action for the alarm's incident, once per episode."""
        assert alarm.check is not None and alarm.severity is not None
        rule = self.policies.rule(alarm.account, alarm.check, alarm.severity)
        if rule.automation is None or alarm.incident_id is None or alarm.started_at is None:
            return
        request_id = automation_request_id(alarm.id, alarm.episode, rule.automation)
        if request_id in alarm.automations:
            return
        if self._in_outage(alarm.incident_id):
            return  # the cause is upstream: correcting each CI behind it would not help
        if self.publisher is None:
            log.error("no automation publisher is wired: %s for %s not requested", rule.automation, alarm.dedup_key)
            return
        at = alarm.last_seen or alarm.started_at
        self._flush()  # the incident exists before anyone is asked to act on it
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO alarm_automations (request_id, alarm_id) VALUES (?, ?)"
                " ON CONFLICT (request_id) DO NOTHING",
                (str(request_id), str(alarm.id)),
            )
        self.publisher(
            {
                "message_id": f"{ENGINE}-{request_id}",
                "type": "automation.request",
                "schema_version": 1,
                "sent_at": self.clock().isoformat(),
                "source": ENGINE,
                "request_id": str(request_id),
                "incident_id": str(alarm.incident_id),
                "account": alarm.account,
                "ci": alarm.ci,
                "action": rule.automation,
                "parameters": {"check": alarm.check, "severity": alarm.severity, "dedup_key": alarm.dedup_key},
                "at": at.isoformat(),
            }
        )
        incident_id = alarm.incident_id
        self._change(
            alarm.account, alarm.dedup_key, actor, at,
            lambda a: a.request_automation(request_id=request_id, action=rule.automation or "",
                                           incident_id=incident_id, actor=actor, at=at),
        )  # fmt: skip
        self.counters.automations += 1

    def _in_outage(self, incident_id: UUID) -> bool:
        with self.db.transaction(write=False) as tx:
            row = tx.execute(
                "SELECT 1 AS x FROM alarm_members WHERE incident_id = ? AND outage_id IS NOT NULL LIMIT 1",
                (str(incident_id),),
            ).one()
        return row is not None

    # -- an outage's priority -------------------------------------------------------------------

    def _outage_of(self, incident_id: UUID) -> UUID | None:
        """The parent of the outage the incident is part of (itself, for a parent), else None."""
        with self.db.transaction(write=False) as tx:
            row = tx.execute(
                "SELECT outage_id FROM alarm_members WHERE incident_id = ? AND outage_id IS NOT NULL LIMIT 1",
                (str(incident_id),),
            ).one()
        return UUID(row["outage_id"]) if row is not None else None

    def _raise_parent(self, parent_id: UUID, rule: AlarmRule, alarm: Alarm, why: str, at: datetime, actor: str) -> None:
        """The parent's impact and urgency are at least the rule's for an alarm in its outage."""
        reason = f"{why}: {alarm.check} {alarm.severity} on {alarm.ci} (impact {rule.impact}, urgency {rule.urgency})"
        self._raise_to(parent_id, rule.impact, rule.urgency, reason, at, actor)

    def _raise_to_children(self, parent_id: UUID, at: datetime, actor: str) -> None:
        """The parent's impact and urgency are at least those of each child attached to it."""
        parent = self.app.find(parent_id, Incident)
        if parent is None:
            return
        children = [c for c in (self.app.find(i, Incident) for i in parent.children) if c is not None]
        if children:
            worst = min(children, key=lambda c: (c.urgency, c.impact))
            impact, urgency = min(c.impact for c in children), min(c.urgency for c in children)
            reason = f"the worst of the {len(children)} incidents behind it, e.g. {worst.title!r} (P{worst.priority})"
            self._raise_to(parent_id, impact, urgency, reason, at, actor)

    def _raise_to(self, parent_id: UUID, impact: int, urgency: int, reason: str, at: datetime, actor: str) -> None:
        """Raise the outage's parent to at least this impact and urgency (never lower it), with the reason
        as a work note. Alarms that call for nothing worse than the parent was last seen at cost nothing."""
        floor = self._parent_floor.get(parent_id)
        if floor is not None and impact >= floor[0] and urgency >= floor[1]:
            return
        self._flush()
        parent = self.app.find(parent_id, Incident)
        if parent is None or parent.status not in NOT_RESTORED:
            return
        raised = (min(parent.impact, impact), min(parent.urgency, urgency))
        if raised == (parent.impact, parent.urgency):
            self._parent_floor[parent_id] = raised
            return
        when = max(at, parent.last_at)
        changed = self._issue(ReprioritiseIncident(
            incident_id=parent_id, impact=raised[0], urgency=raised[1], actor=actor, at=when,
        ))  # fmt: skip
        if changed is None:
            return
        self._parent_floor[parent_id] = raised
        self.counters.reprioritised += 1
        self._work_note(
            parent_id,
            f"Priority of the outage raised from P{parent.priority} to P{changed.priority} (impact {raised[0]},"
            f" urgency {raised[1]}): {reason}.",
            actor, when,
        )  # fmt: skip

    # -- commands to the application ------------------------------------------------------------

    def _log(self, incident_id: UUID, alarm: Alarm, rule: AlarmRule, at: datetime, actor: str) -> None:
        assert alarm.ci is not None and alarm.check is not None and alarm.severity is not None
        summary = alarm.summary_text or f"{alarm.severity} alarm"
        raised = alarm.started_at.isoformat() if alarm.started_at else at.isoformat()
        log_incident = (
            LogIncident(
                id=incident_id,
                account=alarm.account,
                title=f"{alarm.check} on {alarm.ci}: {summary}"[:500],
                impact=rule.impact,
                urgency=rule.urgency,
                channel=MONITORING,
                reporter=actor,
                actor=actor,
                at=at,
                ci=alarm.ci,
                description=(
                    f"Alarm {alarm.dedup_key} ({alarm.check}, {alarm.severity}) raised at {raised}"
                    f"{' after a hold of ' + str(rule.hold_seconds) + ' s' if alarm.hold_until else ''}: {summary}"
                ),
            )  # fmt: skip
        )
        batch = self._batch
        if batch is not None and batch.sighting:
            incident = self.app.prepare(log_incident, batch.prepared)
            if isinstance(incident, Incident) and incident.pending_events:
                self._defer(incident)
        else:
            self.app.handle(log_incident)
        self.counters.incidents += 1

    def _attach(self, child: UUID, parent: UUID, at: datetime, actor: str) -> None:
        try:
            self._at_or_later(lambda when: AttachIncident(child_id=child, parent_id=parent, actor=actor, at=when),
                              at, child, parent)  # fmt: skip
            self.counters.attached += 1
        except IllegalTransition as refusal:
            found = self.app.find(child, Incident)
            if found is not None and found.parent_id == parent:
                return  # attached already (a redelivery)
            log.warning("incident %s not attached to outage %s: %s", child, parent, refusal)
            self.counters.refused.append(str(refusal))

    def _restore(self, incident_id: UUID, actor: str, at: datetime, note: str) -> None:
        self._flush()
        incident = self.app.find(incident_id, Incident)
        if incident is None or incident.status not in NOT_RESTORED:
            return
        self._issue(RestoreService(incident_id=incident_id, actor=actor, at=max(at, incident.last_at), note=note))
        self.counters.restored += 1

    def _worsened(self, alarm: Alarm, actor: str, at: datetime) -> None:
        """The alarm got worse: its incident's impact and urgency rise to what the account's rule for the
        new severity gives (never lowered: a calmer alarm, or a person's reprioritisation, is left be).

        Only an incident the alarm opened on its own CI and not restored yet; an outage's incidents
        keep the priority of the outage, a held alarm's incident opens with the severity of its time.
        """
        if alarm.incident_id is None or alarm.check is None or alarm.severity is None:
            return
        rule = self.policies.rule(alarm.account, alarm.check, alarm.severity)
        self._flush()
        incident = self.app.find(alarm.incident_id, Incident)
        if incident is None or incident.status not in NOT_RESTORED:
            return
        outage = self._outage_of(incident.id)
        if outage is not None:  # the outage's incidents keep its priority: its parent is raised instead
            self._raise_parent(outage, rule, alarm, "an alarm in it got worse", at, actor)
            return
        impact, urgency = min(incident.impact, rule.impact), min(incident.urgency, rule.urgency)
        if (impact, urgency) == (incident.impact, incident.urgency):
            return
        self._issue(ReprioritiseIncident(
            incident_id=incident.id, impact=impact, urgency=urgency, actor=actor, at=max(at, incident.last_at),
        ))  # fmt: skip
        self.counters.reprioritised += 1

    def _at_or_later(self, make: Callable[[datetime], Any], at: datetime, *incidents: UUID) -> Any:
        """Carry out the command at `at`, or at the incidents' last step when people already acted later."""
        self._flush()
        try:
            return self.app.handle(make(at))
        except InvalidCommand as refusal:
            if "before its last recorded step" not in str(refusal):
                raise
        found = [self.app.find(i, Incident) for i in incidents]
        return self.app.handle(make(max([at, *(f.last_at for f in found if f is not None)])))

    def _issue(self, command: Any) -> Any | None:
        self._flush()
        try:
            return self.app.handle(command)
        except ConcurrencyConflict:
            raise
        except DomainError as refusal:
            log.warning("alarm process: %s refused: %s", type(command).__name__, refusal)
            self.counters.refused.append(str(refusal))
            return None

    # -- the process's tables -------------------------------------------------------------------

    @staticmethod
    def _insert_member(tx: Transaction, incident_id: UUID, alarm: Alarm, outage: UUID | None) -> None:
        tx.execute(*_member_row(incident_id, alarm, outage))

    @staticmethod
    def _remember_ci_incident(tx: Transaction, account: str, ci: str, incident_id: UUID, t: int) -> None:
        tx.execute(*_ci_incident_row(account, ci, incident_id, t))

    def forget_incident(self, incident_id: UUID) -> None:
        """An incident's alarms cleared, or it was restored, resolved or cancelled: no new alarm joins it,
        it counts towards no new outage, and an outage it is the parent of is over."""
        key = str(incident_id)
        with self._lock:
            self._parent_floor.pop(incident_id, None)
            if self._batch is not None:
                self._write_tables()
                forgotten = {k for k, v in self._batch.ci_incidents.items() if v[0] == incident_id}
                self._batch.ci_incidents = {k: v for k, v in self._batch.ci_incidents.items() if k not in forgotten}
                self._batch.ci_looked_up -= forgotten
            self._forget(key)

    def _forget(self, key: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM alarm_ci_incidents WHERE incident_id = ?", (key,))
            tx.execute("DELETE FROM alarm_outage_hits WHERE incident_id = ?", (key,))
            for outage in tx.execute("SELECT account, upstream FROM alarm_outages WHERE parent_id = ?", (key,)).all():
                tx.execute(
                    "DELETE FROM alarm_outage_hits WHERE account = ? AND upstream = ?",
                    (outage["account"], outage["upstream"]),
                )
            tx.execute("UPDATE alarm_outages SET last_us = -1 WHERE parent_id = ?", (key,))

    # -- alarms: load, change, save -------------------------------------------------------------

    def _load(self, aggregate_id: UUID) -> Alarm | None:
        batch = self._batch
        if batch is not None:
            pending = batch.pending.get(aggregate_id)
            if isinstance(pending, Alarm):
                return pending
            if aggregate_id in batch.absent:
                return None
        cached = self._alarms.get(aggregate_id)
        if cached is not None:
            self._alarms.move_to_end(aggregate_id)
            return cached
        return self.app.find(aggregate_id, Alarm)

    def _cache(self, aggregate_id: UUID, alarm: Alarm) -> None:
        self._alarms[aggregate_id] = alarm
        self._alarms.move_to_end(aggregate_id)
        while len(self._alarms) > ALARM_CACHE_SIZE:
            self._alarms.popitem(last=False)

    def _change(
        self, account: str, key: str, actor: str, at: datetime, act: Callable[[Alarm], T], create: bool = False
    ) -> tuple[Alarm | None, T | str]:
        """Load the alarm (from the cache when it holds it), call `act`, save what changed.

        The cached alarm is only ever this process's: a concurrent save elsewhere makes the save fail,
        and the alarm is then read again from the store and the command tried again.
        """
        aggregate_id = alarm_id(account, key)
        batch = self._batch if self._batch is not None and self._batch.sighting else None
        if batch is not None:
            alarm = self._load(aggregate_id)
            if alarm is not None and aggregate_id in batch.pending and not alarm.is_active:
                self._flush()  # a new episode starts from what is stored: a refusal then drops nothing
                alarm = self._load(aggregate_id)
            if alarm is None:
                if not create:
                    return None, "not_active"
                alarm = Alarm.track(account=account, dedup_key=key, actor=actor, at=at)
            try:
                result = act(alarm)
            except BaseException:
                if aggregate_id not in batch.pending:
                    self._alarms.pop(aggregate_id, None)
                raise
            if alarm.pending_events:
                self._defer(alarm)
            return alarm, result
        aggregate_id = alarm_id(account, key)
        for _attempt in range(CONFLICT_RETRIES):
            alarm = self._load(aggregate_id)
            if alarm is None:
                if not create:
                    return None, "not_active"
                alarm = Alarm.track(account=account, dedup_key=key, actor=actor, at=at)
            try:
                result = act(alarm)
            except BaseException:
                self._alarms.pop(aggregate_id, None)
                raise
            if alarm.pending_events:
                try:
                    self.app.save(alarm)
                except IntegrityError:
                    self._alarms.pop(aggregate_id, None)
                    continue
                except BaseException:
                    self._alarms.pop(aggregate_id, None)
                    raise
                self.app.saved()
            self._cache(aggregate_id, alarm)
            return alarm, result
        raise ConcurrencyConflict(f"alarm {key} of {account} kept changing while the process ran; try again")


def _member_row(incident_id: UUID, alarm: Alarm, outage: UUID | None) -> tuple[str, tuple[Any, ...]]:
    """The alarm's episode counts on the incident (and on the outage it is part of)."""
    return (
        "INSERT INTO alarm_members (incident_id, alarm_id, episode, outage_id) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (incident_id, alarm_id, episode) DO NOTHING",
        (str(incident_id), str(alarm.id), alarm.episode, None if outage is None else str(outage)),
    )


def _ci_incident_row(account: str, ci: str, incident_id: UUID, t: int) -> tuple[str, tuple[Any, ...]]:
    """The CI's latest incident opened by alarms, for its next alarms within the window to join."""
    return (
        "INSERT INTO alarm_ci_incidents (account, ci, incident_id, opened_us) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (account, ci) DO UPDATE SET incident_id = excluded.incident_id,"
        " opened_us = excluded.opened_us WHERE alarm_ci_incidents.opened_us < excluded.opened_us",
        (account, ci, str(incident_id), t),
    )


def _restored_since(app: ItilApplication, incident_id: UUID, at: datetime) -> bool:
    return any(isinstance(e, Incident.ServiceRestored) and e.at >= at for e in app.events.get(incident_id))


def _commented_since(app: ItilApplication, incident_id: UUID, at: datetime, text: str) -> bool:
    return any(isinstance(e, Incident.Commented) and e.at >= at and e.text == text for e in app.events.get(incident_id))
