"""Steps for features/sla.feature, driven through the real application, SLA process and projections.

The engine is the SLA test harness of tests/integration/test_sla.py on a SQLite file: commands go to
ItilApplication, stored events are pumped to the account view, the SLA dashboard and the SLA process,
and the ticker runs whenever the scenario lets time pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

import pytest
from pytest_bdd import given, parsers, scenario, scenarios, then, when

from domain import commands as cmd
from domain.calendar import CalendarSpec, business_hours
from domain.contract import Escalation, Terms
from domain.errors import DomainError
from tests.integration.test_sla import Engine, paris


@scenario("sla.feature", "Service restored in the last minute of the GTR is met, not breached")
def test_service_restored_in_the_last_minute_of_the_gtr_is_met_not_breached() -> None:
    """Restored exactly 4 business hours after logging: within the GTR, so not a breach."""


scenarios("sla.feature")

IDS = UUID("5f1a7c20-0000-4000-8000-000000000000")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # fmt: skip
NOTIFY = {"the assignment group": "assignment_group", "the account's ROC": "roc", "the ROC": "roc"}
METRIC = {"GTR": "restoration", "response": "response"}
HOLD_REASONS = {"customer": "awaiting_customer", "supplier": "awaiting_supplier"}

ACTOR = r'"(?P<actor>[^"]+)"'
INCIDENT = r'"(?P<title>[^"]+)"'
ACCOUNT = r'"(?P<account>[^"]+)"'
WHEN = r"(?P<when>\w+day \d{1,2} \w+ \d{4} at \d\d:\d\d)"
DURATION = r"(?P<{}>\d+ (?:h|min|s)(?: \d+ (?:min|s))*)"


def moment(text: str) -> datetime:
    """ "Monday 18 May 2026 at 09:00" as an aware Paris instant; the weekday must match the date."""
    match = re.fullmatch(r"(\w+day) (\d{1,2}) (\w+) (\d{4}) at (\d\d:\d\d)", text)
    assert match, f"not an instant: {text!r}"
    weekday, day, month, year, hhmm = match.groups()
    at = paris(f"{year}-{MONTHS.index(month) + 1:02d}-{int(day):02d}", hhmm)
    assert at.strftime("%A") == weekday, f"{text!r}: that day is a {at.strftime('%A')}"
    return at


def seconds(text: str) -> float:
    """ "3 h 30 min" as seconds."""
    units = {"h": 3600, "min": 60, "s": 1}
    parts = re.findall(r"(\d+) (h|min|s)\b", text)
    assert parts and " ".join(f"{n} {u}" for n, u in parts) == text.strip(), f"not a duration: {text!r}"
    return float(sum(int(n) * units[u] for n, u in parts))


def month_key(text: str) -> str:
    name, year = text.split()
    return f"{year}-{MONTHS.index(name) + 1:02d}"


@dataclass
class Story:
    """The engine under test and what the scenario has named so far."""

    engine: Engine
    incidents: dict[str, UUID] = field(default_factory=dict)
    calendar: CalendarSpec | None = None
    escalations: tuple[Escalation, ...] = ()
    refusal: DomainError | None = None

    def incident(self, title: str) -> UUID:
        assert title in self.incidents, f"no incident {title!r} was logged in this scenario"
        return self.incidents[title]

    def let_time_pass(self, to: datetime) -> None:
        assert to >= self.engine.now, f"time cannot go back from {self.engine.now} to {to}"
        self.engine.at(to)

    def do(self, command: Any) -> None:
        self.let_time_pass(command.at)
        self.engine.do(command)

    def sla_events(self, title: str, kind: str) -> list[tuple[datetime, dict[str, Any]]]:
        return [(at, data) for name, at, data in self.engine.sla_events(self.incident(title)) if name == kind]

    def clock(self, title: str) -> dict[str, Any]:
        sla = self.engine.app.find_sla(self.incident(title))
        assert sla is not None, f"{title!r} has no SLA clocks"
        restoration: dict[str, Any] = sla.figures(self.engine.now)["metrics"]["restoration"]
        return restoration

    def at_risk(self, account: str) -> dict[str, dict[str, Any]]:
        """The GTR rows of the account's at-risk list, by incident id."""
        rows = self.engine.sla.at_risk(self.engine.now, account)
        return {r["incident_id"]: r for r in rows if r["metric"] == "restoration"}

    def terms(self, datatable: list[list[str]]) -> Terms:
        assert self.calendar is not None, "the Background describes the covered hours first"
        header, *rows = datatable
        assert header == ["priority", "response", "GTR"], header
        targets = {
            int(priority.removeprefix("P")): {"response": int(seconds(response)), "restoration": int(seconds(gtr))}
            for priority, response, gtr in rows
        }
        return Terms(targets=targets, calendar=self.calendar, escalations=self.escalations)

    def statement_figure(self, account: str, month: str, priority: str, metric: str, version: int) -> dict[str, Any]:
        figures = self.engine.sla.monthly_statement(account, month_key(month))["figures"]
        found = [
            f for f in figures
            if (f["priority"], f["metric"], f["contract_version"]) == (priority, METRIC[metric], version)
        ]  # fmt: skip
        assert len(found) == 1, figures
        return found[0]


