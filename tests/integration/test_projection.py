"""The account view applies each event exactly once, whatever the stream does, on both stores."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from application.app import ItilApplication
from domain.commands import AssignIncident, LogIncident
from domain.incident import Incident
from projections.account_incidents import AccountIncidentsProjection, Delivery, PartitionGap
from projections.db import Database
from projections.records import envelope_of
from streams.broker import EmbeddedBroker
from streams.envelope import decode, encode
from streams.relay import Relay
from streams.worker import Applier, kafka_partition_reader
from tests.conftest import wait_for

pytestmark = pytest.mark.integration
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)
NOW = T0 + timedelta(hours=2)


def story(incident_id: UUID, steps: int) -> list[dict]:
    """Envelopes of one incident's life, as the relay would publish them on one partition."""
    incident = Incident.log(id=incident_id, account="acme", title="router down", impact=1, urgency=1,
                            channel="monitoring", reporter="nagios", actor="nagios", at=T0, ci="r1")  # fmt: skip
    moves = [
        lambda at: incident.acknowledge(actor="n1", at=at),
        lambda at: incident.assign(group="N2 network", assignee="eve", actor="n1", at=at),
        lambda at: incident.restore(actor="eve", at=at),
        lambda at: incident.resolve(code="fixed", actor="eve", at=at),
    ]
    for n in range(steps):
        moves[n](T0 + timedelta(minutes=n + 1))
    envelopes = [envelope_of(e, p) for p, e in enumerate(incident.collect_events(), start=1)]
    for previous, envelope in zip([None, *envelopes], envelopes, strict=False):
        envelope["previous_position"] = previous["position"] if previous else None
    return [decode(encode(e)) for e in envelopes]


def deliveries(envelopes: list[dict], partition: int = 0, first_offset: int = 0) -> list[Delivery]:
    return [Delivery("itil.events", partition, first_offset + n, e) for n, e in enumerate(envelopes)]


@pytest.fixture
def projection(store_env: dict[str, str]) -> AccountIncidentsProjection:
    p = AccountIncidentsProjection(Database.from_store_env(store_env))
    p.create_tables()
    return p


def test_duplicates_and_republished_events_change_nothing(projection: AccountIncidentsProjection) -> None:
    incident = uuid4()
    events = story(incident, 4)
    assert projection.apply(deliveries(events)) == 5
    before = projection.incident_detail(str(incident), NOW)
    assert projection.apply(deliveries(events)) == 0  # redelivered
    assert projection.apply(deliveries(events, first_offset=100)) == 0  # republished after a loss
    after = projection.incident_detail(str(incident), NOW)
    assert after == before
    assert [e["version"] for e in after["timeline"]] == [1, 2, 3, 4, 5]
    assert projection.positions("itil.events") == {0: (5, 4)}
    view = projection.account_incidents("acme", NOW)
    assert view["incidents"] == []  # resolved: no longer open
    assert projection.account_incidents("acme", NOW, include_closed=True)["by_status"] == {"resolved": 1}


def test_a_gap_stops_the_partition_until_the_missing_events_are_read(
    projection: AccountIncidentsProjection,
) -> None:
    incident = uuid4()
    events = story(incident, 3)
    with pytest.raises(PartitionGap):
        projection.apply(deliveries([events[0], events[2], events[3]]))
    # what came before the gap is kept; nothing after it was applied
    assert projection.incident_detail(str(incident), NOW)["version"] == 1

    applier = Applier(projection, lambda topic, partition: deliveries(events))
    applier.apply(deliveries([events[2], events[3]], first_offset=2))
    detail = projection.incident_detail(str(incident), NOW)
    assert (detail["version"], detail["status"]) == (4, "restored")
    assert len(detail["timeline"]) == 4


def test_gap_is_filled_from_the_real_broker(tmp_path: Path, sqlite_env: dict[str, str]) -> None:
    app = ItilApplication(env=sqlite_env)
    db = Database.from_store_env(sqlite_env)
    projection = AccountIncidentsProjection(db)
    projection.create_tables()
    with EmbeddedBroker(log_file=tmp_path / "broker.log") as broker:
        relay = Relay(app, db, broker.bootstrap, "itil.events", 1)
        stop = threading.Event()
        thread = threading.Thread(target=relay.run, args=(stop,))
        thread.start()
        try:
            incident = uuid4()
            app.handle(LogIncident(id=incident, account="acme", title="x", impact=3, urgency=3, channel="email",
                                   reporter="r", actor="r", at=T0, ci="c"))  # fmt: skip
            for n in range(3):
                app.handle(AssignIncident(incident_id=incident, group=f"group-{n}", actor="r", at=T0))
            read = kafka_partition_reader(broker.bootstrap)
            published = wait_for(lambda: (d := read("itil.events", 0)) and len(d) == 4 and d, 30, what="events")
        finally:
            stop.set()
            thread.join()
        # the stream hands over only the last event: the applier reads the rest from the broker
        Applier(projection, read).apply(published[-1:])
    detail = projection.incident_detail(str(incident), NOW)
    assert (detail["version"], detail["assignment_group"]) == (4, "group-2")


def test_batches_of_other_aggregates_take_no_write_and_leave_no_false_gap(
    projection: AccountIncidentsProjection,
) -> None:
    incident = uuid4()
    events = story(incident, 2)  # positions 1..3 on partition 0
    other = dict(events[1], aggregate_type="Alarm", event_type="Alarm.Repeated", position=3, previous_position=2)
    follow = dict(events[2], position=4, previous_position=3)
    assert projection.apply(deliveries(events[:2])) == 2
    assert projection.apply(deliveries([other], first_offset=2)) == 0  # nothing of ours: passed over in memory
    assert projection.positions("itil.events")[0] == (3, 2)
    with projection.db.transaction(write=False) as tx:  # ... and not written yet
        assert tx.execute("SELECT position FROM view_positions WHERE projection = ?", (projection.name,)).one() == {
            "position": 2
        }
    # the next event follows position 3: no gap; written with the positions passed over
    assert projection.apply(deliveries([follow], first_offset=3)) == 1
    fresh = AccountIncidentsProjection(projection.db)
    assert fresh.positions("itil.events")[0] == (4, 3)
