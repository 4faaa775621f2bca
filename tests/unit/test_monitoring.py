"""Every rule of the supervision aggregates: alarm rules, the account's MonitoringPolicy, Alarm episodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application

from domain.errors import IllegalTransition, InvalidCommand, NotFound
from domain.monitoring import (
    CLEARED,
    DEFAULT_RULES,
    HELD,
    OPEN,
    Alarm,
    AlarmRule,
    Correlation,
    MonitoringPolicy,
    alarm_id,
    at_least,
    automation_request_id,
    episode_incident_id,
    policy_id,
    rule_for,
)
from domain.priority import priority_of

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SOURCE = "centreon"
INCIDENT = UUID("1c1d0000-0000-4000-8000-000000000001")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def alarm(**overrides: Any) -> Alarm:
    values: dict[str, Any] = {"account": "resto-chain", "dedup_key": "centreon:4711", "actor": SOURCE, "at": at(0)}
    values.update(overrides)
    return Alarm.track(**values)


def raised(a: Alarm, seconds: float = 0, hold: int = 0, severity: str = "critical", summary: str = "down") -> str:
    return a.raise_alarm(ci="router-42", check="ping", severity=severity, summary=summary, hold_seconds=hold,
                         actor=SOURCE, at=at(seconds))  # fmt: skip


def names(a: Alarm) -> list[str]:
    return [type(e).__name__ for e in a.collect_events()]


# -- rules ------------------------------------------------------------------------------------------


def test_severities_are_ordered_worst_first() -> None:
    assert at_least("critical", "major") and at_least("major", "major")
    assert not at_least("minor", "major") and not at_least("warning", "minor")


@pytest.mark.parametrize(("severity", "priority"), [("critical", 1), ("major", 2), ("minor", 3), ("warning", 4)])
def test_default_rules_give_each_severity_its_priority(severity: str, priority: int) -> None:
    rule = rule_for((), "ping", severity)
    assert priority_of(rule.impact, rule.urgency) == priority
    assert (rule.on_clear, rule.hold_seconds, rule.automation) == ("restore", 0, None)


def test_the_first_matching_rule_applies_and_unmatched_alarms_get_the_defaults() -> None:
    rules = (
        AlarmRule("tpe-*", "major", impact=2, urgency=1, hold_seconds=300),
        AlarmRule("tpe-offline", "warning", impact=3, urgency=3),
        AlarmRule("*", "critical", impact=1, urgency=1, automation="restart-router"),
    )
    assert rule_for(rules, "tpe-offline", "critical") is rules[0]
    assert rule_for(rules, "tpe-offline", "minor") is rules[1]  # below the first rule's minimum severity
    assert rule_for(rules, "ping", "critical") is rules[2]
    assert rule_for(rules, "ping", "major") is DEFAULT_RULES[1]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"check": " "}, "check pattern is required"),
        ({"min_severity": "fatal"}, "severity must be one of"),
        ({"impact": 0}, "impact must be 1"),
        ({"urgency": True}, "urgency must be 1"),
        ({"on_clear": "close"}, "on_clear must be one of"),
        ({"hold_seconds": -1}, "hold_seconds must be between"),
        ({"hold_seconds": 1.5}, "whole number"),
        ({"automation": ""}, "automation action"),
    ],
)
def test_a_rule_refuses_values_it_cannot_use(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        AlarmRule(**fields)


def test_a_rule_from_plain_values_refuses_unknown_names_and_trims() -> None:
    assert AlarmRule.of({"check": " ping ", "automation": " reboot "}) == AlarmRule("ping", automation="reboot")
    with pytest.raises(InvalidCommand, match="unknown rule field"):
        AlarmRule.of({"check": "ping", "severity": "major"})


# -- the account's policy ---------------------------------------------------------------------------


def test_a_policy_keeps_the_rules_in_order_and_setting_them_again_changes_nothing() -> None:
    rules = [AlarmRule("ping", "major", impact=1, urgency=1), AlarmRule("*", "warning", 3, 3, on_clear="annotate")]
    policy = MonitoringPolicy.define(account=" resto-chain ", rules=rules, actor="roc-anne", at=at(0))
    assert policy.id == policy_id("resto-chain") and policy.account == "resto-chain"
    assert policy.rules == tuple(rules)
    policy.set_rules(rules=rules, actor="roc-anne", at=at(10))
    assert [type(e).__name__ for e in policy.collect_events()] == ["Defined"]
    policy.set_rules(rules=rules[1:], actor="roc-anne", at=at(20))
    assert policy.rule_for("ping", "critical") == rules[1]
    assert [type(e).__name__ for e in policy.collect_events()] == ["RulesSet"]


def test_a_policy_refuses_what_is_not_a_list_of_rules() -> None:
    with pytest.raises(InvalidCommand, match="list of alarm rules"):
        MonitoringPolicy.define(account="a", rules="ping", actor="x", at=at(0))  # type: ignore[arg-type]
    with pytest.raises(InvalidCommand, match="not an alarm rule"):
        MonitoringPolicy.define(account="a", rules=[{"check": "ping"}], actor="x", at=at(0))  # type: ignore[list-item]
    with pytest.raises(InvalidCommand, match="account is required"):
        MonitoringPolicy.define(account=" ", rules=[], actor="x", at=at(0))


def test_a_policy_replays_from_its_events() -> None:
    app: Application[UUID] = Application()
    policy = MonitoringPolicy.define(account="a", rules=[AlarmRule("ping", hold_seconds=90)], actor="x", at=at(0))
    policy.set_rules(rules=[AlarmRule("bgp", "major", 1, 1, automation="reset-bgp")], actor="x", at=at(1))
    app.save(policy)
    copy: MonitoringPolicy = app.repository.get(policy.id)
    assert copy.rules == (AlarmRule("bgp", "major", 1, 1, automation="reset-bgp"),)


def test_a_policy_keeps_its_correlation_and_rules_alone_leave_it_as_it_is() -> None:
    policy = MonitoringPolicy.define(account="a", rules=[], actor="x", at=at(0))
    assert policy.correlation is None and policy.summary()["correlation"] == Correlation().as_dict()
    policy.set_rules(rules=[], actor="x", at=at(1), correlation=Correlation(300, 10, "restore"))
    policy.set_rules(rules=[AlarmRule("ping")], actor="x", at=at(2))  # no correlation given: kept
    policy.set_rules(rules=[AlarmRule("ping")], actor="x", at=at(3), correlation=Correlation(300, 10, "restore"))
    assert [type(e).__name__ for e in policy.pending_events] == ["Defined", "RulesSet", "RulesSet"]
    assert policy.correlation == Correlation(window_seconds=300, threshold=10, upstream_clear="restore")
    assert policy.summary()["correlation_is_default"] is False

    app: Application[UUID] = Application()
    app.save(policy)
    copy: MonitoringPolicy = app.repository.get(policy.id)
    assert (copy.correlation, copy.rules) == (policy.correlation, (AlarmRule("ping"),))


def test_a_policy_stored_before_correlation_existed_runs_on_the_default() -> None:
    defined = MonitoringPolicy.Defined(  # as stored then: no correlation field
        originator_id=policy_id("a"), originator_version=1, timestamp=at(0), originator_topic=(
            "domain.monitoring:MonitoringPolicy"), account="a", rules=[], actor="x", at=at(0),
    )  # fmt: skip
    policy = defined.mutate(None)
    assert policy is not None and policy.correlation is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"threshold": 1}, "threshold must be between 2 and 10000"),
        ({"threshold": True}, "threshold must be a whole number"),
        ({"window_seconds": 5}, "window_seconds must be between 10 and 3600"),
        ({"window_seconds": 7200}, "window_seconds must be between 10 and 3600"),
        ({"upstream_clear": "close"}, "upstream_clear"),
        ({"windows": 60}, "unknown correlation field"),
    ],
)
def test_correlation_refuses_values_it_cannot_use(values: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        Correlation.of(values)


# -- alarm episodes ---------------------------------------------------------------------------------


def test_an_alarm_has_one_id_per_account_and_dedup_key() -> None:
    a = alarm(account=" resto-chain ", dedup_key=" centreon:4711 ")
    assert a.id == alarm_id("resto-chain", "centreon:4711") != alarm_id("other", "centreon:4711")
    assert (a.episode, a.status, a.is_active) == (0, None, False)


def test_a_raise_starts_an_episode_that_opens_at_once_without_a_hold() -> None:
    a = alarm()
    assert raised(a, 5) == "raised"
    assert (a.episode, a.status, a.count, a.started_at, a.last_seen, a.hold_until) == (1, OPEN, 1, at(5), at(5), None)
    assert a.episode_incident_id == episode_incident_id(a.id, 1)
    assert names(a) == ["Tracked", "Raised"]


def test_a_raise_with_a_hold_is_held_until_it_expires() -> None:
    a = alarm()
    assert raised(a, 0, hold=120) == "held"
    assert (a.status, a.hold_until) == (HELD, at(120))
    with pytest.raises(IllegalTransition, match="held until"):
        a.open_incident(incident_id=INCIDENT, actor=SOURCE, at=at(119))
    assert a.open_incident(incident_id=INCIDENT, actor=SOURCE, at=at(120)) is True
    assert (a.status, a.incident_id) == (OPEN, INCIDENT)


def test_repeats_in_an_open_episode_update_count_last_seen_and_severity() -> None:
    a = alarm()
    raised(a, 0)
    assert raised(a, 30, severity="major", summary="still down") == "repeated"
    assert raised(a, 60, summary="") == "repeated"
    assert (a.episode, a.count, a.last_seen, a.severity, a.summary_text) == (1, 3, at(60), "critical", "still down")


def test_a_sighting_no_later_than_the_last_one_is_a_redelivery_and_changes_nothing() -> None:
    a = alarm()
    raised(a, 0)
    raised(a, 30)
    a.collect_events()
    assert raised(a, 30) == "stale"
    assert raised(a, 10) == "stale"
    assert (a.count, names(a)) == (2, [])


def test_a_clear_ends_the_episode_of_an_opened_incident() -> None:
    a = alarm()
    raised(a, 0)
    a.open_incident(incident_id=INCIDENT, actor=SOURCE, at=at(0))
    assert a.clear(summary="ping ok", actor=SOURCE, at=at(300)) == "cleared"
    assert (a.status, a.cleared_at, a.is_active) == (CLEARED, at(300), False)
    assert names(a)[-1] == "Cleared"


def test_a_flap_cleared_while_held_opens_nothing_and_says_so() -> None:
    a = alarm()
    raised(a, 0, hold=120)
    assert a.clear(summary="", actor=SOURCE, at=at(40)) == "flap"
    cleared = a.collect_events()[-1]
    assert isinstance(cleared, Alarm.Cleared) and cleared.incident_id is None
    with pytest.raises(IllegalTransition, match="cleared at"):
        a.open_incident(incident_id=INCIDENT, actor=SOURCE, at=at(120))


def test_a_raise_after_a_clear_starts_the_next_episode_with_its_own_incident() -> None:
    a = alarm()
    raised(a, 0)
    first = a.episode_incident_id
    a.open_incident(incident_id=first, actor=SOURCE, at=at(0))
    a.clear(summary="", actor=SOURCE, at=at(60))
    assert raised(a, 60) == "stale"  # the raise the clear ended, delivered again
    assert raised(a, 90) == "raised"
    assert (a.episode, a.count, a.incident_id, a.cleared_at) == (2, 1, None, None)
    assert a.episode_incident_id != first


def test_a_clear_of_an_inactive_alarm_or_older_than_its_last_sighting_changes_nothing() -> None:
    a = alarm()
    assert a.clear(summary="", actor=SOURCE, at=at(0)) == "not_active"
    raised(a, 0)
    raised(a, 60)
    assert a.clear(summary="", actor=SOURCE, at=at(30)) == "stale"
    assert a.clear(summary="", actor=SOURCE, at=at(61)) == "flap"
    assert a.clear(summary="", actor=SOURCE, at=at(62)) == "not_active"


def test_an_episode_opens_one_incident_only() -> None:
    a = alarm()
    raised(a, 0)
    assert a.open_incident(incident_id=INCIDENT, actor=SOURCE, at=at(0)) is True
    assert a.open_incident(incident_id=INCIDENT, actor=SOURCE, at=at(1)) is False
    with pytest.raises(IllegalTransition, match="already opened"):
        a.open_incident(incident_id=episode_incident_id(a.id, 1), actor=SOURCE, at=at(2))


def test_an_alarm_never_raised_opens_nothing_and_cannot_be_annotated() -> None:
    a = alarm()
    with pytest.raises(IllegalTransition, match="never raised"):
        a.open_incident(incident_id=INCIDENT, actor=SOURCE, at=at(0))
    with pytest.raises(IllegalTransition, match="never raised"):
        a.annotate(note="x", actor=SOURCE, at=at(0))


def test_annotations_belong_to_the_episode_and_are_noted_once() -> None:
    a = alarm()
    raised(a, 0)
    a.clear(summary="", actor=SOURCE, at=at(10))
    assert a.annotate(note="cleared by the monitoring", actor=SOURCE, at=at(10)) is True
    assert a.annotate(note="cleared by the monitoring", actor=SOURCE, at=at(10)) is False
    assert a.annotations == [{"episode": 1, "note": "cleared by the monitoring", "actor": SOURCE, "at": at(10)}]
    with pytest.raises(InvalidCommand, match="note is required"):
        a.annotate(note=" ", actor=SOURCE, at=at(10))


def test_automation_is_requested_once_per_request_and_its_result_recorded_once() -> None:
    a = alarm()
    raised(a, 0)
    request = automation_request_id(a.id, 1, "restart-router")
    with pytest.raises(IllegalTransition, match="no open incident"):
        a.request_automation(request_id=request, action="restart-router", incident_id=INCIDENT, actor=SOURCE, at=at(0))
    a.open_incident(incident_id=INCIDENT, actor=SOURCE, at=at(0))
    assert a.request_automation(request_id=request, action="restart-router", incident_id=INCIDENT, actor=SOURCE,
                                at=at(0)) is True  # fmt: skip
    assert a.request_automation(request_id=request, action="restart-router", incident_id=INCIDENT, actor=SOURCE,
                                at=at(0)) is False  # fmt: skip
    assert a.record_automation_result(request_id=request, succeeded=True, detail="rebooted", actor="rundeck",
                                      at=at(50)) is True  # fmt: skip
    assert a.record_automation_result(request_id=request, succeeded=False, detail="", actor="rundeck",
                                      at=at(60)) is False  # fmt: skip
    assert a.automations[request]["succeeded"] is True and a.automations[request]["detail"] == "rebooted"
    with pytest.raises(NotFound, match="never requested"):
        a.record_automation_result(request_id=INCIDENT, succeeded=True, detail="", actor="rundeck", at=at(60))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"severity": "fatal"}, "severity must be one of"),
        ({"ci": ""}, "CI is required"),
        ({"check": " "}, "check is required"),
        ({"hold_seconds": -5}, "whole number of seconds"),
        ({"actor": ""}, "actor is required"),
        ({"at": datetime(2026, 6, 1, 9)}, "time zone"),
    ],
)
def test_a_raise_refuses_values_it_cannot_use(fields: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"ci": "r", "check": "ping", "severity": "major", "summary": "", "hold_seconds": 0,
                              "actor": SOURCE, "at": at(0)}  # fmt: skip
    values.update(fields)
    with pytest.raises(InvalidCommand, match=message):
        alarm().raise_alarm(**values)


def test_every_alarm_event_carries_the_source_and_the_alarms_instant() -> None:
    a = alarm()
    raised(a, 5, hold=10)
    raised(a, 7)
    a.open_incident(incident_id=INCIDENT, actor=SOURCE, at=at(15))
    a.clear(summary="", actor=SOURCE, at=at(20))
    events = a.collect_events()
    assert [(type(e).__name__, e.actor, e.at) for e in events] == [  # type: ignore[attr-defined]
        ("Tracked", SOURCE, at(0)),
        ("Raised", SOURCE, at(5)),
        ("Repeated", SOURCE, at(7)),
        ("IncidentOpened", SOURCE, at(15)),
        ("Cleared", SOURCE, at(20)),
    ]


def test_an_alarm_replays_from_its_events() -> None:
    app: Application[UUID] = Application()
    a = alarm()
    raised(a, 0, hold=30)
    raised(a, 10)
    a.open_incident(incident_id=INCIDENT, actor=SOURCE, at=at(30))
    request = automation_request_id(a.id, 1, "reboot")
    a.request_automation(request_id=request, action="reboot", incident_id=INCIDENT, actor=SOURCE, at=at(30))
    a.record_automation_result(request_id=request, succeeded=True, detail="ok", actor="rundeck", at=at(40))
    a.clear(summary="", actor=SOURCE, at=at(50))
    a.annotate(note="cleared", actor=SOURCE, at=at(50))
    app.save(a)
    copy: Alarm = app.repository.get(a.id)
    assert copy.summary() == a.summary()
