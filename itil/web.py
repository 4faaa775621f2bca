"""The JSON API over HTTP (aiohttp).

Every route is declared once in ROUTES with the action it performs and how to find the account
it touches; one middleware asks the access policy about (caller, action, account) before any
handler runs, so access control is added in one place.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID, uuid4

from aiohttp import web
from marshmallow import Schema, ValidationError, fields, validate

from domain.errors import IllegalTransition, InvalidCommand, NotFound
from domain.incident import CHANNELS, HOLD_REASONS, RESOLUTION_CODES
from itil import application as cmd
from itil.application import ConcurrencyConflict, ItilApplication
from projections.account_incidents import AccountIncidentsProjection, timeline_entry
from streams.envelope import envelope_of

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLOCK_SKEW = timedelta(minutes=2)


class Forbidden(Exception):
    """The caller may not perform this action on this account."""


@dataclass(frozen=True)
class Caller:
    """Who is calling. Until authentication lands, the name comes from the X-Actor header."""

    name: str | None


class AccessPolicy(Protocol):
    def authorize(self, caller: Caller, action: str, account: str | None) -> None:
        """Raise Forbidden when `caller` may not perform `action` on `account`."""


class AllowAll:
    """The policy until roles and accounts are configured: everyone may do everything."""

    def authorize(self, caller: Caller, action: str, account: str | None) -> None:
        return None


# -- request bodies -----------------------------------------------------------------------


class _Command(Schema):
    at = fields.AwareDateTime(load_default=None, metadata={"description": "when it happened; default now"})
    actor = fields.String(load_default=None, validate=validate.Length(min=1, max=200))


class LogIncidentBody(_Command):
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


class AssignBody(_Command):
    group = fields.String(required=True, validate=validate.Length(min=1, max=200))
    assignee = fields.String(load_default=None, validate=validate.Length(max=200))


class ReprioritiseBody(_Command):
    impact = fields.Integer(required=True, strict=True, validate=validate.OneOf([1, 2, 3]))
    urgency = fields.Integer(required=True, strict=True, validate=validate.OneOf([1, 2, 3]))


class HoldBody(_Command):
    reason = fields.String(required=True, validate=validate.OneOf(HOLD_REASONS))
    note = fields.String(load_default="", validate=validate.Length(max=5000))


class RestoreBody(_Command):
    note = fields.String(load_default="", validate=validate.Length(max=5000))


class ResolveBody(_Command):
    code = fields.String(required=True, validate=validate.OneOf(RESOLUTION_CODES))
    notes = fields.String(load_default="", validate=validate.Length(max=20000))


class ReasonBody(_Command):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


INCIDENT_COMMANDS: dict[str, tuple[Schema, type]] = {
    "acknowledge": (_Command(), cmd.AcknowledgeIncident),
    "reprioritise": (ReprioritiseBody(), cmd.ReprioritiseIncident),
    "assign": (AssignBody(), cmd.AssignIncident),
    "hold": (HoldBody(), cmd.HoldIncident),
    "resume": (_Command(), cmd.ResumeIncident),
    "restore": (RestoreBody(), cmd.RestoreService),
    "resolve": (ResolveBody(), cmd.ResolveIncident),
    "reopen": (ReasonBody(), cmd.ReopenIncident),
    "close": (_Command(), cmd.CloseIncident),
    "cancel": (ReasonBody(), cmd.CancelIncident),
}
"""POST /api/incidents/{id}/{name}: the body's schema and the command it becomes."""


# -- helpers ------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        body, status=status, headers=headers, dumps=lambda o: json.dumps(o, default=_json_default)
    )


def error(status: int, message: str, **extra: Any) -> web.Response:
    return reply({"error": message, **extra}, status=status)


class BadRequest(Exception):
    """The request cannot be read (not JSON, not an object, bad path parameter)."""


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()  # aiohttp keeps the body, so the access check and handler share it
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"the request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(f"there is no incident {text!r}: not an incident id") from None


# -- the web application ------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: str
    action: str
    account: str  # how to find the account: "none", "path", "body", "incident"


ROUTES = (
    Route("GET", "/", "index", "public", "none"),
    Route("GET", "/api/health", "health", "public", "none"),
    Route("POST", "/api/incidents", "log_incident", "incident.log", "body"),
    Route("GET", "/api/incidents/{incident_id}", "get_incident", "incident.read", "incident"),
    Route(
        "POST", "/api/incidents/{incident_id}/{command}", "incident_command", "incident.update", "incident"
    ),
    Route("GET", "/api/accounts/{account}/incidents", "account_incidents", "account.read", "path"),
    Route(
        "GET", "/api/accounts/{account}/incidents/{incident_id}", "account_incident", "account.read", "path"
    ),
)


