"""The IncidentSla aggregate: an incident's SLA clocks, every start, pause, stop and breach an event.

Each metric (response, restoration, resolution) is measured in covered business time from the
incident's logging, against terms bound when the clocks start, so a later contract change never
rewrites the figures. Thresholds are emitted at the exact instant they were reached, even when
checked late.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.calendar import BusinessCalendar, CalendarSpec
from domain.contract import SlaTerms
from domain.errors import InvalidCommand
from domain.rules import TextsChecked

ENGINE = "sla-engine"
BREACH = 100
_SLA_NS = uuid5(NAMESPACE_URL, "urn:itil-engine:incident-sla")


def sla_id(incident_id: UUID) -> UUID:
    """The SLA clocks of an incident have a deterministic id: redelivered events find them."""
    return uuid5(_SLA_NS, str(incident_id))


@lru_cache(maxsize=256)
def calendar_of(spec: CalendarSpec) -> BusinessCalendar:
    return BusinessCalendar(spec)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class IncidentSla(TextsChecked, Aggregate):
    """The SLA clocks of one incident, measured against the terms in force when it was logged."""

    class Event(Aggregate.Event):
        actor: str
        at: datetime

    class ClocksStarted(Event, Aggregate.Created):
        incident_id: UUID
        account: str
        terms: dict[str, Any]
        deadlines: dict[str, str]

    class ClocksPaused(Event):
        reason: str
        metrics: list[str]
        incident_version: int

    class ClocksResumed(Event):
        reason: str
        metrics: list[str]
        deadlines: dict[str, str]
        incident_version: int

    class ClockStopped(Event):
        metric: str
        reason: str
        elapsed_seconds: float
        met: bool
        incident_version: int

    class ClockRestarted(Event):
        metric: str
        reason: str
        deadline: str
        incident_version: int

    class Retargeted(Event):
        priority: int
        previous_priority: int
        targets: dict[str, int]
        reason: str
        deadlines: dict[str, str]
        incident_version: int

    class ThresholdReached(Event):
        metric: str
        threshold: int
        target_seconds: int

    class Breached(Event):
        metric: str
        target_seconds: int

    class Escalated(Event):
        metric: str
        threshold: int
        notify: str
        recipient: str | None = None

    class ClocksCancelled(Event):
        reason: str
        incident_version: int

    @event(ClocksStarted)
    def __init__(
        self,
        *,
        incident_id: UUID,
        account: str,
        terms: dict[str, Any],
        deadlines: dict[str, str],
        actor: str,
        at: datetime,
    ) -> None:
        self.incident_id = incident_id
        self.account = account
        self.terms = SlaTerms.from_dict(terms)
        self.started_at = at
        self.incident_version = 1
        self.cancelled = False
        self.paused_reason: str | None = None
        self.metrics: dict[str, dict[str, Any]] = {
            metric: {
                "target": seconds,
                "segments": [],
                "running_since": at,
                "stopped_at": None,
                "met": None,
                "fired": [],
                "breached_at": None,
                "deadline": deadlines.get(metric),
            }
            for metric, seconds in self.terms.targets.items()
        }

    @classmethod
    def start(cls, *, incident_id: UUID, account: str, terms: SlaTerms, at: datetime) -> IncidentSla:
        """Start the clocks of an incident logged at `at`, against `terms`."""
        if at.tzinfo is None:
            raise InvalidCommand("the instant must carry a time zone")
        calendar = calendar_of(terms.calendar)
        deadlines = {m: calendar.add(at, timedelta(seconds=s)).isoformat() for m, s in terms.targets.items()}
        return cls._create(
            cls.ClocksStarted, id=sla_id(incident_id), incident_id=incident_id, account=account,
            terms=terms.to_dict(), deadlines=deadlines, actor=ENGINE, at=at,
        )  # fmt: skip

    # -- arithmetic (pure reads of state) ----------------------------------------

    @property
    def calendar(self) -> BusinessCalendar:
        return calendar_of(self.terms.calendar)

    def running(self, metric: str) -> bool:
        m = self.metrics[metric]
        return m["running_since"] is not None

    def elapsed(self, metric: str, at: datetime) -> timedelta:
        """Covered time counted on `metric` up to `at`."""
        m = self.metrics[metric]
        total = sum((self.calendar.measure(s, e) for s, e in m["segments"]), timedelta())
        if m["running_since"] is not None and at > m["running_since"]:
            total += self.calendar.measure(m["running_since"], at)
        return total

    def instant_reaching(self, metric: str, amount: timedelta) -> datetime | None:
        """When `metric` had (or will have) counted `amount` of covered time, if ever."""
        m = self.metrics[metric]
        counted = timedelta()
        for start, end in m["segments"]:
            piece = self.calendar.measure(start, end)
            if counted + piece >= amount:
                return self.calendar.add(start, amount - counted)
            counted += piece
        if m["running_since"] is None:
            return None
        return self.calendar.add(m["running_since"], amount - counted)

    def deadline(self, metric: str) -> datetime | None:
        return self.instant_reaching(metric, timedelta(seconds=self.metrics[metric]["target"]))

    def _resumed_deadline(self, metric: str, resumed_at: datetime) -> str:
        """The deadline of a stopped or paused metric once it counts again from `resumed_at`."""
        m = self.metrics[metric]
        counted = sum((self.calendar.measure(a, b) for a, b in m["segments"]), timedelta())
        left = max(timedelta(seconds=m["target"]) - counted, timedelta())
        return self.calendar.add(resumed_at, left).isoformat()

    def next_due(self) -> datetime | None:
        """The next instant at which a threshold or breach falls due, if a clock runs."""
        due = [
            instant
            for metric, m in self.metrics.items()
            if m["running_since"] is not None and not self.cancelled
            for percent in self._percents()
            if percent not in m["fired"] and (instant := self._due_instant(metric, percent))
        ]
        return min(due) if due else None

    def _due_instant(self, metric: str, percent: int) -> datetime | None:
        """When a check would record this threshold: a breach just after the target runs out."""
        reached = self.instant_reaching(metric, timedelta(seconds=self.metrics[metric]["target"] * percent / 100))
        if reached is None:
            return None
        return reached + timedelta(microseconds=1) if percent == BREACH else reached

    def _percents(self) -> list[int]:
        return [*self.terms.thresholds, BREACH]

    # -- commands ----------------------------------------------------------------

    def is_stale(self, incident_version: int) -> bool:
        """True when the incident event behind a command was already applied (a redelivery).

        Checked once per incident event by the application, before it calls the commands below.
        """
        return incident_version <= self.incident_version

    def pause(self, *, reason: str, at: datetime, incident_version: int) -> None:
        """The incident went on hold: pause the running clocks if the contract says this reason pauses."""
        if self.cancelled:
            return
        running = [m for m in self.metrics if self.running(m)]
        if reason not in self.terms.pausing_reasons or not running or self.paused_reason is not None:
            return
        self.check(at)
        self._paused(reason=reason, metrics=running, incident_version=incident_version, actor=ENGINE, at=at)

    def resume(self, *, reason: str, at: datetime, incident_version: int) -> None:
        """The incident came off hold (or service was restored while on hold)."""
        if self.cancelled:
            return
        if self.paused_reason is None:
            return
        paused = [m for m, v in self.metrics.items() if v["stopped_at"] is None and v["running_since"] is None]
        self._resumed(
            reason=reason, metrics=paused, deadlines={m: self._resumed_deadline(m, at) for m in paused},
            incident_version=incident_version, actor=ENGINE, at=at,
        )  # fmt: skip

    def stop(self, *, metric: str, reason: str, at: datetime, incident_version: int) -> None:
        """The clock's stop point was reached (acknowledged, restored, resolved)."""
        if self.cancelled:
            return
        if metric not in self.metrics or self.metrics[metric]["stopped_at"] is not None:
            return
        self.check(at)
        elapsed = self.elapsed(metric, at)
        met = elapsed <= timedelta(seconds=self.metrics[metric]["target"])
        self._stopped(
            metric=metric, reason=reason, elapsed_seconds=elapsed.total_seconds(), met=met,
            incident_version=incident_version, actor=ENGINE, at=at,
        )  # fmt: skip

    def restart(self, *, metrics: Iterable[str], reason: str, at: datetime, incident_version: int) -> None:
        """The incident was reopened: its stopped clocks count again from where they stopped."""
        if self.cancelled:
            return
        stopped = [m for m in metrics if m in self.metrics and self.metrics[m]["stopped_at"] is not None]
        if not stopped:
            return
        for metric in stopped:
            deadline = self._resumed_deadline(metric, at)
            self._restarted(
                metric=metric, reason=reason, deadline=deadline, incident_version=incident_version,
                actor=ENGINE, at=at,
            )  # fmt: skip

    def retarget(self, *, terms: SlaTerms, reason: str, at: datetime, incident_version: int) -> None:
        """The priority changed: the targets change, still measured from the original start."""
        if self.cancelled:
            return
        if terms.priority == self.terms.priority:
            return
        targets = {m: s for m, s in terms.targets.items() if m in self.metrics}
        running = [m for m in targets if self.running(m)]
        deadlines = {m: _iso(self.instant_reaching(m, timedelta(seconds=targets[m]))) or "" for m in running}
        self._retargeted(
            priority=terms.priority, previous_priority=self.terms.priority, targets=targets,
            reason=reason, deadlines=deadlines, incident_version=incident_version, actor=ENGINE, at=at,
        )  # fmt: skip

    def cancel(self, *, reason: str, at: datetime, incident_version: int) -> None:
        """The incident was cancelled: it no longer counts in the SLA figures."""
        if self.cancelled:
            return
        self._cancelled(reason=reason, incident_version=incident_version, actor=ENGINE, at=at)

    def check(self, now: datetime, recipients: Mapping[str, str | None] | None = None) -> int:
        """Record every threshold and breach reached by `now`, each at its exact instant.

        `recipients` names who stands behind each escalation target now (the incident's
        assignment group, the account's ROC), when the caller knows.
        """
        if self.cancelled:
            return 0
        if now.tzinfo is None:
            raise InvalidCommand("the instant must carry a time zone")
        due: list[tuple[datetime, str, int]] = []
        for metric, m in self.metrics.items():
            for percent in self._percents():
                if percent in m["fired"]:
                    continue
                reached = self.instant_reaching(metric, timedelta(seconds=m["target"] * percent / 100))
                if reached is None or (m["stopped_at"] is not None and reached >= m["stopped_at"]):
                    continue
                # a warning falls when its share is reached; a breach only once the target is exceeded
                if reached < now or (percent != BREACH and reached == now):
                    due.append((reached, metric, percent))
        for reached, metric, percent in sorted(due):
            target = self.metrics[metric]["target"]
            if percent == BREACH:
                self._breached(metric=metric, target_seconds=target, actor=ENGINE, at=reached)
            else:
                self._threshold(metric=metric, threshold=percent, target_seconds=target, actor=ENGINE, at=reached)
            for escalation in self.terms.escalations:
                if escalation.threshold == percent:
                    self._escalated(
                        metric=metric,
                        threshold=percent,
                        notify=escalation.notify,
                        recipient=(recipients or {}).get(escalation.notify),
                        actor=ENGINE,
                        at=reached,
                    )
        return len(due)

    # -- mutators ------------------------------------------------------------------

    @event(ClocksPaused)
    def _paused(self, reason: str, metrics: list[str], incident_version: int, actor: str, at: datetime) -> None:
        self.incident_version = incident_version
        self.paused_reason = reason
        for metric in metrics:
            m = self.metrics[metric]
            m["segments"] = [*m["segments"], (m["running_since"], at)]
            m["running_since"] = None
            m["deadline"] = None

    @event(ClocksResumed)
    def _resumed(
        self,
        reason: str,
        metrics: list[str],
        deadlines: dict[str, str],
        incident_version: int,
        actor: str,
        at: datetime,
    ) -> None:
        self.incident_version = incident_version
        self.paused_reason = None
        for metric in metrics:
            self.metrics[metric]["running_since"] = at
            self.metrics[metric]["deadline"] = deadlines.get(metric)

    @event(ClockStopped)
    def _stopped(
        self,
        metric: str,
        reason: str,
        elapsed_seconds: float,
        met: bool,
        incident_version: int,
        actor: str,
        at: datetime,
    ) -> None:
        self.incident_version = incident_version
        m = self.metrics[metric]
        if m["running_since"] is not None:
            m["segments"] = [*m["segments"], (m["running_since"], at)]
        m["running_since"] = None
        m["stopped_at"] = at
        m["met"] = met
        m["deadline"] = None
        if all(v["running_since"] is None for v in self.metrics.values()):
            self.paused_reason = None

    @event(ClockRestarted)
    def _restarted(
        self, metric: str, reason: str, deadline: str, incident_version: int, actor: str, at: datetime
    ) -> None:
        self.incident_version = incident_version
        m = self.metrics[metric]
        m["running_since"] = at
        m["stopped_at"] = None
        m["met"] = None
        m["deadline"] = deadline

    @event(Retargeted)
    def _retargeted(
        self,
        priority: int,
        previous_priority: int,
        targets: dict[str, int],
        reason: str,
        deadlines: dict[str, str],
        incident_version: int,
        actor: str,
        at: datetime,
    ) -> None:
        self.incident_version = incident_version
        data = self.terms.to_dict()
        data.update(priority=priority, targets={**data["targets"], **targets})
        self.terms = SlaTerms.from_dict(data)
        for metric, seconds in targets.items():
            m = self.metrics[metric]
            m["target"] = seconds
            if metric in deadlines:
                m["deadline"] = deadlines[metric]

    @event(ThresholdReached)
    def _threshold(self, metric: str, threshold: int, target_seconds: int, actor: str, at: datetime) -> None:
        self.metrics[metric]["fired"] = [*self.metrics[metric]["fired"], threshold]

    @event(Breached)
    def _breached(self, metric: str, target_seconds: int, actor: str, at: datetime) -> None:
        m = self.metrics[metric]
        m["fired"] = [*m["fired"], BREACH]
        m["breached_at"] = at

    @event(Escalated)
    def _escalated(
        self, metric: str, threshold: int, notify: str, recipient: str | None, actor: str, at: datetime
    ) -> None:
        pass

    @event(ClocksCancelled)
    def _cancelled(self, reason: str, incident_version: int, actor: str, at: datetime) -> None:
        self.incident_version = incident_version
        self.cancelled = True
        for m in self.metrics.values():
            if m["running_since"] is not None:
                m["segments"] = [*m["segments"], (m["running_since"], at)]
                m["running_since"] = None
            m["deadline"] = None

    # -- figures -------------------------------------------------------------------

    def figures(self, now: datetime) -> dict[str, Any]:
        """Plain values for dashboards and statements: per metric target, elapsed, state, outcome."""
        out: dict[str, Any] = {
            "incident_id": str(self.incident_id),
            "account": self.account,
            "service": self.terms.service,
            "priority": self.terms.priority,
            "contract_version": self.terms.contract_version,
            "started_at": self.started_at,
            "cancelled": self.cancelled,
            "paused_reason": self.paused_reason,
            "metrics": {},
        }
        for metric, m in self.metrics.items():
            state = (
                "stopped" if m["stopped_at"] else "running" if m["running_since"] is not None
                else "cancelled" if self.cancelled else "paused"
            )  # fmt: skip
            elapsed = self.elapsed(metric, m["stopped_at"] or now)
            out["metrics"][metric] = {
                "target_seconds": m["target"],
                "elapsed_seconds": elapsed.total_seconds(),
                "state": state,
                "met": m["met"],
                "breached_at": m["breached_at"],
                "stopped_at": m["stopped_at"],
                "deadline": self.deadline(metric) if state == "running" else None,
            }
        return out
