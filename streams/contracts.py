"""The contracts of the messages other services publish to the engine (and of the ones it sends them).

Every message is one JSON object carrying the common fields (`message_id`, `type`, `schema_version`,
`sent_at`, `source`) beside the fields of its type. Each type declares the schema versions it supports;
`decode_intake` refuses anything else with a reason a sender can act on. Unknown fields are refused too:
a misspelt optional field would otherwise be dropped silently and its default used.

One module of some 700 lines on purpose: the whole public contract (every topic, type and schema
version) reads in one place, as `streams.contracts_export` publishes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from domain.incident import HOLD_REASONS, RESOLUTION_CODES
from streams import fastjson
from streams.fastload import Loader, compile_loader

ALERTS_TOPIC = "itil.intake.alerts"
REQUESTS_TOPIC = "itil.intake.requests"
FLEET_TOPIC = "itil.intake.fleet"
COMMANDS_TOPIC = "itil.commands"
AUTOMATION_REQUESTS_TOPIC = "itil.automation.requests"
AUTOMATION_RESULTS_TOPIC = "itil.automation.results"
EVENTS_TOPIC = "itil.events"
DEADLETTER_TOPIC = "itil.deadletter"

INTAKE_TOPICS = (ALERTS_TOPIC, REQUESTS_TOPIC, FLEET_TOPIC, COMMANDS_TOPIC, AUTOMATION_RESULTS_TOPIC)
"""The topics the engine consumes, in the order the documents list them."""

TOPIC_DESCRIPTIONS = {
    ALERTS_TOPIC: "Supervision (monitoring) raises, updates and clears alarms on customers' CIs.",
    REQUESTS_TOPIC: "The customer extranet opens incidents and service requests, comments on incidents,"
    " confirms or refuses their resolution.",
    FLEET_TOPIC: "The carrier-link and payment-terminal fleet systems report the state of CIs.",
    COMMANDS_TOPIC: "Other systems carry out commands on incidents, problems and changes; the actor is the"
    " message's source.",
    AUTOMATION_REQUESTS_TOPIC: "The engine asks the automation platform to run corrective actions.",
    AUTOMATION_RESULTS_TOPIC: "The automation platform reports how each requested action went.",
    EVENTS_TOPIC: "Every stored domain event, in the store's order per partition, keyed by aggregate id.",
    DEADLETTER_TOPIC: "Messages the engine refused: the original bytes, where they came from and why;"
    " `itil deadletter list` shows them and `itil deadletter replay` runs them again after a fix.",
}

INTAKE_ID_NAMESPACE = uuid5(NAMESPACE_URL, "urn:itil-engine:intake")
SEVERITIES = ("critical", "major", "minor", "warning")
CI_STATES = ("installed", "down", "replaced", "up", "degraded")
OUTCOMES = ("success", "failure")
IMPACT_URGENCY = (1, 2, 3)
EXTRANET_DEFAULT_IMPACT = 3
EXTRANET_DEFAULT_URGENCY = 3
SERVICE_REQUEST_CATEGORY = "service request"
SERVICE_REQUEST_SERVICE = "service requests"
"""The service a service request is logged on when the customer names neither a service nor a CI."""


def intake_incident_id(message_id: str) -> UUID:
    """The id of the incident an `incident.open` or `request.open` message makes: a redelivery finds it."""
    return uuid5(INTAKE_ID_NAMESPACE, message_id)


# -- field helpers --------------------------------------------------------------------------------


def _text(max_length: int = 200, *, required: bool = True, description: str = "", example: Any = None) -> fields.String:
    metadata: dict[str, Any] = {"description": description} if description else {}
    if example is not None:
        metadata["example"] = example
    if required:
        return fields.String(required=True, validate=validate.Length(min=1, max=max_length), metadata=metadata)
    return fields.String(load_default=None, validate=validate.Length(min=1, max=max_length), metadata=metadata)


def _type(name: str) -> fields.String:
    return fields.String(required=True, validate=validate.Equal(name), metadata={"description": "the message type"})


def _version(number: int) -> fields.Integer:
    return fields.Integer(
        required=True, strict=True, validate=validate.Equal(number), metadata={"description": "the schema version"}
    )


def _level(name: str, default: int) -> fields.Integer:
    return fields.Integer(
        load_default=default,
        strict=True,
        validate=validate.OneOf(IMPACT_URGENCY),
        metadata={"description": f"{name}: 1 high, 2 medium, 3 low; default {default}"},
    )


def _instant(description: str, *, required: bool = True) -> fields.AwareDateTime:
    if required:
        return fields.AwareDateTime(required=True, metadata={"description": description})
    return fields.AwareDateTime(load_default=None, metadata={"description": description})


def _business_instant() -> fields.AwareDateTime:
    return _instant("when it happened (ISO 8601 with an offset); default: sent_at", required=False)


# -- the common envelope of every message ---------------------------------------------------------


class MessageSchema(Schema):
    """Fields every message carries, whatever its type."""

    class Meta:
        unknown = RAISE

    json_schema_extra: ClassVar[Any] = {}
    """Added to the schema's JSON Schema: a dict, or a function of the converter returning one."""

    message_id = _text(
        200,
        description="the sender's id of this message, unique across senders (a UUID, or prefixed with the sender's"
        " name): a message processed twice has the effect of once",
        example="extranet-4b1d2f0e-8c7a-4f7e-9d65-0c2f3b9a1e77",
    )
    type = fields.String(required=True, metadata={"description": "the message type"})
    schema_version = fields.Integer(required=True, strict=True, metadata={"description": "the schema version"})
    sent_at = _instant("when the sender sent the message (ISO 8601 with an offset)")
    source = _text(200, description="the system that sent the message", example="extranet")


