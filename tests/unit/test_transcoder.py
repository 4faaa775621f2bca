"""The orjson transcoder writes and reads exactly what the library's JSON transcoder does."""

from __future__ import annotations

import enum
from collections import OrderedDict, namedtuple
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    Transcoding,
    UUIDAsHex,
)
from hypothesis import given
from hypothesis import strategies as st

from application.app import ItilApplication
from application.transcoder import OrjsonTranscoder
from domain.commands import LogIncident

INCIDENT_ID = UUID("0b6a7d4e-0000-4000-8000-000000000001")


@dataclass(frozen=True)
class Reading:
    """A registered type whose transcoded form holds registered types itself."""

    taken: datetime
    sensor: UUID


class ReadingAsDict(Transcoding):
    type = Reading
    name = "reading"

    def encode(self, obj: Reading) -> dict[str, Any]:
        return {"taken": obj.taken, "sensors": [obj.sensor]}

    def decode(self, data: dict[str, Any]) -> Reading:
        return Reading(data["taken"], data["sensors"][0])


def registered(transcoder: JSONTranscoder, *extra: Transcoding) -> JSONTranscoder:
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), *extra):
        transcoder.register(transcoding)
    return transcoder


LIBRARY = registered(JSONTranscoder(), ReadingAsDict())
ORJSON = registered(OrjsonTranscoder(), ReadingAsDict())


def outcome(call: Any, *args: Any) -> tuple[str, Any]:
    """What a call returns, or the type and message of what it raises, to compare two transcoders."""
    try:
        return "returned", call(*args)
    except Exception as e:
        return "raised", (type(e), str(e))


def same_decoding(data: bytes) -> None:
    # repr tells True from 1, 1.0 from 1, -0.0 from 0.0 and a UUID from its hex, and nan equals itself
    ours, theirs = outcome(ORJSON.decode, data), outcome(LIBRARY.decode, data)
    assert (ours[0], repr(ours[1])) == (theirs[0], repr(theirs[1]))


offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
zones = st.one_of(st.just(UTC), st.builds(timezone, offsets), st.timezones())
datetimes = st.one_of(st.datetimes(), st.datetimes(timezones=zones))
floats = st.one_of(
    st.floats(),
    st.sampled_from([-0.0, 0.0, 1e16, 1e15, 0.1, 5e-324, 2.2250738585072014e-308, 1e-4, 1e-5, 1e-9, 1e-10, 1e22]),
    st.floats(min_value=1e-10, max_value=1e-3),
)
ints = st.one_of(
    st.integers(), st.integers(min_value=2**63 - 2, max_value=2**64 + 2), st.integers(max_value=-(2**63) + 2)
)
texts = st.text(st.characters(codec="utf-8"))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    floats,
    texts,
    st.uuids(),
    datetimes,
    st.decimals(),
    st.builds(Reading, datetimes, st.uuids()),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(texts, inner, max_size=4),
        st.dictionaries(st.one_of(texts, st.integers()), inner, max_size=4),
    ),
    max_leaves=20,
)


@given(values)
def test_encoding_gives_the_library_bytes(value: Any) -> None:
    assert outcome(ORJSON.encode, value) == outcome(LIBRARY.encode, value)


@given(st.dictionaries(texts, values, max_size=8))
def test_an_event_state_decodes_as_the_library_decodes_it(state: dict[str, Any]) -> None:
    data = LIBRARY.encode(state)
    assert ORJSON.encode(state) == data
    same_decoding(data)


@pytest.mark.parametrize(
    "value",
    [
        [-0.0, 1e16, 0.1, 5e-324, 1e-5, 1e-9, float("nan"), float("inf"), float("-inf")],
        [2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**40],
        "\x00\x1f\x7f\u2028\u2029\ufeff é 😀 \"'\\/",
        {1: "int key", "1": "str key", None: 0, False: 1, 2.5: 2},
        [[[[[[]]]]]] * 2,
        [datetime(1800, 1, 1, tzinfo=timezone(timedelta(seconds=1172))), datetime(1, 1, 1)],
    ],
    ids=["floats", "ints", "characters", "keys", "nesting", "datetimes"],
)
def test_what_orjson_writes_its_own_way_still_gives_the_library_bytes(value: Any) -> None:
    assert ORJSON.encode(value) == LIBRARY.encode(value)
    same_decoding(LIBRARY.encode(value))


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 1


class Kind(enum.StrEnum):
    OUTAGE = "outage"


class Amount(float):
    def __repr__(self) -> str:
        return "amount"


Pair = namedtuple("Pair", "a b")


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value, UUID(int=depth)]
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"level": Level.HIGH, "kind": Kind.OUTAGE, "amount": Amount(1.5), "pair": Pair(1, UUID(int=1))},
        OrderedDict(at=datetime(2024, 1, 1, tzinfo=UTC)),
        nested(300),
        Colour.RED,
        {"day": date(2024, 1, 1)},
        {"tags": {"a"}},
        {"raw": b"bytes"},
        {"surrogate": "\ud800"},
        [Reading(datetime(2024, 1, 1), UUID(int=5))],
    ],
    ids=["subclasses", "ordered-dict", "deep", "enum", "date", "set", "bytes", "surrogate", "registered-dataclass"],
)
def test_subclasses_unregistered_types_and_errors_behave_as_in_the_library(value: Any) -> None:
    assert outcome(ORJSON.encode, value) == outcome(LIBRARY.encode, value)


