"""The relay publishes the store to the real embedded broker, and republishes after a broker loss."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import pytest
from kafka import KafkaConsumer, TopicPartition

from application.app import ItilApplication
from domain.commands import AssignIncident, LogIncident, ResolveIncident
from projections.db import Database
from streams.broker import EmbeddedBroker
from streams.envelope import decode
from streams.relay import Relay, partition_for
from tests.conftest import ROOT, wait_for

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
TOPIC = "itil.events"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path / "broker.log") as b:
        yield b


def read_all(bootstrap: str, partitions: int = 4) -> list[tuple[int, int, bytes, dict]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=500).values():
                out += [(r.partition, r.offset, r.key, decode(r.value)) for r in records]
        return out
    finally:
        consumer.close()


def make_story(app: ItilApplication, n: int) -> list:
    ids = []
    for i in range(n):
        incident_id = uuid4()
        at = T0 + timedelta(minutes=i)
        app.handle(LogIncident(id=incident_id, account="acme", title=f"site {i} down", impact=2,
                               urgency=2, channel="monitoring", reporter="nagios", actor="nagios",
                               at=at, ci=f"site-{i}"))  # fmt: skip
        app.handle(AssignIncident(incident_id=incident_id, group="N2 network", actor="n1", at=at))
        ids.append(incident_id)
    return ids


def test_every_stored_event_is_published_in_order_keyed_by_aggregate(
    broker: EmbeddedBroker, store_env: dict[str, str]
) -> None:
    app = ItilApplication(env=store_env)
    ids = make_story(app, 6)
    app.handle(ResolveIncident(incident_id=ids[0], code="fixed", actor="bob", at=T0 + timedelta(hours=1)))
    relay = Relay(app, Database.from_store_env(store_env), broker.bootstrap, TOPIC, 4)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        total = app.recorder.max_notification_id()
        messages = wait_for(lambda: (m := read_all(broker.bootstrap)) and len(m) >= total and m, 30, what="events")
    finally:
        stop.set()
        thread.join()
    assert sorted(m[3]["position"] for m in messages) == list(range(1, total + 1))
    for partition, _offset, key, envelope in messages:
        assert key == str(envelope["aggregate_id"]).encode()
        assert partition == partition_for(key, 4)
    by_partition: dict[int, list] = {}
    for partition, _offset, _key, envelope in sorted(messages, key=lambda m: (m[0], m[1])):
        by_partition.setdefault(partition, []).append(envelope)
    for envelopes in by_partition.values():
        positions = [e["position"] for e in envelopes]
        assert positions == sorted(positions)
        assert [e["previous_position"] for e in envelopes] == [None, *positions[:-1]]
    first = [m[3] for m in messages if m[3]["aggregate_id"] == ids[0]]
    assert [e["event_type"] for e in first] == [
        "Incident.Logged", "Incident.Assigned", "Incident.ServiceRestored", "Incident.Resolved",
    ]  # fmt: skip
    assert first[0]["actor"] == "nagios" and first[0]["occurred_at"] == T0
    assert first[0]["payload"]["priority"] == 3


def test_relay_republishes_from_the_store_when_the_broker_comes_back_empty(
    tmp_path: Path, sqlite_env: dict[str, str]
) -> None:
    broker = EmbeddedBroker(log_file=tmp_path / "broker.log").start()
    app = ItilApplication(env=sqlite_env)
    relay = Relay(app, Database.from_store_env(sqlite_env), broker.bootstrap, TOPIC, 4)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        make_story(app, 3)
        wait_for(lambda: len(read_all(broker.bootstrap)) == 6, 30, what="first publication")
        broker.stop()
        make_story(app, 2)  # stored while the broker is down
        broker.start()  # same port, nothing in memory
        wait_for(lambda: len(read_all(broker.bootstrap)) >= 10, 60, what="republication")
        positions = sorted(m[3]["position"] for m in read_all(broker.bootstrap))
        assert set(positions) == set(range(1, 11))
        # an external client (kcat, librdkafka) reads the same topic
        out = subprocess.run(
            [str(ROOT / ".venv/bin/kcat"), "-b", broker.bootstrap, "-t", TOPIC, "-C", "-e", "-q", "-f", "%s\n"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        kcat_positions = {json.loads(line)["position"] for line in out.stdout.splitlines() if line}
        assert kcat_positions == set(range(1, 11))
    finally:
        stop.set()
        thread.join()
        broker.stop()
