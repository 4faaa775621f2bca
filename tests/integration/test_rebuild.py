"""`itil rebuild` builds every projection exactly as the worker does, on SQLite and PostgreSQL.

The worker's views here are the real projections fed the way the worker feeds them (published
envelopes, decoded, in batches per partition); the rebuild reads the store alone, into a
database of its own, and every table must come out row for row the same.
"""

from __future__ import annotations

import zlib
from typing import Any
from uuid import uuid4

import pytest

from domain import commands as cmd
from domain.commands import ChangeCiState, RegisterCi, RelateCis, RetireCi, UnrelateCis, UpdateCiAttributes
from itil.rebuild import all_projections, event_topics, rebuild
from projections.db import Database
from projections.records import envelope_of
from projections.tracking import STORE_TOPIC, Delivery, Projection
from streams.envelope import decode, encode
from tests.integration.test_sla import Engine, office_terms, paris

pytestmark = pytest.mark.integration
PARTITIONS = 4
TOPICS = event_topics(["Incident", "IncidentSla", "ConfigurationItem"])


def other_database(env: dict[str, str], name: str, tmp_path: Any) -> Database:
    """A view database apart from the store's (an auditor's as-of view, or the worker's copy)."""
    if env["PERSISTENCE_MODULE"].endswith("sqlite"):
        return Database.from_store_env({**env, "SQLITE_DBNAME": str(tmp_path / f"{name}.sqlite")})
    return Database.from_store_env({**env, "POSTGRES_SCHEMA": name})


def worker_views(engine: Engine, db: Database, upto: int | None = None, batch: int = 7) -> list[Projection]:
    """Every projection fed as the worker feeds it: each event published on its aggregate's
    partition, decoded from the bytes, applied in small batches of one partition."""
    projections = all_projections(db)
    for projection in projections:
        projection.create_tables()
    app = engine.app
    partitions: dict[int, list[Delivery]] = {p: [] for p in range(PARTITIONS)}
    previous: dict[int, int] = {}
    for n in app.recorder.select_notifications(start=1, limit=100_000, stop=upto):
        partition = zlib.crc32(str(n.originator_id).encode()) % PARTITIONS
        envelope = envelope_of(app.mapper.to_domain_event(n), n.id, previous.get(partition))
        partitions[partition].append(Delivery("itil.events", partition, n.id, decode(encode(envelope))))
        previous[partition] = n.id
    for deliveries in partitions.values():
        for start in range(0, len(deliveries), batch):
            for projection in projections:
                projection.apply(deliveries[start : start + batch])
    return projections


def contents(projections: list[Projection]) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    for projection in projections:
        with projection.db.transaction(write=False) as tx:
            for table in projection.tables():
                rows = [tuple(r.items()) for r in tx.execute(f"SELECT * FROM {table}").all()]
                found[table] = sorted(rows, key=repr)
    return found


def a_busy_month(engine: Engine) -> None:
    """Incidents through every kind of step (SLA clocks running, paused, stopped, breached), CIs
    registered, related, changed and retired; text that is not ASCII."""
    app = engine.app
    day = "2026-05-18"
    app.handle(
        RegisterCi("resto-chain", "router-42", "router", "cmdb", paris(day, "07:00"), attributes={"site": "Café"})
    )
    app.handle(RegisterCi("resto-chain", "site-12", "site", "cmdb", paris(day, "07:01")))
    app.handle(RelateCis("resto-chain", "router-42", "located_at", "site-12", "cmdb", paris(day, "07:02")))
    app.handle(RelateCis("resto-chain", "router-42", "depends_on", "site-12", "cmdb", paris(day, "07:03")))
    app.handle(UnrelateCis("resto-chain", "router-42", "depends_on", "site-12", "cmdb", paris(day, "07:04")))
    app.handle(ChangeCiState("resto-chain", "router-42", "degraded", "alarms", "fleet", paris(day, "07:05")))
    app.handle(UpdateCiAttributes("resto-chain", "site-12", {"city": "Marseille"}, "cmdb", paris(day, "07:06")))
    app.handle(RetireCi("resto-chain", "site-12", "closed", "cmdb", paris(day, "07:07")))

    first = engine.log(paris(day, "09:00"))
    engine.do(cmd.AcknowledgeIncident(first, actor="n1", at=paris(day, "09:05")))
    engine.do(cmd.CategoriseIncident(first, category="réseau", actor="n1", at=paris(day, "09:06")))
    engine.do(cmd.AssignIncident(first, group="N2 network", assignee="eve", actor="n1", at=paris(day, "09:07")))
    engine.do(cmd.HoldIncident(first, reason="awaiting_customer", actor="eve", at=paris(day, "10:00")))
    engine.do(cmd.ResumeIncident(first, actor="eve", at=paris("2026-05-19", "10:00")))
    engine.do(cmd.ReprioritiseIncident(first, impact=1, urgency=1, actor="eve", at=paris("2026-05-19", "10:30")))
    engine.do(cmd.RestoreService(first, actor="eve", at=paris("2026-05-19", "11:00")))
    engine.do(cmd.ResolveIncident(first, code="fixed", actor="eve", at=paris("2026-05-19", "11:30")))
    engine.do(cmd.ReopenIncident(first, reason="à nouveau en panne", actor="n1", at=paris("2026-05-19", "14:00")))
    engine.do(cmd.RestoreService(first, actor="eve", at=paris("2026-05-19", "15:00")))
    engine.do(cmd.ResolveIncident(first, code="workaround", actor="eve", at=paris("2026-05-19", "15:10")))
    engine.do(cmd.CloseIncident(first, actor="n1", at=paris("2026-05-19", "16:00")))

    second = engine.log(paris(day, "11:00"), impact=2, urgency=2)
    engine.do(cmd.DeclareMajorIncident(second, reason="all tills down", actor="roc", at=paris(day, "11:01")))
    engine.do(cmd.LinkIncidentToProblem(second, problem_id=uuid4(), actor="pm", at=paris(day, "11:02")))
    engine.do(cmd.AssignIncident(second, group="N2 network", assignee=None, actor="n1", at=paris(day, "11:02")))
    engine.do(cmd.EscalateIncidentFunctionally(second, to_group="N3 experts", reason="r", actor="n2",
                                               at=paris(day, "11:03")))  # fmt: skip
    engine.at(paris("2026-05-20", "12:00"))  # the restoration target is breached

    third = engine.log(paris(day, "12:00"), impact=3, urgency=3)
    engine.do(cmd.CancelIncident(third, reason="duplicate", actor="n1", at=paris(day, "12:05")))
    engine.at(paris("2026-05-21", "09:00"))


