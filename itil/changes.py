"""Change enablement: the commands on changes and on each account's change calendar, their
handlers, and the routes of /api/changes, freeze windows and maintenance windows.

Scheduling books the change's window in the account's ChangeCalendar in the same save as the
change itself; completing, failing or cancelling a scheduled change releases its booking.
Importing this module registers the handlers (with `handles`) and the routes (in EXTRA_ROUTES).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from aiohttp import web
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from marshmallow import Schema, ValidationError, fields, validate

from domain.calendar import WEEKDAYS
from domain.change import EMERGENCY, RISKS, ROLES, TYPES, Change
from domain.change_calendar import DEFAULT_TIMEZONE, ChangeCalendar, calendar_id
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
from itil.application import CONFLICT_RETRIES, ConcurrencyConflict, ItilApplication, handles
from itil.configuration import ci_id
from itil.problems import (
    CommandBody,
    ReasonBody,
    command_of,
    id_in_path,
    load_in_path,
    timeline,
    unused_id,
)
from itil.web import EXTRA_ROUTES, Route, WebApi, read_body, reply

# -- commands on changes --------------------------------------------------------------------------


# -- commands on the change calendar --------------------------------------------------------------


# -- handlers -------------------------------------------------------------------------------------

_CHANGE = "change"
_CALENDAR = "change calendar"


@handles(RequestChange)
def request_change(app: ItilApplication, c: RequestChange) -> Change:
    existing = app.find(c.id, Change)
    if existing is not None:
        return existing  # the same RequestChange carried out twice has the effect of once
    unused_id(app, c.id, _CHANGE)

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
    [change] = app.update([(change_id, Change, _CHANGE)], act)
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
    account = app.load(change_id, Change, _CHANGE).account
    ids: list[tuple[UUID, type[Aggregate], str]] = [
        (change_id, Change, _CHANGE),
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


@handles(SubmitChange)
def submit_change(app: ItilApplication, c: SubmitChange) -> Change:
    return _on_change(app, c.change_id, lambda ch: ch.submit(actor=c.actor, at=c.at))


@handles(AssessChange)
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


@handles(ConveneCab)
def convene_cab(app: ItilApplication, c: ConveneCab) -> Change:
    def act(change: Change) -> None:
        emergency = change.type == EMERGENCY if c.emergency is None else c.emergency
        change.convene_cab(members=c.members, emergency=emergency, actor=c.actor, at=c.at)

    return _on_change(app, c.change_id, act)


@handles(ApproveChange)
def approve_change(app: ItilApplication, c: ApproveChange) -> Change:
    return _on_change(app, c.change_id, lambda ch: ch.approve(approver=c.approver, role=c.role, actor=c.actor, at=c.at))


@handles(RejectChange)
def reject_change(app: ItilApplication, c: RejectChange) -> Change:
    return _on_change(
        app,
        c.change_id,
        lambda ch: ch.reject(approver=c.approver, reason=c.reason, role=c.role, actor=c.actor, at=c.at),
    )


@handles(ScheduleChange)
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


@handles(StartChange)
def start_change(app: ItilApplication, c: StartChange) -> Change:
    return _on_change(app, c.change_id, lambda ch: ch.start_implementation(actor=c.actor, at=c.at))


@handles(CompleteChange)
def complete_change(app: ItilApplication, c: CompleteChange) -> Change:
    return _ending(
        app, c.change_id, c.actor, c.at, "implemented", lambda ch: ch.complete(notes=c.notes, actor=c.actor, at=c.at)
    )


@handles(FailChange)
def fail_change(app: ItilApplication, c: FailChange) -> Change:
    return _ending(
        app, c.change_id, c.actor, c.at, "failed",
        lambda ch: ch.fail(reason=c.reason, backout_performed=c.backout_performed, actor=c.actor, at=c.at),
    )  # fmt: skip


@handles(ReviewChange)
def review_change(app: ItilApplication, c: ReviewChange) -> Change:
    return _on_change(app, c.change_id, lambda ch: ch.review(outcome=c.outcome, actor=c.actor, at=c.at))


@handles(CloseChange)
def close_change(app: ItilApplication, c: CloseChange) -> Change:
    return _on_change(app, c.change_id, lambda ch: ch.close(actor=c.actor, at=c.at))


@handles(CancelChange)
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


@handles(AddFreezeWindow)
def add_freeze_window(app: ItilApplication, c: AddFreezeWindow) -> ChangeCalendar:
    return _on_calendar(
        app, c.account, c.actor, c.at,
        lambda cal: cal.add_freeze(name=c.name, start=c.start, end=c.end, reason=c.reason, actor=c.actor, at=c.at),
    )  # fmt: skip


@handles(RemoveFreezeWindow)
def remove_freeze_window(app: ItilApplication, c: RemoveFreezeWindow) -> ChangeCalendar:
    calendar = app.find(calendar_id(c.account), ChangeCalendar)
    if calendar is None:
        raise NotFound(f"there is no freeze window {c.name!r} for account {c.account}: it has no change calendar yet")
    return _on_calendar(
        app, c.account, c.actor, c.at, lambda cal: cal.remove_freeze(name=c.name, actor=c.actor, at=c.at)
    )


@handles(SetMaintenanceWindows)
def set_maintenance_windows(app: ItilApplication, c: SetMaintenanceWindows) -> ChangeCalendar:
    if app.find(ci_id(c.account, c.ci), ConfigurationItem) is None:
        raise NotFound(f"there is no CI {c.ci!r} on account {c.account}; register it before its maintenance windows")
    return _on_calendar(
        app, c.account, c.actor, c.at,
        lambda cal: cal.set_maintenance_windows(
            ci=c.ci, windows=c.windows, timezone=c.timezone, actor=c.actor, at=c.at
        ),
    )  # fmt: skip


# -- HTTP -----------------------------------------------------------------------------------------


class RequestChangeBody(CommandBody):
    id = fields.UUID(load_default=None, metadata={"description": "client-chosen id makes retries safe"})
    account = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    title = fields.String(required=True, validate=validate.Length(min=1, max=500))
    description = fields.String(load_default="", validate=validate.Length(max=20000))
    affected_cis = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)), required=True, validate=validate.Length(min=1)
    )
    template = fields.String(load_default=None, metadata={"description": "a standard change's template"})
    problem_id = fields.UUID(load_default=None, metadata={"description": "the problem whose cause it removes"})


class AssessBody(CommandBody):
    risk = fields.String(required=True, validate=validate.OneOf(RISKS))
    impact = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    implementation_plan = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    backout_plan = fields.String(required=True, validate=validate.Length(min=1, max=20000))


class ConveneCabBody(CommandBody):
    members = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)), required=True, validate=validate.Length(min=1)
    )
    emergency = fields.Boolean(load_default=None, metadata={"description": "default: as the change's type needs"})


class VoteBody(CommandBody):
    approver = fields.String(load_default=None, metadata={"description": "default: the actor"})
    role = fields.String(load_default=None, validate=validate.OneOf(ROLES))


class RejectBody(VoteBody):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class WindowBody(CommandBody):
    start = fields.AwareDateTime(required=True)
    end = fields.AwareDateTime(required=True)


class CompleteBody(CommandBody):
    notes = fields.String(load_default="", validate=validate.Length(max=20000))


class FailBody(CommandBody):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    backout_performed = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class ReviewBody(CommandBody):
    outcome = fields.String(required=True, validate=validate.Length(min=1, max=20000))


class FreezeBody(WindowBody):
    reason = fields.String(load_default="", validate=validate.Length(max=5000))


class Weekday(fields.Field):
    """A weekday as 0 (Monday) to 6 (Sunday) or its name (Mon, Monday...)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
            return value
        if isinstance(value, str):
            for number, name in enumerate(WEEKDAYS):
                if value.strip().lower() in (name.lower(), name[:3].lower()):
                    return number
        raise ValidationError(f"{value!r} is not a weekday: use 0 (Monday) to 6 (Sunday) or a name such as Mon")


