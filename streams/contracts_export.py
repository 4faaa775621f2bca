"""The message contracts as documents: JSON Schema (draft 2020-12) per message, and one AsyncAPI 3.0 document.

The JSON Schemas are converted from the marshmallow schemas of `streams.contracts` and
`streams.envelope`, so the documents cannot drift from what the engine accepts; `docs/contracts/`
holds the generated files (`itil contracts --format all --out docs/contracts` rewrites them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from marshmallow import RAISE, Schema, fields, validate
from marshmallow.utils import missing

from projections.records import ENVELOPE_VERSION
from streams.contracts import (
    DEADLETTER_TOPIC,
    EVENTS_TOPIC,
    INTAKE_ID_NAMESPACE,
    INTAKE_TOPICS,
    MESSAGE_CONTRACTS,
    TOPIC_DESCRIPTIONS,
    TOPIC_TYPES,
    Contract,
    DeadLetterSchema,
)
from streams.envelope import EventEnvelopeSchema

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_PREFIX = "urn:itil-engine:contract:"
ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
CONTRACTS_DIR = Path(__file__).resolve().parents[1] / "docs" / "contracts"
ENVELOPE_NAME = f"itil.events.envelope.v{ENVELOPE_VERSION}"
DEADLETTER_NAME = "itil.deadletter.v1"

# -- marshmallow -> JSON Schema ---------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _base(field: fields.Field) -> dict[str, Any]:
    """The JSON Schema of a field's type, before its validators and options."""
    if isinstance(field, fields.Nested):
        inner = json_schema_of(field.schema)
        return {"type": "array", "items": inner} if getattr(field, "many", False) else inner
    if isinstance(field, fields.List):
        return {"type": "array", "items": field_schema(field.inner)}
    if isinstance(field, fields.Tuple):
        items = [field_schema(f) for f in field.tuple_fields]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
    if isinstance(field, fields.Mapping):
        out: dict[str, Any] = {"type": "object"}
        if field.value_field is not None:
            out["additionalProperties"] = field_schema(field.value_field)
        if field.key_field is not None:
            keys = {k: v for k, v in field_schema(field.key_field).items() if k not in ("type", "description")}
            if keys:
                out["propertyNames"] = keys
        return out
    if isinstance(field, fields.UUID):
        return {"type": "string", "format": "uuid"}
    if isinstance(field, fields.DateTime):
        return {"type": "string", "format": "date-time"}
    if isinstance(field, fields.Date):
        return {"type": "string", "format": "date"}
    if isinstance(field, fields.Time):
        return {"type": "string", "format": "time"}
    if isinstance(field, fields.Email):
        return {"type": "string", "format": "email"}
    if isinstance(field, fields.Url):
        return {"type": "string", "format": "uri"}
    if isinstance(field, fields.String):
        return {"type": "string"}
    if isinstance(field, fields.Boolean):
        return {"type": "boolean"}
    if isinstance(field, fields.Integer):
        return {"type": "integer"}
    if isinstance(field, fields.Number):
        return {"type": "number"}
    return {}


def _apply_validator(out: dict[str, Any], validator: Any) -> None:
    kind = out.get("type")
    if isinstance(validator, validate.OneOf):
        out["enum"] = list(validator.choices)
    elif isinstance(validator, validate.Equal):
        out["const"] = validator.comparable
    elif isinstance(validator, validate.Length):
        names = {"array": ("minItems", "maxItems"), "object": ("minProperties", "maxProperties")}
        low, high = names.get(str(kind), ("minLength", "maxLength"))
        if validator.equal is not None:
            out[low] = out[high] = validator.equal
        if validator.min is not None:
            out[low] = validator.min
        if validator.max is not None:
            out[high] = validator.max
    elif isinstance(validator, validate.Range):
        if validator.min is not None:
            out["minimum" if validator.min_inclusive else "exclusiveMinimum"] = validator.min
        if validator.max is not None:
            out["maximum" if validator.max_inclusive else "exclusiveMaximum"] = validator.max
    elif isinstance(validator, validate.Regexp):
        out["pattern"] = validator.regex.pattern


def field_schema(field: fields.Field) -> dict[str, Any]:
    """The JSON Schema of one marshmallow field: type, format, validators, default, description."""
    out = dict(_base(field))
    for validator in field.validators:
        _apply_validator(out, validator)
    if field.allow_none:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "type" in out or "properties" in out:
            out = {"anyOf": [out, {"type": "null"}]}
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    if field.load_default is not missing:
        default = field.load_default() if callable(field.load_default) else field.load_default
        out["default"] = _plain(default)
    metadata = field.metadata or {}
    if metadata.get("description"):
        out["description"] = metadata["description"]
    if "example" in metadata:
        out["examples"] = [_plain(metadata["example"])]
    return out


