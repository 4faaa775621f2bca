"""The intake processor on a real store (SQLite and PostgreSQL): extranet requests and commands, once each."""

from __future__ import annotations

import base64
import itertools
import json
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.app import ItilApplication
from domain.commands import AssignIncident, LogIncident, ResolveIncident
from domain.monitoring import Alarm, alarm_id
from projections.db import Database
from streams.contracts import intake_incident_id
from streams.intake import DEAD, DUPLICATE, PROCESSED, DeadLetter, IntakeConsumer, IntakeProcessor, Outcome
from streams.request_intake import HANDLERS

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
REQUESTS = "itil.intake.requests"
ALERTS = "itil.intake.alerts"
COMMANDS = "itil.commands"
_offsets = itertools.count()


@pytest.fixture
def app(store_env: dict[str, str]) -> ItilApplication:
    return ItilApplication(env=store_env)


@pytest.fixture
def processor(app: ItilApplication, store_env: dict[str, str]) -> IntakeProcessor:
    intake = IntakeProcessor(app, Database.from_store_env(store_env), clock=lambda: T0 + timedelta(days=30))
    intake.create_tables()
    return intake


def message(message_type: str, message_id: str | None = None, at: datetime = T0, **body: Any) -> dict[str, Any]:
    return {
        "message_id": message_id or f"extranet-{uuid4()}",
        "type": message_type,
        "schema_version": 1,
        "sent_at": at.isoformat(),
        "source": "extranet",
        **body,
    }


def customer(**body: Any) -> dict[str, Any]:
    return {"account": "resto-chain", "requester": "j.martin@resto-chain.fr", **body}


def send(processor: IntakeProcessor, topic: str, body: dict[str, Any] | bytes, key: bytes | None = b"k") -> Outcome:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return processor.handle(topic, 0, next(_offsets), key, raw)


def open_incident(processor: IntakeProcessor, **body: Any) -> tuple[dict[str, Any], Outcome]:
    fields = customer(title="Payment terminal offline", ci="tpe-0042", description="no line") | body
    opened = message("incident.open", **fields)
    return opened, send(processor, REQUESTS, opened)


def test_extranet_customer_opens_an_incident_and_confirms_its_resolution(
    app: ItilApplication, processor: IntakeProcessor
) -> None:
    opened, outcome = open_incident(processor, urgency=2)
    assert outcome.status == PROCESSED and outcome.dead_letter is None
    incident = app.get_incident(intake_incident_id(opened["message_id"]))
    assert (incident.account, incident.ci, incident.channel) == ("resto-chain", "tpe-0042", "extranet")
    assert (incident.impact, incident.urgency, incident.priority) == (3, 2, 4)
    assert incident.reporter == "j.martin@resto-chain.fr"
    app.handle(ResolveIncident(incident_id=incident.id, code="fixed", actor="tech-07", at=T0 + timedelta(hours=2)))

    confirm = message("resolution.confirm", at=T0 + timedelta(hours=3), **customer(incident_id=str(incident.id)))
    assert send(processor, REQUESTS, confirm).status == PROCESSED
    closed = app.get_incident(incident.id)
    assert closed.status == "closed"
    assert app.history(incident.id)[-1].actor == "j.martin@resto-chain.fr"  # type: ignore[attr-defined]
    record = processor.processed(confirm["message_id"])
    assert record is not None and record["type"] == "resolution.confirm" and record["outcome"] == PROCESSED


def test_extranet_customer_refuses_a_resolution_and_the_incident_is_reopened(
    app: ItilApplication, processor: IntakeProcessor
) -> None:
    opened, _ = open_incident(processor)
    incident_id = intake_incident_id(opened["message_id"])
    app.handle(ResolveIncident(incident_id=incident_id, code="fixed", actor="tech-07", at=T0 + timedelta(hours=1)))
    refuse = message(
        "resolution.refuse", at=T0 + timedelta(hours=5),
        **customer(incident_id=str(incident_id), reason="offline again this morning"),
    )  # fmt: skip
    assert send(processor, REQUESTS, refuse).status == PROCESSED
    assert app.get_incident(incident_id).status not in ("resolved", "closed")


