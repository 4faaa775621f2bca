"""Exactly-once consumption of `itil.events`: positions per partition, written with the effects.

Every consumer (projection or process) records, per partition, the last position it applied. An
event at or below it is a redelivery or a republish and is skipped. Each envelope names the
position published just before it on its partition; when that is beyond what the consumer
applied, events were skipped (a broker that came back empty and refilled), and the consumer
must read the partition again before going on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.events import check_names
from projections.db import POSTGRES, Database, Transaction

POSITIONS_SCHEMA = """CREATE TABLE IF NOT EXISTS view_positions (
    projection TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition_no INTEGER NOT NULL,
    position BIGINT NOT NULL,
    kafka_offset BIGINT NOT NULL,
    PRIMARY KEY (projection, topic, partition_no)
)"""


STORE_TOPIC = "store"
"""Positions of a rebuild (read from the store, not the broker): one pseudo-partition in store order."""


@dataclass(frozen=True)
class Delivery:
    """One envelope as it came off the broker."""

    topic: str
    partition: int
    offset: int
    envelope: dict[str, Any]


class PartitionGap(Exception):
    """The stream skipped events on a partition; they must be read again before going on."""

    def __init__(self, topic: str, partition: int, applied: int, envelope: dict[str, Any]) -> None:
        super().__init__(
            f"{topic}[{partition}]: position {envelope['position']} follows"
            f" {envelope['previous_position']}, but only {applied} was applied"
        )
        self.topic = topic
        self.partition = partition
        self.applied = applied
        self.envelope = envelope


Moves = dict[tuple[str, int], tuple[int, int]]


def split_fresh(
    deliveries: Sequence[Delivery], tracked: dict[tuple[str, int], int], skip_gaps: bool
) -> tuple[list[Delivery], Moves, PartitionGap | None]:
    """The deliveries still to apply, in order; the new positions; the first gap, if any."""
    tracked = dict(tracked)
    fresh: list[Delivery] = []
    moved: Moves = {}
    for d in deliveries:
        key = (d.topic, d.partition)
        last = tracked.get(key, 0)
        e = d.envelope
        if e["position"] <= last:
            continue
        previous = e["previous_position"]
        if previous is not None and previous > last:
            if skip_gaps:
                continue
            return fresh, moved, PartitionGap(d.topic, d.partition, last, e)
        fresh.append(d)
        tracked[key] = e["position"]
        moved[key] = (e["position"], d.offset)
    return fresh, moved, None


class TrackedConsumer(ABC):
    """Base of projections and processes fed by `itil.events`."""

    name = "consumer"
    reads: tuple[str, ...] = ()
    """Aggregate types whose events it applies (empty: all). A batch with none of them is passed
    over without a write transaction (its positions are kept in memory until the next write), and
    a rebuild reads only those events. Each must be an aggregate of the domain (checked at import)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_names(f"{cls.__module__}.{cls.__qualname__}.reads", aggregates=cls.reads)

    def __init__(self, db: Database) -> None:
        self.db = db
        self._passed: Moves = {}  # positions passed over in memory, written with the next write

    def relevant(self, envelope: dict[str, Any]) -> bool:
        return not self.reads or envelope["aggregate_type"] in self.reads

    def _merged(self, tracked: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        merged = dict(tracked)
        for key, (position, _offset) in self._passed.items():
            merged[key] = max(merged.get(key, 0), position)
        return merged

    def _pass_over(self, moved: Moves) -> None:
        for key, move in moved.items():
            if move[0] > self._passed.get(key, (0, 0))[0]:
                self._passed[key] = move

    def _with_passed(self, moved: Moves) -> Moves:
        combined = dict(self._passed)
        for key, move in moved.items():
            if move[0] > combined.get(key, (0, 0))[0]:
                combined[key] = move
        self._passed = {}
        return combined

    def create_tables(self) -> None:
        with self.db.transaction() as tx:
            tx.execute(POSITIONS_SCHEMA)
            for statement in self.schema():
                tx.execute(statement)

    def schema(self) -> Sequence[str]:
        return ()

    def tables(self) -> Sequence[str]:
        """The tables this consumer owns (emptied when it is rebuilt)."""
        return [
            statement.split("EXISTS", 1)[1].split("(", 1)[0].strip()
            for statement in self.schema()
            if statement.lstrip().upper().startswith("CREATE TABLE")
        ]

    def positions(self, topic: str) -> dict[int, tuple[int, int]]:
        """Per partition: (last applied position, its Kafka offset)."""
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT partition_no, position, kafka_offset FROM view_positions WHERE projection = ? AND topic = ?",
                (self.name, topic),
            ).all()
        found = {r["partition_no"]: (r["position"], r["kafka_offset"]) for r in rows}
        for (passed_topic, partition), move in self._passed.items():
            if passed_topic == topic and move[0] > found.get(partition, (0, 0))[0]:
                found[partition] = move
        return found

    def _tracked(self, tx: Transaction) -> dict[tuple[str, int], int]:
        rows = tx.execute(
            "SELECT topic, partition_no, position FROM view_positions WHERE projection = ?", (self.name,)
        ).all()
        return {(r["topic"], r["partition_no"]): r["position"] for r in rows}

    def _lock(self, tx: Transaction, keys: set[tuple[str, int]]) -> None:
        """Serialise appliers of the same partitions (a rebalance may briefly give one to two)."""
        if tx.dialect != POSTGRES or not keys:
            return  # SQLite's BEGIN IMMEDIATE already serialises writers
        tx.executemany(
            "INSERT INTO view_positions (projection, topic, partition_no, position, kafka_offset)"
            " VALUES (?, ?, ?, 0, -1) ON CONFLICT DO NOTHING",
            [(self.name, t, p) for t, p in sorted(keys)],
        )
        for t, p in sorted(keys):
            tx.execute(
                "SELECT position FROM view_positions"
                " WHERE projection = ? AND topic = ? AND partition_no = ? FOR UPDATE",
                (self.name, t, p),
            )

    def _record(self, tx: Transaction, moved: Moves) -> None:
        tx.executemany(
            "INSERT INTO view_positions (projection, topic, partition_no, position, kafka_offset)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (projection, topic, partition_no)"
            " DO UPDATE SET position = excluded.position, kafka_offset = excluded.kafka_offset"
            " WHERE view_positions.position < excluded.position",
            [(self.name, t, p, pos, off) for (t, p), (pos, off) in moved.items()],
        )

    @abstractmethod
    def apply(self, deliveries: Sequence[Delivery], skip_gaps: bool = False) -> int:
        """Apply a batch once; returns how many events it applied."""


