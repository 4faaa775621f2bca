"""application.sqliterecorder: one executemany per transaction, the same rows and notification ids as the library's."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from application.app import ItilApplication
from application.sqliterecorder import ManyInsertRecorder


def events(n: int, version: int = 1) -> list[StoredEvent]:
    return [StoredEvent(uuid4(), version, "domain.incident:Incident.Logged", b'{"n":%d}' % i) for i in range(n)]


def test_the_application_on_sqlite_inserts_a_batch_at_once_and_returns_each_events_notification_id(
    tmp_path: Path,
) -> None:
    app = ItilApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s")})
    assert isinstance(app.recorder, ManyInsertRecorder)
    first, second = events(3), events(5)
    ids = [*app.recorder.insert_events(first), *app.recorder.insert_events(second)]  # type: ignore[misc]
    assert ids == list(range(1, 9))
    stored = app.recorder.select_notifications(start=1, limit=100)
    assert [n.id for n in stored] == ids
    assert [(n.originator_id, n.originator_version, n.topic, n.state) for n in stored] == [
        (e.originator_id, e.originator_version, e.topic, e.state) for e in [*first, *second]
    ]


def test_a_batch_that_conflicts_stores_nothing_of_it(tmp_path: Path) -> None:
    app = ItilApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s")})
    taken = events(1)
    app.recorder.insert_events(taken)
    with pytest.raises(IntegrityError):
        app.recorder.insert_events([*events(2), taken[0]])
    assert app.recorder.insert_events(events(1)) == [2]
    assert app.recorder.max_notification_id() == 2
