"""Configuration management: the commands on CIs, their handlers, and the routes of /api/cis.

A CI's id is derived from its account and name (`ci_id`), so incidents, changes and processes
name CIs the way people do and a repeated registration finds the CI it already made.
Importing this module registers the handlers (with `handles`) and the routes (in EXTRA_ROUTES).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from aiohttp import web
from marshmallow import Schema, fields, validate

from domain.commands import ChangeCiState, RegisterCi, RelateCis, RetireCi, UnrelateCis, UpdateCiAttributes
from domain.configuration import KINDS, RELATIONS, STATES, ConfigurationItem
from domain.errors import IllegalTransition, NotFound
from itil.application import ItilApplication, handles
from itil.web import EXTRA_ROUTES, Route, WebApi, read_body, reply
from projections.configuration import CiRegistryProjection

_CI_NS = uuid5(NAMESPACE_URL, "urn:itil-engine:configuration-item")


def ci_id(account: str, ci_name: str) -> UUID:
    """The id of the CI named `ci_name` on `account` (names are trimmed, as the aggregate keeps them)."""
    return uuid5(_CI_NS, f"{account.strip()}/{ci_name.strip()}")


# -- commands -------------------------------------------------------------------------------------


# -- handlers -------------------------------------------------------------------------------------


def _what(account: str, ci_name: str) -> str:
    return f"CI {ci_name!r} on account {account}"


def _find(app: ItilApplication, account: str, ci_name: str) -> ConfigurationItem | None:
    if not account.strip() or not ci_name.strip():
        return None
    return app.find(ci_id(account, ci_name), ConfigurationItem)


def _on_ci(
    app: ItilApplication, account: str, ci_name: str, act: Callable[[ConfigurationItem], None]
) -> ConfigurationItem:
    if _find(app, account, ci_name) is None:
        raise NotFound(f"there is no {_what(account, ci_name)}")
    [ci] = app.update([(ci_id(account, ci_name), ConfigurationItem, "CI")], act)
    result: ConfigurationItem = ci
    return result


@handles(RegisterCi)
def register_ci(app: ItilApplication, c: RegisterCi) -> ConfigurationItem:
    existing = _find(app, c.account, c.ci_name)
    if existing is not None:
        if existing.kind != c.kind:
            raise IllegalTransition(
                f"cannot register {_what(c.account, c.ci_name)} as a {c.kind}: it is already registered"
                f" as a {existing.kind} ({existing.id})"
            )
        return existing  # the same registration carried out twice has the effect of once
    return app.create(
        ci_id(c.account, c.ci_name),
        ConfigurationItem,
        lambda: ConfigurationItem.register(
            id=ci_id(c.account, c.ci_name),
            account=c.account,
            ci_name=c.ci_name,
            kind=c.kind,
            actor=c.actor,
            at=c.at,
            attributes=c.attributes,
        ),  # fmt: skip
    )


@handles(RelateCis)
def relate_cis(app: ItilApplication, c: RelateCis) -> ConfigurationItem:
    if c.target_ci.strip() != c.ci_name.strip() and _find(app, c.account, c.target_ci) is None:
        raise NotFound(f"there is no {_what(c.account, c.target_ci)} to relate {c.ci_name!r} to; register it first")
    return _on_ci(
        app, c.account, c.ci_name,
        lambda ci: ci.relate(relation=c.relation, target_ci=c.target_ci, actor=c.actor, at=c.at),
    )  # fmt: skip


@handles(UnrelateCis)
def unrelate_cis(app: ItilApplication, c: UnrelateCis) -> ConfigurationItem:
    return _on_ci(
        app, c.account, c.ci_name,
        lambda ci: ci.unrelate(relation=c.relation, target_ci=c.target_ci, actor=c.actor, at=c.at),
    )  # fmt: skip


@handles(ChangeCiState)
def change_ci_state(app: ItilApplication, c: ChangeCiState) -> ConfigurationItem:
    return _on_ci(
        app, c.account, c.ci_name, lambda ci: ci.change_state(state=c.state, reason=c.reason, actor=c.actor, at=c.at)
    )


@handles(UpdateCiAttributes)
def update_ci_attributes(app: ItilApplication, c: UpdateCiAttributes) -> ConfigurationItem:
    return _on_ci(
        app, c.account, c.ci_name, lambda ci: ci.update_attributes(attributes=c.attributes, actor=c.actor, at=c.at)
    )


@handles(RetireCi)
def retire_ci(app: ItilApplication, c: RetireCi) -> ConfigurationItem:
    return _on_ci(app, c.account, c.ci_name, lambda ci: ci.retire(reason=c.reason, actor=c.actor, at=c.at))


# -- HTTP -----------------------------------------------------------------------------------------


class _Command(Schema):
    at = fields.AwareDateTime(load_default=None, metadata={"description": "when it happened; default now"})
    actor = fields.String(load_default=None, validate=validate.Length(min=1, max=200))


def _attributes(required: bool) -> fields.Dict:
    keys = fields.String(validate=validate.Length(min=1, max=200))
    values = fields.String(validate=validate.Length(min=1, max=2000))
    if required:
        return fields.Dict(keys=keys, values=values, required=True, validate=validate.Length(min=1))
    return fields.Dict(keys=keys, values=values, load_default=dict)


class RegisterCiBody(_Command):
    ci = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={"example": "router-42"})
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    attributes = _attributes(required=False)


class RelationBody(_Command):
    relation = fields.String(required=True, validate=validate.OneOf(RELATIONS))
    target = fields.String(required=True, validate=validate.Length(min=1, max=200))


class StateBody(_Command):
    state = fields.String(required=True, validate=validate.OneOf(STATES))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class AttributesBody(_Command):
    attributes = _attributes(required=True)


class RetireBody(_Command):
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
    ci = await asyncio.to_thread(_find, api.app, account, name)
    if ci is None:
        raise NotFound(f"there is no {_what(account, name)}")
    view = registry(api)
    body = ci.summary()
    body["dependents"] = await asyncio.to_thread(view.dependents, account, ci.ci_name)
    listed = await asyncio.to_thread(view.get, account, ci.ci_name)
    body["related_from"] = listed["related_from"] if listed else []
    return reply(body)


EXTRA_ROUTES.extend(
    [
        Route("POST", "/api/cis/{account}", register_ci_route, "ci.register", "path"),
        Route("GET", "/api/cis/{account}", list_cis_route, "account.read", "path"),
        Route("GET", "/api/cis/{account}/{ci}", get_ci_route, "account.read", "path"),
        Route("POST", "/api/cis/{account}/{ci}/{command}", ci_command_route, "ci.update", "path"),
    ]
)
