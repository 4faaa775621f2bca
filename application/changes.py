"""Change enablement: the handlers of the commands on changes and on each account's change calendar
(their routes, /api/changes, freeze windows and maintenance windows: `web.changes`).

Scheduling books the change's window in the account's ChangeCalendar in the same save as the
change itself; completing, failing or cancelling a scheduled change releases its booking.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import MappingProxyType
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from application.app import ItilApplication
from application.configuration import ci_id
from application.conflicts import CONFLICT_RETRIES, ConcurrencyConflict
from application.problems import unused_id
from domain.change import EMERGENCY, Change
from domain.change_calendar import ChangeCalendar, calendar_id
from domain.commands import (
    AddFreezeWindow,
    ApproveChange,
    AssessChange,
    CancelChange,
    CloseChange,
    CompleteChange,
    ConveneCab,
    FailChange,
    RejectChange,
    RemoveFreezeWindow,
    RequestChange,
    ReviewChange,
    ScheduleChange,
    SetMaintenanceWindows,
    StartChange,
    SubmitChange,
)
from domain.configuration import ConfigurationItem
from domain.errors import InvalidCommand, NotFound
from domain.problem import Problem

# -- commands on changes --------------------------------------------------------------------------


# -- commands on the change calendar --------------------------------------------------------------


# -- handlers -------------------------------------------------------------------------------------

CHANGE = "change"
_CALENDAR = "change calendar"


def request_change(app: ItilApplication, c: RequestChange) -> Change:
    existing = app.find(c.id, Change)
    if existing is not None:
        return existing  # the same RequestChange carried out twice has the effect of once
    unused_id(app, c.id, CHANGE)

    def make() -> Change:
        return Change.request(
            id=c.id, account=c.account, type=c.type, title=c.title, description=c.description,
            affected_cis=c.affected_cis, actor=c.actor, at=c.at, template=c.template, problem_id=c.problem_id,
        )  # fmt: skip

    if c.problem_id is None:
        return app.create(c.id, Change, make)
    for _attempt in range(CONFLICT_RETRIES):  # the change and its proposal on the problem, saved together
        problem = app.load(c.problem_id, Problem, "problem")
        if problem.account != c.account:
            raise InvalidCommand(
                f"cannot request change {c.id} for problem {c.problem_id}: the problem is on account"
                f" {problem.account}, the change on account {c.account}"
            )
        change = make()
        problem.propose_change(change_id=c.id, actor=c.actor, at=c.at)
        try:
            app.save(change, problem)
        except IntegrityError:
            found = app.find(c.id, Change)
            if found is not None:
                return found
            continue
        app.saved()
        return change
    raise ConcurrencyConflict(f"problem {c.problem_id} kept changing while change {c.id} was requested; try again")


def _on_change(app: ItilApplication, change_id: UUID, act: Callable[[Change], None]) -> Change:
    [change] = app.update([(change_id, Change, CHANGE)], act)
    result: Change = change
    return result


def calendar_of(app: ItilApplication, account: str, actor: str, at: datetime) -> UUID:
    """The id of the account's change calendar, opened first if it has none yet."""
    app.create(calendar_id(account), ChangeCalendar, lambda: ChangeCalendar.open(account=account, actor=actor, at=at))
    return calendar_id(account)


def _with_calendar(
    app: ItilApplication, change_id: UUID, actor: str, at: datetime, act: Callable[[Change, ChangeCalendar], None]
) -> Change:
    """Change a change and its account's calendar in one save."""
    account = app.load(change_id, Change, CHANGE).account
    ids: list[tuple[UUID, type[Aggregate], str]] = [
        (change_id, Change, CHANGE),
        (calendar_of(app, account, actor, at), ChangeCalendar, _CALENDAR),
    ]
    change, _ = app.update(ids, act)
    result: Change = change
    return result


def _ending(
    app: ItilApplication, change_id: UUID, actor: str, at: datetime, why: str, end: Callable[[Change], None]
) -> Change:
    """Complete, fail or cancel a change, and release its booking if it has one."""

    def act(change: Change, calendar: ChangeCalendar) -> None:
        end(change)
        if calendar.booking(change.id) is not None:
            calendar.release(change_id=change.id, reason=why, actor=actor, at=at)

    return _with_calendar(app, change_id, actor, at, act)


def submit_change(app: ItilApplication, c: SubmitChange) -> Change:
    return _on_change(app, c.change_id, lambda ch: ch.submit(actor=c.actor, at=c.at))


def assess_change(app: ItilApplication, c: AssessChange) -> Change:
    return _on_change(
        app,
        c.change_id,
        lambda ch: ch.assess(
            risk=c.risk,
            impact=c.impact,
            implementation_plan=c.implementation_plan,
            backout_plan=c.backout_plan,
            actor=c.actor,
            at=c.at,
        ),
    )


def convene_cab(app: ItilApplication, c: ConveneCab) -> Change:
    def act(change: Change) -> None:
        emergency = change.type == EMERGENCY if c.emergency is None else c.emergency
        change.convene_cab(members=c.members, emergency=emergency, actor=c.actor, at=c.at)

    return _on_change(app, c.change_id, act)


