"""Steps for features/incident_lifecycle.feature, driven through ItilApplication on a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from uuid import UUID, uuid5

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from domain.errors import DomainError
from domain.incident import Incident
from domain.priority import PRIORITY_NAMES
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


def clock(hhmm: str) -> datetime:
    """An instant of the scenario's day, Paris time."""
    return datetime.combine(DAY, time.fromisoformat(hhmm), tzinfo=PARIS_WINTER)


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

    def carry_out(self, verb: str, command: IncidentCommand) -> None:
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
@when(
    parsers.re(rf"{ACTOR} {_verb('assigns', 'tries to assign')} the incident to {TEXT.format('group')} {AT}")
)
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
@when(
    parsers.re(
        rf"{ACTOR} {_verb('resolves', 'tries to resolve')} the incident with code {TEXT.format('code')} {AT}"
    )
)
def resolve(desk: ServiceDesk, actor: str, verb: str, code: str, hhmm: str) -> None:
    desk.carry_out(verb, ResolveIncident(desk.current, code=code, actor=actor, at=clock(hhmm)))


@when(
    parsers.re(
        rf"{ACTOR} {_verb('reopens', 'tries to reopen')} the incident {AT} because {TEXT.format('reason')}"
    )
)
def reopen(desk: ServiceDesk, actor: str, verb: str, hhmm: str, reason: str) -> None:
    desk.carry_out(verb, ReopenIncident(desk.current, reason=reason, actor=actor, at=clock(hhmm)))


@given(parsers.re(rf"{ACTOR} {_verb('closed')} the incident {AT}"))
@when(parsers.re(rf"{ACTOR} {_verb('closes', 'tries to close')} the incident {AT}"))
def close(desk: ServiceDesk, actor: str, verb: str, hhmm: str) -> None:
    desk.carry_out(verb, CloseIncident(desk.current, actor=actor, at=clock(hhmm)))


@when(
    parsers.re(
        rf"{ACTOR} {_verb('cancels', 'tries to cancel')} the incident {AT} because {TEXT.format('reason')}"
    )
)
def cancel(desk: ServiceDesk, actor: str, verb: str, hhmm: str, reason: str) -> None:
    desk.carry_out(verb, CancelIncident(desk.current, reason=reason, actor=actor, at=clock(hhmm)))


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
