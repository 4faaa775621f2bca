"""Long-lived aggregates: a problem with 10,000 linked incidents loads in constant time.

The same problem is loaded three ways at 100, 1,000 and 10,000 linked incidents:

- replay: every event of the problem, without snapshots;
- before: the latest snapshot as version 1 took it (the problem's state listed every linked
  incident), plus the events after it;
- after: the latest snapshot as the engine takes it now (the state counts the linked incidents;
  each incident names its problems), plus the events after it.

Snapshots every 100 events of a problem (ItilApplication.snapshotting_intervals). Links are made as
the engine makes them (`domain.problem.link`: the problem counts the incident, the incident names the
problem), 100 per save. Loads read the store (no aggregate cache), `--repeat` in a row for each
way; the median and the best are shown (on a shared machine the median also measures the
neighbours), and the size of the latest snapshot. Last lines: the load at the largest size over
the load at 100 links, about 1× when the load does not depend on the number of links.

    .venv/bin/python -m bench.snapshots [--links 10000] [--repeat 100] [--store sqlite|postgres|both] [--quick]
"""

from __future__ import annotations

import gc
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

from eventsourcing.application import project_aggregate
from eventsourcing.domain import Snapshot
from eventsourcing.utils import get_topic

from application.app import ItilApplication
from bench.common import T0, arguments, report, store_env, stores
from domain.incident import Incident
from domain.problem import Problem, link

BATCH = 100
PROBLEM_ID = uuid.UUID(int=42)


class WithoutSnapshots(ItilApplication):
    """The same application with snapshotting switched off: every load replays every event."""

    name = ItilApplication.name  # the same tables
    snapshotting_intervals: dict = {}  # type: ignore[assignment]  # noqa: RUF012


class VersionOneSnapshots(ItilApplication):
    """Takes its snapshots as version 1 did: the problem's state listing every incident linked to it."""

    name = ItilApplication.name

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env=env)
        self.linked: list[uuid.UUID] = []  # in the order they were linked, the n-th at version n + 1

    def take_snapshot(self, aggregate_id: uuid.UUID, version: int | None = None, projector_func: Any = None) -> None:
        problem = self.repository.get(aggregate_id, version=version, projector_func=projector_func or project_aggregate)
        state = {k: v for k, v in vars(problem).items() if k not in ("_id", "_version", "_pending_events")}
        del state["incident_count"], state["links_on_incidents"]
        state["_incident_ids"] = tuple(self.linked[: problem.version - 1])
        assert self.snapshots is not None
        taken = Snapshot(
            originator_id=problem.id, originator_version=problem.version, timestamp=Snapshot.create_timestamp(),
            topic=get_topic(Problem), state=state,
        )  # fmt: skip
        self.snapshots.put([taken])


def grow(app: ItilApplication, problem: Problem, have: int, links: int) -> None:
    """Link incidents `have` to `links` to the problem, as the engine links them, one save per batch."""
    for start in range(have, links, BATCH):
        incidents = []
        for n in range(start, min(start + BATCH, links)):
            at = T0 + timedelta(seconds=n)
            incident = Incident.log(
                id=uuid.UUID(int=10**9 + n), account="carrier", title=f"link flapped ({n})", impact=3, urgency=3,
                channel="monitoring", reporter="nagios", actor="nagios", at=at, ci="mpls-link-7",
            )  # fmt: skip
            link(problem, incident, actor="n2", at=at)
            incidents.append(incident)
            if isinstance(app, VersionOneSnapshots):
                app.linked.append(incident.id)
        app.save(problem, *incidents)


def load_us(app: ItilApplication, links: int, repeat: int) -> tuple[float, float]:
    """The median and the best time the application takes to load the problem from the store, in µs.

    After one warm-up load, `repeat` loads in a row (not taking turns with the other application:
    a load of `before` at 10,000 links leaves the caches and the garbage collector busy for the next
    one). The best load is the cost of the load itself, without whatever else the machine was doing
    meanwhile; on a shared machine the median also measures that.
    """
    assert app.repository.get(PROBLEM_ID).incident_count == links
    gc.collect()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        app.repository.get(PROBLEM_ID)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e6, min(times) * 1e6


def snapshot_bytes(app: ItilApplication) -> int:
    """The size of the problem's latest snapshot as stored."""
    assert app.snapshots is not None
    [latest] = app.snapshots.recorder.select_events(PROBLEM_ID, desc=True, limit=1)
    return len(latest.state)


def main() -> None:
    args = arguments(
        __doc__ or "",
        links=(int, 10_000, "incidents linked to the problem at the largest size"),
        repeat=(int, 100, "loads per figure (the median is shown)"),
    )
    sizes = [100, 1_000] if args.quick else [100, 1_000, args.links]
    no_cache = {"AGGREGATE_CACHE_MAXSIZE": ""}  # measure loads from the store, not from memory
    for kind in stores(args.store):
        with store_env(kind) as env_before, store_env(kind) as env_after:
            before = VersionOneSnapshots(env={**env_before, **no_cache})
            after = ItilApplication(env={**env_after, **no_cache})
            replay = WithoutSnapshots(env={**env_after, **no_cache})  # the same store as `after`
            problems = {}
            for app in (before, after):
                problem = Problem.log(
                    id=PROBLEM_ID, account="carrier", title="MPLS link 7 flaps", description="", actor="n2", at=T0
                )
                app.save(problem)
                problems[app] = problem
            figures: dict[str, object] = {}
            loads: dict[tuple[str, str], dict[int, float]] = {}
            have = 0
            for size in sizes:
                for app in (before, after):
                    grow(app, problems[app], have, size)
                have = size
                # `before` loads from a snapshot of version 1 (upcast: its links are not on the incidents)
                assert not before.repository.get(PROBLEM_ID).links_on_incidents
                assert after.repository.get(PROBLEM_ID).links_on_incidents
                for name, app in (("after", after), ("before", before)):
                    median, best = load_us(app, size, args.repeat)
                    for stat, figure in (("median", median), ("best", best)):
                        figures[f"{size:>6} links: {name}, {stat}, µs"] = figure
                        loads.setdefault((name, stat), {})[size] = figure
                    figures[f"{size:>6} links: {name}, snapshot, bytes"] = snapshot_bytes(app)
                replay_median, _ = load_us(replay, size, max(3, args.repeat // 10))
                figures[f"{size:>6} links: replay, median, ms"] = replay_median / 1000
            small, large = sizes[0], sizes[-1]
            for (name, stat), figure in loads.items():
                figures[f"{name}: {large:,} links / {small:,}, {stat}, ×"] = figure[large] / figure[small]
            report(f"snapshots ({kind})", figures, args.json)
            for app in (before, after, replay):
                app.close()


if __name__ == "__main__":
    main()
