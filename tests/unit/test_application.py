"""ItilApplication on a SQLite file: commands are stored, refusals store nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from domain.errors import DomainError, IllegalTransition, InvalidCommand, NotFound
from domain.incident import ASSIGNED, CLOSED, NEW, ON_HOLD, RESOLVED, RESTORED, Incident
from itil.application import (
    AcknowledgeIncident,
    AssignIncident,
    CancelIncident,
    CloseIncident,
    HoldIncident,
    IncidentCommand,
    ItilApplication,
    LogIncident,
    ReopenIncident,
    ResolveIncident,
    RestoreService,
    ResumeIncident,
)

INCIDENT_ID = UUID("0b6a7d4e-0000-4000-8000-000000000001")
UNKNOWN_ID = UUID("0b6a7d4e-0000-4000-8000-0000000000ff")
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def store_env_at(path: Path) -> dict[str, str]:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    # the application's name prefixes its settings; set those too so a stray ITIL_* variable
    # in the environment cannot send the tests to another store
    return env | {f"ITIL_{key}": value for key, value in env.items()}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "s.sqlite"


@pytest.fixture
def app(db_path: Path) -> Iterator[ItilApplication]:
    application = ItilApplication(env=store_env_at(db_path))
    yield application
    application.close()


def log_incident(incident_id: UUID = INCIDENT_ID, **overrides: object) -> LogIncident:
    fields: dict[str, object] = {
        "id": incident_id,
        "account": "resto-chain",
        "service": "site-network",
        "ci": "router-resto-042",
        "title": "Router down at restaurant 42",
        "impact": 1,
        "urgency": 2,
        "channel": "phone",
        "reporter": "restaurant manager",
        "actor": "hotline-n1",
        "at": at(0),
    }
    fields.update(overrides)
    return LogIncident(**fields)  # type: ignore[arg-type]


def stored(app: ItilApplication) -> tuple[int | None, int]:
    """What the store holds: its last notification id and the incident's history length."""
    return app.recorder.max_notification_id(), len(app.history(INCIDENT_ID))


def test_logging_then_working_an_incident_stores_every_step(app: ItilApplication) -> None:
    incident = app.handle(log_incident())
    assert (incident.status, incident.priority, incident.version) == (NEW, 2, 1)

    steps: list[tuple[IncidentCommand, str]] = [
        (AcknowledgeIncident(INCIDENT_ID, actor="hotline-n1", at=at(2)), "acknowledged"),
        (AssignIncident(INCIDENT_ID, group="N2 network", actor="hotline-n1", at=at(3)), ASSIGNED),
        (
            HoldIncident(INCIDENT_ID, reason="awaiting_supplier", actor="n2-tech", at=at(20)),
            ON_HOLD,
        ),
        (ResumeIncident(INCIDENT_ID, actor="n2-tech", at=at(80)), ASSIGNED),
        (RestoreService(INCIDENT_ID, note="link up", actor="n2-tech", at=at(95)), RESTORED),
        (ResolveIncident(INCIDENT_ID, code="fixed", actor="n2-tech", at=at(120)), RESOLVED),
        (CloseIncident(INCIDENT_ID, actor="hotline-n1", at=at(180)), CLOSED),
    ]
    for version, (command, status) in enumerate(steps, start=2):
        incident = app.handle(command)
        assert (incident.status, incident.version) == (status, version)

    stored_incident = app.get_incident(INCIDENT_ID)
    assert stored_incident.status == CLOSED
    assert stored_incident.restored_at == at(95)
    assert stored_incident.resolved_at == at(120)
    assert stored_incident.closed_at == at(180)


def test_a_new_application_on_the_same_store_sees_the_stored_incident(db_path: Path) -> None:
    first = ItilApplication(env=store_env_at(db_path))
    first.handle(log_incident())
    first.handle(AssignIncident(INCIDENT_ID, group="N2 network", actor="hotline-n1", at=at(1)))
    first.close()

    second = ItilApplication(env=store_env_at(db_path))
    try:
        incident = second.get_incident(INCIDENT_ID)
        assert (incident.status, incident.assignment_group, incident.version) == (ASSIGNED, "N2 network", 2)
        assert incident.logged_at == at(0)
        assert incident.logged_at.tzinfo is not None
    finally:
        second.close()


@pytest.mark.parametrize(
    ("command", "error", "message"),
    [
        (CloseIncident(INCIDENT_ID, actor="hotline-n1", at=at(5)), IllegalTransition, "resolved"),
        (ResumeIncident(INCIDENT_ID, actor="n2-tech", at=at(5)), IllegalTransition, "not on hold"),
        (
            AcknowledgeIncident(INCIDENT_ID, actor="hotline-n1", at=at(5)),
            IllegalTransition,
            "already acknowledged",
        ),
        (
            ResolveIncident(INCIDENT_ID, code="solved", actor="n2-tech", at=at(5)),
            InvalidCommand,
            "resolution code",
        ),
        (
            HoldIncident(INCIDENT_ID, reason="lunch", actor="n2-tech", at=at(5)),
            InvalidCommand,
            "reason must be one of",
        ),
        (
            AssignIncident(INCIDENT_ID, group="N2 network", actor="hotline-n1", at=at(0)),
            InvalidCommand,
            "before its last recorded step",
        ),
        (ReopenIncident(INCIDENT_ID, reason="down", actor="n2-tech", at=at(5)), IllegalTransition, "reopen"),
    ],
    ids=["close", "resume", "acknowledge", "resolve", "hold", "assign-earlier", "reopen"],
)
def test_a_refused_command_leaves_the_stored_events_unchanged(
    app: ItilApplication, command: IncidentCommand, error: type[DomainError], message: str
) -> None:
    app.handle(log_incident())
    app.handle(AcknowledgeIncident(INCIDENT_ID, actor="hotline-n1", at=at(1)))
    before = stored(app)

    with pytest.raises(error, match=message):
        app.handle(command)

    assert stored(app) == before
    assert app.get_incident(INCIDENT_ID).version == 2


