"""Supervision settings and views: each account's alarm rules, and its open alarms.

Importing this module registers the SetAlarmRules handler (with `handles`), the routes (in
EXTRA_ROUTES) and, through processes.alarms, the intake handlers of the alarm and fleet messages.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from marshmallow import Schema, fields, validate

from domain.commands import SetAlarmRules
from domain.errors import InvalidCommand
from domain.monitoring import (
    MAX_HOLD_SECONDS,
    MAX_RULES,
    ON_CLEAR,
    RESTORE,
    SEVERITIES,
    AlarmRule,
    MonitoringPolicy,
    check_rules,
    policy_id,
    rules_summary,
)
from itil.application import ItilApplication, handles
from itil.web import EXTRA_ROUTES, Route, WebApi, read_body, reply
from processes.alarms import AlarmsProjection

# -- commands -------------------------------------------------------------------------------------


def find_policy(app: ItilApplication, account: str) -> MonitoringPolicy | None:
    if not isinstance(account, str) or not account.strip():
        return None
    return app.find(policy_id(account), MonitoringPolicy)


def alarm_rules(app: ItilApplication, account: str) -> dict[str, Any]:
    """The account's alarm rules and the default ones (version 0: it never set any)."""
    policy = find_policy(app, account)
    return policy.summary() if policy is not None else rules_summary(account.strip(), ())


@handles(SetAlarmRules)
def set_alarm_rules(app: ItilApplication, command: SetAlarmRules) -> MonitoringPolicy:
    """Define the account's rules, or replace them; setting the rules it already has changes nothing."""
    if not isinstance(command.account, str) or not command.account.strip():
        raise InvalidCommand("account is required")
    policy = app.create(
        policy_id(command.account),
        MonitoringPolicy,
        lambda: MonitoringPolicy.define(
            account=command.account, rules=command.rules, actor=command.actor, at=command.at
        ),
    )
    if policy.rules == check_rules(command.rules):
        return policy

    def change(policy: MonitoringPolicy) -> None:
        policy.set_rules(rules=command.rules, actor=command.actor, at=command.at)

    [changed] = app.update([(policy_id(command.account), MonitoringPolicy, "monitoring policy")], change)
    result: MonitoringPolicy = changed
    return result


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


class AlarmRulesBody(Schema):
    at = fields.AwareDateTime(load_default=None, metadata={"description": "when it happened; default now"})
    actor = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    rules = fields.List(fields.Nested(RuleBody()), required=True, validate=validate.Length(max=MAX_RULES))


async def put_alarm_rules(api: WebApi, request: web.Request) -> web.Response:
    """PUT /api/accounts/{account}/alarm-rules {"rules": [{"check": "ping", "min_severity": "major",
    "impact": 1, "urgency": 1, "on_clear": "restore", "hold_seconds": 0, "automation": null}, ...]}.

    The first rule whose check pattern matches an alarm's check, for an alarm of its minimum severity or
    worse, applies; alarms no rule matches get the default rules (see GET).
    """
    data = AlarmRulesBody().load(await read_body(request))
    actor, at = api.actor_and_at(request, data)
    rules = tuple(AlarmRule.of(r) for r in data["rules"])
    command = SetAlarmRules(account=request.match_info["account"], rules=rules, actor=actor, at=at)
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


EXTRA_ROUTES.extend(
    [
        Route("GET", "/api/accounts/{account}/alarm-rules", get_alarm_rules, "account.read", "path"),
        Route("PUT", "/api/accounts/{account}/alarm-rules", put_alarm_rules, "account.admin", "path"),
        Route("GET", "/api/accounts/{account}/alarms", get_alarms, "account.read", "path"),
    ]
)
