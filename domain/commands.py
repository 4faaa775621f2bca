"""What callers ask of the engine: one small frozen dataclass per command, named in the imperative.

Plain data and nothing else: the application floor maps each class to its handler, the web, the
command line, the intake and the processes build them. Grouped by area. (One module of some 650
lines because a command is a handful of fields: one place to read what the engine can be asked.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from uuid import UUID

from domain.change_calendar import DEFAULT_TIMEZONE, WeeklyWindow
from domain.contract import Terms
from domain.monitoring import AlarmRule, Correlation

# -- incidents, SLA clocks, contracts, accounts ------------------------------------------------


@dataclass(frozen=True)
class LogIncident:
    id: UUID
    account: str
    title: str
    impact: int
    urgency: int
    channel: str
    reporter: str
    actor: str
    at: datetime
    service: str | None = None
    ci: str | None = None
    description: str = ""
    category: str | None = None
    related_incident: UUID | None = None
    """An earlier incident of the same account this one follows up (e.g. past its reopen period)."""


@dataclass(frozen=True)
class AcknowledgeIncident:
    incident_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class ReprioritiseIncident:
    incident_id: UUID
    impact: int
    urgency: int
    actor: str
    at: datetime


@dataclass(frozen=True)
class AssignIncident:
    incident_id: UUID
    group: str
    actor: str
    at: datetime
    assignee: str | None = None


@dataclass(frozen=True)
class HoldIncident:
    incident_id: UUID
    reason: str
    actor: str
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class ResumeIncident:
    incident_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class RestoreService:
    incident_id: UUID
    actor: str
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class ResolveIncident:
    incident_id: UUID
    code: str
    actor: str
    at: datetime
    notes: str = ""


@dataclass(frozen=True)
class ReopenIncident:
    incident_id: UUID
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class CloseIncident:
    incident_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class CancelIncident:
    incident_id: UUID
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class CategoriseIncident:
    incident_id: UUID
    category: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class EscalateIncidentFunctionally:
    incident_id: UUID
    to_group: str
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class EscalateIncidentHierarchically:
    incident_id: UUID
    level: str
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class DeclareMajorIncident:
    incident_id: UUID
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class LinkIncidentToProblem:
    incident_id: UUID
    problem_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class NoteWorkaround:
    incident_id: UUID
    problem_id: UUID
    workaround: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class CommentIncident:
    """Add a comment to an incident: customer-visible, or an internal work note (`customer_visible=False`)."""

    incident_id: UUID
    text: str
    author: str
    customer_visible: bool
    actor: str
    at: datetime


@dataclass(frozen=True)
class AttachIncident:
    """Attach a child incident to the parent incident of the same outage; both are saved together."""

    child_id: UUID
    parent_id: UUID
    actor: str
    at: datetime


IncidentCommand = (
    AcknowledgeIncident
    | ReprioritiseIncident
    | AssignIncident
    | HoldIncident
    | ResumeIncident
    | RestoreService
    | ResolveIncident
    | ReopenIncident
    | CloseIncident
    | CancelIncident
    | CategoriseIncident
    | EscalateIncidentFunctionally
    | EscalateIncidentHierarchically
    | DeclareMajorIncident
    | LinkIncidentToProblem
    | NoteWorkaround
    | CommentIncident
)


@dataclass(frozen=True)
class StartSlaClocks:
    incident_id: UUID
    account: str
    service: str | None
    priority: int
    at: datetime


@dataclass(frozen=True)
class StopSlaClock:
    incident_id: UUID
    metric: str
    reason: str
    at: datetime
    incident_version: int
    ends_hold: bool


@dataclass(frozen=True)
class PauseSlaClocks:
    incident_id: UUID
    reason: str
    at: datetime
    incident_version: int


@dataclass(frozen=True)
class ResumeSlaClocks:
    incident_id: UUID
    reason: str
    at: datetime
    incident_version: int


@dataclass(frozen=True)
class RestartSlaClocks:
    incident_id: UUID
    metrics: tuple[str, ...]
    reason: str
    at: datetime
    incident_version: int


@dataclass(frozen=True)
class RetargetSlaClocks:
    incident_id: UUID
    priority: int
    reason: str
    at: datetime
    incident_version: int


@dataclass(frozen=True)
class CancelSlaClocks:
    incident_id: UUID
    reason: str
    at: datetime
    incident_version: int


@dataclass(frozen=True)
class CheckSlaClocks:
    incident_id: UUID
    now: datetime
    recipients: tuple[tuple[str, str | None], ...] = ()


SlaCommand = (
    StartSlaClocks
    | StopSlaClock
    | PauseSlaClocks
    | ResumeSlaClocks
    | RestartSlaClocks
    | RetargetSlaClocks
    | CancelSlaClocks
    | CheckSlaClocks
)


@dataclass(frozen=True)
class AddContractVersion:
    account: str
    effective_from: datetime
    terms: Terms
    actor: str
    at: datetime
    service: str | None = None
    name: str = ""


@dataclass(frozen=True)
class RegisterAccount:
    account: str
    actor: str
    at: datetime
    name: str = ""
    roc: str | None = None


@dataclass(frozen=True)
class SetAccountRoc:
    account: str
    roc: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class SetPriorityMatrix:
    account: str
    matrix: Mapping[tuple[int, int], int]
    actor: str
    at: datetime


@dataclass(frozen=True)
class SetReopenPeriod:
    account: str
    period: timedelta
    actor: str
    at: datetime


@dataclass(frozen=True)
class InformRoc:
    """Inform the account's ROC about a subject; the same subject and reason are informed once only."""

    account: str
    subject_id: UUID
    subject: str
    reason: str
    actor: str
    at: datetime


