"""The ServiceContract aggregate: an account's SLA terms, versioned and effective-dated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.calendar import BusinessCalendar, CalendarSpec
from domain.errors import IllegalTransition, InvalidCommand
from domain.rules import TextsChecked, aware, within_reach

METRICS = ("response", "restoration", "resolution")
"""Response stops at acknowledgement, restoration (GTR) when service is back, resolution at resolve."""
DEFAULT_THRESHOLDS = (50, 75, 90)
DEFAULT_PAUSING_REASONS = ("awaiting_customer",)
PRIORITIES = (1, 2, 3, 4)
ESCALATION_TARGETS = ("assignment_group", "roc", "management")

_CONTRACT_NS = uuid5(NAMESPACE_URL, "urn:itil-engine:contract")


def contract_id(account: str) -> UUID:
    """Each account has one contract aggregate, whose versions hold its successive terms."""
    return uuid5(_CONTRACT_NS, account)


MAX_TARGET_SECONDS = 366 * 86400
"""The longest target a contract may set (a year of covered time): beyond, clocks could not be computed."""


@dataclass(frozen=True)
class Escalation:
    """At `threshold` percent of a metric's target, inform `notify` (a group, the ROC, management)."""

    threshold: int
    notify: str

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "notify": self.notify}


@dataclass(frozen=True)
class SlaTerms:
    """What one incident is measured against: bound when its clocks start, never changed after."""

    contract_version: int
    service: str | None
    priority: int
    targets: Mapping[str, int]  # metric -> target in seconds of covered time
    calendar: CalendarSpec
    pausing_reasons: tuple[str, ...] = DEFAULT_PAUSING_REASONS
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    escalations: tuple[Escalation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "contract_version": self.contract_version,
            "service": self.service,
            "priority": self.priority,
            "targets": dict(self.targets),
            "calendar": self.calendar.to_dict(),
            "pausing_reasons": list(self.pausing_reasons),
            "thresholds": list(self.thresholds),
            "escalations": [e.to_dict() for e in self.escalations],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlaTerms:
        return cls(
            contract_version=int(data["contract_version"]),
            service=data.get("service"),
            priority=int(data["priority"]),
            targets={k: int(v) for k, v in data["targets"].items()},
            calendar=CalendarSpec.from_dict(data["calendar"]),
            pausing_reasons=tuple(data.get("pausing_reasons", DEFAULT_PAUSING_REASONS)),
            thresholds=tuple(int(t) for t in data.get("thresholds", DEFAULT_THRESHOLDS)),
            escalations=tuple(Escalation(int(e["threshold"]), e["notify"]) for e in data.get("escalations", ())),
        )


@dataclass(frozen=True)
class Terms:
    """One version's terms for the whole account or one service: targets per priority, calendar."""

    targets: Mapping[int, Mapping[str, int]]  # priority -> metric -> seconds
    calendar: CalendarSpec = field(default_factory=CalendarSpec)
    pausing_reasons: tuple[str, ...] = DEFAULT_PAUSING_REASONS
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    escalations: tuple[Escalation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": {str(p): dict(m) for p, m in self.targets.items()},
            "calendar": self.calendar.to_dict(),
            "pausing_reasons": list(self.pausing_reasons),
            "thresholds": list(self.thresholds),
            "escalations": [e.to_dict() for e in self.escalations],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Terms:
        return cls(
            targets={int(p): {k: int(v) for k, v in m.items()} for p, m in data["targets"].items()},
            calendar=CalendarSpec.from_dict(data["calendar"]),
            pausing_reasons=tuple(data.get("pausing_reasons", DEFAULT_PAUSING_REASONS)),
            thresholds=tuple(int(t) for t in data.get("thresholds", DEFAULT_THRESHOLDS)),
            escalations=tuple(Escalation(int(e["threshold"]), e["notify"]) for e in data.get("escalations", ())),
        )

    def validate(self) -> Terms:
        if not self.targets:
            raise InvalidCommand("a contract needs targets for at least one priority")
        for priority, metrics in self.targets.items():
            if priority not in PRIORITIES:
                raise InvalidCommand(f"priority must be 1 to 4, not {priority!r}")
            if not metrics:
                raise InvalidCommand(f"P{priority} has no targets")
            for metric, seconds in metrics.items():
                if metric not in METRICS:
                    raise InvalidCommand(f"unknown metric {metric!r}: use {', '.join(METRICS)}")
                if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
                    raise InvalidCommand(f"P{priority} {metric} target must be a positive duration")
                if seconds > MAX_TARGET_SECONDS:
                    raise InvalidCommand(
                        f"P{priority} {metric} target must be at most {MAX_TARGET_SECONDS // 86400} days,"
                        f" not {seconds} seconds"
                    )
        BusinessCalendar(self.calendar)  # raises InvalidCommand on a bad calendar
        if sorted(set(self.thresholds)) != list(self.thresholds) or any(not 0 < t < 100 for t in self.thresholds):
            raise InvalidCommand("warning thresholds must be increasing percentages between 0 and 100")
        for e in self.escalations:
            if not 0 < e.threshold <= 100:
                raise InvalidCommand(f"escalation threshold {e.threshold} must be a percentage up to 100")
            if e.notify not in ESCALATION_TARGETS:
                raise InvalidCommand(f"escalations notify one of {', '.join(ESCALATION_TARGETS)}, not {e.notify!r}")
        return self


def standard_terms(calendar: CalendarSpec | None = None) -> Terms:
    """The usual offer: GTR 1 h / 4 h / 8 h; ROC informed at 90 %."""
    hour = 3600
    return Terms(
        targets={
            1: {"response": 15 * 60, "restoration": 1 * hour, "resolution": 8 * hour},
            2: {"response": 30 * 60, "restoration": 4 * hour, "resolution": 24 * hour},
            3: {"response": 1 * hour, "restoration": 8 * hour, "resolution": 40 * hour},
            4: {"response": 4 * hour, "restoration": 24 * hour},
        },
        calendar=calendar or CalendarSpec(),
        escalations=(Escalation(75, "assignment_group"), Escalation(90, "roc")),
    )


class ServiceContract(TextsChecked, Aggregate):
    """An account's service contract; each version applies from its date to incidents logged after it."""

    class Event(Aggregate.Event):
        actor: str
        at: datetime

    class Registered(Event, Aggregate.Created):
        account: str
        name: str

    class VersionAdded(Event):
        version: int
        effective_from: datetime
        service: str | None
        terms: dict[str, Any]

    @event(Registered)
    def __init__(self, *, account: str, name: str, actor: str, at: datetime) -> None:
        self.account = account
        self.name = name
        self.last_at = at
        self.versions: list[dict[str, Any]] = []

    @classmethod
    def register(cls, *, account: str, name: str, actor: str, at: datetime) -> ServiceContract:
        if not account or not account.strip():
            raise InvalidCommand("account is required")
        if not actor:
            raise InvalidCommand("actor is required")
        if at.tzinfo is None:
            raise InvalidCommand("the instant must carry a time zone")
        return cls._create(
            cls.Registered, id=contract_id(account.strip()), account=account.strip(),
            name=(name or account).strip(), actor=actor, at=at,
        )  # fmt: skip

    def add_version(
        self, *, effective_from: datetime, terms: Terms, service: str | None = None, actor: str, at: datetime
    ) -> int:
        """Add terms (for the account, or one service) applying to incidents logged from `effective_from`."""
        if not actor:
            raise InvalidCommand("actor is required")
        if effective_from.tzinfo is None or at.tzinfo is None:
            raise InvalidCommand("instants must carry a time zone")
        aware(at)
        within_reach("effective_from", aware(effective_from, "effective_from"), at)
        if effective_from < at - timedelta(minutes=5):
            raise IllegalTransition(
                f"cannot add a version to the contract of {self.account} effective from"
                f" {effective_from.isoformat()}: that is in the past, and a contract change never"
                " rewrites how earlier incidents were measured"
            )
        terms.validate()
        version = len(self.versions) + 1
        self._version_added(
            version=version, effective_from=effective_from, service=service or None,
            terms=terms.to_dict(), actor=actor, at=at,
        )  # fmt: skip
        return version

    @event(VersionAdded)
    def _version_added(
        self,
        version: int,
        effective_from: datetime,
        service: str | None,
        terms: dict[str, Any],
        actor: str,
        at: datetime,
    ) -> None:
        self.last_at = at
        self.versions.append({"version": version, "effective_from": effective_from, "service": service, "terms": terms})

    def terms_for(self, *, service: str | None, priority: int, at: datetime) -> SlaTerms | None:
        """The terms in force at `at` for `service` (its own version if any, else the account's)."""
        return terms_in_force(self.versions, service=service, priority=priority, at=at)


def terms_in_force(
    versions: Sequence[Mapping[str, Any]], *, service: str | None, priority: int, at: datetime
) -> SlaTerms | None:
    """Among contract versions, the one in force at `at` (latest effective date), preferring `service`'s."""
    candidates = [v for v in versions if v["effective_from"] <= at]
    specific = [v for v in candidates if service and v["service"] == service]
    general = [v for v in candidates if v["service"] is None]
    if not (specific or general):
        return None
    chosen = max(specific or general, key=lambda v: (v["effective_from"], v["version"]))
    terms = Terms.from_dict(chosen["terms"])
    targets = terms.targets.get(priority)
    if not targets:
        return None
    return SlaTerms(
        contract_version=chosen["version"],
        service=chosen["service"],
        priority=priority,
        targets=dict(targets),
        calendar=terms.calendar,
        pausing_reasons=terms.pausing_reasons,
        thresholds=terms.thresholds,
        escalations=terms.escalations,
    )
