"""Processes and projections tell events apart by names taken from the domain's classes, so that
renaming an event class fails here, not in production by an event no longer matched."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from uuid import UUID

import pytest

import processes
import projections
from domain.change import Change
from domain.events import (
    AGGREGATE_CLASSES,
    EVENT_CLASSES,
    UnknownEventName,
    aggregate_name,
    check_names,
    event_kind,
    event_name,
    events_of,
)
from domain.incident import Incident
from domain.problem import Problem
from projections.records import envelope_of, record_of
from projections.tracking import Process, Projection, TrackedConsumer

ROOT = Path(__file__).resolve().parents[2]
MATCHING = ("projections", "processes", "application", "streams", "web", "itil")
"""Where events are told apart by name (the process managers, the views, the application's histories,
the rebuild, the adapters)."""
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def some_event(event_class: type) -> object:
    """An event of this class with only the header fields the envelope reads."""
    event: object = object.__new__(event_class)
    for field, value in {"originator_id": UUID(int=1), "originator_version": 1, "timestamp": T0, "at": T0,
                         "actor": "test"}.items():  # fmt: skip
        object.__setattr__(event, field, value)
    return event


def consumers() -> set[type[TrackedConsumer]]:
    """Every projection and process of the engine."""
    for package in (processes, projections):
        for module in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)
    found: list[type[TrackedConsumer]] = []
    todo: list[type[TrackedConsumer]] = [TrackedConsumer]  # type: ignore[type-abstract]
    while todo:
        subclasses = todo.pop().__subclasses__()
        found += subclasses
        todo += subclasses
    return {c for c in found if c.__module__.partition(".")[0] in ("processes", "projections")}


def module_of(consumer: str) -> ModuleType:
    """The module a consumer of the engine is defined in, wherever that is."""
    return sys.modules[next(c for c in consumers() if c.__name__ == consumer).__module__]


def _domain_strings() -> frozenset[str]:
    return frozenset([*AGGREGATE_CLASSES, *EVENT_CLASSES, *(event_kind(e) for e in EVENT_CLASSES.values())])


def literal_names(source: str, filename: str = "<source>") -> list[str]:
    """Where `source` names a domain aggregate, event or event kind by a string literal it matches by:
    compared to (alone or in a literal tuple, list or set), used as a dict key, or listed in a literal
    collection given a name (a table such as `reads`)."""
    names = _domain_strings()
    found: list[str] = []

    def strings(node: ast.AST | None) -> list[ast.Constant]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node]
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return [c for element in node.elts for c in strings(element)]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("frozenset", "set"):
            return [c for a in node.args for c in strings(a)]
        return []

    for node in ast.walk(ast.parse(source, filename)):
        candidates: list[ast.Constant] = []
        if isinstance(node, ast.Compare):
            candidates = [c for operand in (node.left, *node.comparators) for c in strings(operand)]
        elif isinstance(node, ast.Dict):
            candidates = [c for key in node.keys for c in strings(key)]
        elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Tuple | ast.List | ast.Set):
            candidates = strings(node.value)
        found += [f"{filename}:{c.lineno}: {c.value!r}" for c in candidates if c.value in names]
    return found


def test_event_names_are_what_the_envelope_says() -> None:
    for name, event_class in EVENT_CLASSES.items():
        event = some_event(event_class)
        for envelope in (envelope_of(event, 1), record_of(event, 1)):  # type: ignore[arg-type]
            assert envelope["event_type"] == event_name(event_class) == name
            assert envelope["event_type"].rpartition(".")[2] == event_kind(event_class)
            assert envelope["aggregate_type"] in AGGREGATE_CLASSES
            assert event_class in events_of(AGGREGATE_CLASSES[envelope["aggregate_type"]])


def test_the_domain_events_are_the_ones_aggregates_declare() -> None:
    assert event_name(Incident.Logged) == "Incident.Logged"
    assert event_kind(Incident.Logged) == "Logged"
    assert aggregate_name(Incident) == "Incident"
    assert Incident.Logged in events_of(Incident)
    assert Incident.Event not in events_of(Incident)  # a base, never stored
    assert "Incident.Created" not in EVENT_CLASSES  # the library's, unused: this domain's is Incident.Logged
    assert set(AGGREGATE_CLASSES) >= {"Incident", "IncidentSla", "Problem", "Change", "ConfigurationItem", "Alarm"}


def test_every_consumer_reads_aggregates_of_the_domain() -> None:
    found = list(consumers())
    assert {c.__name__ for c in found} >= {"AccountIncidentsProjection", "SlaConsumer", "AlarmsProjection"}
    for consumer in found:
        check_names(consumer.__qualname__, aggregates=consumer.reads)


def test_every_table_of_names_names_domain_events() -> None:
    from application import problems as application_problems
    from itil import rebuild
    from projections import account_incidents
    from streams import contracts_export

    alarms = module_of("AlarmEventsConsumer")

    check_names(
        "projections.account_incidents._SUMMARIES",
        aggregates=account_incidents.AccountIncidentsProjection.reads,
        kinds=account_incidents._SUMMARIES,
    )
    check_names(
        "application.problems._DETAIL",
        aggregates=(aggregate_name(Problem), aggregate_name(Change)),
        kinds=application_problems._DETAIL,
    )
    check_names(f"{alarms.__name__}._SERVICE_BACK_OR_OVER", aggregates=(aggregate_name(Incident),),
                kinds=alarms._SERVICE_BACK_OR_OVER)  # fmt: skip
    check_names("itil.rebuild.AGGREGATES", aggregates=rebuild.AGGREGATES)
    example = contracts_export.ENVELOPE_EXAMPLE
    check_names("the contract's envelope example", aggregates=(example["aggregate_type"],),
                events=(example["event_type"],))  # fmt: skip


def test_no_process_or_view_matches_events_by_a_name_written_out() -> None:
    found = [
        hit
        for folder in MATCHING
        for path in sorted((ROOT / folder).rglob("*.py"))
        for hit in literal_names(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == [], "name events by their classes (domain.events.event_name, event_kind, aggregate_name)"


# -- a name that is no class fails loudly ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "bad"),
    [
        ({"events": ["Incident.Opened"]}, "'Incident.Opened'"),  # Incident.Logged renamed
        ({"aggregates": ["Incident"], "kinds": ["Logged", "Opened"]}, "'Opened'"),
        ({"aggregates": ["Incidents"]}, "'Incidents'"),
        ({"aggregates": ["Incident"], "events": ["Problem.Resolved"]}, "'Problem.Resolved'"),  # not an incident's
        ({"aggregates": ["Incident"], "kinds": ["ClocksStarted"]}, "'ClocksStarted'"),
        ({"kinds": ["Created"]}, "'Created'"),  # the library's base, never stored
    ],
)
def test_a_name_no_domain_class_goes_by_fails_the_check_naming_it(names: dict[str, list[str]], bad: str) -> None:
    with pytest.raises(UnknownEventName, match=bad) as refused:
        check_names("some.table", **names)  # type: ignore[arg-type]
    assert str(refused.value).startswith("some.table: ")


def test_the_check_passes_the_names_of_real_classes() -> None:
    check_names(
        "some.table",
        aggregates=[aggregate_name(Incident), aggregate_name(Problem)],
        events=[event_name(Incident.Logged), event_name(Problem.Resolved)],
        kinds=[event_kind(Incident.Logged), event_kind(Problem.WorkaroundPublished)],
    )


def test_a_consumer_reading_an_unknown_aggregate_fails_at_import() -> None:
    with pytest.raises(UnknownEventName, match="'Incidnt' is no aggregate of the domain"):

        class Misspelt(Projection):  # noqa: F841 - refused as it is defined
            reads = ("Incidnt",)

    with pytest.raises(UnknownEventName, match="Renamed.reads"):

        class Renamed(Process):  # noqa: F841
            reads = ("Incident", "ProblemRecord")


def test_a_name_written_out_is_found_wherever_events_are_matched() -> None:
    source = (
        'reads = ("Incident",)\n'
        'KINDS = ("Logged", "restored")\n'
        'SUMMARIES = {"Resolved": str}\n'
        "def react(e):\n"
        '    if e["event_type"] == "Incident.Logged" or kind in ("Closed", "x"):\n'
        '        return "Closed"  # text shown, not matched\n'
    )
    assert literal_names(source) == [
        "<source>:1: 'Incident'",
        "<source>:2: 'Logged'",
        "<source>:3: 'Resolved'",
        "<source>:5: 'Incident.Logged'",
        "<source>:5: 'Closed'",
    ]
