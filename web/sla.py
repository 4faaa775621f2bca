"""HTTP routes of the SLA area: contracts and their versions, the dashboard, statements, at-risk, breaches, what-if."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from marshmallow import Schema, ValidationError, fields, validate

from application.whatif import what_if_statement
from domain import commands as cmd
from domain.calendar import CalendarSpec, always, business_hours
from domain.contract import ESCALATION_TARGETS, METRICS, Escalation, Terms
from domain.errors import InvalidCommand, NotFound
from domain.incident import HOLD_REASONS
from web.api import Route, WebApi, parse_uuid, read_body, reply

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


def _month(request: web.Request, now: datetime) -> str:
    month = request.query.get("month") or now.astimezone(ZoneInfo("Europe/Paris")).strftime("%Y-%m")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise InvalidCommand(f"month must look like 2026-05, not {month!r}")
    return month


async def get_contract(api: WebApi, request: web.Request) -> web.Response:
    account = request.match_info["account"]
    contract = await asyncio.to_thread(api.app.find_contract, account)
    if contract is None:
        raise NotFound(f"account {account!r} has no service contract yet")
    return reply({"account": account, "name": contract.name, "versions": contract.versions})


async def add_contract_version(api: WebApi, request: web.Request) -> web.Response:
    data = ContractVersionBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, {"actor": data["actor"]})
    command = cmd.AddContractVersion(
        account=request.match_info["account"], effective_from=data["effective_from"] or at,
        terms=terms_of(data), actor=actor, at=at, service=data["service"], name=data["name"],
    )  # fmt: skip
    contract = await asyncio.to_thread(api.app.add_contract_version, command)
    body = {"account": contract.account, "version": len(contract.versions), "versions": contract.versions}
    return reply(body, status=201)


async def sla_dashboard(api: WebApi, request: web.Request) -> web.Response:
    month = _month(request, api.clock())
    return reply(await asyncio.to_thread(api.sla.dashboard, request.match_info["account"], month))


async def sla_statement(api: WebApi, request: web.Request) -> web.Response:
    month = _month(request, api.clock())
    return reply(await asyncio.to_thread(api.sla.monthly_statement, request.match_info["account"], month))


async def sla_at_risk(api: WebApi, request: web.Request) -> web.Response:
    account = request.match_info.get("account")
    at_risk = await asyncio.to_thread(api.sla.at_risk, api.clock(), account)
    return reply({"account": account, "as_of": api.clock(), "at_risk": at_risk})


async def sla_breaches(api: WebApi, request: web.Request) -> web.Response:
    account = request.match_info["account"]
    month = _month(request, api.clock()) if "month" in request.query else None
    return reply({"account": account, "breaches": await asyncio.to_thread(api.sla.breaches, account, month)})


async def sla_what_if(api: WebApi, request: web.Request) -> web.Response:
    data = WhatIfBody().load(await read_body(request))
    account, now, month = request.match_info["account"], api.clock(), data["month"]
    terms = terms_of(data)
    what_if = await asyncio.to_thread(what_if_statement, api.app, api.projection, account, month, terms, now)
    live = await asyncio.to_thread(api.sla.dashboard, account, month)
    body = {
        "account": account, "month": month, "what_if": what_if["figures"],
        "replayed_incidents": what_if["replayed_incidents"], "live": live["figures"],
    }  # fmt: skip
    return reply(body)


async def sla_incident(api: WebApi, request: web.Request) -> web.Response:
    """An incident's clocks as the store has them now, explained by their events."""
    incident_id = parse_uuid(request.match_info["incident_id"])
    sla = await asyncio.to_thread(api.app.find_sla, incident_id)
    if sla is None:
        raise NotFound(
            f"incident {incident_id} has no SLA clocks: no contract covered its account when it was logged,"
            " or the SLA process has not seen it yet"
        )
    body = sla.figures(api.clock())
    body["explanation"] = await asyncio.to_thread(api.sla.explanation, str(incident_id))
    return reply(body)


ROUTES = (
    Route("GET", "/api/sla/accounts/{account}/contract", get_contract, "account.read", "path"),
    Route("POST", "/api/sla/accounts/{account}/contract", add_contract_version, "contract.update", "path"),
    Route("GET", "/api/sla/accounts/{account}/dashboard", sla_dashboard, "account.read", "path"),
    Route("GET", "/api/sla/accounts/{account}/statement", sla_statement, "account.read", "path"),
    Route("GET", "/api/sla/accounts/{account}/at-risk", sla_at_risk, "account.read", "path"),
    Route("GET", "/api/sla/accounts/{account}/breaches", sla_breaches, "account.read", "path"),
    Route("POST", "/api/sla/accounts/{account}/what-if", sla_what_if, "account.read", "path"),
    Route("GET", "/api/sla/at-risk", sla_at_risk, "sla.read.all", "none"),
    Route("GET", "/api/sla/incidents/{incident_id}", sla_incident, "incident.read", "incident"),
)
