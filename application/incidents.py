"""Incident commands: log, change and attach incidents. Each command on an existing incident is one
plain function that changes the incident in memory (`INCIDENT_CHANGES`), which group commit applies to
batches and `change_incident` applies alone, saving with retries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import IntegrityError

from application.conflicts import CONFLICT_RETRIES, ConcurrencyConflict
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
    LinkIncidentToProblem,
    LogIncident,
    NoteWorkaround,
    ReopenIncident,
    ReprioritiseIncident,
    ResolveIncident,
    RestoreService,
    ResumeIncident,
)
from domain.incident import Incident, attach

if TYPE_CHECKING:
    from application.app import ItilApplication


def acknowledge_incident(app: ItilApplication, incident: Incident, command: AcknowledgeIncident) -> None:
    incident.acknowledge(actor=command.actor, at=command.at)


def reprioritise_incident(app: ItilApplication, incident: Incident, command: ReprioritiseIncident) -> None:
    incident.reprioritise(
        impact=command.impact,
        urgency=command.urgency,
        actor=command.actor,
        at=command.at,
        matrix=app.priority_matrix(incident.account),
    )


def assign_incident(app: ItilApplication, incident: Incident, command: AssignIncident) -> None:
    incident.assign(group=command.group, assignee=command.assignee, actor=command.actor, at=command.at)


def hold_incident(app: ItilApplication, incident: Incident, command: HoldIncident) -> None:
    incident.hold(reason=command.reason, note=command.note, actor=command.actor, at=command.at)


def resume_incident(app: ItilApplication, incident: Incident, command: ResumeIncident) -> None:
    incident.resume(actor=command.actor, at=command.at)


def restore_service(app: ItilApplication, incident: Incident, command: RestoreService) -> None:
    incident.restore(note=command.note, actor=command.actor, at=command.at)


def resolve_incident(app: ItilApplication, incident: Incident, command: ResolveIncident) -> None:
    incident.resolve(code=command.code, notes=command.notes, actor=command.actor, at=command.at)


def reopen_incident(app: ItilApplication, incident: Incident, command: ReopenIncident) -> None:
    incident.reopen(
        reason=command.reason, actor=command.actor, at=command.at, reopen_within=app.reopen_period(incident.account)
    )


def close_incident(app: ItilApplication, incident: Incident, command: CloseIncident) -> None:
    incident.close(actor=command.actor, at=command.at)


def cancel_incident(app: ItilApplication, incident: Incident, command: CancelIncident) -> None:
    incident.cancel(reason=command.reason, actor=command.actor, at=command.at)


def categorise_incident(app: ItilApplication, incident: Incident, command: CategoriseIncident) -> None:
    incident.categorise(category=command.category, actor=command.actor, at=command.at)


def escalate_incident_functionally(
    app: ItilApplication, incident: Incident, command: EscalateIncidentFunctionally
) -> None:
    incident.escalate_functionally(to_group=command.to_group, reason=command.reason, actor=command.actor, at=command.at)


def escalate_incident_hierarchically(
    app: ItilApplication, incident: Incident, command: EscalateIncidentHierarchically
) -> None:
    incident.escalate_hierarchically(level=command.level, reason=command.reason, actor=command.actor, at=command.at)


def declare_major_incident(app: ItilApplication, incident: Incident, command: DeclareMajorIncident) -> None:
    incident.declare_major(reason=command.reason, actor=command.actor, at=command.at)


def link_incident_to_problem(app: ItilApplication, incident: Incident, command: LinkIncidentToProblem) -> None:
    incident.link_problem(problem_id=command.problem_id, actor=command.actor, at=command.at)


def comment_incident(app: ItilApplication, incident: Incident, command: CommentIncident) -> None:
    incident.comment(
        text=command.text, author=command.author, customer_visible=command.customer_visible, actor=command.actor,
        at=command.at,
    )  # fmt: skip


def note_workaround(app: ItilApplication, incident: Incident, command: NoteWorkaround) -> None:
    incident.note_workaround(
        problem_id=command.problem_id, workaround=command.workaround, actor=command.actor, at=command.at
    )


IncidentChange = Callable[["ItilApplication", Incident, Any], None]

INCIDENT_CHANGES: Mapping[type, IncidentChange] = MappingProxyType(
    {
        AcknowledgeIncident: acknowledge_incident,
        ReprioritiseIncident: reprioritise_incident,
        AssignIncident: assign_incident,
        HoldIncident: hold_incident,
        ResumeIncident: resume_incident,
        RestoreService: restore_service,
        ResolveIncident: resolve_incident,
        ReopenIncident: reopen_incident,
        CloseIncident: close_incident,
        CancelIncident: cancel_incident,
        CategoriseIncident: categorise_incident,
        EscalateIncidentFunctionally: escalate_incident_functionally,
        EscalateIncidentHierarchically: escalate_incident_hierarchically,
        DeclareMajorIncident: declare_major_incident,
        LinkIncidentToProblem: link_incident_to_problem,
        NoteWorkaround: note_workaround,
        CommentIncident: comment_incident,
    }
)
"""Each command on an existing incident, and the function that carries it out on the incident (given
the application, to read the account's settings: its priority matrix, its reopen period)."""


def change_incident(app: ItilApplication, command: Any) -> Incident:
    """Carry out one command on an existing incident: load, change, save; reload and retry on a race."""
    change = INCIDENT_CHANGES[type(command)]
    for _attempt in range(CONFLICT_RETRIES):
        incident = app.get_incident(command.incident_id)
        change(app, incident, command)
        try:
            app.save(incident)
        except IntegrityError:
            continue  # someone saved first: reload and re-check the rules
        app.saved()
        return incident
    raise ConcurrencyConflict(f"incident {command.incident_id} changed too often while the command ran; try again")


def log_incident(app: ItilApplication, command: LogIncident) -> Incident:
    """Log an incident once: the same LogIncident carried out twice has the effect of once."""
    existing = app.find_incident(command.id)
    if existing is not None:
        return existing
    incident = app.new_incident(command)
    try:
        app.save(incident)
    except IntegrityError:
        found = app.find_incident(command.id)
        if found is None:
            raise
        return found
    app.saved()
    return incident


def attach_incident(app: ItilApplication, command: AttachIncident) -> Incident:
    """Attach a child to its parent: both incidents change and are saved in one go, or neither."""
    ids = [(command.child_id, Incident, "incident"), (command.parent_id, Incident, "incident")]
    child, _parent = app.update(ids, lambda c, p: attach(c, p, actor=command.actor, at=command.at))
    return child


HANDLERS: Mapping[type, Callable[[ItilApplication, Any], Any]] = MappingProxyType(
    {
        LogIncident: log_incident,
        AttachIncident: attach_incident,
        **{command_type: change_incident for command_type in INCIDENT_CHANGES},
    }
)
"""Command class -> handler(app, command) of this area; the application's table is built from these."""