@pytest.fixture
def engine(store_env: dict[str, str]) -> Engine:
    e = Engine(store_env)
    e.contract(office_terms(), paris("2026-05-01", "00:00"))
    a_busy_month(e)
    return e


def test_rebuild_builds_every_projection_as_the_worker_does(
    engine: Engine, store_env: dict[str, str], tmp_path: Any
) -> None:
    worker = worker_views(engine, other_database(store_env, "worker", tmp_path))
    rebuilt = all_projections(other_database(store_env, "rebuilt", tmp_path))

    stats = rebuild(engine.app, rebuilt, page=10)

    last = engine.app.recorder.max_notification_id()
    assert stats.events == last
    expected = contents(worker)
    assert all(expected[t] for t in ("view_incidents", "view_incident_timeline", "sla_clocks", "view_cis"))
    assert contents(rebuilt) == expected
    for projection in rebuilt:
        assert projection.positions(STORE_TOPIC) == {0: (last, last)}


def test_the_views_the_engine_kept_live_equal_a_rebuild(
    engine: Engine, store_env: dict[str, str], tmp_path: Any
) -> None:
    rebuilt = all_projections(other_database(store_env, "rebuilt", tmp_path))
    rebuild(engine.app, rebuilt)
    live = [engine.view, engine.sla]
    assert contents(rebuilt[:2]) == contents(live)


def test_an_as_of_rebuild_shows_the_views_as_they_stood_at_that_position(
    engine: Engine, store_env: dict[str, str], tmp_path: Any
) -> None:
    last = engine.app.recorder.max_notification_id() or 0
    for upto in (1, last // 3, last // 2 + 1):
        worker = worker_views(engine, other_database(store_env, f"worker_{upto}", tmp_path), upto=upto)
        rebuilt = all_projections(other_database(store_env, f"asof_{upto}", tmp_path))

        stats = rebuild(engine.app, rebuilt, upto=upto, page=5)

        assert stats.events == upto
        assert contents(rebuilt) == contents(worker)
        read = engine.app.recorder.select_notifications(start=1, limit=upto, stop=upto, topics=TOPICS)
        for projection in rebuilt:  # the last position read (events nobody applies are not read)
            assert projection.positions(STORE_TOPIC) == ({0: (read[-1].id, read[-1].id)} if read else {})


def test_a_rebuild_goes_on_from_where_it_stopped_or_starts_again_to_the_same_views(
    engine: Engine, store_env: dict[str, str], tmp_path: Any
) -> None:
    last = engine.app.recorder.max_notification_id() or 0
    full = all_projections(other_database(store_env, "full", tmp_path))
    rebuild(engine.app, full)
    resumed = all_projections(other_database(store_env, "resumed", tmp_path))
    rebuild(engine.app, resumed, upto=last // 2)

    again = rebuild(engine.app, resumed, start_fresh=False, page=3)

    assert again.applied < rebuild(engine.app, full).applied  # the second half only; the first, from scratch
    assert contents(resumed) == contents(full)
