"""Steps for features/alarms.feature, driven through the intake processor, the alarm process and the store.

The engine is the supervision harness of tests/integration/test_alarms.py on a SQLite file: messages go
through `IntakeProcessor.handle`, stored events are pumped to the views and processes, and the alarm
process's ticker runs whenever the scenario lets time pass.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from domain.commands import SetAlarmRules
from domain.incident import RESTORED, Incident
from domain.monitoring import RESTORE, AlarmRule, Correlation
from tests.integration.test_alarms import ACCOUNT, LINK, PARIS, Engine, site

scenarios("alarms.feature")

DAY = "2026-06-01"
ACTOR = r'"(?P<actor>[^"]+)"'
CHECK = r'"(?P<check>[^"]+)"'
CI = r'"(?P<ci>[^"]+)"'
TIME = r"(?P<time>\d\d:\d\d)"


def moment(text: str) -> datetime:
    return datetime.fromisoformat(f"{DAY}T{text}").replace(tzinfo=PARIS)


@dataclass
class Story:
    """The engine under test and what the scenario has named so far."""

    engine: Engine
    last: tuple[str, str] | None = None

    def alarm_incident(self, ci: str, check: str) -> Incident:
        return self.engine.incident(self.engine.alarm_of(ci, check).incident_id)

    def parent(self) -> Incident:
        [parent] = [i for i in self.engine.monitoring_incidents() if i.children]
        return parent


@pytest.fixture
def story(sqlite_env: dict[str, str]) -> Iterator[Story]:
    engine = Engine(sqlite_env)
    engine.now = moment("08:00")
    yield Story(engine)
    engine.app.close()


# -- the setting ----------------------------------------------------------------------------------


@given(
    parsers.re(
        r'the restaurant sites "resto-001" to "resto-(?P<last>\d{3})" of "resto-chain" depend on the carrier link'
        rf' "{LINK}"'
    ),
    converters={"last": int},
)
def carrier_sites(story: Story, last: int) -> None:
    story.engine.carrier_sites(last)


@given(parsers.re(rf'"resto-chain" holds alarms of the check {CHECK} for (?P<seconds>\d+) seconds before opening'
                  r" an incident"), converters={"seconds": int})  # fmt: skip
def hold_rule(story: Story, check: str, seconds: int) -> None:
    story.engine.rules(AlarmRule(check, impact=2, urgency=2, hold_seconds=seconds))


@given(parsers.re(r'"resto-chain" asks the automation platform to run "(?P<action>[^"]+)" on alarms of the check'
                  rf" {CHECK}"))  # fmt: skip
def automation_rule(story: Story, action: str, check: str) -> None:
    story.engine.rules(AlarmRule(check, impact=2, urgency=1, automation=action))


@given(parsers.re(rf'"resto-chain" opens incidents for alarms of the check {CHECK} at impact (?P<impact>\d) and urgency'
                  r" (?P<urgency>\d), and for critical ones at impact (?P<critical_impact>\d) and urgency"
                  r" (?P<critical_urgency>\d)"),
       converters={"impact": int, "urgency": int, "critical_impact": int, "critical_urgency": int})  # fmt: skip
def severity_rules(
    story: Story, check: str, impact: int, urgency: int, critical_impact: int, critical_urgency: int
) -> None:
    story.engine.rules(
        AlarmRule(check, "critical", impact=critical_impact, urgency=critical_urgency),
        AlarmRule(check, "warning", impact=impact, urgency=urgency),
    )


# -- alarms -----------------------------------------------------------------------------------------


@when(
    parsers.re(
        rf"the carrier link fails at {TIME} and {ACTOR} raises (?P<count>\d+) alarms in (?P<seconds>\d+) seconds:"
        r" ping, bgp, voip and http on each of the (?P<sites>\d+) sites"
    ),
    converters={"count": int, "seconds": int, "sites": int},
)
def storm(story: Story, time: str, actor: str, count: int, seconds: int, sites: int) -> None:
    alarms = [(site(n), check) for n in range(1, sites + 1) for check in ("ping", "bgp", "voip", "http")]
    assert len(alarms) == count
    random.Random(42).shuffle(alarms)
    start = moment(time)
    story.engine.now = start
    for i, (ci, check) in enumerate(alarms):
        when = start + timedelta(seconds=i * seconds / count)
        story.engine.alarm("raised", ci, check, when, pump=False, source=actor)
    story.engine.pump()


@when(parsers.re(rf"{ACTOR} raises the alarm {CHECK} on {CI} at (?P<times>\d\d:\d\d(?:(?:, | and )\d\d:\d\d)*)"))
def raise_alarm(story: Story, actor: str, check: str, ci: str, times: str) -> None:
    for text in re.split(r", | and ", times):
        story.engine.now = moment(text)
        story.engine.alarm("raised", ci, check, moment(text), source=actor)
    story.last = (ci, check)


@when(parsers.re(rf"{ACTOR} (?P<verb>raises|updates) the alarm {CHECK} on {CI} at {TIME}, severity (?P<severity>\w+)"))
def alarm_with_severity(story: Story, actor: str, verb: str, check: str, ci: str, time: str, severity: str) -> None:
    story.engine.now = moment(time)
    kind = "raised" if verb == "raises" else "updated"
    story.engine.alarm(kind, ci, check, moment(time), severity=severity, source=actor)
    story.last = (ci, check)


@when(parsers.re(rf"{ACTOR} clears the alarm {CHECK} on {CI} at {TIME}"))
def clear_alarm(story: Story, actor: str, check: str, ci: str, time: str) -> None:
    at = moment(time)
    story.engine.now = at
    story.engine.alarm("cleared", ci, check, at, source=actor)


@when(parsers.re(rf"{ACTOR} clears every alarm at {TIME}"))
def clear_everything(story: Story, actor: str, time: str) -> None:
    at = moment(time)
    story.engine.now = at
    with story.engine.view.db.transaction(write=False) as tx:
        rows = tx.execute("SELECT ci, check_name FROM view_alarms WHERE status IN ('open', 'held')").all()
    for row in rows:
        story.engine.alarm("cleared", row["ci"], row["check_name"], at, pump=False, source=actor)
    story.engine.pump()


@when(parsers.re(rf"time passes to {TIME}"))
def time_passes(story: Story, time: str) -> None:
    story.engine.now = moment(time)
    story.engine.process.tick()
    story.engine.pump()


@when(parsers.re(rf'the automation platform reports at {TIME} that "(?P<action>[^"]+)" succeeded: "(?P<detail>[^"]+)"'))
def automation_succeeded(story: Story, time: str, action: str, detail: str) -> None:
    [request] = story.engine.sent
    at = moment(time)
    story.engine.now = at
    story.engine.send(
        "automation.result", source="rundeck", request_id=request["request_id"], incident_id=request["incident_id"],
        action=action, outcome="success", detail=detail, at=at,
    )  # fmt: skip


# -- outcomes -------------------------------------------------------------------------------------


@then(parsers.re(r'"resto-chain" has (?P<count>\d+) incidents? opened by monitoring'), converters={"count": int})
def incidents_opened(story: Story, count: int) -> None:
    incidents = story.engine.monitoring_incidents()
    assert len(incidents) == count
    assert all(i.channel == "monitoring" for i in incidents)


@then(parsers.re(rf'one of them is the parent incident "(?P<title>[^"]+)" on {CI}, priority P(?P<priority>\d)'))
def parent_incident(story: Story, title: str, ci: str, priority: str) -> None:
    parent = story.parent()
    assert (parent.title, parent.ci, parent.priority) == (title, ci, int(priority))


@then(parsers.re(r"the other (?P<count>\d+) are its children, one per site"), converters={"count": int})
def children(story: Story, count: int) -> None:
    parent = story.parent()
    sites = sorted(story.engine.incident(c).ci or "" for c in parent.children)
    assert sites == [site(n) for n in range(1, count + 1)]


SITES = r'(?P<sites>"[^"]+" at \d\d:\d\d(?:(?:, | and )"[^"]+" at \d\d:\d\d)+)'


@when(parsers.re(rf"{ACTOR} raises the alarm {CHECK} on {SITES}"))
def raise_on_sites(story: Story, actor: str, check: str, sites: str) -> None:
    for ci, time in re.findall(r'"([^"]+)" at (\d\d:\d\d)', sites):
        story.engine.now = moment(time)
        story.engine.alarm("raised", ci, check, moment(time), source=actor)


@given('"resto-chain" restores its outages when the upstream CI\'s alarm clears')
def restore_on_upstream_clear(story: Story) -> None:
    story.engine.app.handle(SetAlarmRules(ACCOUNT, (), "roc-anne", story.engine.now,
                                          correlation=Correlation(upstream_clear=RESTORE)))  # fmt: skip


@then(
    parsers.re(
        r"the parent incident has priority P(?P<now>\d), with a work note saying it was raised from "
        r'P(?P<before>\d) because of "(?P<why>[^"]+)"'
    )
)
def parent_raised(story: Story, now: str, before: str, why: str) -> None:
    parent = story.parent()
    assert parent.priority == int(now)
    [note] = [c.text for c in story.engine.app.comments(parent.id) if not c.customer_visible]
    assert f"raised from P{before} to P{now}" in note and why in note


@then("the parent incident is still open, with a work note saying it waits for the alarms behind it")
def parent_waits(story: Story) -> None:
    parent = story.parent()
    assert parent.status != RESTORED
    notes = [c.text for c in story.engine.app.comments(parent.id) if not c.customer_visible]
    assert any("stays open until the alarms still active behind it clear" in n for n in notes)


@then("that alarm is on the parent incident")
def on_parent(story: Story) -> None:
    assert story.last is not None
    assert story.alarm_incident(*story.last).id == story.parent().id


@then(parsers.re(rf"the parent incident and its (?P<count>\d+) children are restored at {TIME}"))
def all_restored(story: Story, count: str, time: str) -> None:
    parent = story.parent()
    incidents = [parent, *(story.engine.incident(c) for c in parent.children)]
    assert len(incidents) == int(count) + 1
    assert {(i.status, i.restored_at) for i in incidents} == {(RESTORED, moment(time))}


@then(
    parsers.re(rf"the alarm {CHECK} on {CI} was seen (?P<count>\d+) times, last at {TIME}, on that incident"),
    converters={"count": int},
)
def seen(story: Story, check: str, ci: str, count: int, time: str) -> None:
    alarm = story.engine.alarm_of(ci, check)
    [incident] = story.engine.monitoring_incidents()
    assert (alarm.count, alarm.last_seen, alarm.incident_id) == (count, moment(time), incident.id)


@then(
    parsers.re(
        rf'the supervision view of "resto-chain" shows the alarm {CHECK} on {CI} (?P<status>open|held),'
        r" seen (?P<count>\d+) times"
    ),
    converters={"count": int},
)
def view_shows(story: Story, check: str, ci: str, status: str, count: int) -> None:
    rows = [a for a in story.engine.view.alarms(ACCOUNT) if (a["ci"], a["check"]) == (ci, check)]
    assert [(a["status"], a["count"]) for a in rows] == [(status, count)]


@then('the supervision view of "resto-chain" shows no open alarm')
def view_empty(story: Story) -> None:
    assert story.engine.view.alarms(ACCOUNT) == []


@then(
    parsers.re(rf"the incident of the alarm {CHECK} on {CI} has priority P(?P<priority>\d)"),
    converters={"priority": int},
)
def incident_priority(story: Story, check: str, ci: str, priority: int) -> None:
    assert story.alarm_incident(ci, check).priority == priority


@then(parsers.re(rf"the incident of the alarm {CHECK} on {CI} is restored at {TIME}"))
def restored(story: Story, check: str, ci: str, time: str) -> None:
    incident = story.alarm_incident(ci, check)
    assert (incident.status, incident.restored_at) == (RESTORED, moment(time))


@then(
    parsers.re(rf'the automation platform is asked to run "(?P<action>[^"]+)" on {CI} for the incident of that alarm')
)
def asked(story: Story, action: str, ci: str) -> None:
    assert story.last is not None
    [request] = story.engine.sent
    incident = story.alarm_incident(*story.last)
    expected: dict[str, Any] = {"action": action, "ci": ci, "incident_id": str(incident.id), "account": ACCOUNT}
    assert {k: request[k] for k in expected} == expected
    assert UUID(request["request_id"]) in story.engine.alarm_of(*story.last).automations