class WebApi:
    """Handlers for ROUTES; each turns a request into a command or a query, nothing more."""

    def __init__(
        self,
        app: ItilApplication,
        projection: AccountIncidentsProjection,
        clock: Clock,
        policy: AccessPolicy | None = None,
    ) -> None:
        self.app = app
        self.projection = projection
        self.clock = clock
        self.policy = policy or AllowAll()

    def build(self) -> web.Application:
        webapp = web.Application(middlewares=[self.errors, self.access])
        for route in ROUTES:
            webapp.router.add_route(route.method, route.path, self._tagged(route))
        return webapp

    def _tagged(self, route: Route) -> Handler:
        handler: Handler = getattr(self, route.handler)

        async def tagged(request: web.Request) -> web.StreamResponse:
            return await handler(request)

        tagged.route = route  # type: ignore[attr-defined]
        return tagged

    # -- middlewares ----------------------------------------------------------------

    @web.middleware
    async def errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status >= 400:
                return error(e.status, e.reason)
            raise
        except BadRequest as e:
            return error(400, str(e))
        except ValidationError as e:
            return error(422, "the request is not valid", fields=e.messages)
        except InvalidCommand as e:
            return error(422, str(e))
        except NotFound as e:
            return error(404, str(e))
        except (IllegalTransition, ConcurrencyConflict) as e:
            return error(409, str(e))
        except Forbidden as e:
            return error(403, str(e))
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            return error(500, "internal error; it was logged")

    @web.middleware
    async def access(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route: Route | None = getattr(request.match_info.handler, "route", None)
        if route is not None and route.action != "public":
            caller = Caller(request.headers.get("X-Actor"))
            self.policy.authorize(caller, route.action, await self._account_of(request, route))
        return await handler(request)

    async def _account_of(self, request: web.Request, route: Route) -> str | None:
        if route.account == "path":
            return request.match_info["account"]
        if route.account == "body":
            account = (await _body(request)).get("account")
            return account if isinstance(account, str) else None
        if route.account == "incident":
            incident_id = _uuid(request.match_info["incident_id"])
            incident = await asyncio.to_thread(self.app.get_incident, incident_id)
            return incident.account
        return None

    # -- commands -------------------------------------------------------------------

    def _actor_and_at(self, request: web.Request, data: dict[str, Any]) -> tuple[str, datetime]:
        actor = request.headers.get("X-Actor") or data.get("actor")
        if not actor:
            raise InvalidCommand("who is acting? send the X-Actor header (or an actor field)")
        now = self.clock()
        at = data.get("at") or now
        if at > now + CLOCK_SKEW:
            raise InvalidCommand(f"at {at.isoformat()} is in the future")
        return actor, at

    async def log_incident(self, request: web.Request) -> web.Response:
        data = LogIncidentBody().load(await _body(request))
        actor, at = self._actor_and_at(request, data)
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
        )
        incident = await asyncio.to_thread(self.app.handle, command)
        location = f"/api/incidents/{incident.id}"
        return reply(incident.summary(), status=201, headers={"Location": location})

    async def incident_command(self, request: web.Request) -> web.Response:
        name = request.match_info["command"]
        if name not in INCIDENT_COMMANDS:
            raise NotFound(f"unknown command {name!r}; use one of {', '.join(INCIDENT_COMMANDS)}")
        schema, command_class = INCIDENT_COMMANDS[name]
        data = schema.load(await _body(request))
        actor, at = self._actor_and_at(request, data)
        data.update(actor=actor, at=at, incident_id=_uuid(request.match_info["incident_id"]))
        incident = await asyncio.to_thread(self.app.handle, command_class(**data))
        return reply(incident.summary())

    # -- queries --------------------------------------------------------------------

    async def get_incident(self, request: web.Request) -> web.Response:
        """The incident as the store has it now, with its whole story."""
        incident_id = _uuid(request.match_info["incident_id"])
        incident = await asyncio.to_thread(self.app.get_incident, incident_id)
        history = await asyncio.to_thread(self.app.history, incident_id)
        body = incident.summary()
        body["timeline"] = [timeline_entry(envelope_of(e, None)) for e in history]
        return reply(body)

    async def account_incidents(self, request: web.Request) -> web.Response:
        include_closed = request.query.get("include", "") == "all"
        view = await asyncio.to_thread(
            self.projection.account_incidents, request.match_info["account"], self.clock(), include_closed
        )
        return reply(view)

    async def account_incident(self, request: web.Request) -> web.Response:
        incident_id = str(_uuid(request.match_info["incident_id"]))
        detail = await asyncio.to_thread(self.projection.incident_detail, incident_id, self.clock())
        if detail is None or detail["account"] != request.match_info["account"]:
            raise NotFound(
                f"incident {incident_id} is not in the view of account {request.match_info['account']!r}"
            )
        return reply(detail)

    async def health(self, request: web.Request) -> web.Response:
        return reply({"status": "ok"})

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=INDEX_HTML, content_type="text/html")


INDEX_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ITIL engine</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}
code{background:#f3f3f3;padding:0 .2rem}</style></head>
<body><h1>ITIL engine</h1>
<p>Event-sourced incidents; every event goes out on Kafka topic <code>itil.events</code>.</p>
<form id="f"><label>Account view: <input id="account" placeholder="account" required></label>
<button>Show open incidents</button></form>
<table id="view"></table>
<h2>API</h2><ul>
<li><code>POST /api/incidents</code> (header <code>X-Actor</code>) &rarr; 201 with the id</li>
<li><code>POST /api/incidents/{id}/{command}</code>: acknowledge, assign, hold, resume, restore,
resolve, reopen, close, cancel</li>
<li><code>GET /api/incidents/{id}</code>, <code>GET /api/accounts/{account}/incidents</code>,
<code>GET /api/accounts/{account}/incidents/{id}</code></li></ul>
<script>
document.getElementById('f').onsubmit = async (ev) => {
  ev.preventDefault();
  const account = document.getElementById('account').value;
  const r = await fetch('/api/accounts/' + encodeURIComponent(account) + '/incidents');
  const v = await r.json();
  const t = document.getElementById('view');
  t.innerHTML = '<tr><th>Priority</th><th>Title</th><th>Status</th><th>Age</th><th>Assignee</th></tr>';
  for (const i of v.incidents) {
    const tr = t.insertRow();
    for (const x of [i.priority, i.title, i.status, Math.round(i.age_seconds / 60) + ' min',
                     i.assignee || i.assignment_group || '']) tr.insertCell().textContent = x;
  }
};
</script></body></html>
"""
