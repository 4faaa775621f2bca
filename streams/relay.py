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
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import (
    InvalidMetadataError,
    KafkaError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    TopicAlreadyExistsError,
    for_code,
)
from kafka.net.compat import KafkaNetClient
from kafka.protocol.producer import ProduceRequest
from kafka.record.default_records import DefaultRecordBatchBuilder

from application.app import ItilApplication
from projections.db import POSTGRES, Database
from streams.envelope import StoredEnvelopes

log = logging.getLogger(__name__)

RELAY_SCHEMA = """CREATE TABLE IF NOT EXISTS relay_positions (
    topic TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    state TEXT NOT NULL
)"""
ADVISORY_LOCK_KEY = 0x1717_E7E5  # one relay per PostgreSQL database
BATCH_BYTES = 256 * 1024  # one record batch per partition holds up to this much of a flush
ROUTES_KEPT = 100_000  # aggregates whose key and partition the relay remembers (each costs a murmur2)
RETRIES = 5
RETRY_BACKOFF_S = 0.1
SEND_TIMEOUT_S = 30.0
TopicData = ProduceRequest.TopicProduceData
PartitionData = TopicData.PartitionProduceData


_M = 0x5BD1E995
_WORDS = struct.Struct("<I").iter_unpack


def murmur2(key: bytes) -> int:
    """kafka-python's `murmur2` (the Java client's), reading the key four bytes at a time: twice as fast."""
    length = len(key)
    h = 0x9747B28C ^ length
    body = length & ~3
    for (k,) in _WORDS(key[:body]):
        k = (k * _M) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * _M) & 0xFFFFFFFF
        h = ((h * _M) & 0xFFFFFFFF) ^ k
    tail = length & 3
    if tail:
        if tail == 3:
            h ^= key[body + 2] << 16
        if tail >= 2:
            h ^= key[body + 1] << 8
        h = ((h ^ key[body]) * _M) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * _M) & 0xFFFFFFFF
    return h ^ (h >> 15)


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


class RecordBatch:
    """The records of one flush bound for one partition, in order, in Kafka's v2 batch format."""

    __slots__ = ("_builder", "_records", "positions", "base_offset")

    def __init__(self) -> None:
        self._builder = DefaultRecordBatchBuilder(
            magic=2, compression_type=0, is_transactional=False,
            producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=BATCH_BYTES,
        )  # fmt: skip
        self._records: bytes | None = None
        self.positions: list[int] = []
        self.base_offset: int | None = None  # set once the broker has acknowledged the batch

    def append(self, key: bytes, value: bytes, timestamp: int, position: int) -> bool:
        """False when the batch is full (its first record always fits)."""
        if self._builder.append(len(self.positions), timestamp, key, value, []) is None:
            return False
        self.positions.append(position)
        return True

    @property
    def records(self) -> bytes:
        if self._records is None:
            self._records = bytes(self._builder.build())
        return self._records


class BatchSender:
    """Sends whole record batches through kafka-python's network client and waits for acks=all.

    KafkaProducer spent more CPU than everything else in the relay (a future and a sender wake-up
    per message, a sender thread polling the network): the relay already holds a whole flush, so it
    builds one batch per partition and sends it in one request per leader, from the relay's thread.
    One request per leader at a time, a partition's next batch only after the previous one was
    acknowledged: a retried batch can never overtake a later one.
    """

    def __init__(self, bootstrap: str, topic: str, client_id: str = "itil-relay", timeout_ms: int = 10000) -> None:
        self.topic = topic
        self.timeout_ms = timeout_ms
        self._client = KafkaNetClient(bootstrap_servers=bootstrap, client_id=client_id, request_timeout_ms=timeout_ms)
        try:
            self._client.check_version(timeout_ms=timeout_ms)  # bootstraps
            self.partitions = self._wait_for_partitions()
        except BaseException:
            self.close()
            raise

    def _wait_for_partitions(self) -> int:
        cluster = self._client.cluster
        update = cluster.add_topic(self.topic)
        deadline = time.monotonic() + self.timeout_ms / 1000
        while True:
            self._client.poll(timeout_ms=max(0.0, deadline - time.monotonic()) * 1000, future=update)
            partitions = cluster.partitions_for_topic(self.topic)
            if partitions is not None:
                return len(partitions)
            if time.monotonic() > deadline:
                raise KafkaTimeoutError(f"no metadata for {self.topic} after {self.timeout_ms} ms")
            update = cluster.request_update()

    def close(self) -> None:
        self._client.close()

    def send(self, batches: dict[int, list[RecordBatch]]) -> None:
        """Delivers every batch, each partition's in order, and sets their base offsets.

        Raises KafkaError when a batch is refused, or still fails after RETRIES attempts or
        SEND_TIMEOUT_S; the batches acknowledged before keep their base offsets.
        """
        waiting = {partition: deque(queue) for partition, queue in batches.items() if queue}
        deadline = time.monotonic() + SEND_TIMEOUT_S
        attempts = 0
        while waiting:
            heads = {partition: queue[0] for partition, queue in waiting.items()}
            errors = self._send_heads(heads)
            for partition in heads.keys() - errors.keys():
                waiting[partition].popleft()
                if not waiting[partition]:
                    del waiting[partition]
            if not errors:
                continue
            attempts += 1
            error = next(iter(errors.values()))
            if attempts > RETRIES or time.monotonic() > deadline or not all(e.retriable for e in errors.values()):
                raise error
            log.warning("%s: %s; retrying (%d attempts left)", self.topic, error, RETRIES + 1 - attempts)
            time.sleep(RETRY_BACKOFF_S)
            if any(isinstance(e, InvalidMetadataError) for e in errors.values()):
                update = self._client.cluster.request_update()
                self._client.poll(timeout_ms=max(0.0, deadline - time.monotonic()) * 1000, future=update)

    def _send_heads(self, heads: dict[int, RecordBatch]) -> dict[int, KafkaError]:
        """Sends one batch per partition, one request per leader; the errors of those not acknowledged."""
        errors: dict[int, KafkaError] = {}
        by_leader: dict[int, list[int]] = {}
        for partition in heads:
            leader = self._client.cluster.leader_for_partition(TopicPartition(self.topic, partition))
            if leader is None or leader == -1:
                errors[partition] = LeaderNotAvailableError(f"{self.topic}[{partition}]")
            else:
                by_leader.setdefault(leader, []).append(partition)
        sent = []
        for leader, partitions in by_leader.items():
            request = ProduceRequest(
                transactional_id=None, acks=-1, timeout_ms=self.timeout_ms,
                topic_data=[TopicData(name=self.topic, partition_data=[
                    PartitionData(index=p, records=heads[p].records) for p in partitions
                ])],
                min_version=3, max_version=9,  # v3: record batches (magic 2)
            )  # fmt: skip
            try:
                self._client.await_ready(leader, timeout_ms=self.timeout_ms)
                sent.append((partitions, self._client.send(leader, request)))
            except KafkaError as refused:
                errors.update(dict.fromkeys(partitions, refused))
        for partitions, future in sent:
            self._client.poll(timeout_ms=self.timeout_ms + 1000, future=future)
            if not future.is_done or future.failed():
                failure = future.exception
                if not isinstance(failure, KafkaError):
                    failure = KafkaTimeoutError(f"produce to {self.topic}: {failure or 'no answer'}")
                errors.update(dict.fromkeys(partitions, failure))
                continue
            answers = {
                answer.index: answer
                for topic in future.value.responses
                if topic.name == self.topic
                for answer in topic.partition_responses
            }
            for partition in partitions:
                answer = answers.get(partition)
                if answer is None:
                    errors[partition] = KafkaError(f"no answer for {self.topic}[{partition}]")
                elif answer.error_code:
                    errors[partition] = for_code(answer.error_code)(answer.error_message)
                else:
                    heads[partition].base_offset = answer.base_offset
        return errors


