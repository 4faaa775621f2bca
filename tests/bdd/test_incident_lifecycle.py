"""Steps for features/incident_lifecycle.feature, driven through ItilApplication on a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from uuid import UUID, uuid5

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from application.app import ItilApplication
from domain.commands import (
    AcknowledgeIncident,
    AssignIncident,
    AttachIncident,
    CancelIncident,
    CloseIncident,
    DeclareMajorIncident,
    EscalateIncidentFunctionally,
    HoldIncident,
    IncidentCommand,
    LogIncident,
    RegisterAccount,
    ReopenIncident,
    ResolveIncident,
    RestoreService,
    ResumeIncident,
    SetPriorityMatrix,
    SetReopenPeriod,
)
from domain.errors import DomainError
from domain.incident import Incident
from domain.priority import PRIORITY_NAMES, matrix_of_rows

scenarios("incident_lifecycle.feature")

DAY = date(2025, 3, 3)
PARIS_WINTER = timezone(timedelta(hours=1), "CET")
IDS = UUID("9d3c4a10-0000-4000-8000-000000000000")
HOLD_REASONS = {
    "customer": "awaiting_customer",
    "supplier": "awaiting_supplier",
    "change": "awaiting_change",
}

ACTOR = r'"(?P<actor>[^"]+)"'
AT = r"at (?P<hhmm>\d\d:\d\d)"
TEXT = r'"(?P<{}>[^"]*)"'


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ON_DAY = rf"on (?P<weekday>{'|'.join(WEEKDAYS)}) at (?P<hhmm>\d\d:\d\d)"


def clock(hhmm: str, weekday: str = "Monday") -> datetime:
    """An instant of the scenario's week (Monday is the scenario's day), Paris time."""
    day = DAY + timedelta(days=WEEKDAYS.index(weekday))
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=PARIS_WINTER)


@dataclass
class ServiceDesk:
    """The application under test, and what the scenario has done with it so far."""

    app: ItilApplication
    logged: dict[str, UUID] = field(default_factory=dict)
    incident_id: UUID | None = None
    refusal: DomainError | None = None
    stored_before_refusal: tuple[int | None, int] | None = None

    @property
    def current(self) -> UUID:
        assert self.incident_id is not None, "no incident was logged in this scenario"
        return self.incident_id

    def incident(self) -> Incident:
        return self.app.get_incident(self.current)

    def stored(self) -> tuple[int | None, int]:
        return self.app.recorder.max_notification_id(), len(self.app.history(self.current))

    def carry_out(self, verb: str, command: IncidentCommand | AttachIncident) -> None:
        """Hand the command to the application; a verb starting with "tries to" may be refused."""
        if not verb.startswith("tries to"):
            self.app.handle(command)
            return
        self.stored_before_refusal = self.stored()
        try:
            self.app.handle(command)
        except DomainError as error:
            self.refusal = error
        else:
            pytest.fail(f"{command} was expected to be refused but was accepted")


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[ServiceDesk]:
    path = str(tmp_path / "s.sqlite")
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
    app = ItilApplication(env=env | {f"ITIL_{key}": value for key, value in env.items()})
    yield ServiceDesk(app)
    app.close()


# -- actions ----------------------------------------------------------------------------------------


@given(
    parsers.re(
        rf"{ACTOR} (?:logs|logged) an incident by (?P<channel>\w+) {AT} for account {TEXT.format('account')}"
        rf" on CI {TEXT.format('ci')}: {TEXT.format('title')},"
        r" impact (?P<impact>\d), urgency (?P<urgency>\d)"
    ),
    converters={"impact": int, "urgency": int},
)
@when(
    parsers.re(
        rf"{ACTOR} (?:logs|logged) an incident by (?P<channel>\w+) {AT} for account {TEXT.format('account')}"
        rf" on CI {TEXT.format('ci')}: {TEXT.format('title')},"
        r" impact (?P<impact>\d), urgency (?P<urgency>\d)"
    ),
    converters={"impact": int, "urgency": int},
)
def log_an_incident(
    desk: ServiceDesk,
    actor: str,
    channel: str,
    hhmm: str,
    account: str,
    ci: str,
    title: str,
    impact: int,
    urgency: int,
) -> None:
    incident_id = uuid5(IDS, f"{account}/{ci}/{hhmm}")
    desk.app.handle(
        LogIncident(
            id=incident_id,
            account=account,
            ci=ci,
            title=title,
            impact=impact,
            urgency=urgency,
            channel=channel,
            reporter="restaurant manager",
            actor=actor,
            at=clock(hhmm),
        )
    )
    desk.logged[hhmm] = incident_id
    desk.incident_id = incident_id


VERB = r"(?P<verb>{})"


def _verb(*forms: str) -> str:
    return VERB.format("|".join(forms))


@given(parsers.re(rf"{ACTOR} {_verb('acknowledged')} the incident {AT}"))
@when(parsers.re(rf"{ACTOR} {_verb('acknowledges', 'tries to acknowledge')} the incident {AT}"))
def acknowledge(desk: ServiceDesk, actor: str, verb: str, hhmm: str) -> None:
    desk.carry_out(verb, AcknowledgeIncident(desk.current, actor=actor, at=clock(hhmm)))


@given(parsers.re(rf"{ACTOR} {_verb('assigned')} the incident to {TEXT.format('group')} {AT}"))
@when(parsers.re(rf"{ACTOR} {_verb('assigns', 'tries to assign')} the incident to {TEXT.format('group')} {AT}"))
def assign(desk: ServiceDesk, actor: str, verb: str, group: str, hhmm: str) -> None:
    desk.carry_out(verb, AssignIncident(desk.current, group=group, actor=actor, at=clock(hhmm)))


@when(
    parsers.re(
        rf"{ACTOR} {_verb('puts', 'tries to put')} the incident on hold awaiting the"
        rf" (?P<whom>customer|supplier|change) {AT} with the note {TEXT.format('note')}"
    )
)
def hold(desk: ServiceDesk, actor: str, verb: str, whom: str, hhmm: str, note: str) -> None:
    command = HoldIncident(desk.current, reason=HOLD_REASONS[whom], note=note, actor=actor, at=clock(hhmm))
    desk.carry_out(verb, command)


@when(parsers.re(rf"{ACTOR} {_verb('resumes', 'tries to resume')} the incident {AT}"))
def resume(desk: ServiceDesk, actor: str, verb: str, hhmm: str) -> None:
    desk.carry_out(verb, ResumeIncident(desk.current, actor=actor, at=clock(hhmm)))


@given(parsers.re(rf"{ACTOR} {_verb('recorded')} that service is restored {AT}"))
@when(parsers.re(rf"{ACTOR} {_verb('records', 'tries to record')} that service is restored {AT}"))
def restore(desk: ServiceDesk, actor: str, verb: str, hhmm: str) -> None:
    desk.carry_out(verb, RestoreService(desk.current, actor=actor, at=clock(hhmm)))


@given(parsers.re(rf"{ACTOR} {_verb('resolved')} the incident with code {TEXT.format('code')} {AT}"))
@when(parsers.re(rf"{ACTOR} {_verb('resolves', 'tries to resolve')} the incident with code {TEXT.format('code')} {AT}"))
def resolve(desk: ServiceDesk, actor: str, verb: str, code: str, hhmm: str) -> None:
    desk.carry_out(verb, ResolveIncident(desk.current, code=code, actor=actor, at=clock(hhmm)))


@when(parsers.re(rf"{ACTOR} {_verb('reopens', 'tries to reopen')} the incident {AT} because {TEXT.format('reason')}"))
def reopen(desk: ServiceDesk, actor: str, verb: str, hhmm: str, reason: str) -> None:
    desk.carry_out(verb, ReopenIncident(desk.current, reason=reason, actor=actor, at=clock(hhmm)))


@given(parsers.re(rf"{ACTOR} {_verb('closed')} the incident {AT}"))
@when(parsers.re(rf"{ACTOR} {_verb('closes', 'tries to close')} the incident {AT}"))
def close(desk: ServiceDesk, actor: str, verb: str, hhmm: str) -> None:
    desk.carry_out(verb, CloseIncident(desk.current, actor=actor, at=clock(hhmm)))


@when(parsers.re(rf"{ACTOR} {_verb('cancels', 'tries to cancel')} the incident {AT} because {TEXT.format('reason')}"))
def cancel(desk: ServiceDesk, actor: str, verb: str, hhmm: str, reason: str) -> None:
    desk.carry_out(verb, CancelIncident(desk.current, reason=reason, actor=actor, at=clock(hhmm)))


@when(
    parsers.re(rf"{ACTOR} {_verb('reopens', 'tries to reopen')} the incident {ON_DAY} because {TEXT.format('reason')}")
)
def reopen_later(desk: ServiceDesk, actor: str, verb: str, weekday: str, hhmm: str, reason: str) -> None:
    desk.carry_out(verb, ReopenIncident(desk.current, reason=reason, actor=actor, at=clock(hhmm, weekday)))


@when(
    parsers.re(
        rf"{ACTOR} logs by (?P<channel>\w+) {ON_DAY} a new incident following up the incident logged at"
        rf" (?P<earlier>\d\d:\d\d): {TEXT.format('title')}"
    )
)
def log_a_follow_up(
    desk: ServiceDesk, actor: str, channel: str, weekday: str, hhmm: str, earlier: str, title: str
) -> None:
    first = desk.app.get_incident(desk.logged[earlier])
    incident_id = uuid5(IDS, f"{first.account}/{first.ci}/{weekday} {hhmm}")
    desk.app.handle(
        LogIncident(
            id=incident_id, account=first.account, ci=first.ci, service=first.service, title=title,
            impact=first.impact, urgency=first.urgency, channel=channel, reporter="restaurant manager",
            actor=actor, at=clock(hhmm, weekday), related_incident=first.id,
        )
    )  # fmt: skip
    desk.logged[f"{weekday} {hhmm}"] = incident_id
    desk.incident_id = incident_id


@given(
    parsers.re(
        rf"{ACTOR} {_verb('attached')} the incident logged at (?P<child>\d\d:\d\d) to the incident logged at"
        rf" (?P<parent>\d\d:\d\d) {AT}"
    )
)
@when(
    parsers.re(
        rf"{ACTOR} {_verb('attaches', 'tries to attach')} the incident logged at (?P<child>\d\d:\d\d) to the"
        rf" incident logged at (?P<parent>\d\d:\d\d) {AT}"
    )
)
def attach(desk: ServiceDesk, actor: str, verb: str, child: str, parent: str, hhmm: str) -> None:
    command = AttachIncident(desk.logged[child], desk.logged[parent], actor=actor, at=clock(hhmm))
    desk.carry_out(verb, command)


@when(
    parsers.re(
        rf"{ACTOR} {_verb('escalates', 'tries to escalate')} the incident to {TEXT.format('group')} {AT}"
        rf" because {TEXT.format('reason')}"
    )
)
def escalate(desk: ServiceDesk, actor: str, verb: str, group: str, hhmm: str, reason: str) -> None:
    command = EscalateIncidentFunctionally(desk.current, to_group=group, reason=reason, actor=actor, at=clock(hhmm))
    desk.carry_out(verb, command)


@when(
    parsers.re(
        rf"{ACTOR} {_verb('declares', 'tries to declare')} a major incident {AT} because {TEXT.format('reason')}"
    )
)
def declare_major(desk: ServiceDesk, actor: str, verb: str, hhmm: str, reason: str) -> None:
    desk.carry_out(verb, DeclareMajorIncident(desk.current, reason=reason, actor=actor, at=clock(hhmm)))


@given(parsers.re(rf"the account {TEXT.format('account')} is registered with the ROC {TEXT.format('roc')}"))
def register_account(desk: ServiceDesk, account: str, roc: str) -> None:
    desk.app.handle(RegisterAccount(account=account, roc=roc, actor="service manager", at=clock("08:00")))


@given(
    parsers.re(
        rf"the account {TEXT.format('account')} lets its incidents be reopened up to (?P<days>\d+) days"
        " after resolution"
    ),
    converters={"days": int},
)
def reopen_period(desk: ServiceDesk, account: str, days: int) -> None:
    command = SetReopenPeriod(account=account, period=timedelta(days=days), actor="service manager", at=clock("08:00"))
    desk.app.handle(command)


@given(parsers.re(rf"the account {TEXT.format('account')} rates incidents with this priority matrix:"))
def priority_matrix(desk: ServiceDesk, account: str, datatable: list[list[str]]) -> None:
    rows = [[int(cell) for cell in row[1:]] for row in datatable[1:]]
    command = SetPriorityMatrix(
        account=account, matrix=matrix_of_rows(rows), actor="service manager", at=clock("08:00")
    )
    desk.app.handle(command)


# -- outcomes -------------------------------------------------------------------------------------


@then(parsers.re(r"the incident is (?P<status>new|acknowledged|restored|resolved|closed|cancelled)"))
def incident_has_status(desk: ServiceDesk, status: str) -> None:
    assert desk.incident().status == status


@then(parsers.re(rf"the incident is assigned to {TEXT.format('group')}"))
def incident_is_assigned(desk: ServiceDesk, group: str) -> None:
    incident = desk.incident()
    assert (incident.status, incident.assignment_group) == ("assigned", group)


@then(parsers.re(r"the incident is on hold awaiting the (?P<whom>customer|supplier|change)"))
def incident_is_on_hold(desk: ServiceDesk, whom: str) -> None:
    incident = desk.incident()
    assert (incident.status, incident.hold_reason) == ("on_hold", HOLD_REASONS[whom])


@then(parsers.re(rf"the incident is resolved with code {TEXT.format('code')}"))
def incident_is_resolved(desk: ServiceDesk, code: str) -> None:
    incident = desk.incident()
    assert (incident.status, incident.resolution_code) == ("resolved", code)


@then(parsers.re(r"the incident logged at (?P<hhmm>\d\d:\d\d) is still (?P<status>[a-z ]+)"))
def incident_logged_at_has_status(desk: ServiceDesk, hhmm: str, status: str) -> None:
    assert desk.app.get_incident(desk.logged[hhmm]).status == status.replace(" ", "_")


@then(
    parsers.re(
        r"the incident logged at (?P<parent>\d\d:\d\d) is the parent of the incidents logged at"
        r" (?P<first>\d\d:\d\d) and (?P<second>\d\d:\d\d)"
    )
)
def incident_is_parent(desk: ServiceDesk, parent: str, first: str, second: str) -> None:
    children = [desk.logged[first], desk.logged[second]]
    assert desk.app.get_incident(desk.logged[parent]).children == children
    assert [desk.app.get_incident(c).parent_id for c in children] == [desk.logged[parent]] * 2


@then(parsers.re(r"it follows up the incident logged at (?P<hhmm>\d\d:\d\d)"))
def follows_up(desk: ServiceDesk, hhmm: str) -> None:
    assert desk.incident().related_incident == desk.logged[hhmm]


@then("nobody in the group has taken it yet")
def nobody_has_taken_it(desk: ServiceDesk) -> None:
    assert desk.incident().assignee is None


@then("the incident is a major incident")
def incident_is_major(desk: ServiceDesk) -> None:
    assert desk.incident().is_major


@then(parsers.re(r"its priority is P(?P<priority>\d) \((?P<name>\w+)\)"), converters={"priority": int})
def incident_has_priority(desk: ServiceDesk, priority: int, name: str) -> None:
    assert desk.incident().priority == priority
    assert PRIORITY_NAMES[priority] == name


@then(parsers.re(r"the GTR stop point is (?P<hhmm>\d\d:\d\d)"))
def gtr_stop_point(desk: ServiceDesk, hhmm: str) -> None:
    assert desk.incident().restored_at == clock(hhmm)


@then("service is no longer restored")
def service_not_restored(desk: ServiceDesk) -> None:
    incident = desk.incident()
    assert incident.restored_at is None
    assert incident.is_open


@then(parsers.re(rf"its history reads {TEXT.format('names')}"))
def history_reads(desk: ServiceDesk, names: str) -> None:
    assert [type(e).__name__ for e in desk.app.history(desk.current)] == names.split(", ")


@then(parsers.re(rf"the history of the incident logged at (?P<hhmm>\d\d:\d\d) reads {TEXT.format('names')}"))
def history_of_reads(desk: ServiceDesk, hhmm: str, names: str) -> None:
    assert [type(e).__name__ for e in desk.app.history(desk.logged[hhmm])] == names.split(", ")


@then(parsers.re(rf"the command is refused because {TEXT.format('reason')}"))
def command_is_refused(desk: ServiceDesk, reason: str) -> None:
    assert isinstance(desk.refusal, DomainError), "the command was not refused"
    message = str(desk.refusal)
    assert reason in message
    assert message.startswith("cannot ")
    assert str(desk.current) in message


@then("nothing more is stored")
def nothing_more_is_stored(desk: ServiceDesk) -> None:
    assert desk.stored_before_refusal is not None, "no command was tried"
    assert desk.stored() == desk.stored_before_refusal
