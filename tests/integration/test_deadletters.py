"""Poison messages on the real embedded broker: dead-lettered with the reason, listed, replayed once after a fix."""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from application.app import ItilApplication
from domain.commands import ResolveIncident
from itil.cli_intake import register_intake_cli
from projections.db import Database
from streams.broker import EmbeddedBroker
from streams.contracts import ALERTS_TOPIC, REQUESTS_TOPIC, IntakeMessage, intake_incident_id
from streams.deadletters import DeadLetterReplays, list_dead_letters, read_dead_letters, replay_dead_letters
from streams.intake import (
    DEAD,
    DUPLICATE,
    PROCESSED,
    DeadLetterWriter,
    IntakeConsumer,
    IntakeProcessor,
    run_intake_once,
)
from streams.relay import ensure_topic
from tests.conftest import ROOT, wait_for

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
KCAT = ROOT / ".venv/bin/kcat"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path / "broker.log") as b:
        yield b


def body(message_type: str, message_id: str, source: str = "extranet", **fields: Any) -> bytes:
    return json.dumps({
        "message_id": message_id, "type": message_type, "schema_version": 1, "sent_at": T0.isoformat(),
        "source": source, **fields,
    }).encode()  # fmt: skip


def kcat_produce(bootstrap: str, topic: str, key: str, value: bytes) -> None:
    """Produce one message as another team's shell script would: kcat, key and value on stdin."""
    subprocess.run(
        [str(KCAT), "-b", bootstrap, "-t", topic, "-P", "-k", key],
        input=value + b"\n", check=True, timeout=60, capture_output=True,
    )  # fmt: skip


def run_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    parser = argparse.ArgumentParser(prog="itil")
    register_intake_cli(parser.add_subparsers(dest="command", required=True))
    parsed = parser.parse_args(list(args))
    code = 0
    try:
        parsed.func(parsed)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, json.loads(capsys.readouterr().out)


