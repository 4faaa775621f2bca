"""What the process features share: the engine under test, how scenarios name things and instants, and
the steps every one of them speaks (accounts, incidents, replaying the history).

The engine is the processes' test harness of tests/integration/test_processes.py on a SQLite file:
commands go to ItilApplication, and every stored event is pumped to the processes until they have
nothing more to say. A feature's step module imports everything from here:

    from tests.bdd.harness import *  # noqa: F403 - the shared steps and the `story` fixture
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import pytest
from pytest_bdd import given, parsers, then, when

from application import app as appl
from domain import commands as cmd
from domain.errors import DomainError
from domain.incident import Incident
from domain.problem import Problem
from tests.integration.test_processes import Engine, paris

IDS = uuid5(NAMESPACE_URL, "urn:itil-engine:tests:bdd")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # fmt: skip
CHANGE_MANAGER = "change manager"
HOLD_REASONS = {"customer": "awaiting_customer", "supplier": "awaiting_supplier", "change": "awaiting_change"}

ACTOR = r'"(?P<actor>[^"]+)"'
TITLE = r'"(?P<title>[^"]+)"'
ACCOUNT = r'"(?P<account>[^"]+)"'
DAY = r"\w+day \d{1,2} \w+ \d{4}"
WHEN = rf"(?P<when>{DAY} at \d\d:\d\d)"
WINDOW = rf"on (?P<day>{DAY}) from (?P<start>\d\d:\d\d) to (?P<end>\d\d:\d\d)"
REFERENCE = r'(?P<reference>the problem on "[^"]+"|"[^"]+")'
"""What notes may name: `the problem on "router-resto-042"` or an incident's title."""


def moment(text: str) -> datetime:
    """ "Monday 1 June 2026 at 09:00" as an aware Paris instant; the weekday must match the date."""
    match = re.fullmatch(r"(\w+day) (\d{1,2}) (\w+) (\d{4}) at (\d\d:\d\d)", text)
    assert match, f"not an instant: {text!r}"
    weekday, day, month, year, hhmm = match.groups()
    at = paris(f"{year}-{MONTHS.index(month) + 1:02d}-{int(day):02d}", hhmm)
    assert at.strftime("%A") == weekday, f"{text!r}: that day is a {at.strftime('%A')}"
    return at


def window(day: str, start: str, end: str) -> tuple[datetime, datetime]:
    """ "Tuesday 9 June 2026", "22:00", "23:30" as two instants of that day."""
    first, last = moment(f"{day} at {start}"), moment(f"{day} at {end}")
    assert last > first, f"{day} from {start} to {end}: the end must be after the start"
    return first, last


def names(text: str) -> tuple[str, ...]:
    """'"a", "b" and "c"' as ("a", "b", "c")."""
    found = tuple(re.findall(r'"([^"]+)"', text))
    assert found, f"no names in {text!r}"
    return found


@dataclass
class Story:
    """The engine under test and what the scenario named so far."""

    engine: Engine
    changes: dict[str, UUID] = field(default_factory=dict)
    attached_children: list[str] = field(default_factory=list)
    refusal: DomainError | None = None
    position_before_replay: int | None = None

    @property
    def app(self) -> appl.ItilApplication:
        return self.engine.app

    def do(self, command: Any) -> Any:
        return self.engine.do(command)

    def attempt(self, verb: str, command: Any) -> None:
        """Carry out the command; one the scenario only "tries to" carry out must be refused."""
        if not verb.startswith("tries to"):
            self.do(command)
            return
        try:
            self.do(command)
        except DomainError as error:
            self.refusal = error
        else:
            pytest.fail(f"{command} was expected to be refused but was accepted")

    def incident_id(self, title: str) -> UUID:
        assert title in self.engine.names, f"no incident {title!r} was logged in this scenario"
        return self.engine.names[title]

    def incident(self, title: str) -> Incident:
        return self.engine.incident(self.incident_id(title))

    def problem_on(self, ci: str) -> Problem:
        found = [p for p in self.engine.problems() if ci in (p.ci, p.category)]
        assert len(found) == 1, f"expected one problem on {ci!r}, found {[p.title for p in found]}"
        return found[0]

    def change_id(self, title: str) -> UUID:
        assert title in self.changes, f"no change {title!r} was requested in this scenario"
        return self.changes[title]

    def named(self, reference: str) -> tuple[str, UUID]:
        """The title and id of what a note names: an incident by its title, or the problem on a CI."""
        problem = re.fullmatch(r'the problem on "([^"]+)"', reference)
        if problem:
            found = self.problem_on(problem.group(1))
            return found.title, found.id
        title = reference.strip('"')
        return title, self.incident_id(title)

    def events(self, title: str, kind: type) -> list[Any]:
        return [e for e in self.app.events.get(self.incident_id(title)) if isinstance(e, kind)]


@pytest.fixture
def story(sqlite_env: dict[str, str]) -> Iterator[Story]:
    engine = Engine(sqlite_env)
    yield Story(engine)
    engine.app.close()
    engine.db.close()


def log_incident(
    story: Story, actor: str, title: str, ci: str, account: str, at: datetime, impact: int = 2, urgency: int = 2
) -> UUID:
    channel = "monitoring" if actor == "supervision" else "phone"
    return story.engine.log(title, at, ci=ci, account=account, impact=impact, urgency=urgency, channel=channel,
                            actor=actor)  # fmt: skip


