"""Intake: carry out once each message other services publish, and say what to dead-letter and why.

`IntakeProcessor.handle` decodes a message with its contract, skips a message id it already
processed, hands the message to the handler its table names for its type, and records
the id. What it refuses comes back as a dead-letter outcome; `DeadLetterWriter` produces it to
`itil.deadletter`. Handlers stay thin: a message becomes a command for the application.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from marshmallow import EXCLUDE, ValidationError

from application.alarms import AlarmProcess
from application.app import ItilApplication
from application.store import transient
from domain.errors import IllegalTransition, InvalidCommand, NotFound
from projections.configuration import CiRegistryProjection
from projections.db import Database
from streams.alarm_intake import AlarmIntake
from streams.contracts import (
    DEADLETTER_TOPIC,
    INTAKE_TOPICS,
    ContractViolation,
    DeadLetterSchema,
    IntakeMessage,
    decode_intake,
)
from streams.request_intake import HANDLERS, BatchHandler, IntakeHandler, IntakeRefused

log = logging.getLogger(__name__)

INTAKE_SCHEMA = """CREATE TABLE IF NOT EXISTS intake_messages (
    message_id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    outcome TEXT NOT NULL
)"""

PROCESSED = "processed"
DUPLICATE = "duplicate"
DEAD = "dead"
DEAD_LETTER_NAMESPACE = uuid5(NAMESPACE_URL, "urn:itil-engine:dead-letter")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# -- dead letters ----------------------------------------------------------------------------------


def dead_letter_id(topic: str, partition: int, offset: int, value: bytes) -> UUID:
    """The same message refused twice (a redelivery, a second worker) gives the same dead letter id."""
    return uuid5(DEAD_LETTER_NAMESPACE, f"{topic}:{partition}:{offset}:{hashlib.sha256(value).hexdigest()}")


@dataclass(frozen=True)
class DeadLetter:
    """A refused message: its original bytes, where it came from, why, and its type and id when known."""

    reason: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    dead_lettered_at: datetime
    message_type: str | None = None
    message_id: str | None = None
    schema_version: int | None = None
    value_size: int | None = None
    """The original value's size in bytes (None: `value` is the whole of it)."""
    value_sha256: str | None = None
    """The original value's SHA-256, hex (with `value_size`, when `value` is only its prefix)."""
    letter_id: UUID | None = None

    @property
    def id(self) -> UUID:
        return self.letter_id or dead_letter_id(self.topic, self.partition, self.offset, self.value)

    @property
    def truncated(self) -> bool:
        return self.value_size is not None and self.value_size > len(self.value)

    def shortened(self, keep: int) -> DeadLetter:
        """The letter with only the first `keep` bytes of its value, and the whole value's size and digest:
        for a message too large for a dead letter. Its id stays the whole letter's."""
        return replace(
            self, value=self.value[:keep], value_size=len(self.value),
            value_sha256=hashlib.sha256(self.value).hexdigest(), letter_id=self.id,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "dead_letter_version": 1,
            "dead_letter_id": str(self.id),
            "reason": self.reason,
            "source": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "key_base64": None if self.key is None else base64.b64encode(self.key).decode(),
            "value_base64": base64.b64encode(self.value).decode(),
            "message_type": self.message_type,
            "message_id": self.message_id,
            "schema_version": self.schema_version,
            "dead_lettered_at": self.dead_lettered_at.isoformat(),
            **(
                {"value_size": self.value_size, "value_sha256": self.value_sha256, "value_truncated": True}
                if self.truncated
                else {}
            ),
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> DeadLetter:
        """Read a dead letter, ours or the itil.events worker's; ValueError when it is not one."""
        try:
            data = DeadLetterSchema(unknown=EXCLUDE).load(json.loads(raw))
            key = None if data["key_base64"] is None else base64.b64decode(data["key_base64"], validate=True)
            value = base64.b64decode(data["value_base64"], validate=True)
        except (ValidationError, binascii.Error) as error:
            raise ValueError(f"not a dead letter: {error}") from None
        return cls(
            reason=data["reason"],
            topic=data["source"]["topic"],
            partition=data["source"]["partition"],
            offset=data["source"]["offset"],
            key=key,
            value=value,
            dead_lettered_at=data["dead_lettered_at"],
            message_type=data["message_type"],
            message_id=data["message_id"],
            schema_version=data["schema_version"],
            value_size=data["value_size"] if data["value_truncated"] else None,
            value_sha256=data["value_sha256"] if data["value_truncated"] else None,
            letter_id=data["dead_letter_id"] if data["value_truncated"] else None,
        )


MAX_LETTER_BYTES = 900_000
"""The largest dead letter written (the producer's request limit is 1 MiB; base64 adds a third)."""
LETTER_PREFIX_BYTES = 64 * 1024
"""What a letter keeps of a value too large to keep whole."""


class DeadLetterWriter:
    """Produces dead letters to `itil.deadletter` (kafka-python), keyed by the refused message's key."""

    def __init__(self, bootstrap: str, topic: str = DEADLETTER_TOPIC, partitions: int = 1) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self._producer: KafkaProducer | None = None

    def write(self, letter: DeadLetter, timeout: float = 30.0) -> None:
        """Produce one dead letter and wait until the broker has it; a message too large to travel whole in
        a letter goes as its first LETTER_PREFIX_BYTES with its size and digest."""
        if len(letter.value) * 4 // 3 + 4096 > MAX_LETTER_BYTES:
            letter = letter.shortened(LETTER_PREFIX_BYTES)
        if self._producer is None:
            from streams.relay import ensure_topic

            ensure_topic(self.bootstrap, self.topic, self.partitions)
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap, client_id="itil-dead-letters", acks="all", retries=5,
                max_block_ms=10000, request_timeout_ms=10000,
            )  # fmt: skip
        self._producer.send(self.topic, key=letter.key, value=letter.encode()).get(timeout=timeout)
        log.warning("%s[%s]@%s dead-lettered: %s", letter.topic, letter.partition, letter.offset, letter.reason)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None

    def __enter__(self) -> DeadLetterWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CI_REGISTERING_TYPES = frozenset({"ci.state"})
