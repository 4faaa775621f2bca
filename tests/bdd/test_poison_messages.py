"""Steps for features/poison_messages.feature, driven in-process on SQLite.

The scenario's messages are built from the contracts' examples (`MESSAGE_CONTRACTS[(type, 1)].example`),
then broken the way the scenario says, and read in one batch by `IntakeProcessor.handle_batch`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from application.app import ItilApplication
from domain.incident import NEW, Incident
from projections.db import Database
from streams.contracts import ALERTS_TOPIC, MESSAGE_CONTRACTS, REQUESTS_TOPIC, intake_incident_id
from streams.intake import DEAD, PROCESSED, DeadLetter, IntakeProcessor, Outcome

scenarios("poison_messages.feature")

PARIS = ZoneInfo("Europe/Paris")
DAY = "2026-06-01"
ACTOR = r'"(?P<actor>[^"]+)"'
TITLE = r'"(?P<title>[^"]+)"'
CI = r'"(?P<ci>[^"]+)"'
TIME = r"(?P<time>\d\d:\d\d)"
WHICH = r'(?P<which>cut-off message|message "[^"]+"|alarm "[^"]+" on "[^"]+")'
"""How the scenarios name a message: the incident it opens, the alarm it raises, or the cut-off one."""


def moment(text: str) -> datetime:
    return datetime.fromisoformat(f"{DAY}T{text}").replace(tzinfo=PARIS)


@dataclass
class Published:
    """One message on its way to the engine: where it goes, its key, its bytes, and its body if it has one."""

    name: str
    topic: str
    key: bytes | None
    raw: bytes
    body: dict[str, Any] | None = None
    offset: int | None = None
    outcome: Outcome | None = None


@dataclass
class Story:
    app: ItilApplication
    processor: IntakeProcessor
    pending: list[Published] = field(default_factory=list)
    messages: dict[str, Published] = field(default_factory=dict)
    last_dead: Published | None = None

    def publish(self, name: str, topic: str, key: bytes | None, raw: bytes, body: dict[str, Any] | None = None) -> None:
        assert name not in self.messages, f"the scenario already published the {name}"
        message = Published(name, topic, key, raw, body)
        self.pending.append(message)
        self.messages[name] = message

    def message(self, which: str) -> Published:
        assert which in self.messages, f"no {which} was published in this scenario"
        return self.messages[which]

    def extranet_incidents(self) -> list[Incident.Logged]:
        events = (self.app.mapper.to_domain_event(n) for n in self.app.recorder.select_notifications(1, 1000))
        return [e for e in events if isinstance(e, Incident.Logged) and e.channel == "extranet"]


@pytest.fixture
def story(sqlite_env: dict[str, str]) -> Iterator[Story]:
    app = ItilApplication(env=sqlite_env)
    processor = IntakeProcessor(app, Database.from_store_env(sqlite_env), clock=lambda: moment("23:00"))
    processor.create_tables()
    yield Story(app, processor)
    app.close()


def example(message_type: str) -> dict[str, Any]:
    return copy.deepcopy(MESSAGE_CONTRACTS[(message_type, 1)].example)


# -- what the senders publish ---------------------------------------------------------------------


EXTRANET_INCIDENT = parsers.re(
    rf"the extranet publishes at {TIME} the incident {TITLE} of {ACTOR} on {CI}"
    r'(?: in schema version (?P<version>\d+)| without its "(?P<missing>[^"]+)")?'
)


@given(EXTRANET_INCIDENT)
@when(EXTRANET_INCIDENT)
def extranet_incident(
    story: Story, time: str, title: str, actor: str, ci: str, version: str | None, missing: str | None
) -> None:
    at = moment(time).isoformat()
    body = example("incident.open") | {
        "message_id": f"extranet-{uuid4()}", "sent_at": at, "at": at, "requester": actor, "title": title, "ci": ci,
        "description": f"{title}, reported from the extranet",
    }  # fmt: skip
    if version is not None:
        body["schema_version"] = int(version)
    if missing is not None:
        del body[missing]
    story.publish(f'message "{title}"', REQUESTS_TOPIC, body["account"].encode(), json.dumps(body).encode(), body)


@given(parsers.re(r"the extranet publishes a message cut off after '(?P<text>[^']+)'"))
def cut_off(story: Story, text: str) -> None:
    story.publish("cut-off message", REQUESTS_TOPIC, b"resto-chain", f"{text} ".encode())


@given(
    parsers.re(
        rf'{ACTOR} raises at {TIME} the alarm "(?P<check>[^"]+)" on {CI} of "(?P<account>[^"]+)"'
        r' without its "(?P<missing>[^"]+)"'
    )
)
def alarm_without(story: Story, actor: str, time: str, check: str, ci: str, account: str, missing: str) -> None:
    at = moment(time).isoformat()
    body = example("alarm.raised") | {
        "message_id": f"{actor}-{uuid4()}", "source": actor, "sent_at": at, "at": at, "account": account,
        "ci": ci, "check": check, "dedup_key": f"{actor}:{ci}:{check}", "summary": f"{ci} does not answer {check}",
    }  # fmt: skip
    del body[missing]
    story.publish(
        f'alarm "{check}" on "{ci}"', ALERTS_TOPIC, body["dedup_key"].encode(), json.dumps(body).encode(), body
    )


# -- the engine reads them ------------------------------------------------------------------------


@when(
    parsers.re(
        r"the engine reads (?:these (?P<count>\d+) messages|this message) from offset (?P<offset>\d+) in one batch"
    )
)
def read_batch(story: Story, count: str | None, offset: str) -> None:
    batch, story.pending = story.pending, []
    assert len(batch) == int(count or 1)
    items: list[tuple[str, int, int, bytes | None, bytes | None]] = []
    for i, message in enumerate(batch):
        message.offset = int(offset) + i
        items.append((message.topic, 0, message.offset, message.key, message.raw))
    outcomes = story.processor.handle_batch(items)
    assert len(outcomes) == len(batch)
    for message, outcome in zip(batch, outcomes, strict=True):
        message.outcome = outcome


# -- outcomes -------------------------------------------------------------------------------------


@then(parsers.re(r'the messages? (?P<titles>"[^"]+"(?: and "[^"]+")*) (?:is|are) processed'))
def processed(story: Story, titles: str) -> None:
    for title in re.findall(r'"([^"]+)"', titles):
        message = story.message(f'message "{title}"')
        assert message.outcome is not None and message.body is not None
        assert (message.outcome.status, message.outcome.reason, message.outcome.dead_letter) == (PROCESSED, None, None)
        assert story.processor.processed(message.body["message_id"]) is not None
        incident = story.app.get_incident(intake_incident_id(message.body["message_id"]))
        assert (incident.title, incident.status) == (title, NEW)


@then(
    parsers.re(
        r'"(?P<account>[^"]+)" has the incidents (?P<titles>"[^"]+"(?: and "[^"]+")*), logged through the extranet'
    )
)
def has_incidents(story: Story, account: str, titles: str) -> None:
    expected = sorted(re.findall(r'"([^"]+)"', titles))
    logged = [e for e in story.extranet_incidents() if e.account == account]
    assert sorted(e.title for e in logged) == expected


@then(parsers.re(r'"(?P<account>[^"]+)" has (?P<count>\d+) incidents? logged through the extranet'))
def count_incidents(story: Story, account: str, count: str) -> None:
    assert len([e for e in story.extranet_incidents() if e.account == account]) == int(count)


@then(
    parsers.re(
        rf'the {WHICH} is dead-lettered with (?:the reason "(?P<reason>.+)"|a reason starting "(?P<start>[^"]+)")'
    )
)
def dead_lettered(story: Story, which: str, reason: str | None, start: str | None) -> None:
    message = story.message(which)
    outcome = message.outcome
    assert outcome is not None and outcome.status == DEAD
    assert outcome.reason is not None
    if reason is not None:
        assert outcome.reason == reason
    else:
        assert start is not None and outcome.reason.startswith(start), outcome.reason
    assert outcome.dead_letter is not None and outcome.dead_letter.reason == outcome.reason
    if message.body is not None:
        assert story.processor.processed(message.body["message_id"]) is None  # it may be replayed after a fix
    story.last_dead = message


@then(
    parsers.re(
        r'its dead letter keeps its original bytes and says it came from "(?P<topic>[^"]+)",'
        r" partition (?P<partition>\d+), offset (?P<offset>\d+)"
    )
)
def letter_keeps_bytes(story: Story, topic: str, partition: str, offset: str) -> None:
    message = story.last_dead
    assert message is not None and message.outcome is not None and message.outcome.dead_letter is not None
    letter = message.outcome.dead_letter
    assert (letter.topic, letter.partition, letter.offset) == (topic, int(partition), int(offset))
    assert (letter.value, letter.key) == (message.raw, message.key)
    assert letter.dead_lettered_at == moment("23:00")
    assert DeadLetter.decode(letter.encode()) == letter  # what goes to itil.deadletter reads back the same


@then(
    parsers.re(
        r'its dead letter names its type "(?P<message_type>[^"]+)", its schema version (?P<version>\d+)'
        r" and its message id"
    )
)
def letter_names(story: Story, message_type: str, version: str) -> None:
    message = story.last_dead
    assert message is not None and message.body is not None
    assert message.outcome is not None and message.outcome.dead_letter is not None
    letter = message.outcome.dead_letter
    assert (letter.message_type, letter.schema_version, letter.message_id) == (
        message_type,
        int(version),
        message.body["message_id"],
    )