def test_poison_messages_are_dead_lettered_listed_and_replayed_once_after_a_fix(
    broker: EmbeddedBroker, sqlite_env: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    bootstrap = broker.bootstrap
    app = ItilApplication(env=sqlite_env)
    db = Database.from_store_env(sqlite_env)
    processor = IntakeProcessor(app, db)
    processor.create_tables()
    replays = DeadLetterReplays(db)
    replays.create_tables()
    ensure_topic(bootstrap, REQUESTS_TOPIC, 1)
    ensure_topic(bootstrap, ALERTS_TOPIC, 2)

    monkeypatch.delitem(processor.handlers, "alarm.raised", raising=False)  # as before the alarms team's handler
    monkeypatch.delitem(processor.batch_handlers, "alarm.raised", raising=False)
    incident_id = intake_incident_id("extranet-open-1")
    requester = {"account": "resto-chain", "requester": "j.martin@resto-chain.fr"}
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(REQUESTS_TOPIC, key=b"resto-chain", value=body(
        "incident.open", "extranet-open-1", title="Terminal offline", ci="tpe-0042", **requester))  # fmt: skip
    producer.send(REQUESTS_TOPIC, key=b"resto-chain", value=b'{"type": "incident.open", "message_id": "half')
    producer.send(ALERTS_TOPIC, key=b"centreon:9", value=body(
        "alarm.raised", "centreon-9", source="centreon", account="resto-chain", ci="router-1", check="ping",
        severity="critical", dedup_key="centreon:9", at=T0.isoformat(), summary="router-1 is down"))  # fmt: skip
    producer.flush()
    producer.close()
    newer = json.loads(body("incident.open", "extranet-open-2", title="x", ci="tpe-1", **requester))
    kcat_produce(bootstrap, REQUESTS_TOPIC, "resto-chain", json.dumps(newer | {"schema_version": 2}).encode())
    confirm = body("resolution.confirm", "extranet-confirm-1", incident_id=str(incident_id), **requester)
    kcat_produce(bootstrap, REQUESTS_TOPIC, str(incident_id), confirm)

    with DeadLetterWriter(bootstrap) as writer:
        first = run_intake_once(bootstrap, [REQUESTS_TOPIC, ALERTS_TOPIC], processor, writer)
        assert sorted(o.status for o in first.outcomes) == [DEAD, DEAD, DEAD, DEAD, PROCESSED]
        assert first.next_offsets[(REQUESTS_TOPIC, 0)] == 4
        # a second pass over everything (a worker restarted without its offsets) changes nothing
        again = run_intake_once(bootstrap, [REQUESTS_TOPIC, ALERTS_TOPIC], processor, writer)
        assert sorted(o.status for o in again.outcomes) == [DEAD, DEAD, DEAD, DEAD, DUPLICATE]
        nothing_new = run_intake_once(bootstrap, [REQUESTS_TOPIC], processor, writer, start=first.next_offsets)
        assert nothing_new.outcomes == []
    assert len(app.history(incident_id)) == 1

    letters = read_dead_letters(bootstrap)
    assert len(letters) == 8  # each refusal written twice, listed once
    listed = list_dead_letters(letters, replays)
    reasons = {row["message_id"] or row["value"]: row["reason"] for row in listed}
    assert len(reasons) == 4
    assert reasons['{"type": "incident.open", "message_id": "half'].startswith("malformed JSON")
    assert reasons["centreon-9"] == "no handler for alarm.raised yet"
    assert reasons["extranet-open-2"] == "incident.open schema version 2 is not supported: supported versions are 1"
    assert reasons["extranet-confirm-1"].startswith(f"illegal command: cannot close incident {incident_id}")
    by_id = {row["message_id"]: row for row in listed}
    assert by_id["extranet-confirm-1"]["key"] == str(incident_id)  # kcat's key kept
    assert by_id["centreon-9"]["source"]["topic"] == ALERTS_TOPIC and by_id["centreon-9"]["replay"] is None

    # the fixes: the alerts team registers its handler; the technician resolves the incident
    raised: list[IntakeMessage] = []
    monkeypatch.setitem(processor.handlers, "alarm.raised", lambda _app, message: raised.append(message))
    app.handle(ResolveIncident(incident_id=incident_id, code="fixed", actor="tech-07", at=T0))

    results = {r.id: r for r in replay_dead_letters(letters, processor, replays)}
    assert results[by_id["centreon-9"]["id"]].status == PROCESSED
    assert results[by_id["extranet-confirm-1"]["id"]].status == PROCESSED
    assert results[by_id["extranet-open-2"]["id"]].status == DEAD
    assert [m.message_id for m in raised] == ["centreon-9"]
    assert app.get_incident(incident_id).status == "closed"

    # replayed again: what went through is not done twice; what is still refused may be tried again
    second = {r.id: r for r in replay_dead_letters(letters, processor, replays)}
    assert second[by_id["centreon-9"]["id"]].status == "skipped"
    assert second[by_id["centreon-9"]["id"]].reason is not None
    assert second[by_id["centreon-9"]["id"]].reason.startswith("already replayed at")
    assert second[by_id["extranet-open-2"]["id"]].status == DEAD
    assert len(raised) == 1

    # the same through the `itil deadletter` command
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    monkeypatch.setenv("ITIL_DATA_DIR", str(tmp_path))
    for name, value in sqlite_env.items():
        monkeypatch.setenv(name, value)
    code, rows = run_cli("deadletter", "list", "--limit", "10", capsys=capsys)
    assert code == 0 and len(rows) == 4
    replayed = {r["message_id"]: r["replay"]["outcome"] for r in rows if r["replay"]}
    assert replayed["centreon-9"] == PROCESSED
    assert replayed["extranet-open-2"].startswith("dead: incident.open schema version 2 is not supported")
    code, rows = run_cli("deadletter", "list", "--limit", "1", capsys=capsys)
    assert len(rows) == 1
    code, out = run_cli("deadletter", "replay", "--id", by_id["centreon-9"]["id"][:12], capsys=capsys)
    assert code == 0 and out[0]["status"] == "skipped"
    code, out = run_cli("deadletter", "replay", "--id", by_id["extranet-open-2"]["id"], "--id", "nope", capsys=capsys)
    assert code == 1
    assert [r["status"] for r in out] == ["skipped", DEAD]
    assert out[0]["reason"] == "there is no dead letter with this id"


def test_the_intake_consumer_carries_out_requests_and_dead_letters_refusals(
    broker: EmbeddedBroker, sqlite_env: dict[str, str]
) -> None:
    bootstrap = broker.bootstrap
    ensure_topic(bootstrap, REQUESTS_TOPIC, 1)
    requester = {"account": "resto-chain", "requester": "j.martin@resto-chain.fr"}
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(REQUESTS_TOPIC, key=b"resto-chain", value=body(
        "incident.open", "extranet-consumer-1", title="Terminal offline", ci="tpe-0042", **requester))  # fmt: skip
    producer.send(REQUESTS_TOPIC, key=b"resto-chain", value=b"not json")
    producer.flush()
    app = ItilApplication(env=sqlite_env)
    processor = IntakeProcessor(app, Database.from_store_env(sqlite_env))
    processor.create_tables()
    consumer = IntakeConsumer(bootstrap, "itil-intake-test", processor, "itil.deadletter", [REQUESTS_TOPIC])
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    try:
        incident_id = intake_incident_id("extranet-consumer-1")
        wait_for(lambda: app.get_incident(incident_id), 60, what="the incident")
        letters = wait_for(lambda: read_dead_letters(bootstrap), 60, what="the dead letter")
        assert [s.letter.reason[:14] for s in letters] == ["malformed JSON"]
        assert letters[0].letter.value == b"not json" and letters[0].letter.topic == REQUESTS_TOPIC
        # both offsets committed for the group: a consumer started again carries out nothing twice
        producer.send(REQUESTS_TOPIC, key=b"resto-chain", value=body(
            "incident.open", "extranet-consumer-2", title="Printer offline", ci="prn-7", **requester))  # fmt: skip
        producer.flush()
        wait_for(lambda: app.get_incident(intake_incident_id("extranet-consumer-2")), 60, what="the second incident")
    finally:
        stop.set()
        thread.join(30)
        producer.close()
    assert not thread.is_alive()
    # every offset committed for the group, the refused message's too: a restart carries out nothing twice
    group = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=f"itil-intake-test.{REQUESTS_TOPIC}", enable_auto_commit=False
    )
    try:
        assert group.committed(TopicPartition(REQUESTS_TOPIC, 0)) == 3
    finally:
        group.close()