def acknowledged(state: RelayState, batches: dict[int, list[RecordBatch]], last: int) -> RelayState:
    """The state after a flush up to `last`: published up to the first position not acknowledged."""
    unacknowledged = [batch.positions[0] for queue in batches.values() for batch in queue if batch.base_offset is None]
    position = min(unacknowledged) - 1 if unacknowledged else last
    new = RelayState(position, dict(state.previous), dict(state.ends))
    for partition, queue in batches.items():
        published = [p for batch in queue if batch.base_offset is not None for p in batch.positions if p <= position]
        if published:
            new.previous[partition] = published[-1]
        first = queue[0].base_offset
        if first is not None:
            new.ends[partition] = max(new.ends.get(partition, 0), first + 1)
    return new


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
        self._sender: BatchSender | None = None
        self._offsets: KafkaConsumer | None = None
        self._partitions = 0
        self._envelopes = StoredEnvelopes(app.mapper)
        # Per originator id: its id written out, the message key, and its partition (for `_partitions`).
        self._routes: dict[Any, tuple[str, bytes, int]] = {}
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
        if self._sender is not None:
            return
        ensure_topic(self.bootstrap, self.topic, self.wanted_partitions)
        self._sender = BatchSender(self.bootstrap, self.topic)
        self._offsets = KafkaConsumer(
            bootstrap_servers=self.bootstrap, client_id="itil-relay-offsets", enable_auto_commit=False
        )
        self._partitions = self._sender.partitions or self.wanted_partitions
        self._routes.clear()

    def disconnect(self) -> None:
        closers = [c for c in (self._sender, self._offsets) if c is not None]
        for client in closers:
            try:
                client.close()
            except Exception:  # closing a broken client must not hide the original error
                log.debug("closing kafka client failed", exc_info=True)
        self._sender = self._offsets = None

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
        assert self._sender is not None
        notifications = self.app.recorder.select_notifications(start=state.position + 1, limit=self.batch_size)
        if not notifications:
            return state
        message = self._envelopes.message
        routes = self._routes
        partitions = self._partitions
        timestamp = int(time.time() * 1000)
        previous = dict(state.previous)
        batches: dict[int, list[RecordBatch]] = {}
        for n in notifications:
            route = routes.get(n.originator_id)
            if route is None:
                if len(routes) >= ROUTES_KEPT:
                    routes.clear()
                aggregate_id = str(n.originator_id)
                key = aggregate_id.encode()
                route = routes[n.originator_id] = (aggregate_id, key, partition_for(key, partitions))
            aggregate_id, key, partition = route
            value = message(n, n.id, previous.get(partition), aggregate_id)
            queue = batches.get(partition)
            if queue is None or not queue[-1].append(key, value, timestamp, n.id):
                batch = RecordBatch()
                batch.append(key, value, timestamp, n.id)
                batches.setdefault(partition, []).append(batch)
            previous[partition] = n.id
        try:
            self._sender.send(batches)
        finally:
            new = acknowledged(state, batches, notifications[-1].id)
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
