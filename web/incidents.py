"""HTTP routes of the incidents area: log an incident, its commands and comments, read it and the account view."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from aiohttp import web
from marshmallow import Schema, fields, validate

from domain import commands as cmd
from domain.errors import InvalidCommand, NotFound
from domain.incident import CHANNELS, COMMENT_MAX_LENGTH, ESCALATION_LEVELS, HOLD_REASONS, RESOLUTION_CODES
from projections.account_incidents import timeline_entry
from projections.records import envelope_of
from web.api import CommandBody, Route, WebApi, parse_uuid, read_body, reply


class LogIncidentBody(CommandBody):
    id = fields.UUID(load_default=None, metadata={"description": "client-chosen id makes retries safe"})
    account = fields.String(required=True, validate=validate.Length(min=1, max=200))
    service = fields.String(load_default=None, validate=validate.Length(max=200))
    ci = fields.String(load_default=None, validate=validate.Length(max=200))
    title = fields.String(required=True, validate=validate.Length(min=1, max=500))
    description = fields.String(load_default="", validate=validate.Length(max=20000))
    impact = fields.Integer(required=True, strict=True, validate=validate.OneOf([1, 2, 3]))
    urgency = fields.Integer(required=True, strict=True, validate=validate.OneOf([1, 2, 3]))
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    reporter = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    category = fields.String(load_default=None, validate=validate.Length(max=200))
    related_incident = fields.UUID(
        load_default=None, metadata={"description": "an earlier incident this one follows up (past its reopen period)"}
    )


class AssignBody(CommandBody):
    group = fields.String(required=True, validate=validate.Length(min=1, max=200))
    assignee = fields.String(load_default=None, validate=validate.Length(max=200))


class ReprioritiseBody(CommandBody):
    impact = fields.Integer(required=True, strict=True, validate=validate.OneOf([1, 2, 3]))
    urgency = fields.Integer(required=True, strict=True, validate=validate.OneOf([1, 2, 3]))


class HoldBody(CommandBody):
    reason = fields.String(required=True, validate=validate.OneOf(HOLD_REASONS))
    note = fields.String(load_default="", validate=validate.Length(max=5000))


class RestoreBody(CommandBody):
    note = fields.String(load_default="", validate=validate.Length(max=5000))


class ResolveBody(CommandBody):
    code = fields.String(required=True, validate=validate.OneOf(RESOLUTION_CODES))
    notes = fields.String(load_default="", validate=validate.Length(max=20000))


class ReasonBody(CommandBody):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class CategoriseBody(CommandBody):
    category = fields.String(required=True, validate=validate.Length(min=1, max=200))


class EscalateBody(CommandBody):
    to_group = fields.String(required=True, validate=validate.Length(min=1, max=200))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class EscalateHierarchicallyBody(CommandBody):
    level = fields.String(required=True, validate=validate.OneOf(ESCALATION_LEVELS))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class CommentBody(CommandBody):
    text = fields.String(required=True, validate=validate.Length(min=1, max=COMMENT_MAX_LENGTH))
    author = fields.String(
        load_default=None, validate=validate.Length(min=1, max=200), metadata={"description": "default: the actor"}
    )
    customer_visible = fields.Boolean(
        required=True, truthy={True}, falsy={False},
        metadata={"description": "true: a comment the customer reads; false: an internal work note"},
    )  # fmt: skip


def _comment(incident_id: UUID, number: int, comment: Any) -> dict[str, Any]:
    """One comment as the API shows it; `number` counts the incident's comments from 1."""
    return {
        "incident_id": str(incident_id), "number": number, "version": comment.originator_version,
        "author": comment.author, "text": comment.text, "customer_visible": comment.customer_visible,
        "at": comment.at, "actor": comment.actor,
    }  # fmt: skip


class AttachToBody(CommandBody):
    parent_id = fields.UUID(required=True, metadata={"description": "the parent incident of the outage"})


def _attach_to(*, incident_id: UUID, parent_id: UUID, actor: str, at: datetime) -> cmd.AttachIncident:
    """POST /api/incidents/{id}/attach-to: the incident in the path is the child."""
    return cmd.AttachIncident(child_id=incident_id, parent_id=parent_id, actor=actor, at=at)


INCIDENT_COMMANDS: dict[str, tuple[Schema, Callable[..., Any]]] = {
    "acknowledge": (CommandBody(), cmd.AcknowledgeIncident),
    "reprioritise": (ReprioritiseBody(), cmd.ReprioritiseIncident),
    "assign": (AssignBody(), cmd.AssignIncident),
    "hold": (HoldBody(), cmd.HoldIncident),
    "resume": (CommandBody(), cmd.ResumeIncident),
    "restore": (RestoreBody(), cmd.RestoreService),
    "resolve": (ResolveBody(), cmd.ResolveIncident),
    "reopen": (ReasonBody(), cmd.ReopenIncident),
    "close": (CommandBody(), cmd.CloseIncident),
    "cancel": (ReasonBody(), cmd.CancelIncident),
    "categorise": (CategoriseBody(), cmd.CategoriseIncident),
    "escalate": (EscalateBody(), cmd.EscalateIncidentFunctionally),
    "escalate-hierarchically": (EscalateHierarchicallyBody(), cmd.EscalateIncidentHierarchically),
    "declare-major": (ReasonBody(), cmd.DeclareMajorIncident),
    "attach-to": (AttachToBody(), _attach_to),
}
"""POST /api/incidents/{id}/{name}: the body's schema and the command it becomes."""


