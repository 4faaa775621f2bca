"""The relay: publishes every stored event, in notification order, to `itil.events`.

The store is the source of truth and the broker may forget (the embedded one keeps data in
memory only). The relay remembers, in the store's database, how far it published and the end
offset it reached on each partition; when the broker's end offsets fall below those, the broker
lost data and the relay republishes everything from the store. Consumers skip what they already
applied (see projections.account_incidents).
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from itil.application import ItilApplication
from projections.db import POSTGRES, Database
from streams.envelope import encode, envelope_of

log = logging.getLogger(__name__)

RELAY_SCHEMA = """CREATE TABLE IF NOT EXISTS relay_positions (
    topic TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    state TEXT NOT NULL
)"""
ADVISORY_LOCK_KEY = 0x1717_E7E5  # one relay per PostgreSQL database


def partition_for(key: bytes, partitions: int) -> int:
    """The Java client's default partitioner, so any producer agrees on where a key goes."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="itil-admin", request_timeout_ms=10000)
    try:
        if topic not in admin.list_topics():
            try:
                admin.create_topics([NewTopic(topic, partitions, 1)])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


@dataclass
class RelayState:
    """How far the relay published, the chain head of each partition, and its floor.

    `ends[p]` is one past the first offset of the relay's latest flush on partition p: any broker
    that still holds what the relay published reports an end offset at least that high (the
    embedded broker reports one past the base offset of the last record batch, not of the last
    record, so the floor cannot be the last offset).
    """

    position: int = 0
    previous: dict[int, int] = field(default_factory=dict)
    ends: dict[int, int] = field(default_factory=dict)

    def dumps(self) -> str:
        return json.dumps({"previous": self.previous, "ends": self.ends})

    @classmethod
    def loads(cls, position: int, text: str) -> RelayState:
        data = json.loads(text)
        return cls(
            position=position,
            previous={int(k): v for k, v in data["previous"].items()},
            ends={int(k): v for k, v in data["ends"].items()},
        )