def test_a_service_request_becomes_an_extranet_incident_in_the_service_request_category(
    app: ItilApplication, processor: IntakeProcessor
) -> None:
    body = message("request.open", **customer(title="Two more terminals for Nice", description="before May"))
    assert send(processor, REQUESTS, body).status == PROCESSED
    incident = app.get_incident(intake_incident_id(body["message_id"]))
    assert (incident.category, incident.service, incident.channel) == (
        "service request",
        "service requests",
        "extranet",
    )
    assert (incident.impact, incident.urgency) == (3, 3)


def test_the_same_message_twice_makes_one_incident(app: ItilApplication, processor: IntakeProcessor) -> None:
    opened, first = open_incident(processor)
    again = send(processor, REQUESTS, opened)
    assert (first.status, again.status) == (PROCESSED, DUPLICATE)
    incident_id = intake_incident_id(opened["message_id"])
    assert len(app.history(incident_id)) == 1
    # redelivered after the incident was saved but before its id was recorded: it finds the same incident
    with processor.db.transaction() as tx:
        tx.execute("DELETE FROM intake_messages WHERE message_id = ?", (opened["message_id"],))
    redelivered = send(processor, REQUESTS, opened)
    assert redelivered.status == PROCESSED and redelivered.result.id == incident_id
    assert len(app.history(incident_id)) == 1
    logged = [n for n in app.recorder.select_notifications(start=1, limit=100) if n.topic.endswith("Logged")]
    assert len(logged) == 1


def test_an_illegal_command_is_dead_lettered_with_the_rule_it_breaks(
    app: ItilApplication, processor: IntakeProcessor
) -> None:
    opened, _ = open_incident(processor)
    incident_id = intake_incident_id(opened["message_id"])
    confirm = message("resolution.confirm", at=T0 + timedelta(hours=1), **customer(incident_id=str(incident_id)))
    outcome = send(processor, REQUESTS, confirm, key=str(incident_id).encode())
    assert outcome.status == DEAD
    assert outcome.reason is not None and outcome.reason.startswith(
        f"illegal command: cannot close incident {incident_id}"
    )
    letter = outcome.dead_letter
    assert letter is not None and letter.reason == outcome.reason
    assert (letter.message_type, letter.message_id, letter.schema_version) == (
        "resolution.confirm",
        confirm["message_id"],
        1,
    )
    assert letter.value == json.dumps(confirm).encode() and letter.key == str(incident_id).encode()
    assert processor.processed(confirm["message_id"]) is None  # refused: it may be replayed after a fix
    assert app.get_incident(incident_id).status == "new"


def test_a_malformed_message_is_dead_lettered_with_its_bytes_and_position(processor: IntakeProcessor) -> None:
    outcome = processor.handle(REQUESTS, 3, 41, None, b'{"type": "incident.open", "message_id": ')
    assert outcome.status == DEAD and outcome.reason is not None and outcome.reason.startswith("malformed JSON")
    assert outcome.dead_letter is not None
    document = json.loads(outcome.dead_letter.encode())
    assert document["source"] == {"topic": REQUESTS, "partition": 3, "offset": 41}
    assert base64.b64decode(document["value_base64"]) == b'{"type": "incident.open", "message_id": '
    assert document["key_base64"] is None and document["message_type"] is None
    assert document["dead_lettered_at"] == (T0 + timedelta(days=30)).isoformat()
    assert DeadLetter.decode(outcome.dead_letter.encode()) == outcome.dead_letter


def test_a_customer_cannot_touch_an_incident_of_another_account(
    app: ItilApplication, processor: IntakeProcessor
) -> None:
    incident_id = uuid4()
    app.handle(LogIncident(id=incident_id, account="other-customer", title="Link down", impact=2, urgency=2,
                           channel="phone", reporter="alice", actor="alice", at=T0, ci="link-1"))  # fmt: skip
    app.handle(ResolveIncident(incident_id=incident_id, code="fixed", actor="bob", at=T0 + timedelta(hours=1)))
    confirm = message("resolution.confirm", at=T0 + timedelta(hours=2), **customer(incident_id=str(incident_id)))
    outcome = send(processor, REQUESTS, confirm)
    assert outcome.reason == f"illegal command: there is no incident {incident_id} on account resto-chain"
    assert app.get_incident(incident_id).status == "resolved"