def authorised_change(
    story: Story, actor: str, title: str, ci: str, account: str, at: datetime, problem_id: UUID | None = None
) -> UUID:
    """A low-risk normal change requested, assessed and authorised by the change manager at `at`."""
    change_id = uuid5(IDS, f"change/{title}")
    story.changes[title] = change_id
    story.do(cmd.RequestChange(id=change_id, account=account, type="normal", title=title, affected_cis=(ci,),
                               actor=actor, at=at, problem_id=problem_id))  # fmt: skip
    story.do(cmd.SubmitChange(change_id, actor=actor, at=at))
    story.do(cmd.AssessChange(change_id, risk="low", impact=f"{ci} restarts, about 5 minutes", actor=CHANGE_MANAGER,
                              implementation_plan="apply and check the payments", backout_plan="restore the backup",
                              at=at))  # fmt: skip
    story.do(cmd.ApproveChange(change_id, approver=CHANGE_MANAGER, actor=CHANGE_MANAGER, at=at))
    return change_id


# -- accounts and incidents -----------------------------------------------------------------------


@given(parsers.re(rf'the (?:restaurant|hotel) chain {ACCOUNT}, (?:whose ROC is "(?P<roc>[^"]+)"|which has no ROC yet)'))
def account(story: Story, account: str, roc: str | None) -> None:
    story.do(cmd.RegisterAccount(account=account, roc=roc, actor="service manager", at=paris("2026-01-05", "09:00")))


@given(
    parsers.re(
        rf'{ACTOR} logged the incident {TITLE} on "(?P<ci>[^"]+)" of {ACCOUNT}'
        rf"(?:, impact (?P<impact>\d) and urgency (?P<urgency>\d),)? on {WHEN}"
    )
)
@when(
    parsers.re(
        rf'{ACTOR} logs the incident {TITLE} on "(?P<ci>[^"]+)" of {ACCOUNT}'
        rf"(?:, impact (?P<impact>\d) and urgency (?P<urgency>\d),)? on {WHEN}"
    )
)
def logs_incident(
    story: Story, actor: str, title: str, ci: str, account: str, impact: str | None, urgency: str | None, when: str
) -> None:
    log_incident(story, actor, title, ci, account, moment(when), int(impact or 2), int(urgency or 2))


@given(parsers.re(rf'these incidents were logged on "(?P<ci>[^"]+)" of {ACCOUNT}:'))
def incidents_logged(story: Story, ci: str, account: str, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert header == ["incident", "logged"], header
    for title, logged in rows:
        log_incident(story, "supervision", title, ci, account, moment(logged))


@given(parsers.re(rf"{ACTOR} recorded that service is restored for {TITLE} on {WHEN}"))
@when(parsers.re(rf"{ACTOR} records that service is restored for {TITLE} on {WHEN}"))
def restore(story: Story, actor: str, title: str, when: str) -> None:
    story.do(cmd.RestoreService(story.incident_id(title), actor=actor, at=moment(when)))


@given(parsers.re(rf'{ACTOR} resolved {TITLE} with code "(?P<code>\w+)" on {WHEN}'))
@when(parsers.re(rf'{ACTOR} resolves {TITLE} with code "(?P<code>\w+)" on {WHEN}'))
def resolve(story: Story, actor: str, title: str, code: str, when: str) -> None:
    story.do(cmd.ResolveIncident(story.incident_id(title), code=code, actor=actor, at=moment(when)))


@when(parsers.re(rf"{ACTOR} puts {TITLE} on hold awaiting the (?P<whom>customer|supplier|change) on {WHEN}"))
def hold(story: Story, actor: str, title: str, whom: str, when: str) -> None:
    story.do(cmd.HoldIncident(story.incident_id(title), reason=HOLD_REASONS[whom], actor=actor, at=moment(when)))


@when(parsers.re(rf'{ACTOR} reopens {TITLE} because "(?P<reason>[^"]+)" on {WHEN}'))
def reopen(story: Story, actor: str, title: str, reason: str, when: str) -> None:
    story.do(cmd.ReopenIncident(story.incident_id(title), reason=reason, actor=actor, at=moment(when)))


@then(parsers.re(rf'{TITLE} is resolved with code "(?P<code>\w+)"(?:, the notes naming {REFERENCE})?'))
def resolved_with(story: Story, title: str, code: str, reference: str | None) -> None:
    incident = story.incident(title)
    assert (incident.status, incident.resolution_code) == ("resolved", code)
    if reference is not None:
        named_title, named_id = story.named(reference)
        notes = story.events(title, Incident.Resolved)[-1].notes
        assert named_title in notes and str(named_id) in notes, notes


@then(parsers.re(rf"{TITLE} is restored on {WHEN}, the note naming {REFERENCE}"))
def restored_on(story: Story, title: str, when: str, reference: str) -> None:
    incident = story.incident(title)
    assert (incident.status, incident.restored_at) == ("restored", moment(when))
    named_title, named_id = story.named(reference)
    note = story.events(title, Incident.ServiceRestored)[-1].note
    assert named_title in note and str(named_id) in note, note


@then(parsers.re(rf"{TITLE} is still open"))
def still_open(story: Story, title: str) -> None:
    incident = story.incident(title)
    assert incident.is_open, f"{title!r} is {incident.status}"


# -- the history delivered again --------------------------------------------------------------------


@when("the whole event history is delivered again to the engine's processes")
def delivered_again(story: Story) -> None:
    story.engine.pump()
    story.position_before_replay = story.engine.last_position()
    story.engine.redeliver_everything()
    story.engine.replay_to_fresh_processes()


@then("nothing more is recorded")
def nothing_more(story: Story) -> None:
    assert story.position_before_replay is not None, "the scenario delivers the history again first"
    assert story.engine.last_position() == story.position_before_replay, story.engine.since(
        story.position_before_replay
    )


@then("the engine's processes have handled every event")
def handled_everything(story: Story) -> None:
    last = story.engine.last_position()
    for process in story.engine.processes:
        assert process.positions("itil.events").get(0, (0, 0))[0] == last, process.name
