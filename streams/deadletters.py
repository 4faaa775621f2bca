"""Dead letters: list what the engine refused, and replay it after a fix, each dead letter at most once.

A dead letter is known by its id (`streams.intake.dead_letter_id`: its source position and bytes),
so the same message refused twice is listed and replayed once. A replay runs the original bytes
through `IntakeProcessor.handle` again; `deadletter_replays` remembers the outcome, and only a
replay that failed again may be tried once more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from projections.db import Database
from streams.contracts import DEADLETTER_TOPIC, INTAKE_TOPICS
from streams.intake import DEAD, DUPLICATE, PROCESSED, DeadLetter, IntakeProcessor, utc_now

log = logging.getLogger(__name__)

REPLAYS_SCHEMA = """CREATE TABLE IF NOT EXISTS deadletter_replays (
    dead_letter_key TEXT PRIMARY KEY,
    replayed_at TEXT NOT NULL,
    outcome TEXT NOT NULL
)"""

SKIPPED = "skipped"
DONE = (PROCESSED, DUPLICATE)
"""Replay outcomes after which a dead letter is not replayed again."""


@dataclass(frozen=True)
class StoredDeadLetter:
    """A dead letter as read from the dead-letter topic, with where it sits there."""

    partition: int
    offset: int
    letter: DeadLetter

    @property
    def key(self) -> str:
        return str(self.letter.id)


def read_dead_letters(bootstrap: str, topic: str = DEADLETTER_TOPIC, timeout: float = 60.0) -> list[StoredDeadLetter]:
    """Every dead letter on `topic`, oldest first (partitions assigned directly: no consumer group)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="itil-dead-letters")
    found: list[StoredDeadLetter] = []
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        if not tps:
            return found
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took over {timeout:.0f}s")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    try:
                        found.append(StoredDeadLetter(record.partition, record.offset, DeadLetter.decode(record.value)))
                    except ValueError as error:
                        log.warning("%s[%s]@%s is not a dead letter: %s", topic, record.partition, record.offset, error)
        found.sort(key=lambda s: (s.letter.dead_lettered_at, s.partition, s.offset))
        return found
    finally:
        consumer.close()


def distinct(letters: Sequence[StoredDeadLetter]) -> list[StoredDeadLetter]:
    """One entry per dead letter id (the first written), oldest first."""
    seen: dict[str, StoredDeadLetter] = {}
    for stored in letters:
        seen.setdefault(stored.key, stored)
    return list(seen.values())


class DeadLetterReplays:
    """Which dead letters were replayed, when, and with what outcome (in the store's database)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_tables(self) -> None:
        with self.db.transaction() as tx:
            tx.execute(REPLAYS_SCHEMA)

    def all(self) -> dict[str, dict[str, Any]]:
        with self.db.transaction(write=False) as tx:
            rows = tx.execute("SELECT dead_letter_key, replayed_at, outcome FROM deadletter_replays").all()
        return {row["dead_letter_key"]: row for row in rows}

    def record(self, key: str, outcome: str, at: datetime) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO deadletter_replays (dead_letter_key, replayed_at, outcome) VALUES (?, ?, ?)"
                " ON CONFLICT (dead_letter_key) DO UPDATE SET replayed_at = excluded.replayed_at,"
                " outcome = excluded.outcome",
                (key, at.isoformat(), outcome),
            )


def _done(row: dict[str, Any] | None) -> bool:
    return row is not None and str(row["outcome"]).split(":")[0] in DONE


def describe(stored: StoredDeadLetter, replay: dict[str, Any] | None) -> dict[str, Any]:
    """A dead letter as the CLI shows it (JSON-ready)."""
    letter = stored.letter
    return {
        "id": stored.key,
        "dead_lettered_at": letter.dead_lettered_at.isoformat(),
        "reason": letter.reason,
        "source": {"topic": letter.topic, "partition": letter.partition, "offset": letter.offset},
        "message_type": letter.message_type,
        "message_id": letter.message_id,
        "key": None if letter.key is None else letter.key.decode(errors="replace"),
        "value": letter.value.decode(errors="replace"),
        "replay": None if replay is None else {"at": replay["replayed_at"], "outcome": replay["outcome"]},
    }


def list_dead_letters(
    letters: Sequence[StoredDeadLetter], replays: DeadLetterReplays, limit: int | None = None
) -> list[dict[str, Any]]:
    """The distinct dead letters, newest `limit` of them, oldest first, each with its latest replay."""
    rows = distinct(letters)
    if limit is not None:
        rows = rows[-limit:] if limit > 0 else []
    recorded = replays.all()
    return [describe(s, recorded.get(s.key)) for s in rows]


@dataclass(frozen=True)
class Replay:
    """What replaying one dead letter did."""

    id: str
    status: str
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "reason": self.reason}


def _choose(
    letters: Sequence[StoredDeadLetter], ids: Collection[str] | None
) -> tuple[list[StoredDeadLetter], list[Replay]]:
    """The letters named by `ids` (full ids or unique prefixes; None: all), and a refusal per unknown id."""
    if ids is None:
        return list(letters), []
    chosen: list[StoredDeadLetter] = []
    unknown: list[Replay] = []
    for wanted in ids:
        matches = [s for s in letters if s.key == wanted] or [s for s in letters if s.key.startswith(wanted)]
        if len(matches) == 1:
            if matches[0] not in chosen:
                chosen.append(matches[0])
        elif not matches:
            unknown.append(Replay(wanted, SKIPPED, "there is no dead letter with this id"))
        else:
            unknown.append(Replay(wanted, SKIPPED, f"{len(matches)} dead letters start with this id; give more of it"))
    return chosen, unknown


def replay_dead_letters(
    letters: Sequence[StoredDeadLetter],
    processor: IntakeProcessor,
    replays: DeadLetterReplays,
    ids: Collection[str] | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> list[Replay]:
    """Run the chosen dead letters (None: all) through the processor again, each successfully at most once.

    A letter whose replay was processed (or found a duplicate) is skipped; one whose replay was
    refused again may be replayed after another fix. A refused replay writes no new dead letter: the
    original stays on the dead-letter topic.
    """
    chosen, results = _choose(distinct(letters), ids)
    recorded = replays.all()
    for stored in chosen:
        letter = stored.letter
        previous = recorded.get(stored.key)
        if _done(previous):
            assert previous is not None
            results.append(Replay(stored.key, SKIPPED, f"already replayed at {previous['replayed_at']}"))
            continue
        if letter.topic not in INTAKE_TOPICS:
            results.append(Replay(stored.key, SKIPPED, f"{letter.topic} is not an intake topic: nothing to replay"))
            continue
        if letter.truncated:
            kept = f"only the first {len(letter.value)} of its {letter.value_size} bytes were kept"
            results.append(Replay(stored.key, SKIPPED, f"{kept} (too large for a dead letter): resend it whole"))
            continue
        outcome = processor.handle(letter.topic, letter.partition, letter.offset, letter.key, letter.value)
        text = f"{DEAD}: {outcome.reason}" if outcome.dead else outcome.status
        replays.record(stored.key, text, clock())
        results.append(Replay(stored.key, outcome.status, outcome.reason))
    return results
