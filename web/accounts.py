"""HTTP routes of the accounts area: register an account, its ROC and settings, and read its profile."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

from aiohttp import web
from marshmallow import ValidationError, fields, validate

from domain import commands as cmd
from web.api import CommandBody, Route, WebApi, read_body, reply


class RegisterAccountBody(CommandBody):
    name = fields.String(load_default="", validate=validate.Length(max=200))
    roc = fields.String(load_default=None, validate=validate.Length(min=1, max=200))


class RocBody(CommandBody):
    roc = fields.String(required=True, validate=validate.Length(min=1, max=200))


class PriorityMatrix(fields.Field):
    """A priority matrix as {"impact,urgency": priority} (9 keys "1,1" .. "3,3") or as 3 rows of 3.

    Rows are impacts 1 (high) to 3 (low), columns urgencies 1 to 3: [[1, 2, 3], [2, 3, 4], [3, 4, 4]].
    Priorities are 1 (critical) to 4 (low); the domain checks that all 9 cells are given.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[tuple[int, int], Any]:
        if isinstance(value, dict):
            cells: dict[tuple[int, int], Any] = {}
            for key, priority in value.items():
                match = re.fullmatch(r"\s*([1-3])\s*,\s*([1-3])\s*", str(key))
                if match is None:
                    raise ValidationError(f'{key!r} is not a cell: use "impact,urgency" such as "1,2"')
                cells[(int(match[1]), int(match[2]))] = priority
            return cells
        if isinstance(value, list) and len(value) == 3 and all(isinstance(r, list) and len(r) == 3 for r in value):
            return {(i + 1, u + 1): value[i][u] for i in range(3) for u in range(3)}
        raise ValidationError('a matrix is {"impact,urgency": priority, ...} or 3 rows of 3 priorities')


class PriorityMatrixBody(CommandBody):
    matrix = PriorityMatrix(required=True)


class ReopenPeriodBody(CommandBody):
    days = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=366))
    hours = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=366 * 24))


async def register_account(api: WebApi, request: web.Request) -> web.Response:
    """POST /api/accounts/{account} {"name": .., "roc": ..}: register the account (201 with its profile)."""
    data = RegisterAccountBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    account = request.match_info["account"]
    command = cmd.RegisterAccount(account=account, name=data["name"], roc=data["roc"], actor=actor, at=at)
    await asyncio.to_thread(api.app.handle, command)
    profile = await asyncio.to_thread(api.app.account_profile, account)
    return reply(profile, status=201, headers={"Location": f"/api/accounts/{account}"})


async def set_account_roc(api: WebApi, request: web.Request) -> web.Response:
    """PUT /api/accounts/{account}/roc {"roc": "anne.roc"}: name the account's ROC."""
    data = RocBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    command = cmd.SetAccountRoc(account=request.match_info["account"], roc=data["roc"], actor=actor, at=at)
    return await _changed_account(api, command)


async def set_priority_matrix(api: WebApi, request: web.Request) -> web.Response:
    """PUT /api/accounts/{account}/priority-matrix: the account's own impact × urgency -> priority matrix.

    Body {"matrix": {"1,1": 1, "1,2": 2, ..., "3,3": 4}} (keys "impact,urgency") or
    {"matrix": [[1, 2, 3], [2, 3, 4], [3, 4, 4]]} (rows: impact 1..3; columns: urgency 1..3).
    It applies to incidents logged or reprioritised from then on.
    """
    data = PriorityMatrixBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    command = cmd.SetPriorityMatrix(account=request.match_info["account"], matrix=data["matrix"], actor=actor, at=at)
    return await _changed_account(api, command)


async def set_reopen_period(api: WebApi, request: web.Request) -> web.Response:
    """PUT /api/accounts/{account}/reopen-period {"days": 7} or {"hours": 36} (or both, added up)."""
    data = ReopenPeriodBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    period = timedelta(days=data["days"], hours=data["hours"])
    command = cmd.SetReopenPeriod(account=request.match_info["account"], period=period, actor=actor, at=at)
    return await _changed_account(api, command)


async def _changed_account(api: WebApi, command: Any) -> web.Response:
    await asyncio.to_thread(api.app.handle, command)
    return reply(await asyncio.to_thread(api.app.account_profile, command.account))


ROC_INFORMS_SHOWN = 100


async def get_account(api: WebApi, request: web.Request) -> web.Response:
    """GET /api/accounts/{account}: ROC, priority matrix, reopen period and the latest ROC informs.

    An account never registered answers with the defaults ("registered": false).
    """
    profile = await asyncio.to_thread(api.app.account_profile, request.match_info["account"])
    informs = profile["roc_informs"]
    profile["roc_informs_total"] = len(informs)
    profile["roc_informs"] = informs[-ROC_INFORMS_SHOWN:]
    return reply(profile)


ROUTES = (
    Route("GET", "/api/accounts/{account}", get_account, "account.read", "path"),
    Route("POST", "/api/accounts/{account}", register_account, "account.admin", "path"),
    Route("PUT", "/api/accounts/{account}/roc", set_account_roc, "account.admin", "path"),
    Route("PUT", "/api/accounts/{account}/priority-matrix", set_priority_matrix, "account.admin", "path"),
    Route("PUT", "/api/accounts/{account}/reopen-period", set_reopen_period, "account.admin", "path"),
)
