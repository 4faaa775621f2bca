"""Supervision settings: each account's alarm rules (routes: `web.monitoring`; the alarms themselves:
`application.alarms`)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from application.app import ItilApplication
from domain.commands import SetAlarmRules
from domain.errors import InvalidCommand
from domain.monitoring import (
    MonitoringPolicy,
    check_rules,
    policy_id,
    rules_summary,
)

# -- commands -------------------------------------------------------------------------------------


def find_policy(app: ItilApplication, account: str) -> MonitoringPolicy | None:
    if not isinstance(account, str) or not account.strip():
        return None
    return app.find(policy_id(account), MonitoringPolicy)


def alarm_rules(app: ItilApplication, account: str) -> dict[str, Any]:
    """The account's alarm rules and the default ones (version 0: it never set any)."""
    policy = find_policy(app, account)
    return policy.summary() if policy is not None else rules_summary(account.strip(), ())


def set_alarm_rules(app: ItilApplication, command: SetAlarmRules) -> MonitoringPolicy:
    """Define the account's rules (and correlation), or replace them; setting what it already has changes nothing."""
    if not isinstance(command.account, str) or not command.account.strip():
        raise InvalidCommand("account is required")
    policy = app.create(
        policy_id(command.account),
        MonitoringPolicy,
        lambda: MonitoringPolicy.define(
            account=command.account, rules=command.rules, actor=command.actor, at=command.at,
            correlation=command.correlation,
        ),
    )  # fmt: skip
    if policy.rules == check_rules(command.rules) and command.correlation in (None, policy.correlation):
        return policy

    def change(policy: MonitoringPolicy) -> None:
        policy.set_rules(rules=command.rules, actor=command.actor, at=command.at, correlation=command.correlation)

    [changed] = app.update([(policy_id(command.account), MonitoringPolicy, "monitoring policy")], change)
    result: MonitoringPolicy = changed
    return result


HANDLERS = MappingProxyType(
    {
        SetAlarmRules: set_alarm_rules,
    }
)
"""Command class -> handler(app, command) of this area; the application's table is built from these."""