# -- problems ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogProblem:
    id: UUID
    account: str
    title: str
    actor: str
    at: datetime
    description: str = ""
    ci: str | None = None
    category: str | None = None
    incident_ids: tuple[UUID, ...] = ()


@dataclass(frozen=True)
class AddIncidentToProblem:
    problem_id: UUID
    incident_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class RemoveIncidentFromProblem:
    problem_id: UUID
    incident_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class StartInvestigation:
    problem_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class RecordRootCause:
    problem_id: UUID
    analysis: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class PublishWorkaround:
    problem_id: UUID
    workaround: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class ProposeChange:
    problem_id: UUID
    change_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class ResolveProblem:
    problem_id: UUID
    actor: str
    at: datetime
    via_change_id: UUID | None = None
    notes: str = ""


@dataclass(frozen=True)
class ReopenInvestigation:
    problem_id: UUID
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class CloseProblem:
    problem_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class CancelProblem:
    problem_id: UUID
    reason: str
    actor: str
    at: datetime


# -- changes and the change calendar -----------------------------------------------------------


@dataclass(frozen=True)
class RequestChange:
    id: UUID
    account: str
    type: str
    title: str
    affected_cis: tuple[str, ...]
    actor: str
    at: datetime
    description: str = ""
    template: str | None = None
    problem_id: UUID | None = None


@dataclass(frozen=True)
class SubmitChange:
    change_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class AssessChange:
    change_id: UUID
    risk: str
    impact: str
    implementation_plan: str
    backout_plan: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class ConveneCab:
    change_id: UUID
    members: tuple[str, ...]
    actor: str
    at: datetime
    emergency: bool | None = None
    """None: the CAB the change needs (the emergency CAB for an emergency change)."""


@dataclass(frozen=True)
class ApproveChange:
    change_id: UUID
    approver: str
    actor: str
    at: datetime
    role: str | None = None


@dataclass(frozen=True)
class RejectChange:
    change_id: UUID
    approver: str
    reason: str
    actor: str
    at: datetime
    role: str | None = None


@dataclass(frozen=True)
class ScheduleChange:
    change_id: UUID
    start: datetime
    end: datetime
    actor: str
    at: datetime


@dataclass(frozen=True)
class StartChange:
    change_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class CompleteChange:
    change_id: UUID
    actor: str
    at: datetime
    notes: str = ""


@dataclass(frozen=True)
class FailChange:
    change_id: UUID
    reason: str
    backout_performed: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class ReviewChange:
    change_id: UUID
    outcome: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class CloseChange:
    change_id: UUID
    actor: str
    at: datetime


@dataclass(frozen=True)
class CancelChange:
    change_id: UUID
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class AddFreezeWindow:
    account: str
    name: str
    start: datetime
    end: datetime
    actor: str
    at: datetime
    reason: str = ""


@dataclass(frozen=True)
class RemoveFreezeWindow:
    account: str
    name: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class SetMaintenanceWindows:
    account: str
    ci: str
    windows: tuple[WeeklyWindow, ...]
    actor: str
    at: datetime
    timezone: str = DEFAULT_TIMEZONE


# -- configuration items -----------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterCi:
    account: str
    ci_name: str
    kind: str
    actor: str
    at: datetime
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class RelateCis:
    account: str
    ci_name: str
    relation: str
    target_ci: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class UnrelateCis:
    account: str
    ci_name: str
    relation: str
    target_ci: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class ChangeCiState:
    account: str
    ci_name: str
    state: str
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class UpdateCiAttributes:
    account: str
    ci_name: str
    attributes: Mapping[str, str]
    actor: str
    at: datetime


@dataclass(frozen=True)
class RetireCi:
    account: str
    ci_name: str
    reason: str
    actor: str
    at: datetime


# -- monitoring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetAlarmRules:
    """Give an account its alarm rules (in order; the first that matches an alarm applies), and how its
    alarms correlate into mass outages (None: as they did)."""

    account: str
    rules: tuple[AlarmRule, ...]
    actor: str
    at: datetime
    correlation: Correlation | None = None
