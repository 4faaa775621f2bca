"""The exact fast path of contract loading: it returns what marshmallow returns, or steps aside.

Whenever a compiled loader answers, its dict equals `schema.load(body)` exactly (types, key order,
tzinfo offsets); whenever marshmallow refuses, the loader returns None so the refusal and its message
come from marshmallow.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, validate, validates, validates_schema
from marshmallow.decorators import post_load, pre_load

from streams import contracts
from streams.contracts import CONTRACTS, MESSAGE_CONTRACTS, ContractViolation, decode_intake
from streams.fastload import Loader, compile_loader, why_not_compiled

COMPILED = {
    "alarm.raised", "alarm.updated", "alarm.cleared", "request.open", "comment.add", "resolution.confirm",
    "resolution.refuse", "command.problem", "command.change", "automation.request", "automation.result",
}  # fmt: skip
"""The contracts the fast path covers; the others have schema-level validation (`@validates_schema`)."""

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- exact comparison -------------------------------------------------------------------------------


def exact(value: Any) -> Any:
    """A structure equal for two values only when they are the same in type, order, value and time zone."""
    if isinstance(value, dict):
        return (type(value), [(exact(k), exact(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value), [exact(v) for v in value])
    if isinstance(value, datetime):
        return (type(value), value.isoformat(), repr(value.tzinfo), value.utcoffset(), value.fold)
    return (type(value), repr(value))


def agree(schema: Schema, loader: Loader, body: dict[str, Any]) -> str:
    """Check the loader against marshmallow on `body`; says which way it went."""
    before = copy.deepcopy(body)
    fast = loader(body)
    assert exact(body) == exact(before), "the loader must not change the message"
    try:
        expected = schema.load(copy.deepcopy(body))
    except ValidationError:
        assert fast is None, f"marshmallow refuses {body!r} but the fast path accepted it: {fast!r}"
        return "refused"
    if fast is None:
        return "fell back"
    assert fast == expected
    assert exact(fast) == exact(expected)
    return "fast"


# -- generated messages -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
huge_ints = st.sampled_from([2**63, -(2**63) - 1, 10**30, -(10**30)])
wrong_values = st.one_of(
    json_values,
    huge_ints,
    st.sampled_from(["", " ", "  x  ", "\t", "\n", "null", "1", "true", "0.0", True, False, 0, 1, 1.0, -1]),
    st.binary(max_size=4),  # not JSON, but marshmallow takes bytes for strings: the fast path must step aside
)

OFFSETS = ["", "Z", "z", "+00:00", "-00:00", "+01:00", "-05:30", "+0100", "+01", "+14:00", "+23:59", "+24:00",
           "+01:00:30", "+01:00:30.5", "+01:00:30.123456", "UTC", " +01:00", "+1:00"]  # fmt: skip


@st.composite
def iso_datetimes(draw: st.DrawFn) -> str:
    """ISO 8601 texts, valid or not: Z, offsets, fractions, naive, date-only, odd separators, whitespace."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    spec = draw(st.sampled_from(["hours", "minutes", "seconds", "milliseconds", "microseconds"]))
    text = moment.isoformat(sep=draw(st.sampled_from(["T", "t", " ", "_"])), timespec=spec)
    style = draw(st.integers(0, 9))
    if style == 0:
        text = moment.date().isoformat()
    elif style == 1 and spec in ("minutes", "seconds"):
        text += "." + "1234567890"[: draw(st.integers(1, 10))]
    elif style == 2:
        return draw(st.sampled_from(["2026-W10-1", "20260302", "20260302T091500Z", "2026-03-02T09:15:00+01:00 ",
                                     " 2026-03-02T09:15:00+01:00", "2026-02-30T00:00:00Z", "2026-03-02T24:00:00Z",
                                     "2026-03-02T09:60:00Z", "2026-03-02T09:15:00,5+01:00", "0000-01-01T00:00:00Z"]))  # fmt: skip
    elif style == 3:
        minutes = draw(st.integers(-30 * 60, 30 * 60))
        return text + f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return text + draw(st.sampled_from(OFFSETS))


@st.composite
def uuid_texts(draw: st.DrawFn) -> str:
    value = draw(st.uuids())
    form = draw(st.integers(0, 7))
    texts = [str(value), str(value).upper(), value.hex, "{" + str(value) + "}", value.urn, " " + str(value),
             str(value)[:-1], str(value) + "0"]  # fmt: skip
    return texts[form]