def _page(request: web.Request, default: int = 200, most: int = 1000) -> tuple[int, int]:
    """`limit` (default 200, at most 1000) and `offset` from the query string."""
    try:
        limit = int(request.query.get("limit", default))
        offset = int(request.query.get("offset", 0))
    except ValueError:
        raise InvalidCommand("limit and offset must be whole numbers") from None
    if not 1 <= limit <= most or offset < 0:
        raise InvalidCommand(f"limit must be 1 to {most} and offset not negative")
    return limit, offset


async def log_incident(api: WebApi, request: web.Request) -> web.Response:
    data = LogIncidentBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    command = cmd.LogIncident(
        id=data["id"] or uuid4(),
        account=data["account"],
        title=data["title"],
        impact=data["impact"],
        urgency=data["urgency"],
        channel=data["channel"],
        reporter=data["reporter"] or actor,
        actor=actor,
        at=at,
        service=data["service"],
        ci=data["ci"],
        description=data["description"],
        category=data["category"],
        related_incident=data["related_incident"],
    )
    summary = await api.carry_out(command)
    return reply(summary, status=201, headers={"Location": f"/api/incidents/{summary['id']}"})


async def incident_command(api: WebApi, request: web.Request) -> web.Response:
    name = request.match_info["command"]
    if name not in INCIDENT_COMMANDS:
        raise NotFound(f"unknown command {name!r}; use one of {', '.join(INCIDENT_COMMANDS)}")
    schema, command_class = INCIDENT_COMMANDS[name]
    data = schema.load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    data.update(actor=actor, at=at, incident_id=parse_uuid(request.match_info["incident_id"]))
    summary = await api.carry_out(command_class(**data))
    return reply(summary)


async def comment_incident(api: WebApi, request: web.Request) -> web.Response:
    """POST /api/incidents/{id}/comments {"text", "customer_visible", "author" (default: the actor), "at"}."""
    data = CommentBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    incident_id = parse_uuid(request.match_info["incident_id"])
    command = cmd.CommentIncident(
        incident_id=incident_id, text=data["text"], author=data["author"] or actor,
        customer_visible=data["customer_visible"], actor=actor, at=at,
    )  # fmt: skip
    summary = await api.carry_out(command)
    body = {
        "incident_id": str(incident_id), "number": summary["comment_count"], "version": summary["version"],
        "author": command.author.strip(), "text": command.text.strip(),
        "customer_visible": command.customer_visible, "at": at, "actor": actor,
    }  # fmt: skip
    return reply(body, status=201, headers={"Location": f"/api/incidents/{incident_id}/comments"})


async def incident_comments(api: WebApi, request: web.Request) -> web.Response:
    """GET /api/incidents/{id}/comments[?customer_visible=true|false]: the comments in the order recorded."""
    incident_id = parse_uuid(request.match_info["incident_id"])
    wanted = request.query.get("customer_visible")
    if wanted not in (None, "true", "false"):
        raise InvalidCommand(f"customer_visible must be true or false, not {wanted!r}")
    comments = await asyncio.to_thread(api.app.comments, incident_id)
    listed = [_comment(incident_id, n, c) for n, c in enumerate(comments, start=1)]
    if wanted is not None:
        listed = [c for c in listed if c["customer_visible"] == (wanted == "true")]
    return reply({"incident_id": str(incident_id), "total": len(listed), "comments": listed})


async def get_incident(api: WebApi, request: web.Request) -> web.Response:
    """The incident as the store has it now, with its whole story."""
    incident_id = parse_uuid(request.match_info["incident_id"])
    incident = await asyncio.to_thread(api.app.get_incident, incident_id)
    history = await asyncio.to_thread(api.app.history, incident_id)
    body = incident.summary()
    body["timeline"] = [timeline_entry(envelope_of(e, None)) for e in history]
    return reply(body)


async def account_incidents(api: WebApi, request: web.Request) -> web.Response:
    include_closed = request.query.get("include", "") == "all"
    limit, offset = _page(request)
    account, now = request.match_info["account"], api.clock()
    view = await asyncio.to_thread(api.projection.account_incidents, account, now, include_closed, limit, offset)
    return reply(view)


async def account_incident(api: WebApi, request: web.Request) -> web.Response:
    incident_id = str(parse_uuid(request.match_info["incident_id"]))
    detail = await asyncio.to_thread(api.projection.incident_detail, incident_id, api.clock())
    if detail is None or detail["account"] != request.match_info["account"]:
        raise NotFound(f"incident {incident_id} is not in the view of account {request.match_info['account']!r}")
    return reply(detail)


ROUTES = (
    Route("POST", "/api/incidents", log_incident, "incident.log", "body"),
    Route("GET", "/api/incidents/{incident_id}", get_incident, "incident.read", "incident"),
    Route("POST", "/api/incidents/{incident_id}/comments", comment_incident, "incident.comment", "incident"),
    Route("GET", "/api/incidents/{incident_id}/comments", incident_comments, "incident.read", "incident"),
    Route("POST", "/api/incidents/{incident_id}/{command}", incident_command, "incident.update", "incident"),
    Route("GET", "/api/accounts/{account}/incidents", account_incidents, "account.read", "path"),
    Route("GET", "/api/accounts/{account}/incidents/{incident_id}", account_incident, "account.read", "path"),
)
