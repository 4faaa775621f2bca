"""HTTP routes of the changes area: parse the request, issue the command or query, reply."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any
from uuid import uuid4

from aiohttp import web
from marshmallow import Schema, ValidationError, fields, validate

from application.changes import CHANGE
from application.problems import timeline
from domain.calendar import WEEKDAYS
from domain.change import RISKS, ROLES, TYPES, Change
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
from web.api import CommandBody, Route, WebApi, command_of, id_in_path, load_in_path, read_body, reply
from web.problems import ReasonBody

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
    change: Change = await load_in_path(api, request, "change_id", Change, CHANGE)
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
    change_id = id_in_path(request, "change_id", CHANGE)
    command = await command_of(api, request, CHANGE_COMMANDS, change_id=change_id)
    if isinstance(command, ApproveChange | RejectChange) and command.approver is None:
        command = replace(command, approver=command.actor)
    if isinstance(command, ConveneCab):
        command = replace(command, members=tuple(command.members))
    change = await asyncio.to_thread(api.app.handle, command)
    return reply(change.summary())


async def get_change_route(api: WebApi, request: web.Request) -> web.Response:
    """The change as the store has it now, with its whole story."""
    change: Change = await load_in_path(api, request, "change_id", Change, CHANGE)
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


ROUTES = (
    Route("POST", "/api/changes", request_change_route, "change.request", "body"),
    Route("GET", "/api/changes/{change_id}", get_change_route, "change.read", change_account),
    Route("POST", "/api/changes/{change_id}/{command}", change_command_route, "change.update", change_account),
    Route("GET", "/api/accounts/{account}/change-calendar", get_change_calendar_route, "account.read", "path"),
    Route("PUT", "/api/accounts/{account}/freeze-windows/{name}", put_freeze_route, "change_calendar.update", "path"),
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
)