def sized_texts(most: int | None, least: int | None) -> st.SearchStrategy[str]:
    lengths = {0, 1, 2}
    for bound in (most, least):
        if bound is not None:
            lengths |= {max(bound - 1, 0), bound, bound + 1}
    return st.sampled_from(sorted(lengths)).flatmap(
        lambda n: st.text(max_size=min(n, 8)).map(lambda t: t + "é" * (n - len(t))) | st.just(" " * n)
    )


def field_values(field: fields.Field) -> st.SearchStrategy[Any]:
    """Values near what `field` takes: at and past its bounds, among and beside its choices."""
    options: list[st.SearchStrategy[Any]] = []
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            options.append(st.sampled_from(list(validator.choices)))
        if isinstance(validator, validate.Equal):
            options.append(st.just(validator.comparable))
        if isinstance(validator, validate.Length):
            options.append(sized_texts(validator.max or validator.equal, validator.min or validator.equal))
        if isinstance(validator, validate.Range):
            options.append(st.sampled_from([b + d for b in (validator.min, validator.max) if b is not None
                                            for d in (-1, 0, 1)]))  # fmt: skip
    if isinstance(field, fields.String):
        options += [st.text(max_size=30), st.sampled_from(["critical", "CRITICAL", " critical", "success", ""])]
    elif isinstance(field, fields.Integer):
        options += [st.integers(-5, 5), huge_ints, st.booleans(), st.sampled_from([1.0, 2.0, "1", "3"])]
    elif isinstance(field, fields.DateTime):
        options += [iso_datetimes(), st.text(max_size=12)]
    elif isinstance(field, fields.UUID):
        options += [uuid_texts(), st.text(max_size=12)]
    elif isinstance(field, fields.Dict):
        options += [
            st.dictionaries(st.text(max_size=6), json_values, max_size=4),
            st.dictionaries(st.integers(), st.text(max_size=3), min_size=1, max_size=2),  # keys JSON cannot carry
            st.lists(st.text(max_size=3), max_size=2),
        ]
    return st.one_of(*options, wrong_values)


@st.composite
def variants(draw: st.DrawFn, schema: Schema, example: dict[str, Any]) -> dict[str, Any]:
    """The example with a few fields dropped, added or changed."""
    body = copy.deepcopy(example)
    by_key = {f.data_key or name: f for name, f in schema.load_fields.items()}
    names = sorted(set(by_key) | set(schema.load_fields) | set(body))
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["drop", "unknown", "set", "set", "set", "set"]))
        if action == "drop" and body:
            del body[draw(st.sampled_from(sorted(body)))]
        elif action == "unknown":
            body[draw(st.text(max_size=8) | st.sampled_from(["Account", "account ", "_schema", "id"]))] = draw(
                json_values
            )
        else:
            name = draw(st.sampled_from(names))
            field = by_key.get(name)
            body[name] = draw(field_values(field) if field is not None else wrong_values)
    return body


# -- the contracts ----------------------------------------------------------------------------------


def test_which_contracts_compile() -> None:
    compiled = {t for (t, _), schema in CONTRACTS.items() if compile_loader(schema) is not None}
    for (message_type, version), schema in sorted(CONTRACTS.items()):
        reason = why_not_compiled(schema)
        print(f"{message_type} v{version}: {'fast path' if reason is None else 'marshmallow only: ' + reason}")
    assert compiled == COMPILED
    for message_type in {t for t, _ in CONTRACTS} - COMPILED:
        assert "validates_schema" in (why_not_compiled(CONTRACTS[(message_type, 1)]) or "")


@pytest.mark.parametrize("key", sorted(MESSAGE_CONTRACTS), ids=lambda k: f"{k[0]}-v{k[1]}")
def test_the_fast_path_loads_each_example_exactly_as_marshmallow(key: tuple[str, int]) -> None:
    contract = MESSAGE_CONTRACTS[key]
    loader = compile_loader(contract.schema)
    if key[0] not in COMPILED:
        assert loader is None
        return
    assert loader is not None
    assert agree(contract.schema, loader, json.loads(json.dumps(contract.example))) == "fast"


