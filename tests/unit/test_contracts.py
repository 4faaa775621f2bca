"""The intake contracts: what decodes, why a message is refused, and the documents generated from them."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from marshmallow import fields

from itil.cli_intake import register_intake_cli
from streams.contracts import (
    CONTRACTS,
    INCIDENT_COMMAND_ARGS,
    INTAKE_TOPICS,
    MESSAGE_CONTRACTS,
    TOPIC_TYPES,
    ContractViolation,
    decode_intake,
    describe_errors,
    intake_incident_id,
)
from streams.contracts_export import (
    CONTRACTS_DIR,
    JSON_SCHEMA_DIALECT,
    asyncapi_document,
    documents,
    field_schema,
    json_schemas,
)
from streams.request_intake import INCIDENT_COMMAND_TYPES
from web.contracts import asyncapi_route, json_schema_route

EXAMPLES = sorted(MESSAGE_CONTRACTS)


def example(message_type: str, **changes: Any) -> dict[str, Any]:
    body = dict(MESSAGE_CONTRACTS[(message_type, 1)].example)
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def refusal(topic: str, body: Any) -> ContractViolation:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ContractViolation) as caught:
        decode_intake(topic, raw)
    return caught.value


@pytest.mark.parametrize("key", EXAMPLES, ids=lambda k: f"{k[0]}-v{k[1]}")
def test_every_message_type_has_a_valid_example_that_decodes(key: tuple[str, int]) -> None:
    contract = MESSAGE_CONTRACTS[key]
    message = decode_intake(contract.topic, json.dumps(contract.example).encode())
    assert (message.type, message.schema_version, message.topic) == (*key, contract.topic)
    assert message.message_id == contract.example["message_id"]
    assert message.sent_at.tzinfo is not None
    assert not {"message_id", "type", "schema_version", "sent_at", "source"} & set(message.data)
    assert contract.key in contract.example, "the documented Kafka key is a field of the message"


def test_registry_lists_every_topic_and_type_once() -> None:
    assert set(TOPIC_TYPES) == {
        "itil.intake.alerts", "itil.intake.requests", "itil.intake.fleet", "itil.commands",
        "itil.automation.requests", "itil.automation.results",
    }  # fmt: skip
    assert TOPIC_TYPES["itil.intake.alerts"] == ("alarm.raised", "alarm.updated", "alarm.cleared")
    assert TOPIC_TYPES["itil.intake.requests"] == (
        "incident.open", "request.open", "comment.add", "resolution.confirm", "resolution.refuse",
    )  # fmt: skip
    assert TOPIC_TYPES["itil.commands"] == ("command.incident", "command.problem", "command.change")
    assert TOPIC_TYPES["itil.automation.results"] == ("automation.result",)
    assert set(CONTRACTS) == set(MESSAGE_CONTRACTS)
    assert "itil.automation.requests" not in INTAKE_TOPICS


def test_extranet_incident_defaults_to_low_impact_and_urgency_and_its_id_follows_the_message_id() -> None:
    body = example("incident.open", urgency=..., impact=...)
    message = decode_intake("itil.intake.requests", json.dumps(body).encode())
    assert (message.data["impact"], message.data["urgency"]) == (3, 3)
    assert message.at == message.sent_at  # no business instant given: when it was sent
    assert intake_incident_id(body["message_id"]) == intake_incident_id(body["message_id"])
    assert intake_incident_id(body["message_id"]) != intake_incident_id(body["message_id"] + "-2")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message: expected a JSON object"),
        (b'{"type": "incident.open",', "malformed JSON: Expecting property name enclosed in double quotes"),
        (b"\xff\xfe{}", "malformed message: not UTF-8 text"),
        (b"[1, 2]", "the message must be a JSON object, not an array"),
        (b'"hello"', "the message must be a JSON object, not a string"),
        (b'{"message_id": "m-1"}', "the message has no type: expected one of incident.open, request.open"),
    ],
)
def test_unreadable_messages_are_refused_with_a_readable_reason(raw: bytes, reason: str) -> None:
    assert refusal("itil.intake.requests", raw).reason.startswith(reason)


def test_json_that_only_the_json_module_reads_is_read_as_it_reads_it() -> None:
    """Messages are parsed by orjson first; what it refuses and `json` accepts (a lone surrogate
    escape, a number beyond 64 bits, NaN) is read by `json`, as before."""
    body = example("alarm.raised")
    text = json.dumps(body).replace('"summary": "', '"summary": "\\ud800 ', 1)
    assert decode_intake("itil.intake.alerts", text.encode()).data["summary"].startswith("\ud800 ")
    huge = json.dumps(body).replace('"schema_version": 1', '"schema_version": 100000000000000000000000')
    assert refusal("itil.intake.alerts", huge.encode()).reason == (
        "alarm.raised schema version 100000000000000000000000 is not supported: supported versions are 1"
    )
    nan = json.dumps(body).replace('"schema_version": 1', '"schema_version": NaN')
    assert "not NaN" in refusal("itil.intake.alerts", nan.encode()).reason


def test_a_type_unknown_on_the_topic_is_refused_and_says_what_the_topic_carries() -> None:
    violation = refusal("itil.intake.requests", example("incident.open", type="incident.create"))
    assert violation.reason == (
        "unknown message type 'incident.create' on itil.intake.requests: expected one of incident.open,"
        " request.open, comment.add, resolution.confirm, resolution.refuse"
    )
    assert violation.message_type == "incident.create"
    assert violation.message_id == example("incident.open")["message_id"]


def test_a_type_sent_to_the_wrong_topic_says_where_it_belongs() -> None:
    violation = refusal("itil.intake.requests", example("alarm.raised"))
    assert violation.reason == "alarm.raised messages go on itil.intake.alerts, not on itil.intake.requests"


def test_an_unknown_schema_version_is_refused_with_the_supported_ones() -> None:
    violation = refusal("itil.intake.alerts", example("alarm.raised", schema_version=2))
    assert violation.reason == "alarm.raised schema version 2 is not supported: supported versions are 1"
    assert violation.schema_version == 2
    missing = refusal("itil.intake.alerts", example("alarm.raised", schema_version=...))
    assert missing.reason == "schema_version must be a whole number (supported for alarm.raised: 1), not null"
    assert 'not "1"' in refusal("itil.intake.alerts", example("alarm.raised", schema_version="1")).reason
    assert "not true" in refusal("itil.intake.alerts", example("alarm.raised", schema_version=True)).reason


def test_schema_violations_list_every_field_error() -> None:
    body = example("alarm.raised", severity="disaster", at="2026-03-02T09:15:00", account=..., colour="red")
    violation = refusal("itil.intake.alerts", body)
    assert violation.reason == (
        "alarm.raised v1 does not follow its contract: account: Missing data for required field;"
        " at: Not a valid aware datetime; colour: Unknown field;"
        " severity: Must be one of: critical, major, minor, warning"
    )
    assert violation.message_type == "alarm.raised" and violation.schema_version == 1


def test_an_extranet_incident_must_name_the_ci_or_the_service() -> None:
    violation = refusal("itil.intake.requests", example("incident.open", ci=...))
    assert violation.reason.endswith("name the ci or the service affected (one of them is required)")


def test_a_replaced_ci_must_name_its_replacement() -> None:
    violation = refusal("itil.intake.fleet", example("ci.state", replaced_by=...))
    assert violation.reason.endswith("replaced_by: a replaced CI names the CI that replaced it")
    decode_intake("itil.intake.fleet", json.dumps(example("ci.state", state="down", replaced_by=...)).encode())


def test_incident_command_args_are_checked_against_the_command() -> None:
    violation = refusal("itil.commands", example("command.incident", args={"assignee": "tech-07", "urgent": True}))
    assert violation.reason.endswith("args.group: Missing data for required field; args.urgent: Unknown field")
    violation = refusal("itil.commands", example("command.incident", command="delete"))
    assert "command: Must be one of: acknowledge, assign" in violation.reason
    hold = example("command.incident", command="hold", args={"reason": "awaiting_customer"})
    message = decode_intake("itil.commands", json.dumps(hold).encode())
    assert message.data["args"] == {"reason": "awaiting_customer", "note": ""}


def test_every_incident_command_of_the_contract_maps_onto_its_command_class() -> None:
    assert set(INCIDENT_COMMAND_TYPES) == set(INCIDENT_COMMAND_ARGS)
    for name, schema in INCIDENT_COMMAND_ARGS.items():
        accepted = {f.name for f in dataclasses.fields(INCIDENT_COMMAND_TYPES[name])}
        assert set(schema.fields) <= accepted - {"incident_id", "actor", "at"}, name
        required = {f.name for f in dataclasses.fields(INCIDENT_COMMAND_TYPES[name])
                    if f.default is dataclasses.MISSING} - {"incident_id", "actor", "at"}  # fmt: skip
        assert required <= {n for n, f in schema.fields.items() if f.required}, name


def test_nested_errors_are_flattened_to_dotted_paths() -> None:
    errors = {"args": {"group": ["Missing data for required field."]}, "_schema": ["Bad."], "a": {0: ["x."]}}
    assert describe_errors(errors) == ["Bad", "a.0: x", "args.group: Missing data for required field"]


# -- JSON Schema and AsyncAPI ---------------------------------------------------------------------------


def test_json_schemas_carry_types_required_fields_enums_and_formats() -> None:
    schemas = json_schemas()
    assert set(schemas) == {f"{t}.v{v}" for t, v in CONTRACTS} | {"itil.events.envelope.v1", "itil.deadletter.v1"}
    raised = schemas["alarm.raised.v1"]
    assert raised["$schema"] == JSON_SCHEMA_DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert raised["type"] == "object" and raised["additionalProperties"] is False
    assert set(raised["required"]) >= {"message_id", "type", "schema_version", "sent_at", "source", "severity"}
    assert "details" not in raised["required"]
    props = raised["properties"]
    assert props["severity"]["enum"] == ["critical", "major", "minor", "warning"]
    assert props["type"]["const"] == "alarm.raised" and props["schema_version"]["const"] == 1
    assert props["sent_at"] == {"type": "string", "format": "date-time",
                                "description": "when the sender sent the message (ISO 8601 with an offset)"}  # fmt: skip
    assert props["details"]["type"] == "object" and props["details"]["default"] == {}
    opened = schemas["incident.open.v1"]
    assert opened["properties"]["impact"]["default"] == 3 and opened["properties"]["impact"]["enum"] == [1, 2, 3]
    assert opened["anyOf"] == [{"required": ["ci"]}, {"required": ["service"]}]
    assert schemas["resolution.confirm.v1"]["properties"]["incident_id"] == {"type": "string", "format": "uuid"}
    dead = schemas["itil.deadletter.v1"]["properties"]
    assert dead["source"]["required"] == ["topic", "partition", "offset"]  # nested schema, inlined
    assert dead["key_base64"]["type"] == ["string", "null"]
    commands = schemas["command.incident.v1"]["allOf"]
    assign = next(c for c in commands if c["if"]["properties"]["command"]["const"] == "assign")
    assert assign["then"]["properties"]["args"]["required"] == ["group"]
    envelope = schemas["itil.events.envelope.v1"]
    assert envelope["properties"]["aggregate_version"]["minimum"] == 1
    assert envelope["properties"]["previous_position"]["type"] == ["integer", "null"]


def test_field_conversion_covers_lists_tuples_and_ranges() -> None:
    assert field_schema(fields.List(fields.UUID())) == {"type": "array", "items": {"type": "string", "format": "uuid"}}
    assert field_schema(fields.Tuple((fields.Integer(), fields.String()))) == {
        "type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2, "maxItems": 2,
    }  # fmt: skip
    from marshmallow import validate

    ranged = fields.Float(validate=validate.Range(min=0, max=1, max_inclusive=False))
    assert field_schema(ranged) == {"type": "number", "minimum": 0, "exclusiveMaximum": 1}


def test_asyncapi_document_lists_every_channel_with_its_messages_keys_and_direction() -> None:
    doc = asyncapi_document()
    assert doc["asyncapi"] == "3.0.0"
    addresses = {c["address"]: c for c in doc["channels"].values()}
    assert set(addresses) == set(TOPIC_TYPES) | {"itil.events", "itil.deadletter"}
    messages = doc["components"]["messages"]
    for (message_type, version), contract in MESSAGE_CONTRACTS.items():
        channel = addresses[contract.topic]
        ref = channel["messages"][f"{message_type.replace('.', '-')}-v{version}"]["$ref"]
        message = messages[ref.removeprefix("#/components/messages/")]
        assert message["name"] == message_type
        assert message["payload"]["properties"]["type"]["const"] == message_type
        assert "$schema" not in message["payload"]
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        assert message["examples"][0]["payload"] == contract.example
    actions = {op["channel"]["$ref"].removeprefix("#/channels/"): op["action"] for op in doc["operations"].values()}
    assert actions["itil-intake-requests"] == "receive" and actions["itil-automation-results"] == "receive"
    assert actions["itil-events"] == "send" and actions["itil-deadletter"] == "send"
    assert actions["itil-automation-requests"] == "send"
    envelope = messages["itil-events-envelope-v1"]
    assert envelope["payload"]["properties"]["envelope_version"]["const"] == 1
    assert "aggregate id" in envelope["bindings"]["kafka"]["key"]["description"]
    for op in doc["operations"].values():  # every reference resolves
        for ref in [op["channel"]["$ref"], *(m["$ref"] for m in op["messages"])]:
            node: Any = doc
            for part in ref.removeprefix("#/").split("/"):
                node = node[part]
            assert node


def test_committed_contract_documents_are_up_to_date() -> None:
    expected = documents("all")
    stale = [n for n, text in expected.items() if not (CONTRACTS_DIR / n).exists() or
             (CONTRACTS_DIR / n).read_text(encoding="utf-8") != text]  # fmt: skip
    extra = sorted(p.name for p in CONTRACTS_DIR.glob("*.json") if p.name not in expected)
    assert not stale and not extra, (
        f"docs/contracts is out of date (stale: {stale}, no longer generated: {extra});"
        " run `itil contracts --format all --out docs/contracts` and delete the files no longer generated"
    )


def test_http_handlers_serve_the_asyncapi_document_and_each_schema() -> None:
    async def scenario() -> None:
        response = await asyncapi_route(None, make_mocked_request("GET", "/api/contracts/asyncapi.json"))
        assert response.status == 200 and response.content_type == "application/json"
        assert json.loads(response.text or "")["asyncapi"] == "3.0.0"
        request = make_mocked_request("GET", "/x", match_info={"name": "incident.open.v1.schema.json"})
        response = await json_schema_route(None, request)
        assert json.loads(response.text or "")["title"] == "incident.open v1"
        missing = await json_schema_route(None, make_mocked_request("GET", "/x", match_info={"name": "nope"}))
        assert missing.status == 404

    asyncio.run(scenario())


def test_contracts_command_prints_or_writes_the_documents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: str) -> None:
        parser = argparse.ArgumentParser(prog="itil")
        register_intake_cli(parser.add_subparsers(dest="command", required=True))
        parsed = parser.parse_args(list(args))
        parsed.func(parsed)

    run("contracts")
    assert json.loads(capsys.readouterr().out)["asyncapi"] == "3.0.0"
    run("contracts", "--format", "jsonschema")
    assert "incident.open.v1" in json.loads(capsys.readouterr().out)
    run("contracts", "--format", "all", "--out", str(tmp_path / "out"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(documents("all"))


def test_dead_letters_of_the_events_worker_read_as_dead_letters() -> None:
    from types import SimpleNamespace

    from streams.intake import DeadLetter, dead_letter_id
    from streams.worker import dead_letter

    refused = SimpleNamespace(topic="itil.events", partition=2, offset=9, key=b"k", value=b"{bad")
    letter = DeadLetter.decode(dead_letter(refused, "not a valid itil.events envelope: ..."))
    assert (letter.topic, letter.partition, letter.offset, letter.key, letter.value) == (
        "itil.events", 2, 9, b"k", b"{bad",
    )  # fmt: skip
    assert letter.message_type is None and letter.id == dead_letter_id("itil.events", 2, 9, b"{bad")
    with pytest.raises(ValueError, match="not a dead letter"):
        DeadLetter.decode(b'{"reason": "x"}')


def test_json_schemas_are_valid_and_agree_with_the_marshmallow_contracts() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not among the test dependencies")
    schemas = json_schemas()
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
        for sample in schema["examples"]:
            jsonschema.validate(sample, schema, cls=jsonschema.Draft202012Validator)
    for message_type, changes in [
        ("incident.open", {"ci": ...}),
        ("ci.state", {"replaced_by": ...}),
        ("command.incident", {"args": {"assignee": "tech-07"}}),
        ("command.incident", {"command": "hold", "args": {"reason": "bored"}}),
        ("alarm.raised", {"severity": None}),
        ("resolution.confirm", {"incident_id": "not-a-uuid"}),
    ]:
        body = example(message_type, **changes)
        refusal(MESSAGE_CONTRACTS[(message_type, 1)].topic, body)
        validator = jsonschema.Draft202012Validator(
            schemas[f"{message_type}.v1"], format_checker=jsonschema.FormatChecker()
        )
        assert list(validator.iter_errors(body)), (message_type, changes)
