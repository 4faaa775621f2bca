"""The Incident aggregate: an unplanned interruption, from logging to closure.

Some 780 lines because one aggregate is one module (its ~20 past-tense events, each with its public
command checking the rule and its mutator, and the rules of its lifecycle); shared rules are in
`domain.rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.account import DEFAULT_REOPEN_PERIOD, period_text
from domain.errors import IllegalTransition, InvalidCommand
from domain.priority import DEFAULT_MATRIX, priority_of
from domain.rules import (
    StatusFlow,
    TextsChecked,
    aware,
    check_actor_and_instant,
    check_name,
    check_uuid,
    one_of,
    optional,
    required,
)

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

COMMENT_MAX_LENGTH = 20_000
"""The longest comment accepted, in characters (as the extranet's comment.add contract allows)."""

ASSIGNMENT_GROUPS = {"N1 hotline": 1, "N2 systems": 2, "N2 network": 2, "field technicians": 2, "N3 experts": 3}
"""The support groups and their tier; a functional escalation goes to a higher tier."""
ESCALATION_LEVELS = ("roc", "management")
"""Hierarchical escalation levels, lowest first."""
_LEVEL_NAMES = {"roc": "the ROC", "management": "management"}


def _rank(level: str) -> int:
    return ESCALATION_LEVELS.index(level)


class Incident(TextsChecked, StatusFlow, Aggregate):
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
        category: str | None = None
        related_incident: UUID | None = None

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 (the walking skeleton) had no category and no related incident."""
            state.setdefault("category", None)
            state.setdefault("related_incident", None)

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

    class Categorised(Event):
        category: str
        previous_category: str | None

    class FunctionallyEscalated(Event):
        from_group: str
        to_group: str
        reason: str

    class HierarchicallyEscalated(Event):
        level: str
        reason: str

    class MajorIncidentDeclared(Event):
        reason: str

    class ChildAttached(Event):
        child_id: UUID

    class AttachedToParent(Event):
        parent_id: UUID

    class ProblemLinked(Event):
        problem_id: UUID

    class ProblemUnlinked(Event):
        problem_id: UUID

    class WorkaroundNoted(Event):
        problem_id: UUID
        workaround: str

    class Commented(Event):
        """A comment: customer-visible (the customer reads it on the extranet) or an internal work note."""

        author: str
        text: str
        customer_visible: bool

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
        category: str | None = None,
        related_incident: UUID | None = None,
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
        self.category = category
        self.related_incident = related_incident
        self.is_major = False
        self.major_declared_at: datetime | None = None
        self.escalation_level: str | None = None
        self.parent_id: UUID | None = None
        self.children: list[UUID] = []
        self.problem_ids: list[UUID] = []
        self.workaround: str | None = None
        self.workaround_problem_id: UUID | None = None
        self.comment_count = 0
        self.last_commented_at: datetime | None = None

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
        category: str | None = None,
        related_incident: UUID | None = None,
        matrix: Mapping[tuple[int, int], int] = DEFAULT_MATRIX,
    ) -> Incident:
        """Log a new incident on an account's service or configuration item.

        The priority comes from impact and urgency through the account's `matrix`; `related_incident`
        names an earlier incident this one follows up (one that could no longer be reopened).
        """
        service = optional(service)
        ci = optional(ci)
        if service is None and ci is None:
            raise InvalidCommand("an incident must name the service or the CI it affects")
        if related_incident is not None and check_uuid("the related incident", related_incident) == id:
            raise InvalidCommand("an incident cannot be related to itself")
        return cls._create(
            cls.Logged,
            id=id,
            account=check_name("account", account),
            service=service,
            ci=ci,
            title=required("title", title),
            description=description or "",
            impact=impact,
            urgency=urgency,
            priority=priority_of(impact, urgency, matrix),
            channel=one_of("channel", channel, CHANNELS),
            reporter=required("reporter", reporter),
            actor=required("actor", actor),
            at=aware(at),
            category=optional(category),
            related_incident=related_incident,
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

    def reprioritise(
        self,
        *,
        impact: int,
        urgency: int,
        actor: str,
        at: datetime,
        matrix: Mapping[tuple[int, int], int] = DEFAULT_MATRIX,
    ) -> None:
        """Change impact and urgency; the priority is recomputed through the account's matrix."""
        self._check("reprioritise", actor, at)
        self._refuse_unless("reprioritise", OPEN_STATUSES)
        priority = priority_of(impact, urgency, matrix)
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
        group = required("group", group)
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
        reason = one_of("reason", reason, HOLD_REASONS)
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
        code = one_of("resolution code", code, RESOLUTION_CODES)
        if self.restored_at is None:
            self._service_restored(note="restored on resolution", actor=actor, at=at)
        self._resolved(code=code, notes=notes or "", actor=actor, at=at)

    def reopen(
        self, *, reason: str, actor: str, at: datetime, reopen_within: timedelta = DEFAULT_REOPEN_PERIOD
    ) -> None:
        """Reopen a resolved incident whose resolution did not hold, within the account's reopen period."""
        self._check("reopen", actor, at)
        self._refuse_unless("reopen", (RESOLVED,))
        reason = required("reason", reason)
        assert self.resolved_at is not None
        if at > self.resolved_at + reopen_within:
            raise IllegalTransition(
                f"cannot reopen incident {self.id}: it was resolved at {self.resolved_at.isoformat()}, more than"
                f" {period_text(reopen_within)} ago (the account's reopen period); log a new incident related to"
                " this one instead"
            )
        self._reopened(reason=reason, actor=actor, at=at)

    def close(self, *, actor: str, at: datetime) -> None:
        """Close a resolved incident for good."""
        self._check("close", actor, at)
        self._refuse_unless("close", (RESOLVED,))
        self._closed(actor=actor, at=at)

    def cancel(self, *, reason: str, actor: str, at: datetime) -> None:
        """Cancel an incident logged by mistake or as a duplicate, before service was restored."""
        self._check("cancel", actor, at)
        if self.restored_at is not None and self.status in OPEN_STATUSES:
            raise IllegalTransition(f"cannot cancel incident {self.id}: service was restored, resolve it instead")
        self._refuse_unless("cancel", (NEW, ACKNOWLEDGED, ASSIGNED, ON_HOLD))
        self._cancelled(reason=required("reason", reason), actor=actor, at=at)

    def categorise(self, *, category: str, actor: str, at: datetime) -> None:
        """Say what kind of incident it is ("network", "payment terminal"…), for routing and statistics."""
        self._check("categorise", actor, at)
        self._refuse_unless("categorise", (*OPEN_STATUSES, RESOLVED))
        category = required("category", category)
        if category == self.category:
            raise IllegalTransition(f"cannot categorise incident {self.id}: it is already in category {category!r}")
        self._categorised(category=category, previous_category=self.category, actor=actor, at=at)

    def escalate_functionally(self, *, to_group: str, reason: str, actor: str, at: datetime) -> None:
        """Hand the incident to a group of a higher support tier (N1 -> N2 -> N3); nobody in it yet."""
        self._check("escalate", actor, at)
        self._refuse_unless("escalate", OPEN_STATUSES)
        to_group = required("group", to_group)
        reason = required("reason", reason)
        if self.assignment_group is None:
            raise IllegalTransition(
                f"cannot escalate incident {self.id} to {to_group}: it is not assigned to a group yet, assign it first"
            )
        from_tier = ASSIGNMENT_GROUPS.get(self.assignment_group)
        to_tier = ASSIGNMENT_GROUPS.get(to_group)
        if to_tier is None:
            raise InvalidCommand(
                f"cannot escalate incident {self.id} to {to_group}: its support tier is unknown;"
                f" escalate to one of {', '.join(ASSIGNMENT_GROUPS)}, or assign it instead"
            )
        if from_tier is None:
            raise IllegalTransition(
                f"cannot escalate incident {self.id} from {self.assignment_group} to {to_group} (tier {to_tier}):"
                f" the tier of {self.assignment_group} is unknown, assign it instead"
            )
        if to_tier <= from_tier:
            raise IllegalTransition(
                f"cannot escalate incident {self.id} from {self.assignment_group} (tier {from_tier}) to {to_group}"
                f" (tier {to_tier}): a functional escalation goes to a higher tier, assign it instead"
            )
        self._functionally_escalated(
            from_group=self.assignment_group, to_group=to_group, reason=reason, actor=actor, at=at
        )

    def escalate_hierarchically(self, *, level: str, reason: str, actor: str, at: datetime) -> None:
        """Bring the incident to the attention of the account's ROC, or of management."""
        self._check("escalate", actor, at)
        self._refuse_unless("escalate", OPEN_STATUSES)
        level = one_of("level", level, ESCALATION_LEVELS)
        reason = required("reason", reason)
        if self.escalation_level is not None and _rank(level) <= _rank(self.escalation_level):
            raise IllegalTransition(
                f"cannot escalate incident {self.id} to {_LEVEL_NAMES[level]}: it was already escalated to"
                f" {_LEVEL_NAMES[self.escalation_level]}"
            )
        self._hierarchically_escalated(level=level, reason=reason, actor=actor, at=at)

    def declare_major(self, *, reason: str, actor: str, at: datetime) -> None:
        """Declare a major incident: a widespread or critical outage run by its own procedure."""
        self._check("declare a major incident on", actor, at)
        if self.is_major:
            raise IllegalTransition(f"cannot declare incident {self.id} major: it already is a major incident")
        self._refuse_unless("declare a major incident on", OPEN_STATUSES)
        self._major_incident_declared(reason=required("reason", reason), actor=actor, at=at)

    def attach_child(self, *, child_id: UUID, actor: str, at: datetime) -> None:
        """Make another incident of the same outage a child of this one (mass outages)."""
        self._check("attach a child to", actor, at)
        self._check_attach_child(check_uuid("the child incident", child_id))
        self._child_attached(child_id=child_id, actor=actor, at=at)

    def attach_to_parent(self, *, parent_id: UUID, actor: str, at: datetime) -> None:
        """Make this incident a child of the parent incident of its outage."""
        self._check("attach", actor, at)
        self._check_attach_to_parent(check_uuid("the parent incident", parent_id))
        self._attached_to_parent(parent_id=parent_id, actor=actor, at=at)

    def link_problem(self, *, problem_id: UUID, actor: str, at: datetime) -> None:
        """Record that this incident is caused by a problem under investigation."""
        self._check("link a problem to", actor, at)
        problem_id = check_uuid("the problem id", problem_id)
        if problem_id in self.problem_ids:
            raise IllegalTransition(f"cannot link incident {self.id} to problem {problem_id}: it is already linked")
        self._problem_linked(problem_id=problem_id, actor=actor, at=at)

    def unlink_problem(self, *, problem_id: UUID, actor: str, at: datetime) -> None:
        """Record that this incident turned out not to be caused by a problem it was linked to."""
        self._check("unlink a problem from", actor, at)
        problem_id = check_uuid("the problem id", problem_id)
        if problem_id not in self.problem_ids:
            raise IllegalTransition(
                f"cannot unlink incident {self.id} from problem {problem_id}: it is not linked to it"
            )
        self._problem_unlinked(problem_id=problem_id, actor=actor, at=at)

    def note_workaround(self, *, problem_id: UUID, workaround: str, actor: str, at: datetime) -> None:
        """Record the workaround a linked problem offers, so whoever works the incident can apply it."""
        self._check("note a workaround on", actor, at)
        problem_id = check_uuid("the problem id", problem_id)
        workaround = required("workaround", workaround)
        if problem_id not in self.problem_ids:
            raise IllegalTransition(
                f"cannot note a workaround on incident {self.id}: it is not linked to problem {problem_id},"
                " link it first"
            )
        if (problem_id, workaround) == (self.workaround_problem_id, self.workaround):
            raise IllegalTransition(
                f"cannot note a workaround on incident {self.id}: this workaround of problem {problem_id}"
                " is already noted"
            )
        self._workaround_noted(problem_id=problem_id, workaround=workaround, actor=actor, at=at)

    def comment(self, *, text: str, author: str, customer_visible: bool, actor: str, at: datetime) -> None:
        """Add a comment: customer-visible (what the customer reads and writes on the extranet) or an
        internal work note (for the teams only); `author` wrote it, `actor` entered it.

        Accepted while the incident is open and once it is resolved (the customer may still add
        something before confirming or refusing the resolution; a comment never reopens it). Refused
        once it is closed or cancelled: a closed incident cannot be reopened, so a new incident related
        to it is where anything new goes. The aggregate keeps only how many comments there are and
        when the last one came; their texts stay in the events.

        A comment keeps the instant it was written even when a step was recorded since (a customer
        writes at 10:00:00, the engineer acknowledges at 10:00:01, the extranet's message comes at
        10:00:02): it changes no status, so nothing is timed from it, and it does not move the
        incident's last recorded step, before which the other commands are refused.
        """
        check_actor_and_instant(actor, at)
        self._refuse_unless("comment on", (*OPEN_STATUSES, RESOLVED))
        text = required("the comment's text", text)
        if len(text) > COMMENT_MAX_LENGTH:
            raise InvalidCommand(
                f"a comment is at most {COMMENT_MAX_LENGTH:,} characters long; this one has {len(text):,}"
            )
        if not isinstance(customer_visible, bool):
            raise InvalidCommand(
                f"say whether the comment is visible to the customer (true or false), not {customer_visible!r}"
            )
        self._commented(
            author=required("the comment's author", author), text=text, customer_visible=customer_visible,
            actor=actor, at=at,
        )  # fmt: skip

    # -- rules --------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def _name(self) -> str:
        return f"incident {self.id}"

    def _refusal(self, verb: str) -> str:
        return f"it is {self._status_text()}{_WHY.get((verb, self.status), '')}"

    def _check_attach_child(self, child_id: UUID) -> None:
        if child_id == self.id:
            raise IllegalTransition(f"cannot attach incident {self.id} to itself")
        self._refuse_unless("attach a child to", _ATTACHABLE)
        if self.parent_id is not None:
            raise IllegalTransition(
                f"cannot attach a child to incident {self.id}: it is itself a child of incident {self.parent_id}"
            )
        if child_id in self.children:
            raise IllegalTransition(f"cannot attach incident {child_id} to incident {self.id}: it is already attached")

    def _check_attach_to_parent(self, parent_id: UUID) -> None:
        if parent_id == self.id:
            raise IllegalTransition(f"cannot attach incident {self.id} to itself")
        self._refuse_unless("attach", _ATTACHABLE)
        if self.parent_id is not None:
            raise IllegalTransition(
                f"cannot attach incident {self.id} to incident {parent_id}: it is already a child of incident"
                f" {self.parent_id}"
            )
        if self.children:
            raise IllegalTransition(
                f"cannot attach incident {self.id} to incident {parent_id}: it is itself the parent of"
                f" {len(self.children)} incident(s)"
            )

    def _status_text(self) -> str:
        return self.status.replace("_", " ")

    def _assignment_text(self) -> str:
        if self.assignee:
            return f"{self.assignee} ({self.assignment_group})"
        return str(self.assignment_group)

    # -- mutators: only assign state ---------------------------------------------

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
        self._give_to(group, assignee)

    def _give_to(self, group: str, assignee: str | None) -> None:
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

    @event(Categorised)
    def _categorised(self, category: str, previous_category: str | None, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.category = category

    @event(FunctionallyEscalated)
    def _functionally_escalated(self, from_group: str, to_group: str, reason: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self._give_to(to_group, None)

    @event(HierarchicallyEscalated)
    def _hierarchically_escalated(self, level: str, reason: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.escalation_level = level

    @event(MajorIncidentDeclared)
    def _major_incident_declared(self, reason: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.is_major = True
        self.major_declared_at = at

    @event(ChildAttached)
    def _child_attached(self, child_id: UUID, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.children = [*self.children, child_id]

    @event(AttachedToParent)
    def _attached_to_parent(self, parent_id: UUID, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.parent_id = parent_id

    @event(ProblemLinked)
    def _problem_linked(self, problem_id: UUID, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.problem_ids = [*self.problem_ids, problem_id]

    @event(ProblemUnlinked)
    def _problem_unlinked(self, problem_id: UUID, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.problem_ids = [p for p in self.problem_ids if p != problem_id]

    @event(WorkaroundNoted)
    def _workaround_noted(self, problem_id: UUID, workaround: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.workaround = workaround
        self.workaround_problem_id = problem_id

    @event(Commented)
    def _commented(self, author: str, text: str, customer_visible: bool, actor: str, at: datetime) -> None:
        self.comment_count += 1
        if self.last_commented_at is None or at > self.last_commented_at:
            self.last_commented_at = at

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
            "category": self.category,
            "related_incident": self.related_incident,
            "is_major": self.is_major,
            "major_declared_at": self.major_declared_at,
            "support_tier": ASSIGNMENT_GROUPS.get(self.assignment_group or ""),
            "escalation_level": self.escalation_level,
            "parent_id": self.parent_id,
            "children": list(self.children),
            "problem_ids": list(self.problem_ids),
            "workaround": self.workaround,
            "workaround_problem_id": self.workaround_problem_id,
            "comment_count": self.comment_count,
            "last_commented_at": self.last_commented_at,
        }


_ATTACHABLE = tuple(s for s in STATUSES if s not in (CLOSED, CANCELLED))


def attach(child: Incident, parent: Incident, *, actor: str, at: datetime) -> None:
    """Attach `child` to `parent` (one outage, one parent incident): both are checked before either changes."""
    if child.id == parent.id:
        raise IllegalTransition(f"cannot attach incident {child.id} to itself")
    if child.account != parent.account:
        raise IllegalTransition(
            f"cannot attach incident {child.id} of account {child.account} to incident {parent.id}:"
            f" that one is on account {parent.account}"
        )
    parent._check("attach a child to", actor, at)
    child._check("attach", actor, at)
    child._check_attach_to_parent(parent.id)
    parent._check_attach_child(child.id)
    parent.attach_child(child_id=child.id, actor=actor, at=at)
    child.attach_to_parent(parent_id=parent.id, actor=actor, at=at)


_WHY = {
    ("close", NEW): "; only a resolved incident can be closed",
    ("close", ACKNOWLEDGED): "; only a resolved incident can be closed",
    ("close", ASSIGNED): "; only a resolved incident can be closed",
    ("close", ON_HOLD): "; only a resolved incident can be closed",
    ("close", RESTORED): "; service is restored but the incident must be resolved first",
    ("reopen", CLOSED): "; a closed incident cannot be reopened, log a new one related to it",
    ("cancel", RESTORED): "; service was restored, resolve it instead",
    ("cancel", RESOLVED): "; it was resolved, close it instead",
    ("restore service on", RESOLVED): "; reopen it first if service is down again",
    ("comment on", CLOSED): "; a closed incident takes no more comments, log a new one related to it",
    ("comment on", CANCELLED): "; a cancelled incident takes no more comments",
}
