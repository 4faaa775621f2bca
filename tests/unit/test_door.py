"""What passes the door can never crash a process or a view downstream (issue: values accepted, then fatal).

Every command reaches an aggregate, whichever door it came in by (HTTP, an intake topic, the commands
topic, the command line): the domain refuses, before anything changes, texts the stores cannot write
(NUL, other control characters, lone surrogates), names with line breaks, instants outside
2000–2099, effective dates and freeze windows years ahead, and SLA targets beyond a year.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest

from domain.account import Account
from domain.calendar import always
from domain.change_calendar import ChangeCalendar
from domain.configuration import ConfigurationItem
from domain.contract import ServiceContract, Terms
from domain.errors import InvalidCommand
from domain.incident import Incident
from domain.monitoring import Alarm, AlarmRule, MonitoringPolicy
from domain.rules import MAX_NESTING, refuse_unclean

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)
YEAR_1 = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
YEAR_9999 = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14)))


def incident(**overrides: Any) -> Incident:
    values: dict[str, Any] = {"id": uuid4(), "account": "resto-chain", "title": "Terminal offline", "impact": 2,
                              "urgency": 1, "channel": "phone", "reporter": "alice", "actor": "alice", "at": T0,
                              "ci": "tpe-0042"}  # fmt: skip
    values.update(overrides)
    return Incident.log(**values)


@pytest.mark.parametrize(
    ("field", "value", "refusal"),
    [
        (
            "title",
            "Terminal\x00offline",
            r"title must not contain control characters or lone surrogates: U\+0000 at position 9",
        ),
        ("description", "line\x1bbreak", r"description must not contain control characters .*U\+001B"),
        ("title", "caf\ud800", r"title must not contain .*U\+D800"),
        ("actor", "alice\udcff", r"actor must not contain .*U\+DCFF"),  # an X-Actor header of bad UTF-8
        ("account", "resto\r\nchain", "account must not contain line breaks"),
        ("account", "x" * 201, "account must be at most 200 characters"),
        ("at", YEAR_1, "must lie between 2000 and 2099"),
        ("at", YEAR_9999, "must lie between 2000 and 2099"),
    ],
)
def test_an_incident_refuses_what_would_break_the_stores_or_the_clocks(field: str, value: Any, refusal: str) -> None:
    with pytest.raises(InvalidCommand, match=refusal):
        incident(**{field: value})


def test_multi_line_text_with_tabs_is_welcome() -> None:
    logged = incident(description="Line 1\n\tline 2\r\nline 3")
    assert logged.title == "Terminal offline"


def test_a_comment_with_a_lone_surrogate_is_refused_and_changes_nothing() -> None:
    logged = incident()
    version = logged.version
    with pytest.raises(InvalidCommand, match=r"the comment's text must not contain .*U\+D800"):
        logged.comment(text="merci \ud800", author="client", customer_visible=True, actor="extranet", at=T0)
    assert (logged.version, logged.comment_count) == (version, 0)


def test_an_alarm_dated_year_1_is_refused() -> None:
    alarm = Alarm.track(account="resto-chain", dedup_key="centreon:1", actor="centreon", at=T0)
    with pytest.raises(InvalidCommand, match="between 2000 and 2099"):
        alarm.raise_alarm(ci="router-1", check="ping", severity="critical", summary="down", hold_seconds=0,
                          actor="centreon", at=YEAR_1)  # fmt: skip


def terms(seconds: int) -> Terms:
    return Terms(targets={1: {"restoration": seconds}}, calendar=always())


@pytest.mark.parametrize("seconds", [99_999_999_999_999 * 86400, 3_000_000 * 86400, 10**400])
def test_a_contract_target_beyond_a_year_is_refused(seconds: int) -> None:
    contract = ServiceContract.register(account="resto-chain", name="", actor="roc", at=T0)
    with pytest.raises(InvalidCommand, match="P1 restoration target must be at most 366 days"):
        contract.add_version(effective_from=T0, terms=terms(seconds), actor="roc", at=T0)


def test_a_contract_version_effective_years_ahead_is_refused() -> None:
    contract = ServiceContract.register(account="resto-chain", name="", actor="roc", at=T0)
    with pytest.raises(InvalidCommand, match="effective_from must lie between 2000 and 2099"):
        contract.add_version(effective_from=YEAR_9999, terms=terms(3600), actor="roc", at=T0)
    with pytest.raises(InvalidCommand, match="effective_from must lie within 5 years"):
        contract.add_version(effective_from=T0 + timedelta(days=6 * 366), terms=terms(3600), actor="roc", at=T0)
    assert contract.add_version(effective_from=T0 + timedelta(days=30), terms=terms(3600), actor="roc", at=T0) == 1


@pytest.mark.parametrize(
    ("start", "end", "refusal"),
    [
        (YEAR_1, T0, "the start of freeze window year-end must lie between 2000 and 2099"),
        (T0, YEAR_9999, "the end of freeze window year-end must lie between 2000 and 2099"),
        (T0, T0 + timedelta(days=6 * 366), "the end of freeze window year-end must lie within 5 years"),
    ],
)
def test_a_freeze_window_out_of_reach_is_refused(start: datetime, end: datetime, refusal: str) -> None:
    calendar = ChangeCalendar.open(account="resto-chain", actor="cm", at=T0)
    with pytest.raises(InvalidCommand, match=refusal):
        calendar.add_freeze(name="year-end", start=start, end=end, actor="cm", at=T0)


def test_names_of_accounts_and_cis_are_one_line() -> None:
    with pytest.raises(InvalidCommand, match="account must not contain line breaks"):
        Account.register(account="acme\nroot", actor="admin", at=T0)
    with pytest.raises(InvalidCommand, match=r"CI name must not contain .*U\+0000"):
        ConfigurationItem.register(id=uuid4(), account="acme", ci_name="tpe\x00", kind="router", actor="x", at=T0)
    with pytest.raises(InvalidCommand, match="account must not contain line breaks"):
        MonitoringPolicy.define(account="acme\r", rules=[], actor="x", at=T0)


def test_nested_values_are_checked_too_and_may_not_nest_without_end() -> None:
    with pytest.raises(InvalidCommand, match=r"attribute 'serial''s value must not contain .*U\+0007"):
        ConfigurationItem.register(id=uuid4(), account="acme", ci_name="tpe-1", kind="router", actor="x", at=T0,
                                   attributes={"serial": "A\x07"})  # fmt: skip
    with pytest.raises(InvalidCommand, match=r"a rule's check pattern must not contain"):
        MonitoringPolicy.define(account="acme", rules=[AlarmRule("ping\x00")], actor="x", at=T0)
    with pytest.raises(InvalidCommand, match=r"details.hops\[1\] must not contain .*U\+0000"):
        refuse_unclean({"details": {"hops": ["ok", "bad\x00"]}})
    with pytest.raises(InvalidCommand, match="a key of details must not contain"):
        refuse_unclean({"details": {"k\x00": 1}})
    deep: Any = "leaf"
    for _ in range(MAX_NESTING + 1):
        deep = [deep]
    with pytest.raises(InvalidCommand, match=f"nests more than {MAX_NESTING} levels deep"):
        refuse_unclean({"details": deep})
