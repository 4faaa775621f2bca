"""The Incident aggregate: an unplanned interruption, from logging to closure."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import IllegalTransition, InvalidCommand
from domain.priority import priority_of

CHANNELS = ("phone", "extranet", "monitoring", "email")
HOLD_REASONS = ("awaiting_customer", "awaiting_supplier", "awaiting_change")
RESOLUTION_CODES = (
    "fixed",
    "workaround",
    "no_fault_found",
    "duplicate",
    "user_error",
    "third_party",
)

NEW = "new"
ACKNOWLEDGED = "acknowledged"
ASSIGNED = "assigned"
ON_HOLD = "on_hold"
RESTORED = "restored"
RESOLVED = "resolved"
CLOSED = "closed"
CANCELLED = "cancelled"

STATUSES = (NEW, ACKNOWLEDGED, ASSIGNED, ON_HOLD, RESTORED, RESOLVED, CLOSED, CANCELLED)
OPEN_STATUSES = (NEW, ACKNOWLEDGED, ASSIGNED, ON_HOLD, RESTORED)
"""Statuses in which someone still has work to do on the incident."""


def _required(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommand(f"{name} is required")
    return value.strip()


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidCommand(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def _aware(at: object) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidCommand(f"the instant must be a date-time with a time zone, not {at!r}")
    return at


class Incident(Aggregate):
    """An incident on a customer account: restore service fast, then resolve and close."""

    class Event(Aggregate.Event):
        actor: str
        at: datetime

    class Logged(Event, Aggregate.Created):
        account: str
        service: str | None
        ci: str | None
        title: str
        description: str
        impact: int
        urgency: int
        priority: int
        channel: str
        reporter: str

    class Acknowledged(Event):
        pass

    class Reprioritised(Event):
        impact: int
        urgency: int
        priority: int
        previous_priority: int

    class Assigned(Event):
        group: str
        assignee: str | None

    class PutOnHold(Event):
        reason: str
        note: str

    class Resumed(Event):
        pass

    class ServiceRestored(Event):
        note: str

    class Resolved(Event):
        code: str
        notes: str

    class Reopened(Event):
        reason: str

    class Closed(Event):
        pass

    class Cancelled(Event):
        reason: str

    @event(Logged)
    def __init__(
        self,
        *,
        account: str,
        service: str | None,
        ci: str | None,
        title: str,
        description: str,
        impact: int,
        urgency: int,
        priority: int,
        channel: str,
        reporter: str,
        actor: str,
        at: datetime,
    ) -> None:
        self.account = account
        self.service = service
        self.ci = ci
        self.title = title
        self.description = description
        self.impact = impact
        self.urgency = urgency
        self.priority = priority
        self.channel = channel
        self.reporter = reporter
        self.logged_at = at
        self.last_at = at
        self.status = NEW
        self.acknowledged_at: datetime | None = None
        self.assignment_group: str | None = None
        self.assignee: str | None = None
        self.hold_reason: str | None = None
        self.status_before_hold: str | None = None
        self.restored_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.resolution_code: str | None = None
        self.closed_at: datetime | None = None
        self.cancelled_at: datetime | None = None

    @classmethod
    def log(
        cls,
        *,
        id: UUID,  # noqa: A002 - the application chooses ids, the aggregate never does
        account: str,
        title: str,
        impact: int,
        urgency: int,
        channel: str,
        reporter: str,
        actor: str,
        at: datetime,
        service: str | None = None,
        ci: str | None = None,
        description: str = "",
    ) -> Incident:
        """Log a new incident on an account's service or configuration item."""
        service = service.strip() if isinstance(service, str) and service.strip() else None
        ci = ci.strip() if isinstance(ci, str) and ci.strip() else None
        if service is None and ci is None:
            raise InvalidCommand("an incident must name the service or the CI it affects")
        return cls._create(
            cls.Logged,
            id=id,
            account=_required("account", account),
            service=service,
            ci=ci,
            title=_required("title", title),
            description=description or "",
            impact=impact,
            urgency=urgency,
            priority=priority_of(impact, urgency),
            channel=_one_of("channel", channel, CHANNELS),
            reporter=_required("reporter", reporter),
            actor=_required("actor", actor),
            at=_aware(at),
        )

    # -- commands -----------------------------------------------------------------

    def acknowledge(self, *, actor: str, at: datetime) -> None:
        """Take notice of the incident: stops the response clock."""
        self._check("acknowledge", actor, at)
        if self.acknowledged_at is not None:
            raise IllegalTransition(
                f"cannot acknowledge incident {self.id}: it was already acknowledged"
                f" at {self.acknowledged_at.isoformat()}"
            )
        self._refuse_unless("acknowledge", OPEN_STATUSES)
        self._acknowledged(actor=actor, at=at)

    def reprioritise(self, *, impact: int, urgency: int, actor: str, at: datetime) -> None:
        """Change impact and urgency; the priority is recomputed from the matrix."""
        self._check("reprioritise", actor, at)
        self._refuse_unless("reprioritise", OPEN_STATUSES)
        priority = priority_of(impact, urgency)
        if (impact, urgency) == (self.impact, self.urgency):
            raise IllegalTransition(
                f"cannot reprioritise incident {self.id}: impact {impact} and urgency {urgency} are unchanged"
            )
        self._reprioritised(
            impact=impact, urgency=urgency, priority=priority, previous_priority=self.priority,
            actor=actor, at=at,
        )  # fmt: skip

    def assign(self, *, group: str, assignee: str | None = None, actor: str, at: datetime) -> None:
        """Give the incident to an assignment group, and optionally to one person in it."""
        self._check("assign", actor, at)
        self._refuse_unless("assign", OPEN_STATUSES)
        group = _required("group", group)
        assignee = assignee.strip() if isinstance(assignee, str) and assignee.strip() else None
        if (group, assignee) == (self.assignment_group, self.assignee):
            raise IllegalTransition(
                f"cannot assign incident {self.id}: it is already assigned to {self._assignment_text()}"
            )
        self._assigned(group=group, assignee=assignee, actor=actor, at=at)

    def hold(self, *, reason: str, note: str = "", actor: str, at: datetime) -> None:
        """Put the incident on hold while waiting on the customer, a supplier or a change."""
        self._check("put on hold", actor, at)
        if self.status == ON_HOLD:
            raise IllegalTransition(
                f"cannot put incident {self.id} on hold: it is already on hold ({self.hold_reason})"
            )
        self._refuse_unless("put on hold", (NEW, ACKNOWLEDGED, ASSIGNED, RESTORED))
        reason = _one_of("reason", reason, HOLD_REASONS)
        self._put_on_hold(reason=reason, note=note or "", actor=actor, at=at)

    def resume(self, *, actor: str, at: datetime) -> None:
        """Take the incident off hold."""
        self._check("resume", actor, at)
        if self.status != ON_HOLD:
            raise IllegalTransition(
                f"cannot resume incident {self.id}: it is not on hold (it is {self._status_text()})"
            )
        self._resumed(actor=actor, at=at)

    def restore(self, *, note: str = "", actor: str, at: datetime) -> None:
        """Record that service is back (the GTR stop point), which may precede resolution."""
        self._check("restore service on", actor, at)
        if self.restored_at is not None and self.status in OPEN_STATUSES:
            raise IllegalTransition(
                f"cannot restore service on incident {self.id}: service was already restored"
                f" at {self.restored_at.isoformat()}"
            )
        self._refuse_unless("restore service on", (NEW, ACKNOWLEDGED, ASSIGNED, ON_HOLD))
        self._service_restored(note=note or "", actor=actor, at=at)

    def resolve(self, *, code: str, notes: str = "", actor: str, at: datetime) -> None:
        """Resolve the incident; service is restored then too if it was not already."""
        self._check("resolve", actor, at)
        self._refuse_unless("resolve", OPEN_STATUSES)
        code = _one_of("resolution code", code, RESOLUTION_CODES)
        if self.restored_at is None:
            self._service_restored(note="restored on resolution", actor=actor, at=at)
        self._resolved(code=code, notes=notes or "", actor=actor, at=at)

    def reopen(self, *, reason: str, actor: str, at: datetime) -> None:
        """Reopen a resolved incident whose resolution did not hold; service is down again."""
        self._check("reopen", actor, at)
        self._refuse_unless("reopen", (RESOLVED,))
        self._reopened(reason=_required("reason", reason), actor=actor, at=at)

    def close(self, *, actor: str, at: datetime) -> None:
        """Close a resolved incident for good."""
        self._check("close", actor, at)
        self._refuse_unless("close", (RESOLVED,))
        self._closed(actor=actor, at=at)

    def cancel(self, *, reason: str, actor: str, at: datetime) -> None:
        """Cancel an incident logged by mistake or as a duplicate, before service was restored."""
        self._check("cancel", actor, at)
        if self.restored_at is not None and self.status in OPEN_STATUSES:
            raise IllegalTransition(
                f"cannot cancel incident {self.id}: service was restored, resolve it instead"
            )
        self._refuse_unless("cancel", (NEW, ACKNOWLEDGED, ASSIGNED, ON_HOLD))
        self._cancelled(reason=_required("reason", reason), actor=actor, at=at)

    # -- rules --------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def _check(self, verb: str, actor: str, at: datetime) -> None:
        _required("actor", actor)
        _aware(at)
        if at < self.last_at:
            raise InvalidCommand(
                f"cannot {verb} incident {self.id} at {at.isoformat()}: that is before its"
                f" last recorded step at {self.last_at.isoformat()}"
            )

    def _refuse_unless(self, verb: str, allowed: tuple[str, ...]) -> None:
        if self.status not in allowed:
            raise IllegalTransition(
                f"cannot {verb} incident {self.id}: it is {self._status_text()}"
                f"{_WHY.get((verb, self.status), '')}"
            )

    def _status_text(self) -> str:
        return self.status.replace("_", " ")

    def _assignment_text(self) -> str:
        if self.assignee:
            return f"{self.assignee} ({self.assignment_group})"
        return str(self.assignment_group)

    # -- mutators: only assign state ---------------------------------------------

    def _stamp(self, at: datetime) -> None:
        self.last_at = at

    @event(Acknowledged)
    def _acknowledged(self, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.acknowledged_at = at
        if self.status == NEW:
            self.status = ACKNOWLEDGED
        elif self.status == ON_HOLD and self.status_before_hold == NEW:
            self.status_before_hold = ACKNOWLEDGED

    @event(Reprioritised)
    def _reprioritised(
        self, impact: int, urgency: int, priority: int, previous_priority: int, actor: str, at: datetime
    ) -> None:
        self._stamp(at)
        self.impact = impact
        self.urgency = urgency
        self.priority = priority

    @event(Assigned)
    def _assigned(self, group: str, assignee: str | None, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.assignment_group = group
        self.assignee = assignee
        if self.status in (NEW, ACKNOWLEDGED):
            self.status = ASSIGNED
        elif self.status == ON_HOLD and self.status_before_hold in (NEW, ACKNOWLEDGED):
            self.status_before_hold = ASSIGNED

    @event(PutOnHold)
    def _put_on_hold(self, reason: str, note: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.status_before_hold = self.status
        self.hold_reason = reason
        self.status = ON_HOLD

    @event(Resumed)
    def _resumed(self, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.status = self.status_before_hold or ACKNOWLEDGED
        self.status_before_hold = None
        self.hold_reason = None

    @event(ServiceRestored)
    def _service_restored(self, note: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.restored_at = at
        self.status = RESTORED
        self.status_before_hold = None
        self.hold_reason = None

    @event(Resolved)
    def _resolved(self, code: str, notes: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.resolved_at = at
        self.resolution_code = code
        self.status = RESOLVED
        self.status_before_hold = None
        self.hold_reason = None

    @event(Reopened)
    def _reopened(self, reason: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.restored_at = None
        self.resolved_at = None
        self.resolution_code = None
        self.status = ASSIGNED if self.assignment_group else ACKNOWLEDGED if self.acknowledged_at else NEW

    @event(Closed)
    def _closed(self, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.closed_at = at
        self.status = CLOSED

    @event(Cancelled)
    def _cancelled(self, reason: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.cancelled_at = at
        self.status = CANCELLED
        self.status_before_hold = None
        self.hold_reason = None

    def summary(self) -> dict[str, Any]:
        """The incident's current state as plain values."""
        return {
            "id": str(self.id),
            "version": self.version,
            "account": self.account,
            "service": self.service,
            "ci": self.ci,
            "title": self.title,
            "description": self.description,
            "impact": self.impact,
            "urgency": self.urgency,
            "priority": self.priority,
            "channel": self.channel,
            "reporter": self.reporter,
            "status": self.status,
            "assignment_group": self.assignment_group,
            "assignee": self.assignee,
            "hold_reason": self.hold_reason,
            "logged_at": self.logged_at,
            "acknowledged_at": self.acknowledged_at,
            "restored_at": self.restored_at,
            "resolved_at": self.resolved_at,
            "resolution_code": self.resolution_code,
            "closed_at": self.closed_at,
            "cancelled_at": self.cancelled_at,
        }


_WHY = {
    ("close", NEW): "; only a resolved incident can be closed",
    ("close", ACKNOWLEDGED): "; only a resolved incident can be closed",
    ("close", ASSIGNED): "; only a resolved incident can be closed",
    ("close", ON_HOLD): "; only a resolved incident can be closed",
    ("close", RESTORED): "; service is restored but the incident must be resolved first",
    ("reopen", CLOSED): "; a closed incident cannot be reopened, log a new one",
    ("cancel", RESTORED): "; service was restored, resolve it instead",
    ("cancel", RESOLVED): "; it was resolved, close it instead",
    ("restore service on", RESOLVED): "; reopen it first if service is down again",
}