class MaintenanceWindowBody(Schema):
    weekday = Weekday(required=True)
    start = fields.String(required=True, metadata={"example": "22:00"})
    end = fields.String(required=True, metadata={"example": "06:00", "description": "before start: the next day"})


class MaintenanceWindowsBody(CommandBody):
    windows = fields.List(fields.Nested(MaintenanceWindowBody), required=True)
    timezone = fields.String(load_default=DEFAULT_TIMEZONE)


CHANGE_COMMANDS: dict[str, tuple[Schema, type]] = {
    "submit": (CommandBody(), SubmitChange),
    "assess": (AssessBody(), AssessChange),
    "convene-cab": (ConveneCabBody(), ConveneCab),
    "approve": (VoteBody(), ApproveChange),
    "reject": (RejectBody(), RejectChange),
    "schedule": (WindowBody(), ScheduleChange),
    "start": (CommandBody(), StartChange),
    "complete": (CompleteBody(), CompleteChange),
    "fail": (FailBody(), FailChange),
    "review": (ReviewBody(), ReviewChange),
    "close": (CommandBody(), CloseChange),
    "cancel": (ReasonBody(), CancelChange),
}
"""POST /api/changes/{change_id}/{command}: the body's schema and the command it becomes."""


async def change_account(api: WebApi, request: web.Request) -> str | None:
    change: Change = await load_in_path(api, request, "change_id", Change, _CHANGE)
    return change.account