@pytest.mark.parametrize(
    "key", sorted(k for k in MESSAGE_CONTRACTS if k[0] in COMPILED), ids=lambda k: f"{k[0]}-v{k[1]}"
)
def test_the_fast_path_agrees_with_marshmallow_on_generated_variants(key: tuple[str, int]) -> None:
    contract = MESSAGE_CONTRACTS[key]
    loader = compile_loader(contract.schema)
    assert loader is not None
    outcomes: dict[str, int] = {}

    @SETTINGS
    @given(variants(contract.schema, contract.example))
    def check(body: dict[str, Any]) -> None:
        outcome = agree(contract.schema, loader, body)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    check()
    assert outcomes.get("fast", 0) > 0 and outcomes.get("refused", 0) > 0, outcomes


@SETTINGS
@given(st.data())
def test_decode_intake_gives_the_same_message_or_the_same_reason_with_and_without_the_fast_path(
    data: st.DataObject,
) -> None:
    contract = MESSAGE_CONTRACTS[data.draw(st.sampled_from(sorted(MESSAGE_CONTRACTS)))]
    body = data.draw(variants(contract.schema, contract.example))
    raw = json.dumps(body, default=repr).encode()

    def outcome() -> Any:
        try:
            message = decode_intake(contract.topic, raw)
        except ContractViolation as violation:
            return ("refused", violation.reason, violation.message_type, violation.message_id, violation.schema_version)
        return ("decoded", exact(vars(message)))

    fast = outcome()
    with mock.patch.object(contracts, "_fast_loader", return_value=None):
        assert outcome() == fast


def test_a_typical_alarm_never_reaches_marshmallow_and_a_bad_one_does() -> None:
    schema = CONTRACTS[("alarm.raised", 1)]
    raw = json.dumps(MESSAGE_CONTRACTS[("alarm.raised", 1)].example).encode()
    with mock.patch.object(schema, "load", wraps=schema.load) as marshmallow_load:
        for _ in range(3):
            message = decode_intake(contracts.ALERTS_TOPIC, raw)
        assert marshmallow_load.call_count == 0
        assert message.data["severity"] == "critical" and message.data["at"].utcoffset() == timedelta(hours=1)
        bad = json.loads(raw) | {"severity": "disaster"}
        with pytest.raises(ContractViolation, match="severity: Must be one of: critical, major, minor, warning"):
            decode_intake(contracts.ALERTS_TOPIC, json.dumps(bad).encode())
        assert marshmallow_load.call_count == 1


def test_contracts_the_fast_path_does_not_cover_still_go_through_marshmallow() -> None:
    contract = MESSAGE_CONTRACTS[("incident.open", 1)]
    with mock.patch.object(contract.schema, "load", wraps=contract.schema.load) as marshmallow_load:
        decode_intake(contract.topic, json.dumps(contract.example).encode())
    assert marshmallow_load.call_count == 1


def test_the_loader_steps_aside_for_what_json_does_not_make() -> None:
    contract = MESSAGE_CONTRACTS[("alarm.raised", 1)]
    loader = compile_loader(contract.schema)
    assert loader is not None
    body = json.loads(json.dumps(contract.example))
    assert loader([body]) is None  # type: ignore[arg-type]
    assert loader(body | {"summary": b"bytes"}) is None
    assert loader(body | {"schema_version": True}) is None
    assert loader(body | {"at": datetime(2026, 3, 2, tzinfo=timezone.utc)}) is None
    assert loader(body | {"details": {1: "x"}}) is None


# -- schemas with other options ----------------------------------------------------------------------


