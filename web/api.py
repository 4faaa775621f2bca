"""The JSON API over HTTP (aiohttp).

Every route is declared once in ROUTES with the action it performs and how to find the account
it touches; one middleware asks the access policy about (caller, action, account) before any
handler runs, so access control is added in one place.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from aiohttp import web
from marshmallow import Schema, ValidationError, fields, validate

from application.app import ItilApplication
from application.batching import GroupCommitter
from application.conflicts import ConcurrencyConflict
from application.whatif import what_if_statement
from domain import commands as cmd
from domain.calendar import CalendarSpec, always, business_hours
from domain.contract import ESCALATION_TARGETS, METRICS, Escalation, Terms
from domain.errors import IllegalTransition, InvalidCommand, NotFound
from domain.incident import CHANNELS, COMMENT_MAX_LENGTH, ESCALATION_LEVELS, HOLD_REASONS, RESOLUTION_CODES
from projections.account_incidents import AccountIncidentsProjection, timeline_entry
from projections.records import envelope_of
from projections.sla import SlaDashboardProjection

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
    category = fields.String(load_default=None, validate=validate.Length(max=200))
    related_incident = fields.UUID(
        load_default=None, metadata={"description": "an earlier incident this one follows up (past its reopen period)"}
    )


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


_DURATION = re.compile(r"^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m(?:in)?)?\s*(?:(\d+)s)?$")


class Duration(fields.Field):
    """A duration as seconds (900) or text ("15m", "4h", "1h30m", "2d")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        match = _DURATION.match(str(value).strip()) if isinstance(value, str) and value.strip() else None
        if match is None or not any(match.groups()):
            raise ValidationError(f"{value!r} is not a duration: use seconds or text like 15m, 4h, 1h30m")
        d, h, m, sec = (int(g or 0) for g in match.groups())
        total = ((d * 24 + h) * 60 + m) * 60 + sec
        if total <= 0:
            raise ValidationError("a target must be longer than zero")
        return total


class CalendarBody(Schema):
    preset = fields.String(load_default="business", validate=validate.OneOf(["24x7", "business", "custom"]))
    timezone = fields.String(load_default="Europe/Paris")
    start = fields.String(load_default="08:00")
    end = fields.String(load_default="18:00")
    saturday_morning = fields.String(load_default=None, metadata={"description": "end of Saturday hours, e.g. 12:00"})
    hours = fields.List(fields.Tuple((fields.Integer(), fields.String(), fields.String())), load_default=None)
    holidays_country = fields.String(load_default="FR", allow_none=True)
    holidays_subdivision = fields.String(load_default=None, allow_none=True)


class EscalationBody(Schema):
    threshold = fields.Integer(required=True, validate=validate.Range(min=1, max=100))
    notify = fields.String(required=True, validate=validate.OneOf(ESCALATION_TARGETS))


class TermsBody(Schema):
    targets = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["P1", "P2", "P3", "P4"])),
        values=fields.Dict(keys=fields.String(validate=validate.OneOf(METRICS)), values=Duration()),
        required=True,
    )
    calendar = fields.Nested(CalendarBody, load_default=lambda: CalendarBody().load({}))
    pausing_reasons = fields.List(
        fields.String(validate=validate.OneOf(HOLD_REASONS)), load_default=lambda: ["awaiting_customer"]
    )
    thresholds = fields.List(fields.Integer(validate=validate.Range(min=1, max=99)), load_default=lambda: [50, 75, 90])
    escalations = fields.List(fields.Nested(EscalationBody), load_default=list)


class ContractVersionBody(TermsBody):
    effective_from = fields.AwareDateTime(load_default=None, metadata={"description": "default: now"})
    service = fields.String(load_default=None, metadata={"description": "terms for one service only"})
    name = fields.String(load_default="")
    actor = fields.String(load_default=None)


class WhatIfBody(TermsBody):
    month = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$"))


def terms_of(data: dict[str, Any]) -> Terms:
    c = data["calendar"]
    if c["preset"] == "24x7":
        spec = always(c["timezone"])
    elif c["preset"] == "custom":
        if not c["hours"]:
            raise InvalidCommand("a custom calendar needs hours: [[weekday, start, end], ...] (0 = Monday)")
        spec = CalendarSpec(
            timezone=c["timezone"],
            hours=tuple((int(d), str(a), str(b)) for d, a, b in c["hours"]),
            holidays_country=c["holidays_country"],
            holidays_subdivision=c["holidays_subdivision"],
        )
    else:
        spec = business_hours(
            c["start"], c["end"], saturday_morning=c["saturday_morning"], timezone=c["timezone"],
            country=c["holidays_country"], subdivision=c["holidays_subdivision"],
        )  # fmt: skip
    return Terms(
        targets={int(p[1]): dict(m) for p, m in data["targets"].items()},
        calendar=spec,
        pausing_reasons=tuple(data["pausing_reasons"]),
        thresholds=tuple(data["thresholds"]),
        escalations=tuple(Escalation(e["threshold"], e["notify"]) for e in data["escalations"]),
    ).validate()


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


