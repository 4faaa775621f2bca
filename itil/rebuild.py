"""Rebuild projections from the event store, without the broker.

Used to recover a view, to measure replay speed, and by auditors: a view rebuilt into a
database of its own up to a position shows the dashboard as it stood at that point of history.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from inspect import isclass

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from domain.change import Change
from domain.configuration import ConfigurationItem
from domain.incident import Incident
from domain.problem import Problem
from domain.sla import IncidentSla
from itil.application import ItilApplication
from projections.db import Database
from projections.tracking import Delivery, Projection
from streams.envelope import envelope_of

STORE_TOPIC = "store"
"""Positions of a rebuild are tracked as one pseudo-partition in store order."""


@dataclass(frozen=True)
class RebuildStats:
    events: int
    applied: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def reset(projections: Sequence[Projection]) -> None:
    """Empty the projections' tables and forget their positions."""
    for projection in projections:
        with projection.db.transaction() as tx:
            for table in projection.tables():
                tx.execute(f"DELETE FROM {table}")
            tx.execute("DELETE FROM view_positions WHERE projection = ?", (projection.name,))


AGGREGATES: dict[str, type[Aggregate]] = {
    "Incident": Incident, "IncidentSla": IncidentSla, "Problem": Problem, "Change": Change,
    "ConfigurationItem": ConfigurationItem,
}  # fmt: skip


def event_topics(aggregate_types: Sequence[str]) -> list[str]:
    """The stored topics of every event class of these aggregates (to read only those)."""
    topics = []
    for name in aggregate_types:
        aggregate = AGGREGATES[name]
        topics += [get_topic(v) for v in vars(aggregate).values() if isclass(v) and issubclass(v, Aggregate.Event)]
    return topics


def rebuild(
    app: ItilApplication,
    projections: Sequence[Projection],
    upto: int | None = None,
    page: int = 5000,
    start_fresh: bool = True,
) -> RebuildStats:
    """Apply every stored event (up to position `upto`) to the projections, page by page.

    Each projection reads only the events of the aggregates it applies, when it says which.
    """
    for projection in projections:
        projection.create_tables()
    if start_fresh:
        reset(projections)
    began = time.perf_counter()
    events, applied = 0, 0
    for projection in projections:
        topics = event_topics(projection.reads) if projection.reads else []
        if projection.reads and any(name not in AGGREGATES for name in projection.reads):
            topics = []
        position, previous = 0, None
        while True:
            notifications = app.recorder.select_notifications(start=position + 1, limit=page, stop=upto, topics=topics)
            if not notifications:
                break
            batch = []
            for n in notifications:
                envelope = envelope_of(app.mapper.to_domain_event(n), n.id, previous)
                batch.append(Delivery(STORE_TOPIC, 0, n.id, envelope))
                previous = n.id
            applied += projection.apply(batch)
            events += len(batch)
            position = notifications[-1].id
    total = app.recorder.max_notification_id() or 0
    return RebuildStats(min(total, upto) if upto else total, applied, time.perf_counter() - began)


def all_projections(db: Database) -> list[Projection]:
    """Every projection of the engine (what a full rebuild rebuilds)."""
    from projections.account_incidents import AccountIncidentsProjection
    from projections.configuration import CiRegistryProjection
    from projections.sla import SlaDashboardProjection

    return [AccountIncidentsProjection(db), SlaDashboardProjection(db), CiRegistryProjection(db)]
