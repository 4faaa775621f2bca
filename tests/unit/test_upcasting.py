"""Events stored by older versions of the domain stay readable (upcasting)."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from application.app import ItilApplication
from domain.commands import AcknowledgeIncident
from projections.records import envelope_of
from streams.envelope import decode, encode

INCIDENT = UUID("0b7e5d1c-4c44-4a8e-9a1d-2f3b9d1e7a01")

# Exactly what the first version of the engine stored for a logged incident (class version 1,
# before categories and related incidents existed), as its JSON transcoder wrote it.
V1_LOGGED = {
    "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-05T09:00:01.123456+00:00"},
    "actor": "hotline-n1",
    "at": {"_type_": "datetime_iso", "_data_": "2026-01-05T09:00:00+01:00"},
    "originator_topic": "domain.incident:Incident",
    "account": "resto-chain",
    "service": None,
    "ci": "router-42",
    "title": "Restaurant 42 router down",
    "description": "",
    "impact": 1,
    "urgency": 2,
    "priority": 2,
    "channel": "phone",
    "reporter": "manager",
}


def test_an_incident_logged_by_the_first_version_loads_and_lives_on(tmp_path: Path) -> None:
    app = ItilApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")})
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=INCIDENT,
                originator_version=1,
                topic="domain.incident:Incident.Logged",
                state=json.dumps(V1_LOGGED).encode(),
            )
        ]
    )
    incident = app.get_incident(INCIDENT)
    assert (incident.title, incident.priority, incident.status) == ("Restaurant 42 router down", 2, "new")
    assert (incident.category, incident.related_incident) == (None, None)

    app.handle(AcknowledgeIncident(INCIDENT, actor="hotline-n1", at=incident.logged_at))
    logged = app.history(INCIDENT)[0]
    # the old event goes out on itil.events in today's envelope, with the fields it lacked
    envelope = decode(encode(envelope_of(logged, 1)))
    assert envelope["payload"]["category"] is None and envelope["payload"]["related_incident"] is None
    assert envelope["event_type"] == "Incident.Logged"


def test_new_events_are_stored_with_their_class_version(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from domain.commands import LogIncident

    app = ItilApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")})
    app.handle(LogIncident(id=INCIDENT, account="acme", title="x", impact=3, urgency=3, channel="email",
                           reporter="r", actor="r", at=datetime(2026, 1, 5, tzinfo=timezone.utc), ci="c"))  # fmt: skip
    [stored] = app.recorder.select_events(INCIDENT)
    assert json.loads(stored.state)["class_version"] == 2