@pytest.fixture
def story(sqlite_env: dict[str, str]) -> Iterator[Story]:
    engine = Engine(sqlite_env)
    yield Story(engine)
    engine.app.close()


# -- the contract -------------------------------------------------------------------------


@given(
    parsers.re(
        rf"the account {ACCOUNT} is covered Monday to Friday from (?P<start>\d\d:\d\d) to (?P<end>\d\d:\d\d)"
        r" Paris time, French public holidays excepted"
    )
)
def covered_hours(story: Story, account: str, start: str, end: str) -> None:
    story.calendar = business_hours(start, end, "Mon-Fri", timezone="Europe/Paris", country="FR")


@given(
    parsers.re(
        r"at (?P<first>\d+) % of a target (?P<first_whom>the assignment group) is alerted,"
        r" and at (?P<second>\d+) % (?P<second_whom>the account's ROC) is informed"
    ),
    converters={"first": int, "second": int},
)
def escalations(story: Story, first: int, first_whom: str, second: int, second_whom: str) -> None:
    story.escalations = (Escalation(first, NOTIFY[first_whom]), Escalation(second, NOTIFY[second_whom]))


@given(parsers.re(rf"{ACTOR} records the contract of {ACCOUNT} applying from {WHEN} with these targets:"))
def record_contract(story: Story, actor: str, account: str, when: str, datatable: list[list[str]]) -> None:
    at = moment(when)
    story.engine.now = at
    story.engine.app.add_contract_version(
        cmd.AddContractVersion(account=account, effective_from=at, terms=story.terms(datatable), actor=actor, at=at)
    )


@when(
    parsers.re(
        rf"{ACTOR} (?P<verb>changes|tries to change) the contract of {ACCOUNT} on {WHEN},"
        r" applying from (?P<effective>\w+day \d{1,2} \w+ \d{4} at \d\d:\d\d) with these targets:"
    )
)
def change_contract(
    story: Story, actor: str, verb: str, account: str, when: str, effective: str, datatable: list[list[str]]
) -> None:
    at = moment(when)
    story.let_time_pass(at)
    command = cmd.AddContractVersion(
        account=account, effective_from=moment(effective), terms=story.terms(datatable), actor=actor, at=at
    )
    if verb == "changes":
        story.engine.app.add_contract_version(command)
        return
    try:
        story.engine.app.add_contract_version(command)
    except DomainError as error:
        story.refusal = error
    else:
        pytest.fail("the contract change was expected to be refused but was accepted")


# -- what happens to incidents ------------------------------------------------------------


@given(
    parsers.re(
        rf"{ACTOR} logged the incident {INCIDENT} for {ACCOUNT}, impact (?P<impact>\d) and urgency (?P<urgency>\d),"
        rf" on {WHEN}"
    ),
    converters={"impact": int, "urgency": int},
)
@when(
    parsers.re(
        rf"{ACTOR} logs the incident {INCIDENT} for {ACCOUNT}, impact (?P<impact>\d) and urgency (?P<urgency>\d),"
        rf" on {WHEN}"
    ),
    converters={"impact": int, "urgency": int},
)
def log_incident(story: Story, actor: str, title: str, account: str, impact: int, urgency: int, when: str) -> None:
    incident = uuid5(IDS, f"{account}/{title}")
    story.incidents[title] = incident
    story.do(
        cmd.LogIncident(
            id=incident,
            account=account,
            title=title,
            impact=impact,
            urgency=urgency,
            channel="phone",
            reporter="restaurant manager",
            actor=actor,
            at=moment(when),
            ci=f"ci-{title}",
        )  # fmt: skip
    )


@given(parsers.re(rf"{ACTOR} acknowledged {INCIDENT} on {WHEN}"))
@when(parsers.re(rf"{ACTOR} acknowledges {INCIDENT} on {WHEN}"))
def acknowledge(story: Story, actor: str, title: str, when: str) -> None:
    story.do(cmd.AcknowledgeIncident(story.incident(title), actor=actor, at=moment(when)))


@when(parsers.re(rf"{ACTOR} puts {INCIDENT} on hold awaiting the (?P<whom>customer|supplier) on {WHEN}"))
def hold(story: Story, actor: str, title: str, whom: str, when: str) -> None:
    story.do(cmd.HoldIncident(story.incident(title), reason=HOLD_REASONS[whom], actor=actor, at=moment(when)))