async def request_change_route(api: WebApi, request: web.Request) -> web.Response:
    data = RequestChangeBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    command = RequestChange(
        id=data["id"] or uuid4(), account=data["account"], type=data["type"], title=data["title"],
        affected_cis=tuple(data["affected_cis"]), actor=actor, at=at, description=data["description"],
        template=data["template"], problem_id=data["problem_id"],
    )  # fmt: skip
    change = await asyncio.to_thread(api.app.handle, command)
    return reply(change.summary(), status=201, headers={"Location": f"/api/changes/{change.id}"})


async def change_command_route(api: WebApi, request: web.Request) -> web.Response:
    change_id = id_in_path(request, "change_id", _CHANGE)
    command = await command_of(api, request, CHANGE_COMMANDS, change_id=change_id)
    if isinstance(command, ApproveChange | RejectChange) and command.approver is None:
        command = replace(command, approver=command.actor)
    if isinstance(command, ConveneCab):
        command = replace(command, members=tuple(command.members))
    change = await asyncio.to_thread(api.app.handle, command)
    return reply(change.summary())


async def get_change_route(api: WebApi, request: web.Request) -> web.Response:
    """The change as the store has it now, with its whole story."""
    change: Change = await load_in_path(api, request, "change_id", Change, _CHANGE)
    body = change.summary()
    body["timeline"] = await asyncio.to_thread(timeline, api.app, change.id)
    return reply(body)


async def put_freeze_route(api: WebApi, request: web.Request) -> web.Response:
    data = FreezeBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    command = AddFreezeWindow(
        account=request.match_info["account"], name=request.match_info["name"], start=data["start"],
        end=data["end"], actor=actor, at=at, reason=data["reason"],
    )  # fmt: skip
    calendar: ChangeCalendar = await asyncio.to_thread(api.app.handle, command)
    body = calendar.summary()
    body["changes_to_replan"] = [str(b.change_id) for b in calendar.bookings_during(command.start, command.end)]
    return reply(body)


async def delete_freeze_route(api: WebApi, request: web.Request) -> web.Response:
    data = CommandBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    command = RemoveFreezeWindow(
        account=request.match_info["account"], name=request.match_info["name"], actor=actor, at=at
    )
    calendar: ChangeCalendar = await asyncio.to_thread(api.app.handle, command)
    return reply(calendar.summary())


async def put_maintenance_windows_route(api: WebApi, request: web.Request) -> web.Response:
    data = MaintenanceWindowsBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    command = SetMaintenanceWindows(
        account=request.match_info["account"], ci=request.match_info["ci"],
        windows=tuple((w["weekday"], w["start"], w["end"]) for w in data["windows"]),
        actor=actor, at=at, timezone=data["timezone"],
    )  # fmt: skip
    calendar: ChangeCalendar = await asyncio.to_thread(api.app.handle, command)
    windows = calendar.maintenance_windows(command.ci)
    return reply(windows.to_dict() if windows else {"ci": command.ci, "timezone": command.timezone, "windows": []})


async def get_change_calendar_route(api: WebApi, request: web.Request) -> web.Response:
    """The account's freeze windows, maintenance windows and booked changes."""
    account = request.match_info["account"]
    calendar = await asyncio.to_thread(api.app.find, calendar_id(account), ChangeCalendar)
    if calendar is None:
        return reply({"account": account, "freeze_windows": [], "maintenance_windows": [], "bookings": []})
    return reply(calendar.summary())


EXTRA_ROUTES.extend(
    [
        Route("POST", "/api/changes", request_change_route, "change.request", "body"),
        Route("GET", "/api/changes/{change_id}", get_change_route, "change.read", change_account),
        Route("POST", "/api/changes/{change_id}/{command}", change_command_route, "change.update", change_account),
        Route("GET", "/api/accounts/{account}/change-calendar", get_change_calendar_route, "account.read", "path"),
        Route(
            "PUT", "/api/accounts/{account}/freeze-windows/{name}", put_freeze_route, "change_calendar.update", "path"
        ),
        Route(
            "DELETE",
            "/api/accounts/{account}/freeze-windows/{name}",
            delete_freeze_route,
            "change_calendar.update",
            "path",
        ),  # fmt: skip
        Route(
            "PUT",
            "/api/cis/{account}/{ci}/maintenance-windows",
            put_maintenance_windows_route,
            "change_calendar.update",
            "path",
        ),  # fmt: skip
    ]
)