class LeaderLock:
    """Only one relay publishes a store: an advisory lock on PostgreSQL, a file lock on SQLite."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._held: Any = None

    def acquire(self) -> bool:
        if self._held is not None:
            return True
        if self.db.dialect == POSTGRES:
            import psycopg

            p = self.db.params
            conn = psycopg.connect(
                dbname=p["dbname"], host=p["host"], port=p["port"], user=p["user"],
                password=p["password"] or None, autocommit=True,
            )  # fmt: skip
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()
            if got and got[0]:
                self._held = conn
                return True
            conn.close()
            return False
        handle = open(Path(self.db.params["path"]).with_suffix(".relay.lock"), "a+")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._held = handle
        return True

    def release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None


class Relay:
    """Store to Kafka, in order, at least once, republishing after a broker loss."""

    def __init__(
        self,
        app: ItilApplication,
        db: Database,
        bootstrap: str,
        topic: str,
        partitions: int,
        batch_size: int = 1000,
        poll_interval: float = 0.05,
    ) -> None:
        self.app = app
        self.db = db
        self.bootstrap = bootstrap
        self.topic = topic
        self.wanted_partitions = partitions
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.wake = threading.Event()
        self.lock = LeaderLock(db)
        self._producer: KafkaProducer | None = None
        self._offsets: KafkaConsumer | None = None
        self._partitions = 0
        app.saved.callbacks.append(self.wake.set)

    # -- state ----------------------------------------------------------------------

    def create_tables(self) -> None:
        with self.db.transaction() as tx:
            tx.execute(RELAY_SCHEMA)

    def load_state(self) -> RelayState:
        with self.db.transaction(write=False) as tx:
            row = tx.execute("SELECT position, state FROM relay_positions WHERE topic = ?", (self.topic,)).one()
        return RelayState() if row is None else RelayState.loads(row["position"], row["state"])

    def save_state(self, state: RelayState) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO relay_positions (topic, position, state) VALUES (?, ?, ?)"
                " ON CONFLICT (topic) DO UPDATE SET position = excluded.position, state = excluded.state",
                (self.topic, state.position, state.dumps()),
            )

    # -- broker ---------------------------------------------------------------------

    def connect(self) -> None:
        if self._producer is not None:
            return
        ensure_topic(self.bootstrap, self.topic, self.wanted_partitions)
        self._producer = KafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id="itil-relay",
            acks="all",
            linger_ms=2,
            batch_size=256 * 1024,
            max_in_flight_requests_per_connection=1,  # keeps order across retries
            retries=5,
            max_block_ms=10000,
            request_timeout_ms=10000,
        )
        self._offsets = KafkaConsumer(
            bootstrap_servers=self.bootstrap, client_id="itil-relay-offsets", enable_auto_commit=False
        )
        partitions = self._producer.partitions_for(self.topic)
        self._partitions = len(partitions) if partitions else self.wanted_partitions

    def disconnect(self) -> None:
        closers = [c for c in (self._producer, self._offsets) if c is not None]
        for client in closers:
            try:
                client.close(timeout=2) if isinstance(client, KafkaProducer) else client.close()
            except Exception:  # closing a broken client must not hide the original error
                log.debug("closing kafka client failed", exc_info=True)
        self._producer = self._offsets = None

    def broker_lost_data(self, state: RelayState) -> bool:
        """True when the topic's end offsets fell below what the relay had published."""
        if not state.ends:
            return False
        assert self._offsets is not None
        tps = [TopicPartition(self.topic, p) for p in state.ends]
        ends = self._offsets.end_offsets(tps)
        if any(tp not in ends for tp in tps):
            return False  # no answer is not an answer: decide when the broker replies
        return any(ends[tp] < state.ends[tp.partition] for tp in tps)

    # -- publishing -----------------------------------------------------------------

    def publish_pending(self, state: RelayState) -> RelayState:
        """Publish one batch of stored events after `state.position`; returns the new state."""
        assert self._producer is not None
        notifications = self.app.recorder.select_notifications(start=state.position + 1, limit=self.batch_size)
        if not notifications:
            return state
        previous = dict(state.previous)
        sent = []
        for n in notifications:
            key = str(n.originator_id).encode()
            partition = partition_for(key, self._partitions)
            envelope = envelope_of(self.app.mapper.to_domain_event(n), n.id, previous.get(partition))
            future = self._producer.send(self.topic, key=key, value=encode(envelope), partition=partition)
            sent.append((n.id, partition, future))
            previous[partition] = n.id
        self._producer.flush(timeout=30)
        new = RelayState(state.position, dict(state.previous), dict(state.ends))
        floors: dict[int, int] = {}
        try:
            for position, partition, future in sent:
                metadata = future.get(timeout=0)
                new.position = position
                new.previous[partition] = position
                floors.setdefault(partition, metadata.offset + 1)
                new.ends[partition] = max(new.ends.get(partition, 0), floors[partition])
        finally:
            if new.position != state.position:
                self.save_state(new)
        return new

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set; survives broker outages by retrying."""
        self.create_tables()
        while not stop.is_set() and not self.lock.acquire():
            log.info("another relay publishes this store; standing by")
            stop.wait(5)
        last_check = 0.0
        state = self.load_state()
        try:
            while not stop.is_set():
                try:
                    self.connect()
                    if time.monotonic() - last_check > 1.0:
                        last_check = time.monotonic()
                        if self.broker_lost_data(state):
                            log.warning(
                                "%s lost events the relay had published; republishing from the store",
                                self.topic,
                            )
                            state = RelayState()
                            self.save_state(state)
                    before = state.position
                    state = self.publish_pending(state)
                    if state.position == before:
                        self.wake.wait(self.poll_interval)
                        self.wake.clear()
                except KafkaError as error:
                    log.warning("relay cannot publish (%s); retrying", error)
                    self.disconnect()
                    state = self.load_state()
                    last_check = 0.0  # a broker that comes back may have come back empty
                    stop.wait(1.0)
        finally:
            self.disconnect()
            self.lock.release()