@when(parsers.re(rf"{ACTOR} resumes {INCIDENT} on {WHEN}"))
def resume(story: Story, actor: str, title: str, when: str) -> None:
    story.do(cmd.ResumeIncident(story.incident(title), actor=actor, at=moment(when)))


@when(parsers.re(rf"{ACTOR} records that service is restored for {INCIDENT} on {WHEN}"))
def restore(story: Story, actor: str, title: str, when: str) -> None:
    story.do(cmd.RestoreService(story.incident(title), actor=actor, at=moment(when)))


@when(parsers.re(rf"time passes to {WHEN}"))
def time_passes(story: Story, when: str) -> None:
    story.let_time_pass(moment(when))


# -- what the ROC sees ----------------------------------------------------------------------


@then(
    parsers.re(
        rf"{INCIDENT} is measured as P(?P<priority>\d) against contract version (?P<version>\d+):"
        rf" respond within {DURATION.format('response')}, restore within {DURATION.format('gtr')}"
    ),
    converters={"priority": int, "version": int},
)
def measured_against(story: Story, title: str, priority: int, version: int, response: str, gtr: str) -> None:
    sla = story.engine.app.find_sla(story.incident(title))
    assert sla is not None, f"{title!r} has no SLA clocks"
    assert (sla.terms.priority, sla.terms.contract_version) == (priority, version)
    assert dict(sla.terms.targets) == {"response": seconds(response), "restoration": seconds(gtr)}
    started = story.sla_events(title, "ClocksStarted")
    assert [d["terms"]["contract_version"] for _, d in started] == [version]


@then(parsers.re(rf"the GTR of {INCIDENT} falls due on {WHEN}"))
def gtr_falls_due(story: Story, title: str, when: str) -> None:
    clock = story.clock(title)
    assert clock["state"] == "running"
    assert clock["deadline"] == moment(when)


@then(
    parsers.re(
        rf"the ROC's at-risk list for {ACCOUNT} shows {INCIDENT} with {DURATION.format('left')} of business time"
        r" left before its GTR, last warning at (?P<threshold>\d+) %"
    ),
    converters={"threshold": int},
)
def at_risk_shows(story: Story, account: str, title: str, left: str, threshold: int) -> None:
    row = story.at_risk(account).get(str(story.incident(title)))
    assert row is not None, f"{title!r} is not in the at-risk list of {account!r}"
    assert (row["title"], row["account"]) == (title, account)
    assert row["time_left_seconds"] == seconds(left)
    assert row["time_left"] == left
    assert row["last_threshold"] == threshold


@then(parsers.re(rf"{INCIDENT} is not in the ROC's at-risk list for {ACCOUNT}"))
def not_at_risk(story: Story, title: str, account: str) -> None:
    rows = story.engine.sla.at_risk(story.engine.now, account)
    assert str(story.incident(title)) not in {r["incident_id"] for r in rows}


@then(parsers.re(rf"nothing was escalated about {INCIDENT}"))
def nothing_escalated(story: Story, title: str) -> None:
    assert story.sla_events(title, "Escalated") == []


@then(
    parsers.re(
        rf"(?P<whom>the assignment group|the ROC) was (?:alerted|informed) about {INCIDENT} on {WHEN},"
        r" at (?P<threshold>\d+) % of its GTR"
    ),
    converters={"threshold": int},
)
def escalated(story: Story, whom: str, title: str, when: str, threshold: int) -> None:
    notify = NOTIFY[whom]
    escalations = [
        (at, d["metric"], d["threshold"]) for at, d in story.sla_events(title, "Escalated") if d["notify"] == notify
    ]
    assert escalations == [(moment(when), "restoration", threshold)]


@then(parsers.re(rf"the ROC was not yet informed about {INCIDENT}"))
def roc_not_informed(story: Story, title: str) -> None:
    assert [d for _, d in story.sla_events(title, "Escalated") if d["notify"] == "roc"] == []


@then(parsers.re(rf"the SLA explanation of {INCIDENT} reads:"))
def explanation_reads(story: Story, title: str, datatable: list[list[str]]) -> None:
    summaries = [e["summary"] for e in story.engine.sla.explanation(str(story.incident(title)))]
    assert summaries == [row[0] for row in datatable]


@then(
    parsers.re(
        rf"the GTR clock of {INCIDENT} is paused awaiting the customer with {DURATION.format('counted')} counted"
    )
)
def gtr_paused(story: Story, title: str, counted: str) -> None:
    clock = story.clock(title)
    assert (clock["state"], clock["deadline"], clock["elapsed_seconds"]) == ("paused", None, seconds(counted))
    sla = story.engine.app.find_sla(story.incident(title))
    assert sla is not None and sla.paused_reason == "awaiting_customer"