class Options(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(data_key="Name", attribute="the_name", validate=validate.Length(equal=3))
    count = fields.Integer(validate=validate.Range(min=0, max=10, max_inclusive=False))
    ratio = fields.Integer(
        strict=True, validate=[validate.Range(min=-3, min_inclusive=False), validate.OneOf([0, 1, -2])]
    )
    when = fields.DateTime()
    day = fields.AwareDateTime(default_timezone=timezone(timedelta(hours=2)))
    tags = fields.Dict()
    optional = fields.String()
    made = fields.Dict(keys=fields.String(), load_default=dict, validate=validate.Length(max=2))
    level = fields.String(load_default="low", validate=validate.OneOf(("low", "high")))
    stamp = fields.AwareDateTime(load_default=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
    ref = fields.UUID(load_default=None)


class IncludeOptions(Options):
    class Meta:
        unknown = INCLUDE


OPTION_EXAMPLE = {
    "Name": "abc", "count": 3, "ratio": 1, "when": "2026-03-02T09:15:00", "day": "2026-03-02T09:15:00",
    "tags": {"a": 1}, "optional": "yes", "made": {"k": [1]}, "level": "high", "stamp": "2026-03-02T09:15:00Z",
    "ref": str(uuid.UUID(int=7)),
}  # fmt: skip


@pytest.mark.parametrize(
    "schema", [Options(), IncludeOptions(), Options(unknown=INCLUDE)], ids=["exclude", "include", "include-arg"]
)
def test_data_keys_attributes_defaults_and_unknown_fields_load_exactly(schema: Schema) -> None:
    loader = compile_loader(schema)
    assert loader is not None
    assert agree(schema, loader, dict(OPTION_EXAMPLE)) == "fast"
    assert agree(schema, loader, {"Name": "xyz"}) == "fast"  # every default, the callables called
    first, second = loader({}), loader({})
    assert first is not None and second is not None and first["made"] is not second["made"]
    outcomes: dict[str, int] = {}

    @SETTINGS
    @given(variants(schema, OPTION_EXAMPLE))
    def check(body: dict[str, Any]) -> None:
        outcome = agree(schema, loader, body)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    check()
    assert outcomes.get("fast", 0) > 0 and outcomes.get("refused", 0) > 0, outcomes


def test_a_naive_instant_takes_the_default_timezone_where_the_field_has_one() -> None:
    loader = compile_loader(Options())
    assert loader is not None
    loaded = loader({"day": "2026-03-02T09:15:00"})
    assert loaded is not None and loaded["day"].utcoffset() == timedelta(hours=2)


class _Hooked(Schema):
    name = fields.String()


class _WithValidates(_Hooked):
    @validates("name")
    def _check(self, value: str, **kwargs: Any) -> None: ...


class _WithSchemaValidation(_Hooked):
    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None: ...


class _WithPreLoad(_Hooked):
    @pre_load
    def _strip(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return data


class _WithPostLoad(_Hooked):
    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return data


class _OverridingLoad(_Hooked):
    def load(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().load(*args, **kwargs)


def _one_field(field: fields.Field) -> Schema:
    return Schema.from_dict({"value": field})()


@pytest.mark.parametrize(
    "schema",
    [
        _WithValidates(),
        _WithSchemaValidation(),
        _WithPreLoad(),
        _WithPostLoad(),
        _OverridingLoad(),
        _Hooked(many=True),
        _Hooked(partial=True),
        _one_field(fields.Boolean()),
        _one_field(fields.Float()),
        _one_field(fields.Email()),
        _one_field(fields.Url()),
        _one_field(fields.Raw()),
        _one_field(fields.Date()),
        _one_field(fields.NaiveDateTime()),
        _one_field(fields.List(fields.String())),
        _one_field(fields.Nested(_Hooked)),
        _one_field(fields.Dict(values=fields.String())),
        _one_field(fields.Dict(keys=fields.String(validate=validate.Length(max=3)))),
        _one_field(fields.DateTime(format="%Y-%m-%d")),
        _one_field(fields.DateTime(format="timestamp")),
        _one_field(fields.String(validate=validate.Regexp("a"))),
        _one_field(fields.String(validate=lambda value: value != "x")),
        _one_field(fields.String(validate=validate.OneOf(c for c in "ab"))),
        _one_field(fields.String(pre_load=str.strip)),
        _one_field(fields.String(post_load=str.upper)),
        _one_field(fields.String(attribute="a.b")),
    ],
    ids=lambda schema: why_not_compiled(schema) or "compiled?",
)
def test_schemas_using_what_is_not_replicated_do_not_compile(schema: Schema) -> None:
    assert compile_loader(schema) is None
    assert why_not_compiled(schema)


def test_a_date_alone_loads_as_midnight_in_the_default_timezone() -> None:
    schema = _one_field(fields.AwareDateTime(default_timezone=timezone.utc))
    loader = compile_loader(schema)
    assert loader is not None
    assert agree(schema, loader, {"value": "2026-03-02"}) == "fast"
    assert loader({"value": "2026-03-02"}) == {"value": datetime(2026, 3, 2, tzinfo=timezone.utc)}
