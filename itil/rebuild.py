"""Rebuild projections from the event store, without the broker.

Used to recover a view, to measure replay speed, and by auditors: a view rebuilt into a
database of its own up to a position shows the dashboard as it stood at that point of history.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from inspect import isclass
from typing import Any

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from application.app import ItilApplication
from domain.change import Change
from domain.configuration import ConfigurationItem
from domain.events import aggregate_name
from domain.incident import Incident
from domain.problem import Problem
from domain.sla import IncidentSla
from projections.db import Database
from projections.tracking import STORE_TOPIC, Projection
from streams.envelope import StoredEnvelopes

__all__ = ["STORE_TOPIC", "RebuildStats", "all_projections", "event_topics", "rebuild", "reset"]

PAGE = 20_000
"""Events read per query and applied per transaction (and projection)."""


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
    aggregate_name(a): a for a in (Incident, IncidentSla, Problem, Change, ConfigurationItem)
}


def event_topics(aggregate_types: Sequence[str]) -> list[str]:
    """The stored topics of every event class of these aggregates (to read only those)."""
    topics = []
    for name in aggregate_types:
        aggregate = AGGREGATES[name]
        topics += [get_topic(v) for v in vars(aggregate).values() if isclass(v) and issubclass(v, Aggregate.Event)]
    return topics


def _aggregate_type(topic: str) -> str:
    """The aggregate type of a stored topic ("domain.incident:Incident.Logged": "Incident")."""
    return topic.partition(":")[2].partition(".")[0]


def rebuild(
    app: ItilApplication,
    projections: Sequence[Projection],
    upto: int | None = None,
    page: int = PAGE,
    start_fresh: bool = True,
) -> RebuildStats:
    """Apply every stored event (up to position `upto`) to the projections, page by page.

    The log is read once for all of them (only the events of the aggregates they apply, when
    they all say which), and each event is read once from its stored JSON (`StoredEnvelopes.record`)
    and handed, as the light record the projections read (`record_of`'s, not the published
    envelope), to those that apply it.
    Each page is applied in one transaction per projection, which also records the last position
    read. Without `start_fresh`, each projection goes on from the position it recorded. While it
    runs, the view databases are tuned for it (`Database.rebuilding`) and the garbage collector
    runs once a page (`collecting_per_page`).
    """
    for projection in projections:
        projection.create_tables()
    if start_fresh:
        reset(projections)
    done = [projection.positions(STORE_TOPIC).get(0, (0, 0))[0] for projection in projections]
    wanted = [set(projection.reads) for projection in projections]
    if all(reads and reads <= AGGREGATES.keys() for reads in wanted):
        topics = event_topics(sorted(set().union(*wanted)))
    else:
        topics = []  # some projection applies every event, or events of aggregates unknown here
    readers: dict[str, list[int]] = {}  # by stored topic: the projections that apply its events
    record_of, select = StoredEnvelopes(app.mapper).record, app.recorder.select_notifications
    began = time.perf_counter()
    applied = 0
    position = min(done, default=0)
    with ExitStack() as tuned:
        for db in {id(p.db): p.db for p in projections}.values():
            tuned.enter_context(db.rebuilding())
        tuned.enter_context(collecting_per_page())
        while True:
            notifications = select(start=position + 1, limit=page, stop=upto, topics=topics)
            if not notifications:
                break
            batches: list[list[dict[str, Any]]] = [[] for _ in projections]
            aggregate_ids: dict[Any, str] = {}  # an aggregate's events come in runs: its id written out once
            for n in notifications:
                targets = readers.get(n.topic)
                if targets is None:
                    kind = _aggregate_type(n.topic)
                    targets = readers[n.topic] = [i for i, reads in enumerate(wanted) if not reads or kind in reads]
                if not targets:
                    continue  # read (no topic filter could leave it out) but applied by none: not deserialised
                aggregate_id = aggregate_ids.get(n.originator_id)
                if aggregate_id is None:
                    aggregate_id = aggregate_ids[n.originator_id] = str(n.originator_id)
                record = record_of(n, n.id, aggregate_id)
                for i in targets:
                    if n.id > done[i]:
                        batches[i].append(record)
            position = notifications[-1].id
            for i, projection in enumerate(projections):
                if position > done[i]:
                    applied += projection.replay(batches[i], position)
            del notifications, batches, aggregate_ids
            gc.collect(1)
    total = app.recorder.max_notification_id() or 0
    return RebuildStats(min(total, upto) if upto else total, applied, time.perf_counter() - began)


@contextmanager
def collecting_per_page() -> Iterator[None]:
    """The cyclic garbage collector paused, collected once a page instead: a page allocates some
    ten objects per event, all freed by reference counting, and the collector would otherwise walk
    the page's live objects again and again as they are allocated (a fifth of the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def all_projections(db: Database) -> list[Projection]:
    """Every projection of the engine (what a full rebuild rebuilds)."""
    from projections.account_incidents import AccountIncidentsProjection
    from projections.configuration import CiRegistryProjection
    from projections.sla import SlaDashboardProjection

    return [AccountIncidentsProjection(db), SlaDashboardProjection(db), CiRegistryProjection(db)]