def approve_change(app: ItilApplication, c: ApproveChange) -> Change:
    return _on_change(app, c.change_id, lambda ch: ch.approve(approver=c.approver, role=c.role, actor=c.actor, at=c.at))


def reject_change(app: ItilApplication, c: RejectChange) -> Change:
    return _on_change(
        app,
        c.change_id,
        lambda ch: ch.reject(approver=c.approver, reason=c.reason, role=c.role, actor=c.actor, at=c.at),
    )


def schedule_change(app: ItilApplication, c: ScheduleChange) -> Change:
    def act(change: Change, calendar: ChangeCalendar) -> None:
        cis = change.affected_cis
        change.schedule(
            start=c.start, end=c.end, actor=c.actor, at=c.at,
            conflicts=calendar.conflicts(change.id, cis, c.start, c.end),
            outside_maintenance_window=not calendar.within_maintenance_windows(cis, c.start, c.end),
        )  # fmt: skip
        calendar.book(change_id=change.id, cis=cis, start=c.start, end=c.end, actor=c.actor, at=c.at)

    return _with_calendar(app, c.change_id, c.actor, c.at, act)


def start_change(app: ItilApplication, c: StartChange) -> Change:
    return _on_change(app, c.change_id, lambda ch: ch.start_implementation(actor=c.actor, at=c.at))


def complete_change(app: ItilApplication, c: CompleteChange) -> Change:
    return _ending(
        app, c.change_id, c.actor, c.at, "implemented", lambda ch: ch.complete(notes=c.notes, actor=c.actor, at=c.at)
    )


def fail_change(app: ItilApplication, c: FailChange) -> Change:
    return _ending(
        app, c.change_id, c.actor, c.at, "failed",
        lambda ch: ch.fail(reason=c.reason, backout_performed=c.backout_performed, actor=c.actor, at=c.at),
    )  # fmt: skip


def review_change(app: ItilApplication, c: ReviewChange) -> Change:
    return _on_change(app, c.change_id, lambda ch: ch.review(outcome=c.outcome, actor=c.actor, at=c.at))


def close_change(app: ItilApplication, c: CloseChange) -> Change:
    return _on_change(app, c.change_id, lambda ch: ch.close(actor=c.actor, at=c.at))


def cancel_change(app: ItilApplication, c: CancelChange) -> Change:
    return _ending(
        app, c.change_id, c.actor, c.at, "cancelled", lambda ch: ch.cancel(reason=c.reason, actor=c.actor, at=c.at)
    )


def _on_calendar(
    app: ItilApplication, account: str, actor: str, at: datetime, act: Callable[[ChangeCalendar], None]
) -> ChangeCalendar:
    [calendar] = app.update([(calendar_of(app, account, actor, at), ChangeCalendar, _CALENDAR)], act)
    result: ChangeCalendar = calendar
    return result


def add_freeze_window(app: ItilApplication, c: AddFreezeWindow) -> ChangeCalendar:
    return _on_calendar(
        app, c.account, c.actor, c.at,
        lambda cal: cal.add_freeze(name=c.name, start=c.start, end=c.end, reason=c.reason, actor=c.actor, at=c.at),
    )  # fmt: skip


def remove_freeze_window(app: ItilApplication, c: RemoveFreezeWindow) -> ChangeCalendar:
    calendar = app.find(calendar_id(c.account), ChangeCalendar)
    if calendar is None:
        raise NotFound(f"there is no freeze window {c.name!r} for account {c.account}: it has no change calendar yet")
    return _on_calendar(
        app, c.account, c.actor, c.at, lambda cal: cal.remove_freeze(name=c.name, actor=c.actor, at=c.at)
    )


def set_maintenance_windows(app: ItilApplication, c: SetMaintenanceWindows) -> ChangeCalendar:
    if app.find(ci_id(c.account, c.ci), ConfigurationItem) is None:
        raise NotFound(f"there is no CI {c.ci!r} on account {c.account}; register it before its maintenance windows")
    return _on_calendar(
        app, c.account, c.actor, c.at,
        lambda cal: cal.set_maintenance_windows(
            ci=c.ci, windows=c.windows, timezone=c.timezone, actor=c.actor, at=c.at
        ),
    )  # fmt: skip


HANDLERS = MappingProxyType(
    {
        RequestChange: request_change,
        SubmitChange: submit_change,
        AssessChange: assess_change,
        ConveneCab: convene_cab,
        ApproveChange: approve_change,
        RejectChange: reject_change,
        ScheduleChange: schedule_change,
        StartChange: start_change,
        CompleteChange: complete_change,
        FailChange: fail_change,
        ReviewChange: review_change,
        CloseChange: close_change,
        CancelChange: cancel_change,
        AddFreezeWindow: add_freeze_window,
        RemoveFreezeWindow: remove_freeze_window,
        SetMaintenanceWindows: set_maintenance_windows,
    }
)
"""Command class -> handler(app, command) of this area; the application's table is built from these."""