@then(parsers.re(rf"the GTR clock of {INCIDENT} is running with {DURATION.format('counted')} counted"))
def gtr_running(story: Story, title: str, counted: str) -> None:
    clock = story.clock(title)
    assert (clock["state"], clock["elapsed_seconds"]) == ("running", seconds(counted))
    assert story.sla_events(title, "ClocksPaused") == []


@then(
    parsers.re(rf"the GTR of {INCIDENT} was (?P<outcome>met|missed) in {DURATION.format('elapsed')} of business time")
)
def gtr_outcome(story: Story, title: str, outcome: str, elapsed: str) -> None:
    stopped = [d for _, d in story.sla_events(title, "ClockStopped") if d["metric"] == "restoration"]
    assert [(d["elapsed_seconds"], d["met"]) for d in stopped] == [(seconds(elapsed), outcome == "met")]
    clock = story.clock(title)
    assert (clock["state"], clock["met"]) == ("stopped", outcome == "met")


@then(parsers.re(rf"the GTR of {INCIDENT} was breached on {WHEN}"))
def gtr_breached(story: Story, title: str, when: str) -> None:
    breaches = [at for at, d in story.sla_events(title, "Breached") if d["metric"] == "restoration"]
    assert breaches == [moment(when)]
    assert story.clock(title)["breached_at"] == moment(when)


@then(parsers.re(rf"the GTR of {INCIDENT} was never breached"))
def gtr_never_breached(story: Story, title: str) -> None:
    assert [d for _, d in story.sla_events(title, "Breached") if d["metric"] == "restoration"] == []
    assert story.clock(title)["breached_at"] is None


@then(parsers.re(rf"the breaches of {ACCOUNT} in (?P<month>\w+ \d{{4}}) are:"))
def breaches_are(story: Story, account: str, month: str, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert header == ["incident", "clock", "breached at"], header
    titles = {str(i): t for t, i in story.incidents.items()}
    breaches = [
        (titles[b["incident_id"]], b["metric"], datetime.fromisoformat(b["breached_at"]))
        for b in story.engine.sla.breaches(account, month_key(month))
        if b["metric"] == "restoration"
    ]
    assert breaches == [(title, METRIC[clock.strip()], moment(at)) for title, clock, at in rows]
    assert all(at.utcoffset() is not None for _, _, at in breaches)


@then(
    parsers.re(
        rf"the statement of {ACCOUNT} for (?P<month>\w+ \d{{4}}) shows for the (?P<priority>P\d)"
        r" (?P<metric>GTR|response) under contract version (?P<version>\d+): counted (?P<counted>\d+),"
        r" met (?P<met>\d+), breached (?P<breached>\d+), compliance (?P<compliance>\d+) %"
    ),
    converters={"version": int, "counted": int, "met": int, "breached": int, "compliance": float},
)
def statement_shows(
    story: Story, account: str, month: str, priority: str, metric: str, version: int, counted: int, met: int,
    breached: int, compliance: float,
) -> None:  # fmt: skip
    figure = story.statement_figure(account, month, priority, metric, version)
    assert (figure["counted"], figure["met"], figure["breached"], figure["open"]) == (counted, met, breached, 0)
    assert figure["compliance_percent"] == compliance


@then(parsers.re(rf"the worst (?P<priority>P\d) GTR cases of {ACCOUNT} in (?P<month>\w+ \d{{4}}) are:"))
def worst_cases(story: Story, priority: str, account: str, month: str, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert header == ["incident", "business time", "target"], header
    titles = {str(i): t for t, i in story.incidents.items()}
    figure = story.statement_figure(account, month, priority, "GTR", 1)
    worst = [(titles[w["incident_id"]], w["elapsed_seconds"], w["target_seconds"]) for w in figure["worst"]]
    assert worst == [(title, seconds(elapsed), seconds(target)) for title, elapsed, target in rows]


@then(parsers.re(r'the change is refused because "(?P<reason>[^"]+)"'))
def change_refused(story: Story, reason: str) -> None:
    assert isinstance(story.refusal, DomainError), "the change was not refused"
    assert reason in str(story.refusal)
    assert "in the past" in str(story.refusal)


@then(parsers.re(rf"the contract of {ACCOUNT} still has (?P<count>\d+) versions"), converters={"count": int})
def contract_versions(story: Story, account: str, count: int) -> None:
    contract = story.engine.app.find_contract(account)
    assert contract is not None
    assert [v["version"] for v in contract.versions] == list(range(1, count + 1))
