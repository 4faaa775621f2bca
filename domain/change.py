"""The Change aggregate: an addition, modification or removal that could affect services.

Standard changes come from a pre-approved template; normal changes are assessed, then
authorised by the change manager (low risk) or by a CAB (medium and high risk); emergency
changes go straight to an emergency CAB and may be assessed while it sits.

Some 780 lines because one aggregate is one module (its ~15 past-tense events, each with its public
command checking the rule and its mutator, and the CAB's rules); shared rules are in `domain.rules`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import IllegalTransition, InvalidCommand
from domain.rules import StatusFlow, TextsChecked, aware, check_name, check_uuid, one_of, required

STANDARD = "standard"
NORMAL = "normal"
EMERGENCY = "emergency"
TYPES = (STANDARD, NORMAL, EMERGENCY)

RISKS = ("low", "medium", "high")

DRAFT = "draft"
ASSESSMENT = "assessment"
AUTHORISATION = "authorisation"
AUTHORISED = "authorised"
SCHEDULED = "scheduled"
IMPLEMENTING = "implementing"
IMPLEMENTED = "implemented"
FAILED = "failed"
REVIEW = "review"
CLOSED = "closed"
REJECTED = "rejected"
CANCELLED = "cancelled"

STATUSES = (
    DRAFT,
    ASSESSMENT,
    AUTHORISATION,
    AUTHORISED,
    SCHEDULED,
    IMPLEMENTING,
    IMPLEMENTED,
    FAILED,
    REVIEW,
    CLOSED,
    REJECTED,
    CANCELLED,
)
CANCELLABLE_STATUSES = (DRAFT, ASSESSMENT, AUTHORISATION, AUTHORISED, SCHEDULED)
DECIDED_STATUSES = (AUTHORISED, SCHEDULED, IMPLEMENTING, IMPLEMENTED, FAILED, REVIEW, CLOSED, REJECTED)
"""Statuses in which the authorisation decision is already taken."""

CHANGE_MANAGER = "change_manager"
CAB_MEMBER = "cab_member"
ROLES = (CHANGE_MANAGER, CAB_MEMBER)

APPROVED = "approved"
REJECTED_VOTE = "rejected"
PENDING = "pending"

BY_TEMPLATE = "standard_template"
BY_CHANGE_MANAGER = "change_manager"
BY_CAB = "cab"
BY_EMERGENCY_CAB = "emergency_cab"
AUTHORISATION_BASES = (BY_TEMPLATE, BY_CHANGE_MANAGER, BY_CAB, BY_EMERGENCY_CAB)


class ChangeConflict(IllegalTransition):
    """A change cannot be scheduled: its window overlaps another change on a shared CI or a freeze."""


# -- schedule conflicts and maintenance windows: pure helpers -------------------------------------


@dataclass(frozen=True)
class ScheduleConflict:
    """Something the proposed window of a change overlaps: another change or a freeze window."""

    kind: Literal["change", "freeze"]
    reference: str
    start: datetime
    end: datetime
    detail: str = ""

    def describe(self) -> str:
        what = "change" if self.kind == "change" else "freeze window"
        detail = f" {self.detail}" if self.detail else ""
        return f"{what} {self.reference}{detail} overlaps ({_window(self.start, self.end)})"


@dataclass(frozen=True)
class ScheduledWindow:
    """Another change's window, on the CIs it affects."""

    change_id: UUID | str
    cis: tuple[str, ...]
    start: datetime
    end: datetime


@dataclass(frozen=True)
class FreezeWindow:
    """A period in which no change may be implemented (sales peak, year end...)."""

    name: str
    start: datetime
    end: datetime


def _overlaps(start: datetime, end: datetime, other_start: datetime, other_end: datetime) -> bool:
    return start < other_end and other_start < end


def find_conflicts(
    change_id: UUID | str,
    cis: Iterable[str],
    start: datetime,
    end: datetime,
    others: Iterable[ScheduledWindow],
    freezes: Iterable[FreezeWindow],
) -> list[ScheduleConflict]:
    """What a change planned on `cis` from `start` to `end` would overlap.

    Another change conflicts only when it shares at least one CI; a freeze window always does.
    A change never conflicts with itself (its current window, when rescheduling).
    """
    cis = tuple(cis)
    conflicts: list[ScheduleConflict] = []
    for other in others:
        if str(other.change_id) == str(change_id) or not _overlaps(start, end, other.start, other.end):
            continue
        shared = [ci for ci in cis if ci in other.cis]
        if shared:
            label = "CI" if len(shared) == 1 else "CIs"
            conflicts.append(
                ScheduleConflict(
                    kind="change",
                    reference=str(other.change_id),
                    start=other.start,
                    end=other.end,
                    detail=f"on {label} {', '.join(shared)}",
                )
            )
    for freeze in freezes:
        if _overlaps(start, end, freeze.start, freeze.end):
            conflicts.append(ScheduleConflict(kind="freeze", reference=freeze.name, start=freeze.start, end=freeze.end))
    return conflicts