class Projection(TrackedConsumer):
    """A read model: its rows and its positions change in one transaction."""

    def apply(self, deliveries: Sequence[Delivery], skip_gaps: bool = False) -> int:
        """Apply a batch once; returns how many events changed the view.

        Raises PartitionGap (after committing what came before the gap) when a delivery shows
        that events were skipped on its partition; with `skip_gaps` (when re-reading a whole
        partition) such deliveries are passed over instead.
        """
        if not any(self.relevant(d.envelope) for d in deliveries):
            with self.db.transaction(write=False) as tx:
                _fresh, moved, gap = split_fresh(deliveries, self._merged(self._tracked(tx)), skip_gaps)
            self._pass_over(moved)  # nothing to change: no write, no lock taken from the others
            if gap is not None:
                raise gap
            return 0
        with self.db.transaction() as tx:
            self._lock(tx, {(d.topic, d.partition) for d in deliveries})
            fresh, moved, gap = split_fresh(deliveries, self._merged(self._tracked(tx)), skip_gaps)
            applied = self.apply_events(tx, [d.envelope for d in fresh])
            self._record(tx, self._with_passed(moved))
        if gap is not None:
            raise gap
        return applied

    def replay(self, records: list[dict[str, Any]], position: int) -> int:
        """Apply events read from the store in store order (a rebuild: no broker, no redelivery),
        and record `position`, the last one read, in the same transaction; returns how many changed
        the view. `records` hold what `apply_events` reads of an envelope (`projections.records.record_of`)."""
        with self.db.transaction() as tx:
            applied = self.apply_events(tx, records) if records else 0
            self._record(tx, {(STORE_TOPIC, 0): (position, position)})
        return applied

    @abstractmethod
    def apply_events(self, tx: Transaction, envelopes: list[dict[str, Any]]) -> int:
        """Change the view's rows for these events, in order; returns how many changed it."""


class Process(TrackedConsumer):
    """A process manager: it issues idempotent commands, then records how far it got."""

    def apply(self, deliveries: Sequence[Delivery], skip_gaps: bool = False) -> int:
        with self.db.transaction(write=False) as tx:
            fresh, moved, gap = split_fresh(deliveries, self._merged(self._tracked(tx)), skip_gaps)
        relevant = [d for d in fresh if self.relevant(d.envelope)]
        if relevant:
            self.react_many([d.envelope for d in relevant])  # raising, it records nothing: all come again
            with self.db.transaction() as tx:
                self._record(tx, self._with_passed(moved))
        else:
            self._pass_over(moved)
        if gap is not None:
            raise gap
        return len(relevant)

    @abstractmethod
    def react(self, envelope: dict[str, Any]) -> None:
        """Issue the commands this event calls for (idempotently)."""

    def react_many(self, envelopes: list[dict[str, Any]]) -> None:
        """React to a batch's events, in order; one by one unless a process knows a cheaper way.

        An override must keep what one by one guarantees: each event's commands as if reacted to in
        order, and on an error, what was done for the others kept (redelivered, they are no-ops)."""
        for envelope in envelopes:
            self.react(envelope)
