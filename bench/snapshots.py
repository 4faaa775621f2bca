"""Long-lived aggregates: a problem with 10,000 linked incidents loads in constant time.

Before: the application without snapshots replays every event of the problem. After: the
engine's application (snapshots every few hundred events, see ItilApplication) loads the last
snapshot and the few events after it. Both in the same run, on the same store.

    .venv/bin/python -m bench.snapshots [--links 10000] [--store sqlite|postgres|both] [--quick]
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from bench.common import T0, arguments, report, store_env, stores
from domain.problem import Problem
from itil.application import ItilApplication


class WithoutSnapshots(ItilApplication):
    """The same application with snapshotting switched off (the 'before')."""

    snapshotting_intervals: dict = {}  # type: ignore[assignment]  # noqa: RUF012


def grow(app: ItilApplication, problem_id: uuid.UUID, links: int, have: int) -> None:
    problem = app.repository.get(problem_id)
    for n in range(have, links):
        problem.link_incident(incident_id=uuid.UUID(int=10**9 + n), actor="n2", at=T0 + timedelta(seconds=n))
        if n % 100 == 99:
            app.save(problem)
    app.save(problem)


def load_time(app: ItilApplication, problem_id: uuid.UUID, repeat: int = 10) -> float:
    began = time.perf_counter()
    for _ in range(repeat):
        app.repository.get(problem_id)
    return (time.perf_counter() - began) / repeat * 1000


def main() -> None:
    args = arguments(__doc__ or "", links=(int, 10_000, "incidents linked to the problem"))
    sizes = [100, 1_000] if args.quick else [100, 1_000, args.links]
    for kind in stores(args.store):
        with store_env(kind) as env_before, store_env(kind) as env_after:
            no_cache = {"AGGREGATE_CACHE_MAXSIZE": ""}  # measure loads from the store, not from memory
            before = WithoutSnapshots(env={**env_before, **no_cache})
            after = ItilApplication(env={**env_after, **no_cache})
            figures: dict[str, object] = {}
            pid = uuid.UUID(int=42)
            for app in (before, after):
                app.save(
                    Problem.log(id=pid, account="carrier", title="flapping link", description="", actor="n2", at=T0)
                )
            have = 0
            for size in sizes:
                for app in (before, after):
                    grow(app, pid, size, have)
                have = size
                b, a = load_time(before, pid), load_time(after, pid)
                figures[f"{size:>6} links: load without snapshots, ms"] = b
                figures[f"{size:>6} links: load with snapshots, ms"] = a
                figures[f"{size:>6} links: speed-up"] = b / a if a else 0.0
            report(f"snapshots ({kind})", figures, args.json)


if __name__ == "__main__":
    main()
