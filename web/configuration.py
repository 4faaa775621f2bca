"""HTTP routes of the configuration area: parse the request, issue the command or query, reply."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from marshmallow import Schema, fields, validate

from application.configuration import ci_words, find_ci
from domain.commands import ChangeCiState, RegisterCi, RelateCis, RetireCi, UnrelateCis, UpdateCiAttributes
from domain.configuration import KINDS, RELATIONS, STATES
from domain.errors import NotFound
from projections.configuration import CiRegistryProjection
from web.api import CommandBody, Route, WebApi, read_body, reply

# -- HTTP -----------------------------------------------------------------------------------------


def _attributes(required: bool) -> fields.Dict:
    keys = fields.String(validate=validate.Length(min=1, max=200))
    values = fields.String(validate=validate.Length(min=1, max=2000))
    if required:
        return fields.Dict(keys=keys, values=values, required=True, validate=validate.Length(min=1))
    return fields.Dict(keys=keys, values=values, load_default=dict)


class RegisterCiBody(CommandBody):
    ci = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={"example": "router-42"})
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    attributes = _attributes(required=False)


class RelationBody(CommandBody):
    relation = fields.String(required=True, validate=validate.OneOf(RELATIONS))
    target = fields.String(required=True, validate=validate.Length(min=1, max=200))


class StateBody(CommandBody):
    state = fields.String(required=True, validate=validate.OneOf(STATES))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class AttributesBody(CommandBody):
    attributes = _attributes(required=True)


class RetireBody(CommandBody):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


Build = Callable[[str, str, dict[str, Any]], Any]

CI_COMMANDS: dict[str, tuple[Schema, Build]] = {
    "relate": (
        RelationBody(),
        lambda a, ci, d: RelateCis(a, ci, d["relation"], d["target"], actor=d["actor"], at=d["at"]),
    ),
    "unrelate": (
        RelationBody(),
        lambda a, ci, d: UnrelateCis(a, ci, d["relation"], d["target"], actor=d["actor"], at=d["at"]),
    ),
    "state": (
        StateBody(),
        lambda a, ci, d: ChangeCiState(a, ci, d["state"], d["reason"], actor=d["actor"], at=d["at"]),
    ),
    "attributes": (
        AttributesBody(),
        lambda a, ci, d: UpdateCiAttributes(a, ci, dict(d["attributes"]), actor=d["actor"], at=d["at"]),
    ),
    "retire": (RetireBody(), lambda a, ci, d: RetireCi(a, ci, d["reason"], actor=d["actor"], at=d["at"])),
}
"""POST /api/cis/{account}/{ci}/{command}: the body's schema and how it becomes a command."""


def registry(api: WebApi) -> CiRegistryProjection:
    """The CI registry read model, on the database of the account view."""
    return CiRegistryProjection(api.projection.db)


async def register_ci_route(api: WebApi, request: web.Request) -> web.Response:
    data = RegisterCiBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    account = request.match_info["account"]
    command = RegisterCi(account, data["ci"], data["kind"], actor, at, attributes=dict(data["attributes"]))
    ci = await asyncio.to_thread(api.app.handle, command)
    return reply(ci.summary(), status=201, headers={"Location": f"/api/cis/{account}/{ci.ci_name}"})


async def ci_command_route(api: WebApi, request: web.Request) -> web.Response:
    name = request.match_info["command"]
    if name not in CI_COMMANDS:
        raise NotFound(f"unknown command {name!r}; use one of {', '.join(CI_COMMANDS)}")
    schema, build = CI_COMMANDS[name]
    data = schema.load(await read_body(request))
    data["actor"], data["at"] = api.actor_and_at(request, data)
    command = build(request.match_info["account"], request.match_info["ci"], data)
    ci = await asyncio.to_thread(api.app.handle, command)
    return reply(ci.summary())


async def list_cis_route(api: WebApi, request: web.Request) -> web.Response:
    """The account's CI registry (eventually consistent), optionally filtered by kind and state."""
    account = request.match_info["account"]
    kind, state = request.query.get("kind"), request.query.get("state")
    cis = await asyncio.to_thread(registry(api).list, account, kind, state)
    return reply({"account": account, "cis": cis})


async def get_ci_route(api: WebApi, request: web.Request) -> web.Response:
    """One CI as the store has it now, with the CIs that depend on it, from the registry."""
    account, name = request.match_info["account"], request.match_info["ci"]
    ci = await asyncio.to_thread(find_ci, api.app, account, name)
    if ci is None:
        raise NotFound(f"there is no {ci_words(account, name)}")
    view = registry(api)
    body = ci.summary()
    body["dependents"] = await asyncio.to_thread(view.dependents, account, ci.ci_name)
    listed = await asyncio.to_thread(view.get, account, ci.ci_name)
    body["related_from"] = listed["related_from"] if listed else []
    return reply(body)


ROUTES = (
    Route("POST", "/api/cis/{account}", register_ci_route, "ci.register", "path"),
    Route("GET", "/api/cis/{account}", list_cis_route, "account.read", "path"),
    Route("GET", "/api/cis/{account}/{ci}", get_ci_route, "account.read", "path"),
    Route("POST", "/api/cis/{account}/{ci}/{command}", ci_command_route, "ci.update", "path"),
)
