"""The worker on the real embedded broker: an undecodable message is dead-lettered while the rest of its
batch reaches the views, and every offset, the dead letter's too, is committed once applied."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from application.app import ItilApplication
from domain.incident import Incident
from projections.account_incidents import AccountIncidentsProjection
from projections.db import Database
from projections.records import envelope_of
from streams.broker import EmbeddedBroker
from streams.envelope import encode
from streams.relay import ensure_topic
from tests.conftest import EngineProcess, wait_for

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
EVENTS, DEAD_LETTERS, GROUP = "itil.events", "itil.deadletter", "itil-worker"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path / "broker.log") as b:
        yield b


def incident(n: int) -> Incident:
    at = T0 + timedelta(minutes=n)
    made = Incident.log(
        id=UUID(int=n + 1), account="carrier-sites", title=f"link {n} down", impact=2, urgency=2,
        channel="monitoring", reporter="nagios", actor="nagios", at=at, ci=f"link-{n}",
    )  # fmt: skip
    made.acknowledge(actor="n1", at=at + timedelta(minutes=1))
    return made


def test_an_undecodable_message_is_dead_lettered_while_its_batch_is_applied_and_committed(
    broker: EmbeddedBroker, sqlite_env: dict[str, str], tmp_path: Path, spawn: Callable[..., EngineProcess]
) -> None:
    app = ItilApplication(env=sqlite_env)
    app.save(*[incident(n) for n in range(10)])
    notifications = app.recorder.select_notifications(start=1, limit=100)
    ensure_topic(broker.bootstrap, EVENTS, 1)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=50)
    previous = None
    for n, notification in enumerate(notifications):
        envelope = envelope_of(app.mapper.to_domain_event(notification), notification.id, previous)
        producer.send(EVENTS, key=envelope["aggregate_id"].encode(), value=encode(envelope), partition=0)
        previous = notification.id
        if n == 6:
            producer.send(EVENTS, key=b"poison", value=b'{"envelope_version": ', partition=0)
    producer.flush()
    producer.close()
    poison_offset, end = 7, len(notifications) + 1

    env = {**sqlite_env, "ITIL_DATA_DIR": str(tmp_path / "var"), "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
           "ITIL_EVENTS_PARTITIONS": "1"}  # fmt: skip
    spawn("worker", env=env)

    view = AccountIncidentsProjection(Database.from_store_env(sqlite_env))
    wait_for(
        lambda: view.positions(EVENTS).get(0, (0, 0))[0] == notifications[-1].id, 90, what="every event in the view"
    )

    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=10_000)
    reader.assign([TopicPartition(DEAD_LETTERS, 0)])
    reader.seek_to_beginning()
    letters = [json.loads(record.value) for record in reader]
    reader.close()
    assert [(d["source"]["topic"], d["source"]["offset"]) for d in letters] == [(EVENTS, poison_offset)]
    assert letters[0]["reason"].startswith("not a valid itil.events envelope")

    offsets = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=GROUP, enable_auto_commit=False)
    try:
        wait_for(
            lambda: offsets.committed(TopicPartition(EVENTS, 0)) == end, 30,
            what="the group's offset past every message, the dead letter's too",
        )  # fmt: skip
    finally:
        offsets.close()