def test_only_intake_dead_letters_are_replayed(sqlite_env: dict[str, str]) -> None:
    from types import SimpleNamespace

    from streams.deadletters import StoredDeadLetter
    from streams.intake import DeadLetter
    from streams.worker import dead_letter

    db = Database.from_store_env(sqlite_env)
    processor = IntakeProcessor(ItilApplication(env=sqlite_env), db)
    processor.create_tables()
    replays = DeadLetterReplays(db)
    replays.create_tables()
    refused = SimpleNamespace(topic="itil.events", partition=0, offset=3, key=None, value=b"{bad")
    stored = StoredDeadLetter(0, 0, DeadLetter.decode(dead_letter(refused, "not a valid itil.events envelope")))
    [result] = replay_dead_letters([stored, stored], processor, replays)
    assert (result.status, result.reason) == ("skipped", "itil.events is not an intake topic: nothing to replay")
    assert replays.all() == {}


def test_a_message_too_large_for_a_dead_letter_is_lettered_by_its_beginning_size_and_digest(
    broker: EmbeddedBroker, sqlite_env: dict[str, str]
) -> None:
    import hashlib

    bootstrap = broker.bootstrap
    ensure_topic(bootstrap, REQUESTS_TOPIC, 1)
    requester = {"account": "resto-chain", "requester": "j.martin@resto-chain.fr"}
    huge = body("incident.open", "extranet-huge", title="x" * 5_000_000, ci="tpe-0042", **requester)  # 5 MB
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=8_000_000)
    producer.send(REQUESTS_TOPIC, key=b"resto-chain", value=huge)
    producer.send(REQUESTS_TOPIC, key=b"resto-chain", value=body(
        "incident.open", "extranet-after", title="Terminal offline", ci="tpe-0042", **requester))  # fmt: skip
    producer.flush()
    app = ItilApplication(env=sqlite_env)
    processor = IntakeProcessor(app, Database.from_store_env(sqlite_env))
    processor.create_tables()
    consumer = IntakeConsumer(bootstrap, "itil-intake-test", processor, "itil.deadletter", [REQUESTS_TOPIC])
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: app.get_incident(intake_incident_id("extranet-after")), 60, what="the message after it")
        [stored] = wait_for(lambda: read_dead_letters(bootstrap), 60, what="the dead letter")
    finally:
        stop.set()
        thread.join(30)
        producer.close()
    letter = stored.letter
    assert "does not follow its contract" in letter.reason and letter.message_id == "extranet-huge"
    assert letter.truncated and (letter.value_size, letter.value_sha256) == (
        len(huge),
        hashlib.sha256(huge).hexdigest(),
    )
    assert huge.startswith(letter.value) and len(letter.value) == 64 * 1024
    db = Database.from_store_env(sqlite_env)
    replays = DeadLetterReplays(db)
    replays.create_tables()
    [replay] = replay_dead_letters([stored], processor, replays)
    assert replay.status == "skipped" and "resend it whole" in (replay.reason or "")