def json_schema_of(schema: Schema) -> dict[str, Any]:
    """The JSON Schema of a marshmallow schema's load side (an object), without `$schema`."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in schema.fields.items():
        if field.dump_only:
            continue
        key = field.data_key or name
        properties[key] = field_schema(field)
        if field.required:
            required.append(key)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if schema.unknown == RAISE:
        out["additionalProperties"] = False
    extra = getattr(type(schema), "json_schema_extra", None)
    if callable(extra):
        extra = extra(json_schema_of)
    if extra:
        out.update(extra)
    return out


# -- the documents ------------------------------------------------------------------------------------


def _document(name: str, title: str, description: str, schema: Schema, examples: list[Any]) -> dict[str, Any]:
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{SCHEMA_ID_PREFIX}{name}",
        "title": title,
        "description": description,
        **json_schema_of(schema),
        "examples": examples,
    }


def _doc(schema: Schema) -> str:
    return " ".join(line.strip() for line in (type(schema).__doc__ or "").strip().splitlines() if line.strip())


def _name(contract: Contract) -> str:
    return f"{contract.type}.v{contract.version}"


ENVELOPE_EXAMPLE: dict[str, Any] = {
    "envelope_version": ENVELOPE_VERSION,
    "event_id": "9b4c1f0e-5d2a-5c7e-8f3b-2a6d1e0c9b8a",
    "event_type": "Incident.Logged",
    "aggregate_type": "Incident",
    "aggregate_id": "5f0c7c1e-2b8e-4f6a-9a34-0d6f0e1b9c21",
    "aggregate_version": 1,
    "position": 1042,
    "previous_position": 1038,
    "occurred_at": "2026-03-02T09:15:00+01:00",
    "recorded_at": "2026-03-02T08:15:01.204311+00:00",
    "actor": "j.martin@resto-chain.fr",
    "payload": {"account": "resto-chain", "ci": "tpe-0042", "title": "Payment terminal offline", "priority": 3},
}

DEADLETTER_EXAMPLE: dict[str, Any] = {
    "dead_letter_version": 1,
    "dead_letter_id": "3f9e2d1c-0b8a-5e7d-9c6b-5a4f3e2d1c0b",
    "reason": "incident.open schema version 2 is not supported: supported versions are 1",
    "source": {"topic": "itil.intake.requests", "partition": 0, "offset": 17},
    "key_base64": "cmVzdG8tY2hhaW4=",
    "value_base64": "eyJ0eXBlIjogImluY2lkZW50Lm9wZW4iLCAic2NoZW1hX3ZlcnNpb24iOiAyfQ==",
    "message_type": "incident.open",
    "message_id": None,
    "schema_version": 2,
    "dead_lettered_at": "2026-03-02T08:16:00.120000+00:00",
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every message's JSON Schema (draft 2020-12), by name: `<type>.v<version>`, the envelope, dead letters."""
    out = {
        _name(c): _document(_name(c), f"{c.type} v{c.version}", _doc(c.schema), c.schema, [c.example])
        for c in MESSAGE_CONTRACTS.values()
    }
    out[ENVELOPE_NAME] = _document(
        ENVELOPE_NAME, f"itil.events envelope v{ENVELOPE_VERSION}", _doc(EventEnvelopeSchema()),
        EventEnvelopeSchema(), [ENVELOPE_EXAMPLE],
    )  # fmt: skip
    out[DEADLETTER_NAME] = _document(
        DEADLETTER_NAME, "itil.deadletter v1", _doc(DeadLetterSchema()), DeadLetterSchema(), [DEADLETTER_EXAMPLE]
    )
    return out


def _id(text: str) -> str:
    return text.replace(".", "-")


def _message(
    name: str, title: str, summary: str, description: str, payload: dict[str, Any], key: str, example: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "description": description,
        "contentType": "application/json",
        "payload": payload,
        "bindings": {"kafka": {"key": {"type": "string", "description": key}, "bindingVersion": KAFKA_BINDING_VERSION}},
        "examples": [{"name": "example", "payload": example}],
    }