def test_unknown_accounts_are_dead_lettered_when_the_account_check_says_so(
    app: ItilApplication, store_env: dict[str, str]
) -> None:
    known = {"resto-chain"}
    processor = IntakeProcessor(app, Database.from_store_env(store_env), known_account=known.__contains__)
    processor.create_tables()
    _, outcome = open_incident(processor, account="nobody-we-know")
    assert outcome.status == DEAD and outcome.reason.startswith("unknown account 'nobody-we-know'")
    assert open_incident(processor)[1].status == PROCESSED


def test_types_without_a_handler_yet_are_dead_lettered(
    processor: IntakeProcessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(processor.handlers, "alarm.raised", raising=False)  # as before the alarms team's handler
    monkeypatch.delitem(processor.batch_handlers, "alarm.raised", raising=False)
    alarm = {
        "message_id": "centreon-1", "type": "alarm.raised", "schema_version": 1, "sent_at": T0.isoformat(),
        "source": "centreon", "account": "resto-chain", "ci": "router-1", "check": "ping", "severity": "major",
        "dedup_key": "centreon:1", "at": T0.isoformat(), "summary": "router-1 does not answer",
    }  # fmt: skip
    outcome = processor.handle("itil.intake.alerts", 0, 0, b"centreon:1", json.dumps(alarm).encode())
    assert (outcome.status, outcome.reason) == (DEAD, "no handler for alarm.raised yet")
    assert outcome.dead_letter is not None and outcome.dead_letter.message_id == "centreon-1"


def test_an_extranet_comment_is_added_to_the_incident_for_the_customer_to_see(
    app: ItilApplication, processor: IntakeProcessor
) -> None:
    opened, _ = open_incident(processor)
    incident_id = intake_incident_id(opened["message_id"])
    body = message("comment.add", at=T0 + timedelta(minutes=5), **customer(
        incident_id=str(incident_id), author="J. Martin", text="Still down after the restart."))  # fmt: skip

    outcome = send(processor, REQUESTS, body, key=str(incident_id).encode())

    assert (outcome.status, outcome.reason) == (PROCESSED, None)
    [comment] = app.comments(incident_id)
    assert (comment.text, comment.author, comment.customer_visible) == (
        "Still down after the restart.",
        "J. Martin",
        True,
    )
    assert (comment.actor, comment.at) == ("j.martin@resto-chain.fr", T0 + timedelta(minutes=5))
    assert app.get_incident(incident_id).comment_count == 1
    assert send(processor, REQUESTS, body).status == DUPLICATE
    assert len(app.comments(incident_id)) == 1


def test_a_comment_on_another_accounts_incident_is_dead_lettered(
    app: ItilApplication, processor: IntakeProcessor
) -> None:
    incident_id = uuid4()
    app.handle(LogIncident(id=incident_id, account="other-customer", title="Link down", impact=2, urgency=2,
                           channel="phone", reporter="alice", actor="alice", at=T0, ci="link-1"))  # fmt: skip
    body = message("comment.add", at=T0 + timedelta(minutes=5), **customer(
        incident_id=str(incident_id), author="J. Martin", text="Is this ours?"))  # fmt: skip

    outcome = send(processor, REQUESTS, body)

    assert outcome.status == DEAD
    assert outcome.reason == f"illegal command: there is no incident {incident_id} on account resto-chain"
    assert outcome.dead_letter is not None and outcome.dead_letter.message_type == "comment.add"
    assert processor.processed(body["message_id"]) is None
    assert app.comments(incident_id) == []


def test_a_comment_on_a_closed_incident_is_dead_lettered_with_the_rule(
    app: ItilApplication, processor: IntakeProcessor
) -> None:
    opened, _ = open_incident(processor)
    incident_id = intake_incident_id(opened["message_id"])
    app.handle(ResolveIncident(incident_id=incident_id, code="fixed", actor="tech-07", at=T0 + timedelta(hours=1)))
    confirm = message("resolution.confirm", at=T0 + timedelta(hours=2), **customer(incident_id=str(incident_id)))
    assert send(processor, REQUESTS, confirm).status == PROCESSED
    body = message("comment.add", at=T0 + timedelta(hours=3), **customer(
        incident_id=str(incident_id), author="J. Martin", text="It failed again."))  # fmt: skip

    outcome = send(processor, REQUESTS, body)

    assert outcome.status == DEAD
    assert outcome.reason == (
        f"illegal command: cannot comment on incident {incident_id}: it is closed; a closed incident takes no more"
        " comments, log a new one related to it"
    )


def test_another_system_commands_an_incident_as_the_message_source(
    app: ItilApplication, processor: IntakeProcessor
) -> None:
    opened, _ = open_incident(processor)
    incident_id = intake_incident_id(opened["message_id"])

    def command(name: str, minutes: int, **args: Any) -> Outcome:
        body = message("command.incident", at=T0 + timedelta(minutes=minutes), incident_id=str(incident_id),
                       command=name, args=args) | {"source": "aes-automation"}  # fmt: skip
        return send(processor, COMMANDS, body, key=str(incident_id).encode())

    assert command("acknowledge", 1).status == PROCESSED
    assert command("assign", 2, group="N2 network", assignee="tech-07").status == PROCESSED
    assert command("reprioritise", 3, impact=1, urgency=1).status == PROCESSED
    assert command("hold", 4, reason="awaiting_customer", note="asked for a photo").status == PROCESSED
    assert command("resume", 5).status == PROCESSED
    assert command("resolve", 6, code="fixed", notes="line replugged").status == PROCESSED
    incident = app.get_incident(incident_id)
    assert (incident.status, incident.assignee, incident.priority) == ("resolved", "tech-07", 1)
    assert {e.actor for e in app.history(incident_id)[1:]} == {"aes-automation"}  # type: ignore[attr-defined]
    refused = command("cancel", 7, reason="duplicate")
    assert refused.status == DEAD and refused.reason is not None
    assert refused.reason.startswith(f"illegal command: cannot cancel incident {incident_id}")
    early = command("reopen", -60, reason="too early")
    assert early.reason is not None and "before its last recorded step" in early.reason


def test_commands_on_an_unknown_incident_and_problem_commands_without_handler_are_dead_lettered(
    processor: IntakeProcessor,
) -> None:
    missing = uuid4()
    body = message("command.incident", incident_id=str(missing), command="acknowledge") | {"source": "aes"}
    assert send(processor, COMMANDS, body).reason == f"illegal command: there is no incident {missing}"
    problem = message("command.problem", problem_id=str(UUID(int=7)), command="investigate") | {"source": "aes"}
    assert send(processor, COMMANDS, problem).reason == "no handler for command.problem yet"


def test_a_message_id_reused_by_another_sender_is_not_taken_for_a_duplicate(
    app: ItilApplication, processor: IntakeProcessor
) -> None:
    opened, _ = open_incident(processor)
    incident_id = intake_incident_id(opened["message_id"])
    app.handle(AssignIncident(incident_id=incident_id, group="N1 hotline", actor="n1", at=T0))
    clash = message("command.incident", message_id=opened["message_id"], incident_id=str(incident_id),
                    command="acknowledge") | {"source": "aes"}  # fmt: skip
    outcome = send(processor, COMMANDS, clash)
    assert outcome.status == DEAD and outcome.reason == (
        f"message_id {opened['message_id']!r} was already used by extranet for incident.open on"
        " itil.intake.requests: message ids must be unique across senders"
    )


# -- what passes the door can never block the intake -----------------------------------------------


def test_an_alarm_nested_without_end_is_dead_lettered_and_its_neighbours_are_carried_out(
    app: ItilApplication, processor: IntakeProcessor
) -> None:
    alarm = {"account": "resto-chain", "ci": "router-1", "check": "ping", "severity": "critical", "summary": "down"}
    good = json.dumps(message("alarm.raised", "centreon-1", dedup_key="centreon:1", **alarm) | {"at": T0.isoformat()})
    poison = json.dumps(message("alarm.raised", "centreon-2", dedup_key="centreon:2", **alarm) | {"at": T0.isoformat()})
    poison = poison[:-1] + ', "details": {"a": ' + "[" * 3000 + "]" * 3000 + "}}"  # details 3,000 levels deep

    outcomes = processor.handle_batch([(ALERTS, 0, 1, b"k", good.encode()), (ALERTS, 0, 2, b"k", poison.encode())])
    assert outcomes[0].status == PROCESSED
    assert outcomes[1].dead and "nests more than 64 levels deep" in (outcomes[1].reason or "")
    assert app.find(alarm_id("resto-chain", "centreon:1"), Alarm) is not None


def test_a_comment_with_a_lone_surrogate_is_dead_lettered_not_retried(
    app: ItilApplication, processor: IntakeProcessor
) -> None:
    opened, _ = open_incident(processor)
    incident_id = str(intake_incident_id(opened["message_id"]))
    comment = message("comment.add", incident_id=incident_id, **customer(author="J. Martin", text="merci \ud800"))
    outcome = send(processor, REQUESTS, json.dumps(comment).encode())  # written as the escape \\ud800
    assert outcome.dead and "must not contain control characters or lone surrogates" in (outcome.reason or "")
    assert app.get_incident(intake_incident_id(opened["message_id"])).comment_count == 0


class Letters:
    """Where the consumer's dead letters go (the broker's part is tested with it, in test_deadletters)."""

    def __init__(self) -> None:
        self.written: list[DeadLetter] = []

    def write(self, letter: DeadLetter) -> None:
        self.written.append(letter)


def test_a_message_that_keeps_failing_is_dead_lettered_after_bounded_tries_and_its_neighbours_go_on(
    app: ItilApplication, store_env: dict[str, str]
) -> None:
    tried: list[str] = []

    def open_or_crash(app: Any, message: Any) -> Any:  # a handler with a bug one message meets
        tried.append(message.message_id)
        if message.data["title"] == "poison":
            raise KeyError("a value the handler cannot handle")
        return HANDLERS["incident.open"](app, message)

    processor = IntakeProcessor(
        app, Database.from_store_env(store_env), handlers={**HANDLERS, "incident.open": open_or_crash}
    )
    processor.create_tables()
    consumer = IntakeConsumer("127.0.0.1:9", "itil-intake-test", processor, max_tries=3)
    bodies = [message("incident.open", f"extranet-{n}", **customer(title=title, ci="tpe-1"))
              for n, title in enumerate(["before", "poison", "after"])]  # fmt: skip
    records = [SimpleNamespace(topic=REQUESTS, partition=0, offset=n, key=b"k", value=json.dumps(b).encode())
               for n, b in enumerate(bodies)]  # fmt: skip
    letters = Letters()
    consumer._carry_out(records, letters, threading.Event())  # type: ignore[arg-type]

    assert [letter.message_id for letter in letters.written] == ["extranet-1"]
    assert letters.written[0].reason.startswith("could not be carried out after 3 tries (KeyError:")
    assert tried.count("extranet-1") == 1 + 3  # in the batch, then alone three times
    for n in (0, 2):
        assert app.get_incident(intake_incident_id(f"extranet-{n}")).title in ("before", "after")


def test_a_store_that_is_away_for_a_while_is_waited_for_not_dead_lettered(
    app: ItilApplication, store_env: dict[str, str]
) -> None:
    failures = [sqlite3.OperationalError("database is locked"), OSError("connection refused")]

    def open_when_back(app: Any, message: Any) -> Any:
        if failures:
            raise failures.pop(0)
        return HANDLERS["incident.open"](app, message)

    processor = IntakeProcessor(
        app, Database.from_store_env(store_env), handlers={**HANDLERS, "incident.open": open_when_back}
    )
    processor.create_tables()
    consumer = IntakeConsumer("127.0.0.1:9", "itil-intake-test", processor, max_tries=1)
    body = message("incident.open", "extranet-back", **customer(title="Terminal offline", ci="tpe-1"))
    letters = Letters()
    record = SimpleNamespace(topic=REQUESTS, partition=0, offset=0, key=b"k", value=json.dumps(body).encode())
    consumer._carry_out([record], letters, threading.Event())  # type: ignore[arg-type]
    assert letters.written == [] and failures == []
    assert app.get_incident(intake_incident_id("extranet-back")).title == "Terminal offline"
