"""The intake of the customer extranet's requests and of the command topic: each message becomes a command.

`HANDLERS` maps each message type to its handler(app, message); the alarm and fleet messages'
handlers are `streams.alarm_intake`'s. A handler refuses with a DomainError (a rule of the domain)
or `IntakeRefused` (anything else), and the intake dead-letters the message with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.commands import (
    AcknowledgeIncident,
    AssignIncident,
    CancelIncident,
    CloseIncident,
    CommentIncident,
    HoldIncident,
    LogIncident,
    ReopenIncident,
    ReprioritiseIncident,
    ResolveIncident,
    RestoreService,
    ResumeIncident,
)
from domain.errors import NotFound
from domain.incident import Incident
from streams.contracts import (
    EXTRANET_DEFAULT_IMPACT,
    EXTRANET_DEFAULT_URGENCY,
    INCIDENT_COMMAND_ARGS,
    SERVICE_REQUEST_CATEGORY,
    SERVICE_REQUEST_SERVICE,
    IntakeMessage,
    intake_incident_id,
)

log = logging.getLogger(__name__)

EXTRANET_CHANNEL = "extranet"
"""The channel of the incidents the extranet opens."""

A = TypeVar("A", bound=Aggregate)


class Commands(Protocol):
    """What the intake's handlers need of the application: carry out a command, find an aggregate."""

    def handle(self, command: Any) -> Any: ...

    def find(self, aggregate_id: UUID, kind: type[A]) -> A | None: ...

    def get_incident(self, incident_id: UUID) -> Incident: ...


IntakeHandler = Callable[[Commands, IntakeMessage], Any]

BatchHandler = Callable[[Commands, Sequence[IntakeMessage]], list[Any]]
"""handler(app, messages) returning, per message, its result or the DomainError that refused it. Types
with one are carried out a batch at a time (one transaction) by `IntakeProcessor.handle_batch`;
consecutive messages sharing a batch handler go together."""


class IntakeRefused(Exception):
    """A handler refuses a message for a reason that is not a rule of the domain (a missing feature)."""


def _incident_of_account(app: Commands, message: IntakeMessage) -> Incident:
    """The incident the message names, provided it is one of the message's account (else NotFound)."""
    incident_id: UUID = message.data["incident_id"]
    incident = app.get_incident(incident_id)
    account = str(message.data["account"]).strip()
    if incident.account != account:
        raise NotFound(f"there is no incident {incident_id} on account {account}")
    return incident


def open_incident(app: Commands, message: IntakeMessage) -> Incident:
    """The extranet opens an incident (or a service request) under the id its message id determines."""
    data = message.data
    service_request = message.type == "request.open"
    service = data.get("service")
    if service_request and not service and not data.get("ci"):
        service = SERVICE_REQUEST_SERVICE
    incident: Incident = app.handle(
        LogIncident(
            id=intake_incident_id(message.message_id),
            account=data["account"],
            title=data["title"],
            impact=data.get("impact", EXTRANET_DEFAULT_IMPACT),
            urgency=data.get("urgency", EXTRANET_DEFAULT_URGENCY),
            channel=EXTRANET_CHANNEL,
            reporter=data["requester"],
            actor=data["requester"],
            at=message.at,
            service=service,
            ci=data.get("ci"),
            description=data.get("description") or "",
            category=SERVICE_REQUEST_CATEGORY if service_request else None,
        )
    )
    return incident


def confirm_resolution(app: Commands, message: IntakeMessage) -> Incident:
    """The customer confirms the resolution: the incident is closed."""
    incident = _incident_of_account(app, message)
    closed: Incident = app.handle(
        CloseIncident(incident_id=incident.id, actor=message.data["requester"], at=message.at)
    )
    return closed


def refuse_resolution(app: Commands, message: IntakeMessage) -> Incident:
    """The customer refuses the resolution: the incident is reopened, with the customer's reason."""
    incident = _incident_of_account(app, message)
    reopened: Incident = app.handle(
        ReopenIncident(
            incident_id=incident.id, reason=message.data["reason"], actor=message.data["requester"], at=message.at
        )
    )
    return reopened


def add_comment(app: Commands, message: IntakeMessage) -> Incident:
    """A customer comments on one of the account's incidents: a customer-visible comment, entered by the requester."""
    incident = _incident_of_account(app, message)
    data = message.data
    commented: Incident = app.handle(
        CommentIncident(
            incident_id=incident.id,
            text=data["text"],
            author=data["author"],
            customer_visible=True,
            actor=data["requester"],
            at=message.at,
        )
    )
    return commented


INCIDENT_COMMAND_TYPES: dict[str, type] = {
    "acknowledge": AcknowledgeIncident,
    "assign": AssignIncident,
    "hold": HoldIncident,
    "resume": ResumeIncident,
    "restore": RestoreService,
    "resolve": ResolveIncident,
    "reopen": ReopenIncident,
    "close": CloseIncident,
    "cancel": CancelIncident,
    "reprioritise": ReprioritiseIncident,
}
"""The command each name of `command.incident` stands for; its args are the dataclass's other fields."""
assert set(INCIDENT_COMMAND_TYPES) == set(INCIDENT_COMMAND_ARGS), "every contracted command needs its class"


def incident_command(app: Commands, message: IntakeMessage) -> Incident:
    """Another system's command on an incident; the message's source is the actor."""
    data = message.data
    command_type = INCIDENT_COMMAND_TYPES[data["command"]]
    command = command_type(incident_id=data["incident_id"], actor=message.source, at=message.at, **data["args"])
    incident: Incident = app.handle(command)
    return incident


HANDLERS = MappingProxyType(
    {
        "incident.open": open_incident,
        "request.open": open_incident,
        "resolution.confirm": confirm_resolution,
        "resolution.refuse": refuse_resolution,
        "comment.add": add_comment,
        "command.incident": incident_command,
    }
)
"""Message type -> handler(app, message) of the incident intake (the extranet's, the command topic's);
the alarm and fleet handlers are in streams.alarm_intake."""
