"""The JSON API over HTTP (aiohttp).

Every route is declared once in ROUTES with the action it performs and how to find the account
it touches; one middleware asks the access policy about (caller, action, account) before any
handler runs, so access control is added in one place.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from aiohttp import web
from eventsourcing.domain import Aggregate
from marshmallow import Schema, ValidationError, fields, validate

from application.app import ItilApplication
from application.batching import GroupCommitter
from application.conflicts import ConcurrencyConflict
from application.store import transient
from domain.errors import IllegalTransition, InvalidCommand, NotFound
from projections.account_incidents import AccountIncidentsProjection
from projections.sla import SlaDashboardProjection
from streams.contracts import MAX_JSON_DEPTH, json_depth

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLOCK_SKEW = timedelta(minutes=2)
RETRY_AFTER_SECONDS = 5
"""What a 503 asks the caller to wait while the store is unavailable."""


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


class CommandBody(Schema):
    """What every command body may carry: when it happened and, without X-Actor, who acted."""

    at = fields.AwareDateTime(load_default=None, metadata={"description": "when it happened; default now"})
    actor = fields.String(load_default=None, validate=validate.Length(min=1, max=200))


# -- helpers ------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=lambda o: json.dumps(o, default=_json_default))


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
    except RecursionError:
        raise BadRequest(f"the request body nests more than {MAX_JSON_DEPTH} levels deep") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    if json_depth(body) > MAX_JSON_DEPTH:
        raise BadRequest(f"the request body nests more than {MAX_JSON_DEPTH} levels deep")
    return body


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(f"there is no incident {text!r}: not an incident id") from None


def id_in_path(request: web.Request, key: str, what: str) -> UUID:
    text = request.match_info[key]
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(f"there is no {what} {text!r}: not a {what} id") from None


async def load_in_path(api: WebApi, request: web.Request, key: str, kind: type[Aggregate], what: str) -> Any:
    """The aggregate named in the path (404 when there is none)."""
    return await asyncio.to_thread(api.app.load, id_in_path(request, key, what), kind, what)


async def command_of(api: WebApi, request: web.Request, commands: dict[str, tuple[Schema, type]], **ids: Any) -> Any:
    """The command named by the path's {command}, built from the validated body."""
    name = request.match_info["command"]
    if name not in commands:
        raise NotFound(f"unknown command {name!r}; use one of {', '.join(commands)}")
    schema, command_class = commands[name]
    data = schema.load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    data.update(actor=actor, at=at, **ids)
    return command_class(**data)


# -- the web application ------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: str | Callable[[WebApi, web.Request], Awaitable[web.StreamResponse]]
    action: str
    account: str | Callable[[WebApi, web.Request], Awaitable[str | None]]
    """How to find the account: "none", "path", "body", "incident", or a function of the request."""


ROUTES = (
    Route("GET", "/", "index", "public", "none"),
    Route("GET", "/api/health", "health", "public", "none"),
)


class WebApi:
    """Handlers for ROUTES; each turns a request into a command or a query, nothing more."""

    def __init__(
        self,
        app: ItilApplication,
        projection: AccountIncidentsProjection,
        clock: Clock,
        policy: AccessPolicy | None = None,
        sla: SlaDashboardProjection | None = None,
        committer: GroupCommitter | None = None,
        routes: Sequence[Route] | None = None,
    ) -> None:
        """`routes`: every route the API serves (the composition root passes `web.routes.all_routes()`;
        None, for tests, means that same whole table)."""
        if routes is None:
            from web.routes import all_routes  # the areas' modules import this one

            routes = all_routes()
        self.routes = tuple(routes)
        self.app = app
        self.committer = committer
        self.projection = projection
        self.sla = sla or SlaDashboardProjection(projection.db)
        self.clock = clock
        self.policy = policy or AllowAll()

    def build(self) -> web.Application:
        webapp = web.Application(middlewares=[self.errors, self.access])
        for route in self.routes:
            webapp.router.add_route(route.method, route.path, self._tagged(route))
        return webapp

    def _tagged(self, route: Route) -> Handler:
        if isinstance(route.handler, str):
            handler: Handler = getattr(self, route.handler)
        else:
            area_handler = route.handler

            async def handler(request: web.Request) -> web.StreamResponse:
                return await area_handler(self, request)

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
        except Exception as e:
            if transient(e):
                log.warning("the store is unavailable on %s %s: %s", request.method, request.path, e)
                response = error(503, "the store is unavailable for a moment; try again shortly")
                response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                return response
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
        if callable(route.account):
            return await route.account(self, request)
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

    def actor_and_at(self, request: web.Request, data: dict[str, Any]) -> tuple[str, datetime]:
        """Who acts (X-Actor header or `actor`) and when (`at`, default now; never in the future)."""
        return self._actor_and_at(request, data)

    def _actor_and_at(self, request: web.Request, data: dict[str, Any]) -> tuple[str, datetime]:
        actor = request.headers.get("X-Actor") or data.get("actor")
        if not actor:
            raise InvalidCommand("who is acting? send the X-Actor header (or an actor field)")
        now = self.clock()
        at = data.get("at") or now
        if at > now + CLOCK_SKEW:
            raise InvalidCommand(f"at {at.isoformat()} is in the future")
        return actor, at

    async def carry_out(self, command: Any) -> dict[str, Any]:
        """Carry out a command (through group commit when it can) and return the aggregate's state."""
        if self.committer is not None and self.app.can_prepare(command):
            outcome = await asyncio.wrap_future(self.committer.submit(command))
            return outcome.summary
        aggregate = await asyncio.to_thread(self.app.handle, command)
        summary: dict[str, Any] = aggregate.summary()
        return summary

    # -- queries --------------------------------------------------------------------

    # -- SLA ------------------------------------------------------------------------

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
<li><code>POST /api/incidents/{id}/{command}</code>: acknowledge, reprioritise, categorise, assign,
escalate, escalate-hierarchically, declare-major, attach-to, hold, resume, restore, resolve, reopen,
close, cancel</li>
<li><code>POST /api/incidents/{id}/comments</code> (text, customer_visible, author),
<code>GET /api/incidents/{id}/comments</code></li>
<li><code>GET /api/incidents/{id}</code>, <code>GET /api/accounts/{account}/incidents</code>,
<code>GET /api/accounts/{account}/incidents/{id}</code>, <code>GET /api/accounts/{account}</code></li>
<li>SLA: <code>/api/sla/accounts/{account}/contract|dashboard|statement|at-risk|breaches|what-if</code>,
<code>/api/sla/incidents/{id}</code></li>
<li>Problems <code>/api/problems</code>, changes <code>/api/changes</code>, configuration items
<code>/api/cis/{account}</code>, alarms <code>/api/accounts/{account}/alarms</code></li>
<li>Message contracts: <a href="/api/contracts/asyncapi.json">AsyncAPI document</a></li></ul>
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


read_body = _body
"""The request's JSON object body ({} when empty); BadRequest when it is not a JSON object."""
parse_uuid = _uuid