_KEYS = {
    "dedup_key": "the alarm's dedup_key: one alarm's raise, updates and clear stay in order",
    "account": "the account: one account's requests stay in order",
    "incident_id": "the incident id: one incident's messages stay in order",
    "problem_id": "the problem id",
    "change_id": "the change id",
    "ci": "the CI's name: one CI's states stay in order",
}

_DESCRIPTION = f"""\
The messages other services publish to the ITIL engine, and the ones it publishes.

Every message is one JSON object (UTF-8) with the common fields `message_id`, `type`, `schema_version`,
`sent_at` (ISO 8601 with an offset) and `source`, beside the fields of its type; unknown fields are
refused. Each type lists its supported schema versions; any other version is refused.

Processing the same `message_id` twice has the effect of once: message ids must be unique across
senders (a UUID, or prefixed with the sender's name). An incident opened by `incident.open` or
`request.open` gets the id uuid5({INTAKE_ID_NAMESPACE}, message_id), which the sender can compute.

A message that breaks its contract, names an unknown account or asks for something the engine's
rules refuse goes to `itil.deadletter` with the reason; it can be replayed after a fix."""


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic: channels, their messages and keys, and who sends what.

    Payloads use only JSON Schema keywords common to draft-07 (AsyncAPI's default schema format) and
    draft 2020-12, so they are the standalone schemas without `$schema`/`$id`.
    """
    schemas = json_schemas()
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def payload(name: str) -> dict[str, Any]:
        return {k: v for k, v in schemas[name].items() if k not in ("$schema", "$id", "examples")}

    def add_channel(topic: str, message_ids: list[str], action: str, summary: str) -> None:
        channel = _id(topic)
        channels[channel] = {
            "address": topic,
            "title": topic,
            "description": TOPIC_DESCRIPTIONS[topic],
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in message_ids},
            "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        operations[f"{action}-{channel}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{channel}/messages/{m}"} for m in message_ids],
        }

    for topic, types in TOPIC_TYPES.items():
        ids = []
        for contract in (c for c in MESSAGE_CONTRACTS.values() if c.topic == topic and c.type in types):
            message_id = _id(_name(contract))
            messages[message_id] = _message(
                contract.type, f"{contract.type} v{contract.version}", contract.summary, contract.description,
                payload(_name(contract)), _KEYS.get(contract.key, contract.key), contract.example,
            )  # fmt: skip
            ids.append(message_id)
        inbound = topic in INTAKE_TOPICS
        add_channel(
            topic, ids, "receive" if inbound else "send",
            "the engine consumes it" if inbound else "the engine publishes it",
        )  # fmt: skip
    envelope = _id(ENVELOPE_NAME)
    messages[envelope] = _message(
        "event.envelope", f"itil.events envelope v{ENVELOPE_VERSION}", "One stored domain event.",
        _doc(EventEnvelopeSchema()), payload(ENVELOPE_NAME), "the aggregate id: one aggregate's events stay in order",
        ENVELOPE_EXAMPLE,
    )  # fmt: skip
    add_channel(EVENTS_TOPIC, [envelope], "send", "the relay publishes every stored event")
    deadletter = _id(DEADLETTER_NAME)
    messages[deadletter] = _message(
        "dead.letter", "itil.deadletter v1", "A refused message and why it was refused.",
        _doc(DeadLetterSchema()), payload(DEADLETTER_NAME), "the refused message's own key", DEADLETTER_EXAMPLE,
    )  # fmt: skip
    add_channel(DEADLETTER_TOPIC, [deadletter], "send", "the engine publishes what it refused")
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": "ITIL engine: message contracts", "version": "1.0.0", "description": _DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "the cluster named by KAFKA_BOOTSTRAP_SERVERS (`itil up` starts an embedded one)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render(document: Mapping[str, Any]) -> str:
    """A document as the committed files hold it: indented JSON, non-ASCII kept, a final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def documents(fmt: str = "all") -> dict[str, str]:
    """File name -> content of the documents in `fmt` (asyncapi, jsonschema or all)."""
    out: dict[str, str] = {}
    if fmt in ("asyncapi", "all"):
        out["asyncapi.json"] = render(asyncapi_document())
    if fmt in ("jsonschema", "all"):
        out.update({f"{name}.schema.json": render(schema) for name, schema in json_schemas().items()})
    return out


def write_documents(out_dir: Path, fmt: str = "all") -> list[Path]:
    """Write the documents into `out_dir`; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in documents(fmt).items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# -- HTTP -------------------------------------------------------------------------------------------