def within_maintenance_windows(start: datetime, end: datetime, windows: Iterable[tuple[datetime, datetime]]) -> bool:
    """Whether the maintenance windows, taken together, cover the whole of `start`..`end`."""
    if not end > start:
        raise InvalidCommand(f"the end {end.isoformat()} must be after the start {start.isoformat()}")
    covered_until = start
    for window_start, window_end in sorted(windows):
        if window_start > covered_until:
            break
        covered_until = max(covered_until, window_end)
        if covered_until >= end:
            return True
    return False


def _instant(at: datetime) -> str:
    return at.isoformat(timespec="minutes" if not (at.second or at.microsecond) else "seconds")


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M" if not (at.second or at.microsecond) else "%H:%M:%S")


def _window(start: datetime, end: datetime) -> str:
    """`2026-06-01T22:00+00:00–23:00`: the end's date and offset only when they differ."""
    if end.date() == start.date() and end.utcoffset() == start.utcoffset():
        return f"{_instant(start)}–{_clock(end)}"
    return f"{_instant(start)}–{_instant(end)}"


# -- validation -----------------------------------------------------------------------------------


def _names(name: str, values: object, none_given: str) -> tuple[str, ...]:
    """A non-empty list of distinct, trimmed names."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidCommand(f"{name} must be a list of names, not {values!r}")
    names: list[str] = []
    for value in values:
        item = required(f"each of the {name}", value)
        if item in names:
            raise InvalidCommand(f"{name} list {item} twice")
        names.append(item)
    if not names:
        raise InvalidCommand(none_given)
    return tuple(names)


class Change(TextsChecked, StatusFlow, Aggregate):
    """A change on a customer account, from request through authorisation, implementation and review."""

    class Event(Aggregate.Event):
        actor: str
        at: datetime

    class Requested(Event, Aggregate.Created):
        account: str
        type: str
        title: str
        description: str
        affected_cis: tuple[str, ...]
        template: str | None
        problem_id: UUID | None

    class Submitted(Event):
        pass

    class Assessed(Event):
        risk: str
        impact: str
        implementation_plan: str
        backout_plan: str

    class CabConvened(Event):
        members: tuple[str, ...]
        emergency: bool

    class Approved(Event):
        approver: str
        role: str

    class Rejected(Event):
        approver: str
        role: str
        reason: str

    class Authorised(Event):
        basis: str

    class Scheduled(Event):
        start: datetime
        end: datetime
        outside_maintenance_window: bool

    class ImplementationStarted(Event):
        pass

    class Completed(Event):
        notes: str

    class Failed(Event):
        reason: str
        backout_performed: str

    class Reviewed(Event):
        outcome: str

    class Closed(Event):
        pass

    class Cancelled(Event):
        reason: str

    @event(Requested)
    def __init__(
        self,
        *,
        account: str,
        type: str,  # noqa: A002 - the ITIL word
        title: str,
        description: str,
        affected_cis: tuple[str, ...],
        template: str | None,
        problem_id: UUID | None,
        actor: str,
        at: datetime,
    ) -> None:
        self.account = account
        self.type = type
        self.title = title
        self.description = description
        self.affected_cis = tuple(affected_cis)
        self.template = template
        self.problem_id = problem_id
        self.requested_at = at
        self.last_at = at
        self.status = DRAFT
        self.submitted_at: datetime | None = None
        self.risk: str | None = None
        self.impact: str | None = None
        self.implementation_plan: str | None = None
        self.backout_plan: str | None = None
        self.assessed_at: datetime | None = None
        self.cab_members: tuple[str, ...] | None = None
        self.cab_emergency = False
        self.votes: dict[str, str] = {}
        self.rejection_reason: str | None = None
        self.authorisation_basis: str | None = None
        self.authorised_at: datetime | None = None
        self.rejected_at: datetime | None = None
        self.scheduled_start: datetime | None = None
        self.scheduled_end: datetime | None = None
        self.outside_maintenance_window = False
        self.implementation_started_at: datetime | None = None
        self.implemented_at: datetime | None = None
        self.completion_notes: str | None = None
        self.failed_at: datetime | None = None
        self.failure_reason: str | None = None
        self.backout_performed: str | None = None
        self.reviewed_at: datetime | None = None
        self.review_outcome: str | None = None
        self.closed_at: datetime | None = None
        self.cancelled_at: datetime | None = None
        self.cancellation_reason: str | None = None

    @classmethod
    def request(
        cls,
        *,
        id: UUID,  # noqa: A002 - the application chooses ids, the aggregate never does
        account: str,
        type: str,  # noqa: A002 - the ITIL word
        title: str,
        description: str,
        affected_cis: Iterable[str],
        actor: str,
        at: datetime,
        template: str | None = None,
        problem_id: UUID | None = None,
    ) -> Change:
        """Request a change on the CIs it affects; a standard change names its pre-approved template."""
        type = one_of("change type", type, TYPES)
        if type == STANDARD:
            template = required("a standard change's template", template)
        elif template is not None and (not isinstance(template, str) or template.strip()):
            raise InvalidCommand(
                f"only a standard change comes from a template; a {type} change cannot use {template!r}"
            )
        else:
            template = None
        if problem_id is not None:
            check_uuid("problem id", problem_id)
        return cls._create(
            cls.Requested,
            id=id,
            account=check_name("account", account),
            type=type,
            title=required("title", title),
            description=description.strip() if isinstance(description, str) else "",
            affected_cis=_names("affected CIs", affected_cis, "a change must name at least one affected CI"),
            template=template,
            problem_id=problem_id,
            actor=required("actor", actor),
            at=aware(at),
        )

    # -- commands: to authorisation ---------------------------------------------------

    def submit(self, *, actor: str, at: datetime) -> None:
        """Submit the draft: normal changes to assessment, emergency changes to authorisation,
        standard changes are authorised at once by their template."""
        self._check("submit", actor, at)
        self._refuse_unless("submit", (DRAFT,))
        self._submitted(actor=actor, at=at)
        if self.type == STANDARD:
            self._authorised(basis=BY_TEMPLATE, actor=actor, at=at)

    def assess(
        self,
        *,
        risk: str,
        impact: str,
        implementation_plan: str,
        backout_plan: str,
        actor: str,
        at: datetime,
    ) -> None:
        """Record the risk, the impact and the plans; a normal change goes on to authorisation."""
        self._check("assess", actor, at)
        if self.type == STANDARD:
            raise IllegalTransition(
                f"cannot assess change {self.id}: it is a standard change, pre-approved by its"
                f" template {self.template!r}"
            )
        if self.type == EMERGENCY and self.status == AUTHORISATION and self.risk is not None:
            raise IllegalTransition(f"cannot assess change {self.id}: it was already assessed as {self.risk} risk")
        if self.type == NORMAL and self.status == AUTHORISATION:
            raise IllegalTransition(
                f"cannot assess change {self.id}: it is awaiting authorisation; only emergency"
                " changes are assessed during authorisation"
            )
        self._refuse_unless("assess", (ASSESSMENT, AUTHORISATION))
        self._assessed(
            risk=one_of("risk", risk, RISKS),
            impact=required("impact", impact),
            implementation_plan=required("implementation plan", implementation_plan),
            backout_plan=required("backout plan", backout_plan),
            actor=actor,
            at=at,
        )

    def convene_cab(self, *, members: Iterable[str], emergency: bool = False, actor: str, at: datetime) -> None:
        """Convene the CAB (or, for an emergency change, the emergency CAB) that must authorise it."""
        verb = "convene an emergency CAB for" if emergency else "convene a CAB for"
        self._check(verb, actor, at)
        self._refuse_unless(verb, (AUTHORISATION,))
        if self.cab_members is not None:
            raise IllegalTransition(f"cannot {verb} change {self.id}: {self._cab_text()} is already convened")
        if self.type == EMERGENCY and not emergency:
            raise IllegalTransition(
                f"cannot convene a CAB for change {self.id}: it is an emergency change, convene the"
                " emergency CAB instead"
            )
        if self.type == NORMAL and emergency:
            raise IllegalTransition(
                f"cannot convene an emergency CAB for change {self.id}: it is a normal change,"
                " only emergency changes go to the emergency CAB"
            )
        if self.type == NORMAL and self.risk == "low":
            raise IllegalTransition(
                f"cannot convene a CAB for change {self.id}: it is low risk, the change manager"
                " authorises it without a CAB"
            )
        members = _names("CAB members", members, f"cannot {verb} change {self.id}: a CAB needs at least one member")
        self._cab_convened(members=members, emergency=bool(emergency), actor=actor, at=at)

    def approve(self, *, approver: str, role: str | None = None, actor: str, at: datetime) -> None:
        """Record one approval: the change manager's for a low-risk change, else one CAB member's.

        The change is authorised when the change manager approves, or when the last CAB member does.
        """
        self._check("approve", actor, at)
        role = self._voting_role("approve", approver, role)
        approver = approver.strip()
        authorising = role == CHANGE_MANAGER or self._approvals_missing() == {approver}
        self._approved(approver=approver, role=role, actor=actor, at=at)
        if authorising:
            basis = BY_CHANGE_MANAGER if role == CHANGE_MANAGER else BY_EMERGENCY_CAB if self.cab_emergency else BY_CAB
            self._authorised(basis=basis, actor=actor, at=at)

    def reject(self, *, approver: str, reason: str, role: str | None = None, actor: str, at: datetime) -> None:
        """Record a refusal: the change manager's, or any one CAB member's, rejects the change."""
        self._check("reject", actor, at)
        role = self._voting_role("reject", approver, role)
        reason = required("reason", reason)
        self._rejected(approver=approver.strip(), role=role, reason=reason, actor=actor, at=at)

    # -- commands: from schedule to closure ------------------------------------------

    def schedule(
        self,
        *,
        start: datetime,
        end: datetime,
        actor: str,
        at: datetime,
        conflicts: Sequence[ScheduleConflict] = (),
        outside_maintenance_window: bool = False,
    ) -> None:
        """Plan (or re-plan) the implementation window.

        The caller finds the conflicts with other changes and freeze windows (see `find_conflicts`);
        any conflict refuses the schedule. A window outside the maintenance windows is accepted
        and flagged.
        """
        self._check("schedule", actor, at)
        self._refuse_unless("schedule", (AUTHORISED, SCHEDULED))
        start = aware(start, "the start")
        end = aware(end, "the end")
        if not end > start:
            raise InvalidCommand(
                f"cannot schedule change {self.id}: the end {end.isoformat()} must be after"
                f" the start {start.isoformat()}"
            )
        conflicts = tuple(conflicts)
        for conflict in conflicts:
            if not isinstance(conflict, ScheduleConflict):
                raise InvalidCommand(f"each conflict must be a ScheduleConflict, not {conflict!r}")
        if conflicts:
            raise ChangeConflict(
                f"cannot schedule change {self.id} {_window(start, end)}: "
                + "; ".join(conflict.describe() for conflict in conflicts)
            )
        outside = bool(outside_maintenance_window)
        if (self.status, self.scheduled_start, self.scheduled_end, self.outside_maintenance_window) == (
            SCHEDULED,
            start,
            end,
            outside,
        ):
            raise IllegalTransition(f"cannot schedule change {self.id}: it is already scheduled {_window(start, end)}")
        self._scheduled(start=start, end=end, outside_maintenance_window=outside, actor=actor, at=at)

    def start_implementation(self, *, actor: str, at: datetime) -> None:
        """Begin implementing the scheduled change."""
        self._check("start implementing", actor, at)
        self._refuse_unless("start implementing", (SCHEDULED,))
        self._implementation_started(actor=actor, at=at)

    def complete(self, *, notes: str = "", actor: str, at: datetime) -> None:
        """Record that the change was implemented as planned."""
        self._check("complete", actor, at)
        self._refuse_unless("complete", (IMPLEMENTING,))
        self._completed(notes=notes.strip() if isinstance(notes, str) else "", actor=actor, at=at)

    def fail(self, *, reason: str, backout_performed: str, actor: str, at: datetime) -> None:
        """Record that the implementation failed, and what was done to back it out."""
        self._check("record the failure of", actor, at)
        self._refuse_unless("record the failure of", (IMPLEMENTING,))
        self._failed(
            reason=required("reason", reason),
            backout_performed=required("backout performed", backout_performed),
            actor=actor,
            at=at,
        )

    def review(self, *, outcome: str, actor: str, at: datetime) -> None:
        """Review the implemented or failed change (post-implementation review)."""
        self._check("review", actor, at)
        self._refuse_unless("review", (IMPLEMENTED, FAILED))
        self._reviewed(outcome=required("outcome", outcome), actor=actor, at=at)

    def close(self, *, actor: str, at: datetime) -> None:
        """Close a reviewed change for good."""
        self._check("close", actor, at)
        self._refuse_unless("close", (REVIEW,))
        self._closed(actor=actor, at=at)

    def cancel(self, *, reason: str, actor: str, at: datetime) -> None:
        """Withdraw a change before its implementation starts."""
        self._check("cancel", actor, at)
        self._refuse_unless("cancel", CANCELLABLE_STATUSES)
        self._cancelled(reason=required("reason", reason), actor=actor, at=at)

    # -- rules --------------------------------------------------------------------

    @property
    def needs_cab(self) -> bool:
        """Whether a CAB (the emergency CAB for an emergency change) must authorise this change."""
        return self.type == EMERGENCY or (self.type == NORMAL and self.risk in ("medium", "high"))

    @property
    def approvals(self) -> dict[str, str]:
        """Each voter's vote: approved or rejected, and pending for CAB members yet to vote."""
        votes = {member: PENDING for member in self.cab_members or ()}
        votes.update(self.votes)
        return votes

    def _approvals_missing(self) -> set[str]:
        return {m for m in self.cab_members or () if self.votes.get(m) != APPROVED}

    def _voting_role(self, verb: str, approver: object, role: object) -> str:
        """The role in which `approver` may vote now; refuses a vote that does not count."""
        self._refuse_unless(verb, (AUTHORISATION,))
        approver = required("approver", approver)
        if role is not None:
            role = one_of("role", role, ROLES)
        if self.cab_members is None:
            if self.type == EMERGENCY:
                raise IllegalTransition(
                    f"cannot {verb} change {self.id}: an emergency change is decided by the emergency"
                    " CAB, convene it first"
                )
            if self.needs_cab:
                raise IllegalTransition(
                    f"cannot {verb} change {self.id}: it is {self.risk} risk and needs a CAB, convene the CAB first"
                )
            if role == CAB_MEMBER:
                raise IllegalTransition(
                    f"cannot {verb} change {self.id} as a CAB member: it is low risk, no CAB is needed;"
                    " the change manager decides"
                )
            return CHANGE_MANAGER
        if role == CHANGE_MANAGER:
            raise IllegalTransition(f"cannot {verb} change {self.id} as change manager: {self._cab_text()} decides it")
        if approver not in self.cab_members:
            raise IllegalTransition(
                f"cannot {verb} change {self.id}: {approver} is not a member of {self._cab_text()}"
                f" ({', '.join(self.cab_members)})"
            )
        if approver in self.votes:
            raise IllegalTransition(
                f"cannot {verb} change {self.id}: {approver} already voted ({self.votes[approver]})"
            )
        return CAB_MEMBER

    def _cab_text(self, emergency: bool | None = None) -> str:
        emergency = self.cab_emergency if emergency is None else emergency
        return "the emergency CAB" if emergency else "the CAB"

    def _name(self) -> str:
        return f"change {self.id}"

    def _refusal(self, verb: str) -> str:
        return f"{_STATUS_TEXT[self.status]}{_why(verb, self.status)}"

    # -- mutators: only assign state ---------------------------------------------

    @event(Submitted)
    def _submitted(self, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.submitted_at = at
        self.status = ASSESSMENT if self.type == NORMAL else AUTHORISATION

    @event(Assessed)
    def _assessed(
        self, risk: str, impact: str, implementation_plan: str, backout_plan: str, actor: str, at: datetime
    ) -> None:
        self._stamp(at)
        self.risk = risk
        self.impact = impact
        self.implementation_plan = implementation_plan
        self.backout_plan = backout_plan
        self.assessed_at = at
        self.status = AUTHORISATION

    @event(CabConvened)
    def _cab_convened(self, members: tuple[str, ...], emergency: bool, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.cab_members = tuple(members)
        self.cab_emergency = emergency

    @event(Approved)
    def _approved(self, approver: str, role: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.votes = {**self.votes, approver: APPROVED}

    @event(Rejected)
    def _rejected(self, approver: str, role: str, reason: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.votes = {**self.votes, approver: REJECTED_VOTE}
        self.rejection_reason = reason
        self.rejected_at = at
        self.status = REJECTED

    @event(Authorised)
    def _authorised(self, basis: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.authorisation_basis = basis
        self.authorised_at = at
        self.status = AUTHORISED

    @event(Scheduled)
    def _scheduled(
        self, start: datetime, end: datetime, outside_maintenance_window: bool, actor: str, at: datetime
    ) -> None:
        self._stamp(at)
        self.scheduled_start = start
        self.scheduled_end = end
        self.outside_maintenance_window = outside_maintenance_window
        self.status = SCHEDULED

    @event(ImplementationStarted)
    def _implementation_started(self, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.implementation_started_at = at
        self.status = IMPLEMENTING

    @event(Completed)
    def _completed(self, notes: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.implemented_at = at
        self.completion_notes = notes
        self.status = IMPLEMENTED

    @event(Failed)
    def _failed(self, reason: str, backout_performed: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.failed_at = at
        self.failure_reason = reason
        self.backout_performed = backout_performed
        self.status = FAILED

    @event(Reviewed)
    def _reviewed(self, outcome: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.reviewed_at = at
        self.review_outcome = outcome
        self.status = REVIEW

    @event(Closed)
    def _closed(self, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.closed_at = at
        self.status = CLOSED

    @event(Cancelled)
    def _cancelled(self, reason: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.cancelled_at = at
        self.cancellation_reason = reason
        self.status = CANCELLED

    def summary(self) -> dict[str, Any]:
        """The change's current state as plain values."""
        return {
            "id": str(self.id),
            "version": self.version,
            "account": self.account,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "affected_cis": list(self.affected_cis),
            "template": self.template,
            "problem_id": str(self.problem_id) if self.problem_id else None,
            "status": self.status,
            "risk": self.risk,
            "impact": self.impact,
            "implementation_plan": self.implementation_plan,
            "backout_plan": self.backout_plan,
            "cab_members": list(self.cab_members) if self.cab_members is not None else None,
            "cab_emergency": self.cab_emergency,
            "approvals": self.approvals,
            "authorisation_basis": self.authorisation_basis,
            "rejection_reason": self.rejection_reason,
            "scheduled_start": self.scheduled_start,
            "scheduled_end": self.scheduled_end,
            "outside_maintenance_window": self.outside_maintenance_window,
            "completion_notes": self.completion_notes,
            "failure_reason": self.failure_reason,
            "backout_performed": self.backout_performed,
            "review_outcome": self.review_outcome,
            "cancellation_reason": self.cancellation_reason,
            "requested_at": self.requested_at,
            "submitted_at": self.submitted_at,
            "assessed_at": self.assessed_at,
            "authorised_at": self.authorised_at,
            "rejected_at": self.rejected_at,
            "implementation_started_at": self.implementation_started_at,
            "implemented_at": self.implemented_at,
            "failed_at": self.failed_at,
            "reviewed_at": self.reviewed_at,
            "closed_at": self.closed_at,
            "cancelled_at": self.cancelled_at,
        }


_STATUS_TEXT = {
    DRAFT: "it is a draft",
    ASSESSMENT: "it is in assessment",
    AUTHORISATION: "it is awaiting authorisation",
    AUTHORISED: "it is authorised",
    SCHEDULED: "it is scheduled",
    IMPLEMENTING: "it is being implemented",
    IMPLEMENTED: "it is implemented",
    FAILED: "it failed",
    REVIEW: "it is in review",
    CLOSED: "it is closed",
    REJECTED: "it was rejected",
    CANCELLED: "it is cancelled",
}


def _why(verb: str, status: str) -> str:
    """Why a command is refused in a status, when the status alone does not say it."""
    if verb in ("approve", "reject"):
        if status in DECIDED_STATUSES:
            return "; the decision was already taken"
        return {DRAFT: "; submit it first", ASSESSMENT: "; assess it first"}.get(status, "")
    if verb.startswith("convene"):
        return {DRAFT: "; submit it first", ASSESSMENT: "; assess it first"}.get(status, "")
    if verb == "schedule" and status in (DRAFT, ASSESSMENT, AUTHORISATION):
        return "; it must be authorised first"
    if verb == "start implementing" and status == AUTHORISED:
        return "; schedule it first"
    if verb == "assess" and status == DRAFT:
        return "; submit it first"
    if verb == "close" and status in (IMPLEMENTED, FAILED):
        return "; review it first"
    if verb == "review" and status == IMPLEMENTING:
        return "; complete it or record its failure first"
    if verb == "cancel" and status == IMPLEMENTING:
        return "; complete it or record its failure instead"
    if verb == "cancel" and status in (IMPLEMENTED, FAILED, REVIEW):
        return "; it was already implemented or attempted, review and close it instead"
    return ""