def test_a_refused_logging_stores_nothing(app: ItilApplication) -> None:
    with pytest.raises(InvalidCommand, match="service or the CI"):
        app.handle(log_incident(service=None, ci=None))

    assert app.recorder.max_notification_id() is None
    with pytest.raises(NotFound):
        app.get_incident(INCIDENT_ID)


def test_the_same_logging_handled_twice_stores_one_incident(app: ItilApplication) -> None:
    first = app.handle(log_incident())
    before = app.recorder.max_notification_id()

    second = app.handle(log_incident())

    assert second.id == first.id
    assert second.version == 1
    assert app.recorder.max_notification_id() == before
    assert [type(e) for e in app.history(INCIDENT_ID)] == [Incident.Logged]


def test_a_logging_redelivered_after_a_restart_stores_one_incident(db_path: Path) -> None:
    first = ItilApplication(env=store_env_at(db_path))
    first.handle(log_incident())
    first.handle(AcknowledgeIncident(INCIDENT_ID, actor="hotline-n1", at=at(1)))
    first.close()

    second = ItilApplication(env=store_env_at(db_path))
    try:
        incident = second.handle(log_incident())
        assert (incident.version, incident.status) == (2, "acknowledged")
        assert len(second.history(INCIDENT_ID)) == 2
    finally:
        second.close()


def test_two_incidents_are_stored_apart(app: ItilApplication) -> None:
    other_id = UUID("0b6a7d4e-0000-4000-8000-000000000002")
    app.handle(log_incident())
    app.handle(log_incident(other_id, title="Payment terminal offline", impact=3, urgency=3))
    app.handle(CancelIncident(other_id, reason="duplicate", actor="hotline-n1", at=at(1)))

    assert app.get_incident(INCIDENT_ID).status == NEW
    assert app.get_incident(other_id).status == "cancelled"
    assert app.get_incident(other_id).priority == 4
    assert len(app.history(INCIDENT_ID)) == 1
    assert len(app.history(other_id)) == 2


def test_an_unknown_incident_is_not_found(app: ItilApplication) -> None:
    app.handle(log_incident())
    before = app.recorder.max_notification_id()

    with pytest.raises(NotFound, match=str(UNKNOWN_ID)):
        app.get_incident(UNKNOWN_ID)
    with pytest.raises(NotFound, match=str(UNKNOWN_ID)):
        app.handle(AcknowledgeIncident(UNKNOWN_ID, actor="hotline-n1", at=at(1)))
    with pytest.raises(NotFound, match=str(UNKNOWN_ID)):
        app.history(UNKNOWN_ID)

    assert app.recorder.max_notification_id() == before


def test_history_returns_the_events_oldest_first(app: ItilApplication) -> None:
    app.handle(log_incident())
    app.handle(AcknowledgeIncident(INCIDENT_ID, actor="hotline-n1", at=at(1)))
    app.handle(AssignIncident(INCIDENT_ID, group="N2 network", actor="hotline-n1", at=at(2)))
    app.handle(ResolveIncident(INCIDENT_ID, code="fixed", actor="n2-tech", at=at(30)))
    app.handle(ReopenIncident(INCIDENT_ID, reason="fails again", actor="hotline-n1", at=at(45)))

    history = app.history(INCIDENT_ID)

    assert [type(e) for e in history] == [
        Incident.Logged,
        Incident.Acknowledged,
        Incident.Assigned,
        Incident.ServiceRestored,
        Incident.Resolved,
        Incident.Reopened,
    ]
    assert [e.originator_version for e in history] == [1, 2, 3, 4, 5, 6]
    assert [e.at for e in history] == [at(0), at(1), at(2), at(30), at(30), at(45)]  # type: ignore[attr-defined]
    assert {e.actor for e in history} == {"hotline-n1", "n2-tech"}  # type: ignore[attr-defined]


def test_saved_callbacks_are_called_after_each_successful_save_only(app: ItilApplication) -> None:
    calls: list[int | None] = []
    app.saved.callbacks.append(lambda: calls.append(app.recorder.max_notification_id()))

    app.handle(log_incident())
    assert calls == [1]  # called after the events are stored, so they are already visible

    app.handle(AcknowledgeIncident(INCIDENT_ID, actor="hotline-n1", at=at(1)))
    assert calls == [1, 2]

    with pytest.raises(IllegalTransition):
        app.handle(CloseIncident(INCIDENT_ID, actor="hotline-n1", at=at(2)))
    with pytest.raises(InvalidCommand):
        app.handle(log_incident(UNKNOWN_ID, title=""))
    with pytest.raises(NotFound):
        app.handle(ResumeIncident(UNKNOWN_ID, actor="hotline-n1", at=at(2)))
    app.handle(log_incident())  # a duplicate: nothing new is saved
    assert calls == [1, 2]

    app.handle(ResolveIncident(INCIDENT_ID, code="fixed", actor="n2-tech", at=at(3)))
    assert calls == [1, 2, 4]  # one save of two events: ServiceRestored and Resolved


def test_every_saved_callback_is_called(app: ItilApplication) -> None:
    first: list[str] = []
    second: list[str] = []
    app.saved.callbacks.extend([lambda: first.append("saved"), lambda: second.append("saved")])

    app.handle(log_incident())

    assert first == second == ["saved"]