COMMON_FIELDS = tuple(MessageSchema().fields)


# -- itil.intake.alerts: supervision ---------------------------------------------------------------


class _AlarmSchema(MessageSchema):
    account = _text(description="the customer account", example="resto-chain")
    ci = _text(description="the configuration item the check runs on", example="router-marseille-01")
    check = _text(description="the monitoring check that fired", example="ping")
    dedup_key = _text(
        500, description="the monitoring's id of the alarm: its raise, updates and clear share it; the Kafka key"
    )
    at = _instant(
        "when the monitoring observed it; a sighting of an alarm no later than its last one is taken for a"
        " redelivery and changes nothing, so each repeat must carry a later instant (repeats are counted by"
        " instant, not by message id)"
    )
    details = fields.Dict(keys=fields.String(), load_default=dict, metadata={"description": "free-form details"})


class AlarmRaisedV1(_AlarmSchema):
    """Supervision raised an alarm on a CI."""

    type = _type("alarm.raised")
    schema_version = _version(1)
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    summary = _text(2000, description="one line a technician reads")


class AlarmUpdatedV1(_AlarmSchema):
    """An alarm already raised changed (usually its severity)."""

    type = _type("alarm.updated")
    schema_version = _version(1)
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    summary = fields.String(load_default="", validate=validate.Length(max=2000))


class AlarmClearedV1(_AlarmSchema):
    """Supervision cleared an alarm: the check passes again."""

    type = _type("alarm.cleared")
    schema_version = _version(1)
    severity = fields.String(load_default=None, validate=validate.OneOf(SEVERITIES))
    summary = fields.String(load_default="", validate=validate.Length(max=2000))


# -- itil.intake.requests: the customer extranet ----------------------------------------------------


class _ExtranetSchema(MessageSchema):
    account = _text(description="the customer account the requester belongs to", example="resto-chain")
    requester = _text(description="the customer's user who did it", example="j.martin@resto-chain.fr")
    at = _business_instant()