def test_a_cycle_raises_the_library_error() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    assert outcome(ORJSON.encode, cycle) == outcome(LIBRARY.encode, cycle)


def test_a_str_subclass_with_a_transcoding_is_written_as_a_str_as_json_does() -> None:
    class KindAsName(Transcoding):
        type = Kind
        name = "kind"

        def encode(self, obj: Kind) -> str:
            return obj.name

        def decode(self, data: str) -> Kind:
            return Kind[data]

    value = {"kind": Kind.OUTAGE}
    assert registered(OrjsonTranscoder(), KindAsName()).encode(value) == registered(
        JSONTranscoder(), KindAsName()
    ).encode(value)


def test_datetimes_replaced_by_another_transcoding_are_written_by_it() -> None:
    class DatetimeAsTimestamp(DatetimeAsISO):
        name = "datetime_ts"

        def encode(self, obj: datetime) -> str:
            return str(obj.timestamp())

    value = {"at": datetime(2024, 1, 1, tzinfo=UTC), "naive": [datetime(2024, 1, 1)]}
    ours = registered(OrjsonTranscoder(), DatetimeAsTimestamp())
    assert ours.encode(value) == registered(JSONTranscoder(), DatetimeAsTimestamp()).encode(value)


@pytest.mark.parametrize(
    "data",
    [
        b'{"n":18446744073709551615,"m":18446744073709551616,"k":-9223372036854775809}',
        b"[NaN,Infinity,-Infinity,1e400]",
        b'{"s":"\\ud800"}',
        b'{"a":1,"b":2,"a":3}',
        b'{"_type_":"uuid_hex","_data_":"0b6a7d4e000040008000000000000001","_type_":"decimal_str"}',
        b'{"_type_":"uuid_hex","_data_":"0b6a7d4e000040008000000000000001","extra":1}',
        b'{"_type_":"uuid_hex"}',
        b'{"_data_":"x","other":"y"}',
        b'[{"_type_":"unknown","_data_":"x"}]',
        b'{"a":{"_type_":"unknown","_data_":1}}',
        b'{"_type_":["uuid_hex"],"_data_":"x"}',
        b'{"_type_":"datetime_iso","_data_":"not a date"}',
        b'{"_type_":"reading","_data_":{"taken":{"_type_":"datetime_iso","_data_":"2024-01-01T00:00:00"},"sensors":[{"_type_":"uuid_hex","_data_":"0b6a7d4e000040008000000000000001"}]}}',
        b'{"_type_":{"_type_":"decimal_str","_data_":"1"},"_data_":"x"}',
        b"\xff",
        b'"plain"',
        b"[1.5e-7,-0.0,0]",
        b"",
    ],
)
def test_what_orjson_reads_its_own_way_still_decodes_as_in_the_library(data: bytes) -> None:
    same_decoding(data)


def test_the_application_stores_the_library_bytes_and_reads_them_back(tmp_path: Path) -> None:
    app = ItilApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")})
    try:
        assert type(app.mapper.transcoder) is OrjsonTranscoder
        at = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
        app.handle(
            LogIncident(
                id=INCIDENT_ID, account="resto-chain", service="site-network", ci="router-042",
                title="Router down at restaurant 42 — Zürich", impact=1, urgency=2, channel="phone",
                reporter="manager", actor="hotline-n1", at=at,
            )
        )  # fmt: skip
        (stored,) = app.recorder.select_events(INCIDENT_ID)
        event = app.mapper.to_domain_event(stored)
        library = Mapper[UUID](transcoder=registered(JSONTranscoder()))
        assert stored.state == library.to_stored_event(event).state
        assert LIBRARY.decode(stored.state) == app.mapper.transcoder.decode(stored.state)
        incident = app.get_incident(INCIDENT_ID)
        assert (incident.title, incident.logged_at) == ("Router down at restaurant 42 — Zürich", at)
    finally:
        app.close()


def test_an_ordinary_event_state_is_written_and_read_without_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    state = {
        "timestamp": datetime(2025, 3, 3, 9, 0, 1, 5, tzinfo=UTC),
        "at": datetime(2025, 3, 3, 10, 0, tzinfo=timezone(timedelta(hours=1))),
        "incident_id": UUID(int=7),
        "terms": {"targets": {"response": 1800}, "hours": [[0, "08:00", "18:00"]], "thresholds": (50, 75)},
        "elapsed_seconds": 421.5,
        "cost": Decimal("12.30"),
        "met": True,
        "note": None,
    }
    data = LIBRARY.encode(state)
    monkeypatch.setattr(JSONTranscoder, "encode", None)
    monkeypatch.setattr(JSONTranscoder, "decode", None)
    assert ORJSON.encode(state) == data
    assert ORJSON.decode(data) == {**state, "terms": {**state["terms"], "thresholds": [50, 75]}}