"""Message types that may name a CI not registered yet (they register it)."""


# -- the processor ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What became of one message: processed, a duplicate skipped, or dead (with the letter to write)."""

    status: str
    reason: str | None = None
    message: IntakeMessage | None = None
    dead_letter: DeadLetter | None = None
    result: Any = field(default=None, compare=False, repr=False)

    @property
    def dead(self) -> bool:
        return self.status == DEAD


class IntakeProcessor:
    """Carries out each intake message once; refused messages come back as dead-letter outcomes."""

    def __init__(
        self,
        app: ItilApplication,
        db: Database,
        *,
        known_account: Callable[[str], bool] | None = None,
        known_ci: Callable[[str, str], bool] | None = None,
        learn: Callable[[Sequence[IntakeMessage]], None] | None = None,
        handlers: Mapping[str, IntakeHandler] | None = None,
        batch_handlers: Mapping[str, BatchHandler] | None = None,
        alarms: AlarmProcess | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """`handlers` and `batch_handlers`: message type -> handler (the composition root passes them).
        Without them, the incident intake's and those of `alarms` (without one, an alarm process on
        `db` that logs its automation requests instead of sending them)."""
        if handlers is None:
            if alarms is None:
                registry = CiRegistryProjection(db)
                registry.create_tables()  # empty until the worker feeds it: no correlation, alarms still open incidents
                alarms = AlarmProcess(app, db, registry)
                alarms.create_tables()
            alarm_intake = AlarmIntake(alarms)
            handlers = {**HANDLERS, **alarm_intake.handlers()}
            if batch_handlers is None:
                batch_handlers = alarm_intake.batch_handlers()
        self.batch_handlers: Mapping[str, BatchHandler] = batch_handlers or {}
        self.app = app
        self.db = db
        self.known_account = known_account
        self.known_ci = known_ci
        self.learn = learn
        self.handlers = handlers
        self.clock = clock

    def create_tables(self) -> None:
        with self.db.transaction() as tx:
            tx.execute(INTAKE_SCHEMA)

    def processed(self, message_id: str) -> dict[str, Any] | None:
        """The record of a message id already processed, or None."""
        with self.db.transaction(write=False) as tx:
            return tx.execute(
                "SELECT message_id, topic, type, source, processed_at, outcome FROM intake_messages"
                " WHERE message_id = ?",
                (message_id,),
            ).one()

    def handle(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> Outcome:
        """Carry out one message of `topic`; errors other than refusals (store down…) propagate: retry later."""

        def dead(reason: str, message: IntakeMessage | None = None, **known: Any) -> Outcome:
            if message is not None:
                known = {"message_type": message.type, "message_id": message.message_id,
                         "schema_version": message.schema_version}  # fmt: skip
            letter = DeadLetter(
                reason=reason, topic=topic, partition=partition, offset=offset, key=key, value=value or b"",
                dead_lettered_at=self.clock(), **known,
            )  # fmt: skip
            return Outcome(DEAD, reason=reason, message=message, dead_letter=letter)

        try:
            message = decode_intake(topic, value)
        except ContractViolation as violation:
            return dead(
                violation.reason, message_type=violation.message_type, message_id=violation.message_id,
                schema_version=violation.schema_version,
            )  # fmt: skip
        seen = self.processed(message.message_id)
        if seen is not None:
            if (seen["topic"], seen["type"], seen["source"]) != (message.topic, message.type, message.source):
                return dead(
                    f"message_id {message.message_id!r} was already used by {seen['source']} for {seen['type']} on"
                    f" {seen['topic']}: message ids must be unique across senders",
                    message,
                )
            return Outcome(DUPLICATE, message=message)
        handler = self.handlers.get(message.type)
        if handler is None:
            return dead(f"no handler for {message.type} yet", message)
        unknown = self.unknown(message)
        if unknown is not None:
            return dead(unknown, message)
        try:
            result = handler(self.app, message)
        except IntakeRefused as refusal:
            return dead(str(refusal), message)
        except (InvalidCommand, IllegalTransition, NotFound) as error:
            return dead(f"illegal command: {error}", message)
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO intake_messages (message_id, topic, type, source, processed_at, outcome)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                (message.message_id, message.topic, message.type, message.source, self.clock().isoformat(),
                 PROCESSED),
            )  # fmt: skip
        return Outcome(PROCESSED, message=message, result=result)

    def unknown(self, message: IntakeMessage) -> str | None:
        """Why the message names an account or CI the engine does not know, if it does."""
        account = message.account
        if account is not None and self.known_account is not None and not self.known_account(account):
            return f"unknown account {account!r}: register it first (POST /api/accounts/{{account}})"
        ci = message.data.get("ci")
        if (
            account is not None
            and isinstance(ci, str)
            and self.known_ci is not None
            and message.type not in CI_REGISTERING_TYPES
            and not self.known_ci(account, ci)
        ):
            return f"unknown CI {ci!r} on account {account!r}: register it first (POST /api/cis/{{account}})"
        return None

    def handle_batch(self, items: Sequence[tuple[str, int, int, bytes | None, bytes | None]]) -> list[Outcome]:
        """Carry out several messages in order, as `handle` would, sharing transactions where it can.

        Messages of types with a batch handler go to it together (one store transaction for a
        storm's repeats), and the ids of every processed message are recorded in one go.
        """
        outcomes: list[Outcome | None] = [None] * len(items)
        decoded: list[tuple[int, IntakeMessage]] = []
        for i, (topic, partition, offset, key, value) in enumerate(items):
            try:
                decoded.append((i, decode_intake(topic, value)))
            except ContractViolation:
                outcomes[i] = self.handle(topic, partition, offset, key, value)  # dead-letters it
        seen = self._processed_many([m.message_id for _, m in decoded])
        fresh: list[tuple[int, IntakeMessage]] = []
        in_batch: set[str] = set()
        for i, message in decoded:
            if message.message_id in seen or message.message_id in in_batch:
                outcomes[i] = self.handle(*items[i])  # a duplicate (or a reused id): as one message would
                continue
            in_batch.add(message.message_id)
            fresh.append((i, message))
        if self.learn is not None:
            self.learn([m for _, m in fresh])  # the accounts and CIs of a batch looked up together
        done: list[IntakeMessage] = []
        run: list[tuple[int, IntakeMessage]] = []

        def flush_run() -> None:
            if not run:
                return
            handler = self.batch_handlers[run[0][1].type]
            results = handler(self.app, [m for _, m in run])
            for (i, message), result in zip(run, results, strict=True):
                if isinstance(result, (InvalidCommand, IllegalTransition, NotFound)):
                    outcomes[i] = self._dead(items[i], f"illegal command: {result}", message)
                elif isinstance(result, IntakeRefused):
                    outcomes[i] = self._dead(items[i], str(result), message)
                else:
                    outcomes[i] = Outcome(PROCESSED, message=message, result=result)
                    done.append(message)
            run.clear()

        for i, message in fresh:
            batchable = message.type in self.batch_handlers and self.unknown(message) is None
            if batchable and (not run or self.batch_handlers[run[0][1].type] is self.batch_handlers[message.type]):
                run.append((i, message))
                continue
            flush_run()
            if batchable:
                run.append((i, message))
            else:
                outcomes[i] = self.handle(*items[i])
        flush_run()
        if done:
            with self.db.transaction() as tx:
                tx.executemany(
                    "INSERT INTO intake_messages (message_id, topic, type, source, processed_at, outcome)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                    [(m.message_id, m.topic, m.type, m.source, self.clock().isoformat(), PROCESSED) for m in done],
                )
        return [o for o in outcomes if o is not None]

    def _processed_many(self, message_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self.db.transaction(write=False) as tx:
            for start in range(0, len(message_ids), 500):
                chunk = message_ids[start : start + 500]
                rows = tx.execute(
                    f"SELECT message_id FROM intake_messages WHERE message_id IN ({', '.join('?' for _ in chunk)})",
                    chunk,
                ).all()
                found.update(r["message_id"] for r in rows)
        return found

    def undeliverable(
        self, item: tuple[str, int, int, bytes | None, bytes | None], error: BaseException, tries: int
    ) -> Outcome:
        """The dead-letter outcome of a message that failed `tries` times for a reason that is not a refusal
        nor a passing trouble of the store (a bug, a value the code cannot handle): its neighbours go on."""
        topic, partition, offset, key, value = item
        known: dict[str, Any] = {}
        try:
            message = decode_intake(topic, value)
            known = {"message_type": message.type, "message_id": message.message_id,
                     "schema_version": message.schema_version}  # fmt: skip
        except Exception:  # noqa: BLE001 - what it is does not matter more than that it is set aside
            pass
        detail = f"{type(error).__name__}: {error}"
        reason = f"could not be carried out after {tries} tries ({detail[:500]})"
        letter = DeadLetter(
            reason=reason, topic=topic, partition=partition, offset=offset, key=key, value=value or b"",
            dead_lettered_at=self.clock(), **known,
        )  # fmt: skip
        return Outcome(DEAD, reason=reason, dead_letter=letter)

    def _dead(
        self, item: tuple[str, int, int, bytes | None, bytes | None], reason: str, message: IntakeMessage
    ) -> Outcome:
        topic, partition, offset, key, value = item
        letter = DeadLetter(
            reason=reason, topic=topic, partition=partition, offset=offset, key=key, value=value or b"",
            dead_lettered_at=self.clock(), message_type=message.type, message_id=message.message_id,
            schema_version=message.schema_version,
        )  # fmt: skip
        return Outcome(DEAD, reason=reason, message=message, dead_letter=letter)


# -- consuming -------------------------------------------------------------------------------------

Item = tuple[str, int, int, bytes | None, bytes | None]
"""One message as polled: topic, partition, offset, key, value."""

MAX_TRIES = 5
"""How often a message that fails for a reason that is not transient is tried before it is dead-lettered."""


@dataclass
class IntakeRun:
    """What one pass over the intake topics did, and where a next pass should start."""

    outcomes: list[Outcome] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


def run_intake_once(
    bootstrap: str,
    topics: Iterable[str],
    processor: IntakeProcessor,
    dead_letters: DeadLetterWriter,
    start: Mapping[tuple[str, int], int] | None = None,
    timeout: float = 60.0,
) -> IntakeRun:
    """Read `topics` from `start` (default: their beginning) to their current end, carrying out each message.

    No consumer group: partitions are assigned directly, and a next pass starts from `next_offsets`.
    Dead letters are written before the pass moves on.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="itil-intake-once")
    run = IntakeRun()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t))]
        if not tps:
            return run
        consumer.assign(tps)
        for tp in tps:
            position = (start or {}).get((tp.topic, tp.partition))
            if position is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, position)
        ends = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"intake pass over {', '.join(t.topic for t in tps)} took over {timeout:.0f}s")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    outcome = processor.handle(record.topic, record.partition, record.offset, record.key, record.value)
                    if outcome.dead_letter is not None:
                        dead_letters.write(outcome.dead_letter)
                    run.outcomes.append(outcome)
        run.next_offsets = {(tp.topic, tp.partition): consumer.position(tp) for tp in tps}
        return run
    finally:
        consumer.close()


INTAKE_FETCH_WAIT_MS = 100
"""How long the broker may hold an intake fetch while the topic has no new data. The embedded broker
does not answer a held fetch when a message comes: it looks for data at 0, 1/2, 3/4, 7/8… of the
wait (measured through a logging proxy, kafka-python and aiokafka alike), so a message waits up
to half the wait: at 1 s an alarm took 266 ms to become an incident in the account view (p50;
p99 519 ms; bench.latency), at 100 ms it takes 43 ms (p99 84 ms). Each idle topic costs a fetch
per wait: at 100 ms the five intake consumers of an idle engine take ~11 % of a core, and the
broker ~7 % answering them."""


class IntakeConsumer:
    """The intake's consumers: one kafka-python consumer per intake topic, each topic's in a group
    of its own (`<group>.<topic>`: members of one group subscribed to different topics made the
    embedded broker take 10-30 s, at times minutes, to settle every rebalance).

    Each polls a batch, has the processor carry it out, produces its dead letters (acknowledged by
    the broker) and only then commits the batch's offsets: at least once, and a refused message's
    letter is never lost behind a commit. A failure that is not a refusal (the store is down, a
    concurrency conflict) is retried, with backoff, until it passes: the topic waits.

    Plain consumers rather than Faust agents: the intake needs no tables nor routing, and Faust's
    per-message machinery (events, acks, a consumer thread handing over to the event loop, then to
    an executor) cost more CPU than carrying out a repeated alarm. A topic has a thread of its own,
    so no topic waits behind another's storm. Up to 2,000 messages a batch: in a storm, a repeat
    costs a fifth less in batches of 2,000 than of 500 (the batch's lookups and transactions are shared).
    """

    def __init__(
        self,
        bootstrap: str,
        group: str,
        processor: IntakeProcessor,
        deadletter_topic: str = DEADLETTER_TOPIC,
        topics: Iterable[str] = INTAKE_TOPICS,
        max_records: int = 2000,
        max_tries: int = MAX_TRIES,
    ) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.processor = processor
        self.deadletter_topic = deadletter_topic
        self.topics = tuple(topics)
        self.max_records = max_records
        self.max_tries = max_tries

    def run(self, stop: threading.Event) -> None:
        """Consume every intake topic until `stop` is set."""
        threads = [
            threading.Thread(target=self._consume, args=(topic, stop), name=f"intake-{topic}", daemon=True)
            for topic in self.topics
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _consume(self, topic: str, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._consume_until(topic, stop)
            except Exception:  # the broker went away, the group moved on: join again
                log.exception("intake consumer of %s failed; starting it again", topic)
                stop.wait(1.0)

    def _consume_until(self, topic: str, stop: threading.Event) -> None:
        consumer = KafkaConsumer(
            topic, bootstrap_servers=self.bootstrap, group_id=f"{self.group}.{topic}",
            client_id=f"{self.group}-{topic}", enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=INTAKE_FETCH_WAIT_MS, session_timeout_ms=10000, heartbeat_interval_ms=1000,
            max_poll_interval_ms=600000, max_poll_records=self.max_records,
        )  # fmt: skip
        letters = DeadLetterWriter(self.bootstrap, self.deadletter_topic)
        try:
            while not stop.is_set():
                polled = consumer.poll(timeout_ms=200)
                if polled:  # every partition's records in one batch, each partition's in order
                    self._carry_out([r for records in polled.values() for r in records], letters, stop)
                    if stop.is_set():
                        return  # not committed: carried out (once) again after a restart
                    consumer.commit({tp: OffsetAndMetadata(rs[-1].offset + 1, "", -1) for tp, rs in polled.items()})
        finally:
            letters.close()
            consumer.close(autocommit=False)

    def _carry_out(self, records: Sequence[Any], letters: DeadLetterWriter, stop: threading.Event) -> None:
        items = [(r.topic, r.partition, r.offset, r.key, r.value) for r in records]
        outcomes = self._outcomes(items, stop)
        if outcomes is None:
            return  # stopped: not committed, carried out again after a restart
        for outcome in outcomes:
            if outcome.dead_letter is not None:
                letters.write(outcome.dead_letter)

    def _outcomes(self, items: Sequence[Item], stop: threading.Event) -> list[Outcome] | None:
        """Carry out the batch; a failure that is not transient sends it through one message at a time, and
        a message that still fails after `max_tries` is dead-lettered with the error: never retried forever,
        its neighbours carried out. Transient failures (the store or its lock away) are retried until they
        pass. None when `stop` was set meanwhile."""
        if len(items) > 1:
            result = self._tries(lambda: self.processor.handle_batch(items), items, stop, tries=1)
        else:
            result = self._tries(lambda: [self.processor.handle(*items[0])], items, stop, tries=self.max_tries)
        if result is None or isinstance(result, list):
            return result
        if len(items) == 1:
            return [self.processor.undeliverable(items[0], result, self.max_tries)]
        outcomes: list[Outcome] = []
        for item in items:
            one = self._outcomes([item], stop)
            if one is None:
                return None
            outcomes += one
        return outcomes

    def _tries(
        self, run: Callable[[], list[Outcome]], items: Sequence[Item], stop: threading.Event, tries: int
    ) -> list[Outcome] | BaseException | None:
        """`run`'s outcomes; or, after `tries` failures that are not transient, the last error."""
        delay, failed = 0.5, 0
        while not stop.is_set():
            try:
                began = time.perf_counter()
                outcomes = run()
                log.debug("intake: %d messages in %.3f s", len(items), time.perf_counter() - began)
                return outcomes
            except Exception as error:
                if not transient(error):
                    failed += 1
                    if failed >= tries:
                        log.exception("intake of %d message(s) of %s failed %d time(s)", len(items), items[0][0],
                                      failed)  # fmt: skip
                        return error
                log.exception("intake of %d message(s) of %s failed; retrying in %.1fs", len(items), items[0][0], delay)
                stop.wait(delay)
                delay = min(delay * 2, 30.0)
        return None
