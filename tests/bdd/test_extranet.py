"""Steps for features/extranet.feature, driven in-process on SQLite.

What the restaurant manager does on the extranet arrives as messages of `itil.intake.requests`,
carried out by `IntakeProcessor.handle`; what the hotline and the technicians do goes to
`ItilApplication` as commands.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4, uuid5
from zoneinfo import ZoneInfo

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from application.app import ItilApplication
from domain.commands import AssignIncident, LogIncident, ResolveIncident, RestoreService
from domain.incident import ASSIGNED, CLOSED, NEW, RESOLVED, Incident
from projections.db import Database
from streams.contracts import INTAKE_ID_NAMESPACE, REQUESTS_TOPIC, intake_incident_id
from streams.intake import DEAD, DUPLICATE, PROCESSED, IntakeProcessor, Outcome

scenarios("extranet.feature")

PARIS = ZoneInfo("Europe/Paris")
DAY = "2026-06-01"
ACTOR = r'"(?P<actor>[^"]+)"'
ACCOUNT = r'"(?P<account>[^"]+)"'
CI = r'"(?P<ci>[^"]+)"'
TITLE = r'"(?P<title>[^"]+)"'
TIME = r"(?P<time>\d\d:\d\d)"


def moment(text: str) -> datetime:
    return datetime.fromisoformat(f"{DAY}T{text}").replace(tzinfo=PARIS)


@dataclass
class Sent:
    """One message the extranet published, as it went on the wire."""

    body: dict[str, Any]
    key: bytes
    offset: int

    @property
    def raw(self) -> bytes:
        return json.dumps(self.body).encode()


@dataclass
class Story:
    app: ItilApplication
    processor: IntakeProcessor
    offsets: Iterator[int] = field(default_factory=lambda: itertools.count(100))
    accounts: dict[str, str] = field(default_factory=dict)
    incident_id: UUID | None = None
    sent: Sent | None = None
    outcome: Outcome | None = None

    def publish(self, message_type: str, account: str, requester: str, at: datetime, key: str, **body: Any) -> None:
        """The extranet publishes one message; the engine carries it out."""
        message = {
            "message_id": f"extranet-{uuid4()}",
            "type": message_type,
            "schema_version": 1,
            "sent_at": at.isoformat(),
            "source": "extranet",
            "account": account,
            "requester": requester,
            "at": at.isoformat(),
            **body,
        }
        self.sent = Sent(message, key.encode(), next(self.offsets))
        self.deliver()

    def deliver(self) -> None:
        assert self.sent is not None
        self.outcome = self.processor.handle(REQUESTS_TOPIC, 0, self.sent.offset, self.sent.key, self.sent.raw)

    def incident(self) -> Incident:
        assert self.incident_id is not None, "no incident in this scenario yet"
        return self.app.get_incident(self.incident_id)

    def extranet_incidents(self, account: str) -> list[Incident.Logged]:
        events = (self.app.mapper.to_domain_event(n) for n in self.app.recorder.select_notifications(1, 1000))
        return [
            e for e in events if isinstance(e, Incident.Logged) and e.account == account and e.channel == "extranet"
        ]


@pytest.fixture
def story(sqlite_env: dict[str, str]) -> Iterator[Story]:
    app = ItilApplication(env=sqlite_env)
    processor = IntakeProcessor(app, Database.from_store_env(sqlite_env), clock=lambda: moment("23:00"))
    processor.create_tables()
    yield Story(app, processor)
    app.close()


# -- the manager, on the extranet -----------------------------------------------------------------


@given(
    parsers.re(
        rf"{ACTOR} of {ACCOUNT} opened an incident on the extranet at {TIME} on {CI}: {TITLE}"
        r"(?:, urgency (?P<urgency>\d))?"
    )
)
@when(
    parsers.re(
        rf"{ACTOR} of {ACCOUNT} opens an incident on the extranet at {TIME} on {CI}: {TITLE}"
        r"(?:, urgency (?P<urgency>\d))?"
    )
)
def opens(story: Story, actor: str, account: str, time: str, ci: str, title: str, urgency: str | None) -> None:
    body: dict[str, Any] = {"title": title, "ci": ci, "description": f"{title}, reported from the extranet"}
    if urgency is not None:
        body["urgency"] = int(urgency)
    story.publish("incident.open", account, actor, moment(time), key=account, **body)
    assert story.outcome is not None and story.outcome.status == PROCESSED, story.outcome
    story.accounts[actor] = account
    story.incident_id = story.outcome.result.id


@when("the extranet delivers the same message again")
def delivered_again(story: Story) -> None:
    story.deliver()


@when(parsers.re(rf"{ACTOR}(?: of {ACCOUNT})? confirms the resolution(?: of that incident)? on the extranet at {TIME}"))
def confirms(story: Story, actor: str, account: str | None, time: str) -> None:
    account = account or story.accounts[actor]
    incident_id = str(story.incident().id)
    story.publish("resolution.confirm", account, actor, moment(time), key=incident_id, incident_id=incident_id)


@when(parsers.re(rf'{ACTOR} refuses the resolution on the extranet at {TIME}: "(?P<reason>[^"]+)"'))
def refuses(story: Story, actor: str, time: str, reason: str) -> None:
    incident_id = str(story.incident().id)
    story.publish(
        "resolution.refuse", story.accounts[actor], actor, moment(time), key=incident_id,
        incident_id=incident_id, reason=reason,
    )  # fmt: skip


@when(
    parsers.re(
        rf"{ACTOR}(?: of {ACCOUNT})? comments(?: on that incident)? on the extranet at {TIME}"
        r' as "(?P<author>[^"]+)": "(?P<text>[^"]+)"'
    )
)
def comments(story: Story, actor: str, account: str | None, time: str, author: str, text: str) -> None:
    account = account or story.accounts[actor]
    incident_id = str(story.incident().id)
    story.publish(
        "comment.add", account, actor, moment(time), key=incident_id, incident_id=incident_id, author=author, text=text
    )


# -- the hotline and the technicians --------------------------------------------------------------


@given(parsers.re(rf"{ACTOR} logged an incident by phone at {TIME} for {ACCOUNT} on {CI}: {TITLE}"))
def logged_by_phone(story: Story, actor: str, time: str, account: str, ci: str, title: str) -> None:
    story.incident_id = uuid5(INTAKE_ID_NAMESPACE, f"tests:phone:{account}:{title}")
    story.app.handle(
        LogIncident(id=story.incident_id, account=account, title=title, impact=2, urgency=2, channel="phone",
                    reporter=actor, actor=actor, at=moment(time), ci=ci)
    )  # fmt: skip


@given(parsers.re(rf'{ACTOR} assigned the incident to "(?P<group>[^"]+)" at {TIME}'))
def assigned(story: Story, actor: str, group: str, time: str) -> None:
    story.app.handle(AssignIncident(incident_id=story.incident().id, group=group, actor=actor, at=moment(time)))


@given(parsers.re(rf'{ACTOR} recorded that service is restored at {TIME} with the note "(?P<note>[^"]+)"'))
@when(parsers.re(rf'{ACTOR} records that service is restored at {TIME} with the note "(?P<note>[^"]+)"'))
def restores(story: Story, actor: str, time: str, note: str) -> None:
    story.app.handle(RestoreService(incident_id=story.incident().id, note=note, actor=actor, at=moment(time)))


@given(parsers.re(rf'{ACTOR} resolved the incident with code "(?P<code>[^"]+)" at {TIME}'))
@when(parsers.re(rf'{ACTOR} resolves the incident with code "(?P<code>[^"]+)" at {TIME}'))
def resolves(story: Story, actor: str, code: str, time: str) -> None:
    story.app.handle(ResolveIncident(incident_id=story.incident().id, code=code, actor=actor, at=moment(time)))


# -- outcomes -------------------------------------------------------------------------------------


@then("the extranet's message is processed")
def processed(story: Story) -> None:
    assert story.outcome is not None and story.sent is not None
    assert (story.outcome.status, story.outcome.reason) == (PROCESSED, None)
    record = story.processor.processed(story.sent.body["message_id"])
    assert record is not None
    assert (record["type"], record["source"], record["outcome"]) == (story.sent.body["type"], "extranet", PROCESSED)


@then("the extranet's message is skipped as a duplicate")
def duplicate(story: Story) -> None:
    assert story.outcome is not None and story.outcome.status == DUPLICATE
    assert story.outcome.dead_letter is None


@then(parsers.re(rf"{ACCOUNT} has the incident {TITLE} on {CI}, logged through the extranet"))
def has_incident(story: Story, account: str, title: str, ci: str) -> None:
    incident = story.incident()
    assert (incident.account, incident.title, incident.ci, incident.channel) == (account, title, ci, "extranet")


@then(parsers.re(rf"the incident is new, reported by {ACTOR}, priority P(?P<priority>\d)"))
def new_incident(story: Story, actor: str, priority: str) -> None:
    incident = story.incident()
    assert (incident.status, incident.reporter, incident.priority) == (NEW, actor, int(priority))
    assert story.app.history(incident.id)[0].actor == actor  # type: ignore[attr-defined]


@then("its id is the one the extranet's message id determines")
def deterministic_id(story: Story) -> None:
    assert story.sent is not None
    assert story.incident().id == intake_incident_id(story.sent.body["message_id"])


@then(parsers.re(rf"{ACCOUNT} has (?P<count>\d+) incidents? logged through the extranet"))
def count_incidents(story: Story, account: str, count: str) -> None:
    logged = story.extranet_incidents(account)
    assert len(logged) == int(count)
    assert len(story.app.history(story.incident().id)) == 1


@then(
    parsers.re(rf'the incident is resolved with code "(?P<code>[^"]+)", service restored at {TIME}'),
)
def is_resolved(story: Story, code: str, time: str) -> None:
    incident = story.incident()
    assert (incident.status, incident.resolution_code, incident.restored_at) == (RESOLVED, code, moment(time))


@then(parsers.re(rf"the incident is closed at {TIME} by {ACTOR}"))
def is_closed(story: Story, time: str, actor: str) -> None:
    incident = story.incident()
    assert (incident.status, incident.closed_at) == (CLOSED, moment(time))
    last = story.app.history(incident.id)[-1]
    assert isinstance(last, Incident.Closed) and last.actor == actor


@then(parsers.re(rf'the incident is reopened at {TIME} by {ACTOR} because "(?P<reason>[^"]+)"'))
def is_reopened(story: Story, time: str, actor: str, reason: str) -> None:
    last = story.app.history(story.incident().id)[-1]
    assert isinstance(last, Incident.Reopened)
    assert (last.at, last.actor, last.reason) == (moment(time), actor, reason)


@then(parsers.re(r'the incident is assigned to "(?P<group>[^"]+)" again, neither restored nor resolved'))
def open_again(story: Story, group: str) -> None:
    incident = story.incident()
    assert (incident.status, incident.assignment_group) == (ASSIGNED, group)
    assert (incident.restored_at, incident.resolved_at, incident.resolution_code) == (None, None, None)


@then(parsers.re(r"the incident has (?P<count>\d+) comments?"))
def comment_count(story: Story, count: str) -> None:
    assert story.incident().comment_count == int(count)
    assert len(story.app.comments(story.incident().id)) == int(count)


@then(
    parsers.re(
        rf'its comment at {TIME} by "(?P<author>[^"]+)", entered by {ACTOR}, is visible to the customer:'
        r' "(?P<text>[^"]+)"'
    )
)
def customer_comment(story: Story, time: str, author: str, actor: str, text: str) -> None:
    [comment] = story.app.comments(story.incident().id)
    assert (comment.at, comment.author, comment.actor) == (moment(time), author, actor)
    assert (comment.text, comment.customer_visible) == (text, True)


@then(parsers.re(r'the incident is still assigned to "(?P<group>[^"]+)"'))
def still_assigned(story: Story, group: str) -> None:
    incident = story.incident()
    assert (incident.status, incident.assignment_group) == (ASSIGNED, group)


@then(
    parsers.re(
        rf"the extranet's message is dead-lettered with a reason saying there is no such incident on the account"
        rf" {ACCOUNT}"
    )
)
def refused_other_account(story: Story, account: str) -> None:
    assert story.outcome is not None
    assert story.outcome.status == DEAD
    assert story.outcome.reason == f"illegal command: there is no incident {story.incident().id} on account {account}"
    assert story.outcome.dead_letter is not None and story.outcome.dead_letter.reason == story.outcome.reason


@then("the dead letter keeps the original message, its type and its id")
def letter_keeps_message(story: Story) -> None:
    assert story.outcome is not None and story.sent is not None
    letter = story.outcome.dead_letter
    assert letter is not None
    assert (letter.topic, letter.partition, letter.offset) == (REQUESTS_TOPIC, 0, story.sent.offset)
    assert (letter.key, letter.value) == (story.sent.key, story.sent.raw)
    assert (letter.message_type, letter.message_id, letter.schema_version) == (
        story.sent.body["type"],
        story.sent.body["message_id"],
        1,
    )


@then("the message is not recorded as processed, so it can be replayed after a fix")
def not_recorded(story: Story) -> None:
    assert story.sent is not None
    assert story.processor.processed(story.sent.body["message_id"]) is None


@then(parsers.re(rf"the incident of {ACCOUNT} is still resolved"))
def still_resolved(story: Story, account: str) -> None:
    incident = story.incident()
    assert (incident.account, incident.status, incident.closed_at) == (account, RESOLVED, None)