class IncidentOpenV1(_ExtranetSchema):
    """A customer opens an incident on the extranet.

    It becomes an incident logged through the extranet channel, reported by the requester, with the id
    uuid5(INTAKE_ID_NAMESPACE, message_id). Impact and urgency default to 3 (low): the service desk
    reprioritises after reading it.
    """

    json_schema_extra = {"anyOf": [{"required": ["ci"]}, {"required": ["service"]}]}

    type = _type("incident.open")
    schema_version = _version(1)
    title = _text(500)
    description = fields.String(load_default="", validate=validate.Length(max=20000))
    ci = _text(required=False, description="the CI affected (this or service is required)")
    service = _text(required=False, description="the service affected (this or ci is required)")
    impact = _level("impact", EXTRANET_DEFAULT_IMPACT)
    urgency = _level("urgency", EXTRANET_DEFAULT_URGENCY)

    @validates_schema
    def _names_what_is_affected(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("ci") and not data.get("service"):
            raise ValidationError("name the ci or the service affected (one of them is required)")


class RequestOpenV1(_ExtranetSchema):
    """A customer asks for something (a service request) on the extranet.

    It becomes an incident of category "service request", logged through the extranet channel with
    impact 3 and urgency 3, on the service named or else on "service requests".
    """

    type = _type("request.open")
    schema_version = _version(1)
    title = _text(500)
    description = fields.String(load_default="", validate=validate.Length(max=20000))
    ci = _text(required=False, description="the CI concerned, if any")
    service = _text(required=False, description=f"the service concerned; default {SERVICE_REQUEST_SERVICE!r}")


class CommentAddV1(_ExtranetSchema):
    """A customer comments on one of the account's incidents.

    It becomes a customer-visible comment on the incident (an `Incident.Commented` event on itil.events),
    written by `author` and entered by the requester. The incident must be one of the account's and not
    closed or cancelled; a comment never reopens a resolved incident (resolution.refuse does).
    """

    type = _type("comment.add")
    schema_version = _version(1)
    incident_id = fields.UUID(required=True)
    author = _text(description="who wrote the comment")
    text = _text(20000)


class ResolutionConfirmV1(_ExtranetSchema):
    """The customer confirms a resolved incident is fixed: the incident is closed."""

    type = _type("resolution.confirm")
    schema_version = _version(1)
    incident_id = fields.UUID(required=True)


class ResolutionRefuseV1(_ExtranetSchema):
    """The customer says a resolved incident is not fixed: the incident is reopened."""

    type = _type("resolution.refuse")
    schema_version = _version(1)
    incident_id = fields.UUID(required=True)
    reason = _text(5000)


# -- itil.intake.fleet: carrier links and payment terminals ----------------------------------------


class CiStateV1(MessageSchema):
    """The fleet system reports the state of a CI (a link, a router, a payment terminal…)."""

    json_schema_extra = {
        "if": {"properties": {"state": {"const": "replaced"}}, "required": ["state"]},
        "then": {"required": ["replaced_by"]},
    }

    type = _type("ci.state")
    schema_version = _version(1)
    account = _text(description="the customer account", example="resto-chain")
    ci = _text(description="the CI's name", example="tpe-0042")
    kind = _text(description="what the CI is", example="payment terminal")
    state = fields.String(required=True, validate=validate.OneOf(CI_STATES))
    at = _instant("when the state was observed")
    replaced_by = _text(required=False, description="the CI that replaced it (required when state is replaced)")

    @validates_schema
    def _replacement_is_named(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("state") == "replaced" and not data.get("replaced_by"):
            raise ValidationError("a replaced CI names the CI that replaced it", "replaced_by")


# -- itil.commands: commands from other systems ----------------------------------------------------


class _NoArgs(Schema):
    class Meta:
        unknown = RAISE


class AssignArgs(_NoArgs):
    group = _text()
    assignee = _text(required=False)


class HoldArgs(_NoArgs):
    reason = fields.String(required=True, validate=validate.OneOf(HOLD_REASONS))
    note = fields.String(load_default="", validate=validate.Length(max=5000))


class NoteArgs(_NoArgs):
    note = fields.String(load_default="", validate=validate.Length(max=5000))


class ResolveArgs(_NoArgs):
    code = fields.String(required=True, validate=validate.OneOf(RESOLUTION_CODES))
    notes = fields.String(load_default="", validate=validate.Length(max=20000))


class ReasonArgs(_NoArgs):
    reason = _text(5000)


class ReprioritiseArgs(_NoArgs):
    impact = fields.Integer(required=True, strict=True, validate=validate.OneOf(IMPACT_URGENCY))
    urgency = fields.Integer(required=True, strict=True, validate=validate.OneOf(IMPACT_URGENCY))


INCIDENT_COMMAND_ARGS: dict[str, Schema] = {
    "acknowledge": _NoArgs(),
    "assign": AssignArgs(),
    "hold": HoldArgs(),
    "resume": _NoArgs(),
    "restore": NoteArgs(),
    "resolve": ResolveArgs(),
    "reopen": ReasonArgs(),
    "close": _NoArgs(),
    "cancel": ReasonArgs(),
    "reprioritise": ReprioritiseArgs(),
}
"""The incident commands `command.incident` may carry, and the schema of each one's args."""


def _incident_args_conditions(convert: Callable[[Schema], dict[str, Any]]) -> dict[str, Any]:
    return {
        "allOf": [
            {
                "if": {"properties": {"command": {"const": name}}, "required": ["command"]},
                "then": {"properties": {"args": convert(schema)}},
            }
            for name, schema in INCIDENT_COMMAND_ARGS.items()
        ]
    }


class CommandIncidentV1(MessageSchema):
    """Another system carries out a command on an incident; the actor is the message's source."""

    json_schema_extra = staticmethod(_incident_args_conditions)

    type = _type("command.incident")
    schema_version = _version(1)
    incident_id = fields.UUID(required=True)
    command = fields.String(required=True, validate=validate.OneOf(tuple(INCIDENT_COMMAND_ARGS)))
    args = fields.Dict(keys=fields.String(), load_default=dict, metadata={"description": "the command's arguments"})
    at = _business_instant()

    @validates_schema
    def _args_fit_the_command(self, data: dict[str, Any], **kwargs: Any) -> None:
        schema = INCIDENT_COMMAND_ARGS[data["command"]]
        try:
            data["args"] = schema.load(data.get("args") or {})
        except ValidationError as error:
            raise ValidationError({"args": error.messages}) from None


class CommandProblemV1(MessageSchema):
    """Another system carries out a command on a problem; the actor is the message's source."""

    type = _type("command.problem")
    schema_version = _version(1)
    problem_id = fields.UUID(required=True)
    command = _text(100, example="investigate")
    args = fields.Dict(keys=fields.String(), load_default=dict, metadata={"description": "the command's arguments"})
    at = _business_instant()


class CommandChangeV1(MessageSchema):
    """Another system carries out a command on a change; the actor is the message's source."""

    type = _type("command.change")
    schema_version = _version(1)
    change_id = fields.UUID(required=True)
    command = _text(100, example="complete")
    args = fields.Dict(keys=fields.String(), load_default=dict, metadata={"description": "the command's arguments"})
    at = _business_instant()


# -- automation ------------------------------------------------------------------------------------


class AutomationRequestV1(MessageSchema):
    """The engine asks the automation platform to run a corrective action (outbound)."""

    type = _type("automation.request")
    schema_version = _version(1)
    request_id = fields.UUID(required=True)
    incident_id = fields.UUID(required=True)
    account = _text()
    ci = _text(required=False)
    action = _text(description="the automation to run", example="restart-tpe-gateway")
    parameters = fields.Dict(keys=fields.String(), load_default=dict)
    at = _instant("when the engine decided to run it")


class AutomationResultV1(MessageSchema):
    """The automation platform reports how a requested action went."""

    type = _type("automation.result")
    schema_version = _version(1)
    request_id = fields.UUID(required=True, metadata={"description": "the automation.request it answers"})
    incident_id = fields.UUID(required=True)
    action = _text(example="restart-tpe-gateway")
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    detail = fields.String(load_default="", validate=validate.Length(max=20000))
    at = _instant("when the action ended")


# -- dead letters ----------------------------------------------------------------------------------


class SourceSchema(Schema):
    topic = fields.String(required=True)
    partition = fields.Integer(required=True, validate=validate.Range(min=0))
    offset = fields.Integer(required=True, validate=validate.Range(min=0))


class DeadLetterSchema(Schema):
    """A refused message on `itil.deadletter`: its original bytes, where it came from and why it was refused.

    Keyed by the original message's key. Letters written by the itil.events worker carry only reason,
    source, key_base64, value_base64 and dead_lettered_at.
    """

    dead_letter_version = fields.Integer(load_default=1, validate=validate.Equal(1))
    dead_letter_id = fields.UUID(
        load_default=None,
        metadata={"description": "uuid5 of the source position and the value: the same message refused twice"},
    )
    reason = fields.String(required=True)
    source = fields.Nested(SourceSchema, required=True)
    key_base64 = fields.String(required=True, allow_none=True)
    value_base64 = fields.String(required=True)
    message_type = fields.String(load_default=None, metadata={"description": "when the message named one"})
    message_id = fields.String(load_default=None, metadata={"description": "when the message named one"})
    schema_version = fields.Integer(load_default=None)
    dead_lettered_at = fields.AwareDateTime(required=True)
    value_truncated = fields.Boolean(
        load_default=False,
        metadata={"description": "the message was too large for a letter: value_base64 holds only its beginning"},
    )
    value_size = fields.Integer(load_default=None, metadata={"description": "the whole value's size in bytes"})
    value_sha256 = fields.String(load_default=None, metadata={"description": "the whole value's SHA-256, in hex"})


# -- the registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contract:
    """One version of one message type: where it travels, its schema, its Kafka key, an example."""

    type: str
    version: int
    topic: str
    schema: Schema
    key: str
    example: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return (type(self.schema).__doc__ or "").strip().splitlines()[0]

    @property
    def description(self) -> str:
        return " ".join(line.strip() for line in (type(self.schema).__doc__ or "").strip().splitlines())


def _example(message_type: str, source: str, **body: Any) -> dict[str, Any]:
    return {
        "message_id": f"{source}-{uuid5(INTAKE_ID_NAMESPACE, 'example:' + message_type)}",
        "type": message_type,
        "schema_version": 1,
        "sent_at": "2026-03-02T09:15:02+01:00",
        "source": source,
        **body,
    }


_INCIDENT = "5f0c7c1e-2b8e-4f6a-9a34-0d6f0e1b9c21"
_ALARM = {"account": "resto-chain", "ci": "router-marseille-01", "check": "ping", "dedup_key": "centreon:4711"}

_CONTRACT_LIST = (
    Contract("alarm.raised", 1, ALERTS_TOPIC, AlarmRaisedV1(), "dedup_key", _example(
        "alarm.raised", "centreon", **_ALARM, severity="critical", at="2026-03-02T09:15:00+01:00",
        summary="router-marseille-01 does not answer ping", details={"loss": "100%"})),
    Contract("alarm.updated", 1, ALERTS_TOPIC, AlarmUpdatedV1(), "dedup_key", _example(
        "alarm.updated", "centreon", **_ALARM, severity="major", at="2026-03-02T09:20:00+01:00",
        summary="packet loss down to 40%")),
    Contract("alarm.cleared", 1, ALERTS_TOPIC, AlarmClearedV1(), "dedup_key", _example(
        "alarm.cleared", "centreon", **_ALARM, at="2026-03-02T09:41:00+01:00")),
    Contract("incident.open", 1, REQUESTS_TOPIC, IncidentOpenV1(), "account", _example(
        "incident.open", "extranet", account="resto-chain", requester="j.martin@resto-chain.fr",
        title="Payment terminal offline", description="TPE at the Aubagne restaurant shows 'no line'",
        ci="tpe-0042", urgency=2)),
    Contract("request.open", 1, REQUESTS_TOPIC, RequestOpenV1(), "account", _example(
        "request.open", "extranet", account="resto-chain", requester="j.martin@resto-chain.fr",
        title="Two more payment terminals for the Nice restaurant", service="payment terminals")),
    Contract("comment.add", 1, REQUESTS_TOPIC, CommentAddV1(), "incident_id", _example(
        "comment.add", "extranet", account="resto-chain", requester="j.martin@resto-chain.fr",
        incident_id=_INCIDENT, author="J. Martin", text="The terminal restarts every ten minutes.")),
    Contract("resolution.confirm", 1, REQUESTS_TOPIC, ResolutionConfirmV1(), "incident_id", _example(
        "resolution.confirm", "extranet", account="resto-chain", requester="j.martin@resto-chain.fr",
        incident_id=_INCIDENT)),
    Contract("resolution.refuse", 1, REQUESTS_TOPIC, ResolutionRefuseV1(), "incident_id", _example(
        "resolution.refuse", "extranet", account="resto-chain", requester="j.martin@resto-chain.fr",
        incident_id=_INCIDENT, reason="the terminal went offline again this morning")),
    Contract("ci.state", 1, FLEET_TOPIC, CiStateV1(), "ci", _example(
        "ci.state", "tpe-fleet", account="resto-chain", ci="tpe-0042", kind="payment terminal",
        state="replaced", at="2026-03-02T14:00:00+01:00", replaced_by="tpe-0613")),
    Contract("command.incident", 1, COMMANDS_TOPIC, CommandIncidentV1(), "incident_id", _example(
        "command.incident", "aes-automation", incident_id=_INCIDENT, command="assign",
        args={"group": "N2 network", "assignee": "tech-07"})),
    Contract("command.problem", 1, COMMANDS_TOPIC, CommandProblemV1(), "problem_id", _example(
        "command.problem", "aes-automation", problem_id="7a1e2c3d-4b5f-4607-8899-aabbccddeeff",
        command="investigate")),
    Contract("command.change", 1, COMMANDS_TOPIC, CommandChangeV1(), "change_id", _example(
        "command.change", "aes-automation", change_id="0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b",
        command="complete", args={"notes": "firmware 4.2 rolled out"})),
    Contract("automation.request", 1, AUTOMATION_REQUESTS_TOPIC, AutomationRequestV1(), "incident_id", _example(
        "automation.request", "itil-engine", request_id="c3b2a190-8f7e-4d6c-b5a4-9382716a5b4c",
        incident_id=_INCIDENT, account="resto-chain", ci="tpe-0042", action="restart-tpe-gateway",
        parameters={"site": "aubagne"}, at="2026-03-02T09:16:00+01:00")),
    Contract("automation.result", 1, AUTOMATION_RESULTS_TOPIC, AutomationResultV1(), "incident_id", _example(
        "automation.result", "rundeck", request_id="c3b2a190-8f7e-4d6c-b5a4-9382716a5b4c",
        incident_id=_INCIDENT, action="restart-tpe-gateway", outcome="success",
        detail="gateway restarted, terminal back online", at="2026-03-02T09:17:30+01:00")),
)  # fmt: skip

MESSAGE_CONTRACTS: dict[tuple[str, int], Contract] = {(c.type, c.version): c for c in _CONTRACT_LIST}
"""(type, schema version) -> its contract."""

CONTRACTS: dict[tuple[str, int], Schema] = {key: c.schema for key, c in MESSAGE_CONTRACTS.items()}
"""(type, schema version) -> the marshmallow schema of that version."""

TOPIC_TYPES: dict[str, tuple[str, ...]] = {}
"""Topic -> the message types it carries."""
for _contract in _CONTRACT_LIST:
    if _contract.type not in TOPIC_TYPES.setdefault(_contract.topic, ()):
        TOPIC_TYPES[_contract.topic] += (_contract.type,)

TOPIC_OF_TYPE: dict[str, str] = {c.type: c.topic for c in _CONTRACT_LIST}


def supported_versions(message_type: str) -> tuple[int, ...]:
    return tuple(sorted(v for t, v in CONTRACTS if t == message_type))


# -- decoding --------------------------------------------------------------------------------------


class ContractViolation(ValueError):
    """A message does not follow its contract; `reason` says what a sender must fix."""

    def __init__(
        self,
        reason: str,
        *,
        message_type: str | None = None,
        message_id: str | None = None,
        schema_version: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message_type = message_type
        self.message_id = message_id
        self.schema_version = schema_version


@dataclass(frozen=True)
class IntakeMessage:
    """One decoded message: the common fields, and its type's fields (typed by its schema) in `data`."""

    topic: str
    type: str
    schema_version: int
    message_id: str
    sent_at: datetime
    source: str
    data: Mapping[str, Any]

    @property
    def account(self) -> str | None:
        account = self.data.get("account")
        return account if isinstance(account, str) else None

    @property
    def at(self) -> datetime:
        """The business instant the message carries, or else when it was sent."""
        at = self.data.get("at")
        return at if isinstance(at, datetime) else self.sent_at


def describe_errors(messages: Any, path: str = "") -> list[str]:
    """marshmallow's error messages as lines `field.sub: what is wrong`, sorted by field."""
    if isinstance(messages, Mapping):
        lines: list[str] = []
        for name in sorted(messages, key=str):
            sub = path if name == "_schema" else f"{path}.{name}" if path else str(name)
            lines += describe_errors(messages[name], sub)
        return lines
    if isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            text = " ".join(m.rstrip(".") for m in messages)
            return [f"{path}: {text}" if path else text]
        return [line for m in messages for line in describe_errors(m, path)]
    return [f"{path}: {messages}" if path else str(messages)]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}.get(
        type(value), type(value).__name__
    )


_FAST_LOADERS: dict[Schema, Loader | None] = {schema: compile_loader(schema) for schema in CONTRACTS.values()}
"""Each contract's schema -> its exact fast loader (streams.fastload), or None where only marshmallow loads it."""


def _fast_loader(schema: Schema) -> Loader | None:
    try:
        return _FAST_LOADERS[schema]
    except KeyError:
        loader = _FAST_LOADERS[schema] = compile_loader(schema)
        return loader


def _version_refused(message_type: str, version: Any, known: dict[str, Any]) -> ContractViolation:
    """The refusal of a schema_version no contract of `message_type` has (worded only when refused)."""
    versions = ", ".join(str(v) for v in supported_versions(message_type))
    if isinstance(version, bool) or not isinstance(version, int):
        return ContractViolation(
            f"schema_version must be a whole number (supported for {message_type}: {versions}),"
            f" not {json.dumps(version)}",
            **known,
        )
    return ContractViolation(
        f"{message_type} schema version {version} is not supported: supported versions are {versions}",
        schema_version=version,
        **known,
    )


MAX_JSON_DEPTH = 64
"""How deep the objects and arrays of a message (or a request body) may nest: deeper is refused at
the door, before anything recurses over it."""


def json_depth(value: Any) -> int:
    """How deep `value`'s objects and arrays nest (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _json_loads(raw: bytes) -> Any:
    """The message read by the json module, or the reason it is not JSON in words."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ContractViolation(f"malformed message: not UTF-8 text ({error})") from None
    except ValueError as error:
        raise ContractViolation(f"malformed JSON: {error}") from None
    except RecursionError:
        raise ContractViolation(f"the message nests more than {MAX_JSON_DEPTH} levels deep") from None


def decode_intake(topic: str, raw: bytes | None) -> IntakeMessage:
    """Decode and validate one message of `topic`; raises ContractViolation with a readable reason."""
    types = TOPIC_TYPES.get(topic)
    if types is None:
        raise ContractViolation(f"{topic} is not a topic of the contracts (they are {', '.join(TOPIC_TYPES)})")
    if raw is None or not raw.strip():
        raise ContractViolation("empty message: expected a JSON object")
    try:
        body = fastjson.loads(raw)
    except fastjson.NotExact:
        body = _json_loads(raw)
    if not isinstance(body, dict):
        raise ContractViolation(f"the message must be a JSON object, not {_json_type(body)}")
    message_id = body.get("message_id") if isinstance(body.get("message_id"), str) else None
    if json_depth(body) > MAX_JSON_DEPTH:
        raise ContractViolation(f"the message nests more than {MAX_JSON_DEPTH} levels deep", message_id=message_id)
    message_type = body.get("type")
    if not isinstance(message_type, str) or not message_type:
        raise ContractViolation(
            f"the message has no type: expected one of {', '.join(types)} on {topic}", message_id=message_id
        )
    known: dict[str, Any] = {"message_type": message_type, "message_id": message_id}
    if message_type not in types:
        elsewhere = TOPIC_OF_TYPE.get(message_type)
        if elsewhere is not None:
            raise ContractViolation(f"{message_type} messages go on {elsewhere}, not on {topic}", **known)
        raise ContractViolation(
            f"unknown message type {message_type!r} on {topic}: expected one of {', '.join(types)}", **known
        )
    version = body.get("schema_version")
    schema = CONTRACTS.get((message_type, version)) if type(version) is int else None
    if schema is None or not isinstance(version, int):
        raise _version_refused(message_type, version, known)
    fast = _fast_loader(schema)
    loaded = fast(body) if fast is not None else None
    if loaded is None:  # the fast path does not vouch for it: marshmallow loads it, or says what is wrong
        try:
            loaded = schema.load(body)
        except ValidationError as error:
            reasons = "; ".join(describe_errors(error.messages))
            raise ContractViolation(
                f"{message_type} v{version} does not follow its contract: {reasons}",
                schema_version=version,
                **known,
            ) from None
    return IntakeMessage(
        topic=topic,
        type=message_type,
        schema_version=version,
        message_id=loaded["message_id"],
        sent_at=loaded["sent_at"],
        source=loaded["source"],
        data={k: v for k, v in loaded.items() if k not in COMMON_FIELDS},
    )
