"""Rebuild projections from the event store, without the broker.

Used to recover a view, to measure replay speed, and by auditors: a view rebuilt into a
database of its own up to a position shows the dashboard as it stood at that point of history.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from itil.application import ItilApplication
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


def rebuild(
    app: ItilApplication,
    projections: Sequence[Projection],
    upto: int | None = None,
    page: int = 5000,
    start_fresh: bool = True,
) -> RebuildStats:
    """Apply every stored event (up to position `upto`) to the projections, page by page."""
    for projection in projections:
        projection.create_tables()
    if start_fresh:
        reset(projections)
    began = time.perf_counter()
    position, events, applied = 0, 0, 0
    previous: int | None = None
    while True:
        stop = upto if upto is not None else None
        notifications = app.recorder.select_notifications(start=position + 1, limit=page, stop=stop)
        if not notifications:
            break
        batch = []
        for n in notifications:
            batch.append(Delivery(STORE_TOPIC, 0, n.id, envelope_of(app.mapper.to_domain_event(n), n.id, previous)))
            previous = n.id
        for projection in projections:
            applied += projection.apply(batch)
        events += len(batch)
        position = notifications[-1].id
        if upto is not None and position >= upto:
            break
    return RebuildStats(events, applied, time.perf_counter() - began)