def _month(request: web.Request, now: datetime) -> str:
    month = request.query.get("month") or now.astimezone(ZoneInfo("Europe/Paris")).strftime("%Y-%m")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise InvalidCommand(f"month must look like 2026-05, not {month!r}")
    return month


class CategoriseBody(_Command):
    category = fields.String(required=True, validate=validate.Length(min=1, max=200))


class EscalateBody(_Command):
    to_group = fields.String(required=True, validate=validate.Length(min=1, max=200))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class EscalateHierarchicallyBody(_Command):
    level = fields.String(required=True, validate=validate.OneOf(ESCALATION_LEVELS))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class CommentBody(_Command):
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


class AttachToBody(_Command):
    parent_id = fields.UUID(required=True, metadata={"description": "the parent incident of the outage"})


def _attach_to(*, incident_id: UUID, parent_id: UUID, actor: str, at: datetime) -> cmd.AttachIncident:
    """POST /api/incidents/{id}/attach-to: the incident in the path is the child."""
    return cmd.AttachIncident(child_id=incident_id, parent_id=parent_id, actor=actor, at=at)


INCIDENT_COMMANDS: dict[str, tuple[Schema, Callable[..., Any]]] = {
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
    "categorise": (CategoriseBody(), cmd.CategoriseIncident),
    "escalate": (EscalateBody(), cmd.EscalateIncidentFunctionally),
    "escalate-hierarchically": (EscalateHierarchicallyBody(), cmd.EscalateIncidentHierarchically),
    "declare-major": (ReasonBody(), cmd.DeclareMajorIncident),
    "attach-to": (AttachToBody(), _attach_to),
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
    handler: str | Callable[[WebApi, web.Request], Awaitable[web.StreamResponse]]
    action: str
    account: str | Callable[[WebApi, web.Request], Awaitable[str | None]]
    """How to find the account: "none", "path", "body", "incident", or a function of the request."""




ROUTES = (
    Route("GET", "/", "index", "public", "none"),
    Route("GET", "/api/health", "health", "public", "none"),
    Route("POST", "/api/incidents", "log_incident", "incident.log", "body"),
    Route("GET", "/api/incidents/{incident_id}", "get_incident", "incident.read", "incident"),
    Route("POST", "/api/incidents/{incident_id}/comments", "comment_incident", "incident.comment", "incident"),
    Route("GET", "/api/incidents/{incident_id}/comments", "incident_comments", "incident.read", "incident"),
    Route("POST", "/api/incidents/{incident_id}/{command}", "incident_command", "incident.update", "incident"),
    Route("GET", "/api/accounts/{account}/incidents", "account_incidents", "account.read", "path"),
    Route("GET", "/api/accounts/{account}/incidents/{incident_id}", "account_incident", "account.read", "path"),
    Route("GET", "/api/sla/accounts/{account}/contract", "get_contract", "account.read", "path"),
    Route("POST", "/api/sla/accounts/{account}/contract", "add_contract_version", "contract.update", "path"),
    Route("GET", "/api/sla/accounts/{account}/dashboard", "sla_dashboard", "account.read", "path"),
    Route("GET", "/api/sla/accounts/{account}/statement", "sla_statement", "account.read", "path"),
    Route("GET", "/api/sla/accounts/{account}/at-risk", "sla_at_risk", "account.read", "path"),
    Route("GET", "/api/sla/accounts/{account}/breaches", "sla_breaches", "account.read", "path"),
    Route("POST", "/api/sla/accounts/{account}/what-if", "sla_what_if", "account.read", "path"),
    Route("GET", "/api/sla/at-risk", "sla_at_risk", "sla.read.all", "none"),
    Route("GET", "/api/sla/incidents/{incident_id}", "sla_incident", "incident.read", "incident"),
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
            category=data["category"],
            related_incident=data["related_incident"],
        )
        summary = await self.carry_out(command)
        return reply(summary, status=201, headers={"Location": f"/api/incidents/{summary['id']}"})

    async def incident_command(self, request: web.Request) -> web.Response:
        name = request.match_info["command"]
        if name not in INCIDENT_COMMANDS:
            raise NotFound(f"unknown command {name!r}; use one of {', '.join(INCIDENT_COMMANDS)}")
        schema, command_class = INCIDENT_COMMANDS[name]
        data = schema.load(await _body(request))
        actor, at = self._actor_and_at(request, data)
        data.update(actor=actor, at=at, incident_id=_uuid(request.match_info["incident_id"]))
        summary = await self.carry_out(command_class(**data))
        return reply(summary)

    async def comment_incident(self, request: web.Request) -> web.Response:
        """POST /api/incidents/{id}/comments {"text", "customer_visible", "author" (default: the actor), "at"}."""
        data = CommentBody().load(await _body(request))
        actor, at = self._actor_and_at(request, data)
        incident_id = _uuid(request.match_info["incident_id"])
        command = cmd.CommentIncident(
            incident_id=incident_id, text=data["text"], author=data["author"] or actor,
            customer_visible=data["customer_visible"], actor=actor, at=at,
        )  # fmt: skip
        summary = await self.carry_out(command)
        body = {
            "incident_id": str(incident_id), "number": summary["comment_count"], "version": summary["version"],
            "author": command.author.strip(), "text": command.text.strip(),
            "customer_visible": command.customer_visible, "at": at, "actor": actor,
        }  # fmt: skip
        return reply(body, status=201, headers={"Location": f"/api/incidents/{incident_id}/comments"})

    async def incident_comments(self, request: web.Request) -> web.Response:
        """GET /api/incidents/{id}/comments[?customer_visible=true|false]: the comments in the order recorded."""
        incident_id = _uuid(request.match_info["incident_id"])
        wanted = request.query.get("customer_visible")
        if wanted not in (None, "true", "false"):
            raise InvalidCommand(f"customer_visible must be true or false, not {wanted!r}")
        comments = await asyncio.to_thread(self.app.comments, incident_id)
        listed = [_comment(incident_id, n, c) for n, c in enumerate(comments, start=1)]
        if wanted is not None:
            listed = [c for c in listed if c["customer_visible"] == (wanted == "true")]
        return reply({"incident_id": str(incident_id), "total": len(listed), "comments": listed})

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
        limit, offset = _page(request)
        account, now = request.match_info["account"], self.clock()
        view = await asyncio.to_thread(self.projection.account_incidents, account, now, include_closed, limit, offset)
        return reply(view)

    async def account_incident(self, request: web.Request) -> web.Response:
        incident_id = str(_uuid(request.match_info["incident_id"]))
        detail = await asyncio.to_thread(self.projection.incident_detail, incident_id, self.clock())
        if detail is None or detail["account"] != request.match_info["account"]:
            raise NotFound(f"incident {incident_id} is not in the view of account {request.match_info['account']!r}")
        return reply(detail)

    # -- SLA ------------------------------------------------------------------------

    async def get_contract(self, request: web.Request) -> web.Response:
        account = request.match_info["account"]
        contract = await asyncio.to_thread(self.app.find_contract, account)
        if contract is None:
            raise NotFound(f"account {account!r} has no service contract yet")
        return reply({"account": account, "name": contract.name, "versions": contract.versions})

    async def add_contract_version(self, request: web.Request) -> web.Response:
        data = ContractVersionBody().load(await _body(request))
        actor, at = self._actor_and_at(request, {"actor": data["actor"]})
        command = cmd.AddContractVersion(
            account=request.match_info["account"], effective_from=data["effective_from"] or at,
            terms=terms_of(data), actor=actor, at=at, service=data["service"], name=data["name"],
        )  # fmt: skip
        contract = await asyncio.to_thread(self.app.add_contract_version, command)
        body = {"account": contract.account, "version": len(contract.versions), "versions": contract.versions}
        return reply(body, status=201)

    async def sla_dashboard(self, request: web.Request) -> web.Response:
        month = _month(request, self.clock())
        return reply(await asyncio.to_thread(self.sla.dashboard, request.match_info["account"], month))

    async def sla_statement(self, request: web.Request) -> web.Response:
        month = _month(request, self.clock())
        return reply(await asyncio.to_thread(self.sla.monthly_statement, request.match_info["account"], month))

    async def sla_at_risk(self, request: web.Request) -> web.Response:
        account = request.match_info.get("account")
        at_risk = await asyncio.to_thread(self.sla.at_risk, self.clock(), account)
        return reply({"account": account, "as_of": self.clock(), "at_risk": at_risk})

    async def sla_breaches(self, request: web.Request) -> web.Response:
        account = request.match_info["account"]
        month = _month(request, self.clock()) if "month" in request.query else None
        return reply({"account": account, "breaches": await asyncio.to_thread(self.sla.breaches, account, month)})

    async def sla_what_if(self, request: web.Request) -> web.Response:
        data = WhatIfBody().load(await _body(request))
        account, now, month = request.match_info["account"], self.clock(), data["month"]
        terms = terms_of(data)
        what_if = await asyncio.to_thread(what_if_statement, self.app, self.projection, account, month, terms, now)
        live = await asyncio.to_thread(self.sla.dashboard, account, month)
        body = {
            "account": account, "month": month, "what_if": what_if["figures"],
            "replayed_incidents": what_if["replayed_incidents"], "live": live["figures"],
        }  # fmt: skip
        return reply(body)

    async def sla_incident(self, request: web.Request) -> web.Response:
        """An incident's clocks as the store has them now, explained by their events."""
        incident_id = _uuid(request.match_info["incident_id"])
        sla = await asyncio.to_thread(self.app.find_sla, incident_id)
        if sla is None:
            raise NotFound(
                f"incident {incident_id} has no SLA clocks: no contract covered its account when it was logged,"
                " or the SLA process has not seen it yet"
            )
        body = sla.figures(self.clock())
        body["explanation"] = await asyncio.to_thread(self.sla.explanation, str(incident_id))
        return reply(body)

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
