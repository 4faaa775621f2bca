"""HTTP routes of the problems area: parse the request, issue the command or query, reply."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from aiohttp import web
from marshmallow import Schema, fields, validate

from application.problems import PROBLEM, problem_body, problem_story
from domain.commands import (
    AddIncidentToProblem,
    CancelProblem,
    CloseProblem,
    LogProblem,
    ProposeChange,
    PublishWorkaround,
    RecordRootCause,
    RemoveIncidentFromProblem,
    ReopenInvestigation,
    ResolveProblem,
    StartInvestigation,
)
from domain.problem import Problem
from web.api import CommandBody, Route, WebApi, command_of, id_in_path, load_in_path, read_body, reply

# -- HTTP -----------------------------------------------------------------------------------------


def _text(max_length: int = 20000, required: bool = True) -> fields.String:
    if required:
        return fields.String(required=True, validate=validate.Length(min=1, max=max_length))
    return fields.String(load_default="", validate=validate.Length(max=max_length))


class LogProblemBody(CommandBody):
    id = fields.UUID(load_default=None, metadata={"description": "client-chosen id makes retries safe"})
    account = _text(200)
    title = _text(500)
    description = _text(required=False)
    ci = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    category = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    incident_ids = fields.List(fields.UUID(), load_default=list)


class IncidentBody(CommandBody):
    incident_id = fields.UUID(required=True)


class AnalysisBody(CommandBody):
    analysis = _text()


class WorkaroundBody(CommandBody):
    workaround = _text()


class ChangeIdBody(CommandBody):
    change_id = fields.UUID(required=True)


class ResolveProblemBody(CommandBody):
    via_change_id = fields.UUID(load_default=None, metadata={"description": "the change that removed the cause"})
    notes = _text(required=False)


class ReasonBody(CommandBody):
    reason = _text(5000)


PROBLEM_COMMANDS: dict[str, tuple[Schema, type]] = {
    "link-incident": (IncidentBody(), AddIncidentToProblem),
    "unlink-incident": (IncidentBody(), RemoveIncidentFromProblem),
    "investigate": (CommandBody(), StartInvestigation),
    "root-cause": (AnalysisBody(), RecordRootCause),
    "workaround": (WorkaroundBody(), PublishWorkaround),
    "propose-change": (ChangeIdBody(), ProposeChange),
    "resolve": (ResolveProblemBody(), ResolveProblem),
    "reopen-investigation": (ReasonBody(), ReopenInvestigation),
    "close": (CommandBody(), CloseProblem),
    "cancel": (ReasonBody(), CancelProblem),
}
"""POST /api/problems/{problem_id}/{command}: the body's schema and the command it becomes."""


async def problem_account(api: WebApi, request: web.Request) -> str | None:
    problem: Problem = await load_in_path(api, request, "problem_id", Problem, PROBLEM)
    return problem.account


async def log_problem_route(api: WebApi, request: web.Request) -> web.Response:
    data = LogProblemBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    command = LogProblem(
        id=data["id"] or uuid4(), account=data["account"], title=data["title"], actor=actor, at=at,
        description=data["description"], ci=data["ci"], category=data["category"],
        incident_ids=tuple(data["incident_ids"]),
    )  # fmt: skip
    problem = await asyncio.to_thread(api.app.handle, command)
    body = await asyncio.to_thread(problem_body, api.app, problem)
    return reply(body, status=201, headers={"Location": f"/api/problems/{problem.id}"})


async def problem_command_route(api: WebApi, request: web.Request) -> web.Response:
    problem_id = id_in_path(request, "problem_id", PROBLEM)
    command = await command_of(api, request, PROBLEM_COMMANDS, problem_id=problem_id)
    problem = await asyncio.to_thread(api.app.handle, command)
    return reply(await asyncio.to_thread(problem_body, api.app, problem))


async def get_problem_route(api: WebApi, request: web.Request) -> web.Response:
    """The problem as the store has it now, with its whole story."""
    problem: Problem = await load_in_path(api, request, "problem_id", Problem, PROBLEM)
    return reply(await asyncio.to_thread(problem_story, api.app, problem))


ROUTES = (
    Route("POST", "/api/problems", log_problem_route, "problem.log", "body"),
    Route("GET", "/api/problems/{problem_id}", get_problem_route, "problem.read", problem_account),
    Route("POST", "/api/problems/{problem_id}/{command}", problem_command_route, "problem.update", problem_account),
)
