"""HTTP routes of the monitoring area: parse the request, issue the command or query, reply."""

from __future__ import annotations

import asyncio

from aiohttp import web
from marshmallow import Schema, fields, validate

from application.monitoring import alarm_rules
from domain.commands import SetAlarmRules
from domain.errors import InvalidCommand
from domain.monitoring import (
    MAX_HOLD_SECONDS,
    MAX_RULES,
    MAX_THRESHOLD,
    MAX_WINDOW_SECONDS,
    MIN_THRESHOLD,
    MIN_WINDOW_SECONDS,
    ON_CLEAR,
    RESTORE,
    SEVERITIES,
    UPSTREAM_CLEAR,
    WAIT,
    AlarmRule,
    Correlation,
)
from projections.alarms import AlarmsProjection
from web.api import Route, WebApi, read_body, reply

# -- HTTP -----------------------------------------------------------------------------------------


class RuleBody(Schema):
    check = fields.String(
        load_default="*", validate=validate.Length(min=1, max=200), metadata={"description": "fnmatch pattern"}
    )
    min_severity = fields.String(load_default="warning", validate=validate.OneOf(SEVERITIES))
    impact = fields.Integer(required=True, strict=True, validate=validate.OneOf((1, 2, 3)))
    urgency = fields.Integer(required=True, strict=True, validate=validate.OneOf((1, 2, 3)))
    on_clear = fields.String(load_default=RESTORE, validate=validate.OneOf(ON_CLEAR))
    hold_seconds = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=MAX_HOLD_SECONDS))
    automation = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))


class CorrelationBody(Schema):
    window_seconds = fields.Integer(
        load_default=120, strict=True, validate=validate.Range(min=MIN_WINDOW_SECONDS, max=MAX_WINDOW_SECONDS),
        metadata={"description": "alarms this close in time correlate"},
    )  # fmt: skip
    threshold = fields.Integer(
        load_default=3, strict=True, validate=validate.Range(min=MIN_THRESHOLD, max=MAX_THRESHOLD),
        metadata={"description": "CIs behind one upstream CI that make a mass outage"},
    )  # fmt: skip
    upstream_clear = fields.String(
        load_default=WAIT, validate=validate.OneOf(UPSTREAM_CLEAR),
        metadata={"description": "what a clear of the upstream CI's alarm does while sites still alarm"},
    )  # fmt: skip


class AlarmRulesBody(Schema):
    at = fields.AwareDateTime(load_default=None, metadata={"description": "when it happened; default now"})
    actor = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    rules = fields.List(fields.Nested(RuleBody()), required=True, validate=validate.Length(max=MAX_RULES))
    correlation = fields.Nested(CorrelationBody(), load_default=None, allow_none=True)


async def put_alarm_rules(api: WebApi, request: web.Request) -> web.Response:
    """PUT /api/accounts/{account}/alarm-rules {"rules": [{"check": "ping", "min_severity": "major",
    "impact": 1, "urgency": 1, "on_clear": "restore", "hold_seconds": 0, "automation": null}, ...],
    "correlation": {"window_seconds": 120, "threshold": 3, "upstream_clear": "wait"}}.

    The first rule whose check pattern matches an alarm's check, for an alarm of its minimum severity or
    worse, applies; alarms no rule matches get the default rules (see GET). `correlation` omitted
    leaves the account's correlation as it is.
    """
    data = AlarmRulesBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    rules = tuple(AlarmRule.of(r) for r in data["rules"])
    correlation = Correlation.of(data["correlation"]) if data["correlation"] is not None else None
    command = SetAlarmRules(
        account=request.match_info["account"], rules=rules, actor=actor, at=at, correlation=correlation
    )
    policy = await asyncio.to_thread(api.app.handle, command)
    return reply(policy.summary())


async def get_alarm_rules(api: WebApi, request: web.Request) -> web.Response:
    """GET /api/accounts/{account}/alarm-rules: the account's rules, then the default ones."""
    return reply(await asyncio.to_thread(alarm_rules, api.app, request.match_info["account"]))


async def get_alarms(api: WebApi, request: web.Request) -> web.Response:
    """GET /api/accounts/{account}/alarms[?all=true][&limit=500]: active alarm episodes (eventually consistent).

    Each with how many times it was seen, when last, and the incident it opened (none while held).
    """
    account = request.match_info["account"]
    every = request.query.get("all", "false").lower() in ("1", "true", "yes")
    try:
        limit = int(request.query.get("limit", "500"))
    except ValueError:
        raise InvalidCommand(f"limit must be a whole number, not {request.query['limit']!r}") from None
    if not 1 <= limit <= 5000:
        raise InvalidCommand(f"limit must be between 1 and 5000, not {limit}")
    view = AlarmsProjection(api.projection.db)
    alarms = await asyncio.to_thread(view.alarms, account, not every, limit)
    return reply({"account": account, "alarms": alarms})


ROUTES = (
    Route("GET", "/api/accounts/{account}/alarm-rules", get_alarm_rules, "account.read", "path"),
    Route("PUT", "/api/accounts/{account}/alarm-rules", put_alarm_rules, "account.admin", "path"),
    Route("GET", "/api/accounts/{account}/alarms", get_alarms, "account.read", "path"),
)
