"""ItilApplication on a SQLite file: commands are stored, refusals store nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from application.app import ItilApplication
from domain.account import Account
from domain.commands import (
    AcknowledgeIncident,
    AssignIncident,
    AttachIncident,
    CancelIncident,
    CategoriseIncident,
    CloseIncident,
    CommentIncident,
    DeclareMajorIncident,
    EscalateIncidentFunctionally,
    EscalateIncidentHierarchically,
    HoldIncident,
    IncidentCommand,
    InformRoc,
    LinkIncidentToProblem,
    LogIncident,
    NoteWorkaround,
    RegisterAccount,
    ReopenIncident,
    ReprioritiseIncident,
    ResolveIncident,
    RestoreService,
    ResumeIncident,
    SetAccountRoc,
    SetPriorityMatrix,
    SetReopenPeriod,
)
from domain.errors import DomainError, IllegalTransition, InvalidCommand, NotFound
from domain.incident import ASSIGNED, CLOSED, NEW, ON_HOLD, RESOLVED, RESTORED, Incident
from domain.priority import DEFAULT_MATRIX, matrix_of_rows

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
        (
            CommentIncident(INCIDENT_ID, text=" ", author="n2-tech", customer_visible=False, actor="n2-tech", at=at(5)),
            InvalidCommand,
            "the comment's text is required",
        ),
    ],
    ids=["close", "resume", "acknowledge", "resolve", "hold", "assign-earlier", "reopen", "comment-empty"],
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


# -- accounts ---------------------------------------------------------------------------------------

RESTO_ROWS = [[1, 1, 2], [1, 2, 3], [2, 3, 4]]


def register(app: ItilApplication, account: str = "resto-chain", roc: str | None = "anne.roc") -> Account:
    result: Account = app.handle(
        RegisterAccount(account=account, name="Resto Chain SAS", roc=roc, actor="admin", at=at(0))
    )
    return result


def test_an_accounts_priority_matrix_sets_the_priority_of_its_incidents_only(app: ItilApplication) -> None:
    register(app)
    app.handle(SetPriorityMatrix(account="resto-chain", matrix=matrix_of_rows(RESTO_ROWS), actor="admin", at=at(0)))

    resto = app.handle(log_incident(impact=1, urgency=2))
    other = app.handle(log_incident(UNKNOWN_ID, account="bakery-chain", impact=1, urgency=2))

    assert (resto.priority, other.priority) == (1, 2)


def test_reprioritising_uses_the_accounts_matrix(app: ItilApplication) -> None:
    app.handle(log_incident(impact=2, urgency=2))
    register(app)
    app.handle(SetPriorityMatrix(account="resto-chain", matrix=matrix_of_rows(RESTO_ROWS), actor="admin", at=at(1)))

    incident = app.handle(ReprioritiseIncident(INCIDENT_ID, impact=2, urgency=1, actor="hotline-n1", at=at(2)))

    assert incident.priority == 1  # the common matrix would say P2


def test_a_matrix_set_later_does_not_change_incidents_already_logged(app: ItilApplication) -> None:
    app.handle(log_incident(impact=1, urgency=2))
    register(app)
    app.handle(SetPriorityMatrix(account="resto-chain", matrix=matrix_of_rows(RESTO_ROWS), actor="admin", at=at(1)))

    assert app.get_incident(INCIDENT_ID).priority == 2


def test_the_accounts_settings_are_read_back_from_the_store(db_path: Path) -> None:
    first = ItilApplication(env=store_env_at(db_path))
    register(first)
    first.handle(SetPriorityMatrix(account="resto-chain", matrix=matrix_of_rows(RESTO_ROWS), actor="a", at=at(1)))
    first.handle(SetReopenPeriod(account="resto-chain", period=timedelta(hours=36), actor="a", at=at(1)))
    first.handle(InformRoc("resto-chain", INCIDENT_ID, "incident 42", "GTR breached", actor="sla", at=at(2)))
    first.close()

    second = ItilApplication(env=store_env_at(db_path))
    try:
        profile = second.account_profile("resto-chain")
        assert profile["registered"] is True
        assert profile["priority_matrix_rows"] == RESTO_ROWS
        assert profile["reopen_period"]["text"] == "36 hours"
        assert second.reopen_period("resto-chain") == timedelta(hours=36)
        assert [i["subject_id"] for i in profile["roc_informs"]] == [INCIDENT_ID]
    finally:
        second.close()


def test_an_account_changed_by_another_process_is_read_as_stored(db_path: Path) -> None:
    web = ItilApplication(env=store_env_at(db_path))
    worker = ItilApplication(env=store_env_at(db_path))
    try:
        assert web.priority_matrix("resto-chain") == DEFAULT_MATRIX
        register(worker)
        assert web.account_profile("resto-chain")["roc"] == "anne.roc"
        worker.handle(SetPriorityMatrix("resto-chain", matrix_of_rows(RESTO_ROWS), actor="admin", at=at(1)))
        worker.handle(InformRoc("resto-chain", INCIDENT_ID, "incident 42", "breach", actor="sla", at=at(2)))

        assert web.handle(log_incident(impact=1, urgency=2)).priority == 1
        assert [i["reason"] for i in web.account_profile("resto-chain")["roc_informs"]] == ["breach"]
        assert web.find_account("resto-chain") is web.find_account("resto-chain")  # read once while unchanged
    finally:
        web.close()
        worker.close()


def test_an_account_never_registered_runs_on_the_defaults(app: ItilApplication) -> None:
    assert app.find_account("bakery-chain") is None
    assert app.priority_matrix("bakery-chain") == DEFAULT_MATRIX
    assert app.reopen_period("bakery-chain") == timedelta(days=7)
    assert app.account_profile("bakery-chain")["registered"] is False


def test_registering_an_account_twice_alike_stores_it_once(app: ItilApplication) -> None:
    register(app)
    before = app.recorder.max_notification_id()

    account = register(app)

    assert account.version == 1
    assert app.recorder.max_notification_id() == before


def test_registering_an_account_again_with_other_details_is_refused(app: ItilApplication) -> None:
    register(app)
    before = app.recorder.max_notification_id()

    with pytest.raises(IllegalTransition, match="already registered .* change its ROC or settings instead"):
        register(app, roc="marc.roc")
    assert app.recorder.max_notification_id() == before


@pytest.mark.parametrize(
    "command",
    [
        SetAccountRoc("bakery-chain", "marc.roc", actor="admin", at=at(1)),
        SetPriorityMatrix("bakery-chain", DEFAULT_MATRIX, actor="admin", at=at(1)),
        SetReopenPeriod("bakery-chain", timedelta(days=2), actor="admin", at=at(1)),
    ],
    ids=["roc", "matrix", "reopen-period"],
)
def test_changing_an_account_never_registered_is_refused(app: ItilApplication, command: object) -> None:
    with pytest.raises(NotFound, match="there is no registered account 'bakery-chain'; register it first"):
        app.handle(command)
    assert app.recorder.max_notification_id() is None


def test_setting_the_roc_of_an_account(app: ItilApplication) -> None:
    register(app, roc=None)

    account = app.handle(SetAccountRoc("resto-chain", "marc.roc", actor="admin", at=at(1)))

    assert account.roc == "marc.roc"
    assert app.account_profile("resto-chain")["roc"] == "marc.roc"


def test_informing_the_roc_twice_of_the_same_subject_and_reason_stores_it_once(app: ItilApplication) -> None:
    register(app)
    inform = InformRoc("resto-chain", INCIDENT_ID, "incident 42", "GTR breached", actor="sla-process", at=at(5))

    app.handle(inform)
    before = app.recorder.max_notification_id()
    app.handle(inform)  # the same event redelivered to the process

    assert app.recorder.max_notification_id() == before
    assert len(app.account_profile("resto-chain")["roc_informs"]) == 1


@pytest.mark.parametrize("registered", [False, True], ids=["not-registered", "no-roc"])
def test_informing_the_roc_of_an_account_without_roc_is_refused(app: ItilApplication, registered: bool) -> None:
    if registered:
        register(app, roc=None)
    before = app.recorder.max_notification_id()

    with pytest.raises(IllegalTransition, match="cannot inform the ROC of account resto-chain .*has no ROC"):
        app.handle(InformRoc("resto-chain", INCIDENT_ID, "incident 42", "breach", actor="p", at=at(5)))
    assert app.recorder.max_notification_id() == before


# -- reopen period and follow-up incidents ----------------------------------------------------------


def resolved_incident(app: ItilApplication) -> None:
    app.handle(log_incident())
    app.handle(ResolveIncident(INCIDENT_ID, code="fixed", actor="n2-tech", at=at(10)))


def test_reopening_within_the_accounts_reopen_period_is_accepted(app: ItilApplication) -> None:
    resolved_incident(app)

    incident = app.handle(ReopenIncident(INCIDENT_ID, reason="down again", actor="n1", at=at(10) + timedelta(days=6)))

    assert incident.is_open


def test_reopening_after_the_accounts_reopen_period_is_refused(app: ItilApplication) -> None:
    register(app)
    app.handle(SetReopenPeriod("resto-chain", timedelta(days=1), actor="admin", at=at(0)))
    resolved_incident(app)
    before = stored(app)

    with pytest.raises(IllegalTransition, match="more than 1 day ago .* log a new incident related to this one"):
        app.handle(ReopenIncident(INCIDENT_ID, reason="down again", actor="n1", at=at(10) + timedelta(days=2)))
    assert stored(app) == before


def test_a_new_incident_follows_up_one_that_can_no_longer_be_reopened(app: ItilApplication) -> None:
    resolved_incident(app)

    follow_up = app.handle(
        log_incident(UNKNOWN_ID, related_incident=INCIDENT_ID, category="network", at=at(10) + timedelta(days=8))
    )

    assert (follow_up.related_incident, follow_up.category) == (INCIDENT_ID, "network")
    assert app.history(UNKNOWN_ID)[0].related_incident == INCIDENT_ID  # type: ignore[attr-defined]


def test_a_follow_up_of_an_unknown_incident_is_refused(app: ItilApplication) -> None:
    with pytest.raises(NotFound, match=f"there is no incident {UNKNOWN_ID}"):
        app.handle(log_incident(related_incident=UNKNOWN_ID))
    assert app.recorder.max_notification_id() is None


def test_a_follow_up_of_another_accounts_incident_is_refused(app: ItilApplication) -> None:
    app.handle(log_incident(UNKNOWN_ID, account="bakery-chain"))
    before = app.recorder.max_notification_id()

    with pytest.raises(InvalidCommand, match="is on account bakery-chain, not resto-chain"):
        app.handle(log_incident(related_incident=UNKNOWN_ID))
    assert app.recorder.max_notification_id() == before


# -- attaching children to a parent -------------------------------------------------------------------

PARENT_ID = UUID("0b6a7d4e-0000-4000-8000-0000000000aa")


def test_attaching_saves_the_child_and_the_parent_in_one_go(app: ItilApplication) -> None:
    app.handle(log_incident(PARENT_ID, ci="carrier-link-paca", title="Carrier link down"))
    app.handle(log_incident())
    saves: list[int | None] = []
    app.saved.callbacks.append(lambda: saves.append(app.recorder.max_notification_id()))

    child = app.handle(AttachIncident(child_id=INCIDENT_ID, parent_id=PARENT_ID, actor="n2-network", at=at(5)))

    assert child.id == INCIDENT_ID and child.parent_id == PARENT_ID
    assert app.get_incident(PARENT_ID).children == [INCIDENT_ID]
    assert saves == [4]  # one save, two events
    assert type(app.history(PARENT_ID)[-1]) is Incident.ChildAttached
    assert type(app.history(INCIDENT_ID)[-1]) is Incident.AttachedToParent


@pytest.mark.parametrize(
    ("child", "parent", "error", "message"),
    [
        (INCIDENT_ID, INCIDENT_ID, IllegalTransition, "to itself"),
        (INCIDENT_ID, UNKNOWN_ID, NotFound, f"there is no incident {UNKNOWN_ID}"),
        (UNKNOWN_ID, PARENT_ID, NotFound, f"there is no incident {UNKNOWN_ID}"),
    ],
    ids=["self", "unknown-parent", "unknown-child"],
)
def test_a_refused_attachment_saves_nothing(
    app: ItilApplication, child: UUID, parent: UUID, error: type[DomainError], message: str
) -> None:
    app.handle(log_incident(PARENT_ID))
    app.handle(log_incident())
    before = app.recorder.max_notification_id()

    with pytest.raises(error, match=message):
        app.handle(AttachIncident(child_id=child, parent_id=parent, actor="n2-network", at=at(5)))
    assert app.recorder.max_notification_id() == before


def test_attaching_to_a_parent_of_another_account_saves_neither(app: ItilApplication) -> None:
    app.handle(log_incident(PARENT_ID, account="bakery-chain"))
    app.handle(log_incident())
    before = app.recorder.max_notification_id()

    with pytest.raises(IllegalTransition, match="that one is on account bakery-chain"):
        app.handle(AttachIncident(child_id=INCIDENT_ID, parent_id=PARENT_ID, actor="n2-network", at=at(5)))
    assert app.recorder.max_notification_id() == before
    assert app.get_incident(PARENT_ID).children == []
    assert app.get_incident(INCIDENT_ID).parent_id is None


def test_attaching_a_child_whose_parent_check_fails_saves_neither(app: ItilApplication) -> None:
    grand = UUID("0b6a7d4e-0000-4000-8000-0000000000bb")
    app.handle(log_incident(grand))
    app.handle(log_incident(PARENT_ID))
    app.handle(log_incident())
    app.handle(AttachIncident(child_id=PARENT_ID, parent_id=grand, actor="n2", at=at(1)))
    before = app.recorder.max_notification_id()

    with pytest.raises(IllegalTransition, match="it is itself a child of incident"):
        app.handle(AttachIncident(child_id=INCIDENT_ID, parent_id=PARENT_ID, actor="n2", at=at(5)))
    assert app.recorder.max_notification_id() == before


# -- the other new incident commands ------------------------------------------------------------------


def test_the_new_incident_commands_are_stored(app: ItilApplication) -> None:
    problem = UUID("5e000000-0000-4000-8000-000000000001")
    app.handle(log_incident())
    commands: list[IncidentCommand] = [
        AssignIncident(INCIDENT_ID, group="N1 hotline", actor="n1", at=at(1)),
        CategoriseIncident(INCIDENT_ID, category="network", actor="n1", at=at(2)),
        EscalateIncidentFunctionally(INCIDENT_ID, to_group="N2 network", reason="link down", actor="n1", at=at(3)),
        EscalateIncidentHierarchically(INCIDENT_ID, level="roc", reason="many sites", actor="n2", at=at(4)),
        DeclareMajorIncident(INCIDENT_ID, reason="40 restaurants", actor="n2", at=at(5)),
        LinkIncidentToProblem(INCIDENT_ID, problem_id=problem, actor="pm", at=at(6)),
        NoteWorkaround(INCIDENT_ID, problem_id=problem, workaround="backup 4G link", actor="pm", at=at(7)),
    ]
    for command in commands:
        app.handle(command)

    incident = app.get_incident(INCIDENT_ID)
    assert (incident.assignment_group, incident.category, incident.escalation_level) == ("N2 network", "network", "roc")
    assert incident.is_major and incident.problem_ids == [problem] and incident.workaround == "backup 4G link"
    assert [type(e).__name__ for e in app.history(INCIDENT_ID)][2:] == [
        "Categorised",
        "FunctionallyEscalated",
        "HierarchicallyEscalated",
        "MajorIncidentDeclared",
        "ProblemLinked",
        "WorkaroundNoted",
    ]


# -- comments -------------------------------------------------------------------------------------


def comment(minutes: int, text: str, customer_visible: bool = True, author: str = "J. Martin") -> CommentIncident:
    return CommentIncident(
        INCIDENT_ID, text=text, author=author, customer_visible=customer_visible, actor="extranet", at=at(minutes)
    )


def test_comments_are_stored_and_read_back_oldest_first(app: ItilApplication) -> None:
    app.handle(log_incident())
    app.handle(comment(1, "The terminal restarts every ten minutes."))
    app.handle(AssignIncident(INCIDENT_ID, group="field technicians", actor="hotline-n1", at=at(2)))
    incident = app.handle(comment(3, "carrier ticket 4411", customer_visible=False, author="n2-tech"))

    assert (incident.comment_count, incident.last_commented_at) == (2, at(3))
    comments = app.comments(INCIDENT_ID)
    assert [(c.text, c.author, c.customer_visible, c.at) for c in comments] == [
        ("The terminal restarts every ten minutes.", "J. Martin", True, at(1)),
        ("carrier ticket 4411", "n2-tech", False, at(3)),
    ]
    assert [c.originator_version for c in comments] == [2, 4]
    with pytest.raises(NotFound, match=str(UNKNOWN_ID)):
        app.comments(UNKNOWN_ID)


def test_a_comment_is_a_command_group_commit_can_prepare(app: ItilApplication) -> None:
    app.handle(log_incident())
    command = comment(1, "Still down.")

    assert app.can_prepare(command) and app.read_by(command) == (INCIDENT_ID,)
    prepared = app.prepare(command, {})
    app.save(prepared)

    assert [c.text for c in app.comments(INCIDENT_ID)] == ["Still down."]


def test_commenting_a_closed_incident_stores_nothing(app: ItilApplication) -> None:
    app.handle(log_incident())
    app.handle(ResolveIncident(INCIDENT_ID, code="fixed", actor="n2-tech", at=at(10)))
    app.handle(CloseIncident(INCIDENT_ID, actor="hotline-n1", at=at(20)))
    before = stored(app)

    with pytest.raises(IllegalTransition, match="it is closed; a closed incident takes no more comments"):
        app.handle(comment(30, "It failed again."))

    assert stored(app) == before


def test_a_snapshot_of_a_commented_incident_holds_the_count_and_loads_the_same(db_path: Path) -> None:
    first = ItilApplication(env=store_env_at(db_path))
    first.handle(log_incident())
    for minutes in (1, 2, 3):
        first.handle(comment(minutes, f"customer update {minutes}"))
    first.take_snapshot(INCIDENT_ID)
    assert first.snapshots is not None
    [stored_snapshot] = first.snapshots.recorder.select_events(INCIDENT_ID)
    state = json.loads(stored_snapshot.state)["state"]
    assert state["comment_count"] == 3 and "customer update" not in stored_snapshot.state.decode()
    expected = first.get_incident(INCIDENT_ID).summary()
    first.close()

    second = ItilApplication(env=store_env_at(db_path))
    try:
        [snapshot] = second.snapshots.get(INCIDENT_ID) if second.snapshots is not None else []
        from_snapshot = snapshot.mutate(None)
        assert isinstance(from_snapshot, Incident) and from_snapshot.summary() == expected
        later = second.handle(comment(4, "customer update 4"))
        assert (later.comment_count, later.last_commented_at) == (4, at(4))
    finally:
        second.close()
