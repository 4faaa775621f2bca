"""The names the domain's events go by outside it, taken from their classes.

The envelope on `itil.events` names an event by its class's qualified name (`event_type`:
"Incident.Logged") and its aggregate by the first part of it (`aggregate_type`: "Incident");
processes and projections tell events apart by those strings, or by their last part (the event's
kind: "Logged"). They take them from here, from the classes, once at import: renaming a class then
fails at import (a test), never in production by an event no longer matched. `check_names` says
whether strings written by hand still name real classes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from inspect import isclass
from types import MappingProxyType

from eventsourcing.domain import Aggregate

from domain.account import Account
from domain.change import Change
from domain.change_calendar import ChangeCalendar
from domain.configuration import ConfigurationItem
from domain.contract import ServiceContract
from domain.incident import Incident
from domain.monitoring import Alarm, MonitoringPolicy
from domain.problem import Problem
from domain.sla import IncidentSla


def event_name(event_class: type) -> str:
    """The envelope's `event_type` of this class's events: `Incident.Logged`."""
    return event_class.__qualname__


def event_kind(event_class: type) -> str:
    """The last part of its `event_name` (`Logged`), as consumers read it off an envelope."""
    return event_name(event_class).rpartition(".")[2]


def aggregate_name(aggregate_class: type) -> str:
    """The envelope's `aggregate_type` of this aggregate's events: `Incident`."""
    return aggregate_class.__qualname__


def event_kinds(*event_classes: type) -> frozenset[str]:
    """The `event_kind`s of these classes."""
    return frozenset(event_kind(c) for c in event_classes)


def events_of(aggregate_class: type[Aggregate]) -> tuple[type[Aggregate.Event], ...]:
    """The event classes of an aggregate: those it declares, not their `Event` base nor the unused `Created` the
    library adds."""
    bases = (aggregate_class.Event, getattr(aggregate_class, "Created", None))
    return tuple(
        v
        for v in vars(aggregate_class).values()
        if isclass(v)
        and issubclass(v, Aggregate.Event)
        and v not in bases
        and event_name(v).partition(".")[0] == aggregate_name(aggregate_class)
    )


AGGREGATE_CLASSES: Mapping[str, type[Aggregate]] = MappingProxyType(
    {
        aggregate_name(a): a
        for a in (
            Account, Alarm, Change, ChangeCalendar, ConfigurationItem, Incident, IncidentSla, MonitoringPolicy,
            Problem, ServiceContract,
        )
    }
)  # fmt: skip
"""Every aggregate of the domain, by its `aggregate_name`."""

EVENT_CLASSES: Mapping[str, type[Aggregate.Event]] = MappingProxyType(
    {event_name(e): e for a in AGGREGATE_CLASSES.values() for e in events_of(a)}
)
"""Every event class of the domain, by its `event_name`."""


class UnknownEventName(LookupError):
    """A string that something matches events by, and that no class of the domain goes by."""


_EVENTS_OF: Mapping[str, tuple[frozenset[str], frozenset[str]]] = MappingProxyType(
    {
        name: (frozenset(map(event_name, events_of(a))), frozenset(map(event_kind, events_of(a))))
        for name, a in AGGREGATE_CLASSES.items()
    }
)
"""By aggregate: the `event_name`s and the `event_kind`s of its events."""


def check_names(
    where: str, *, aggregates: Iterable[str] = (), events: Iterable[str] = (), kinds: Iterable[str] = ()
) -> None:
    """Raise UnknownEventName, naming `where` and every string that names no class of the domain.

    `aggregates`: `aggregate_name`s. `events`: `event_name`s and `kinds`: `event_kind`s, of events of
    those aggregates (of any aggregate of the domain when none are given).
    """
    aggregates = tuple(aggregates)
    problems = [f"{name!r} is no aggregate of the domain" for name in aggregates if name not in AGGREGATE_CLASSES]
    within = [name for name in aggregates if name in AGGREGATE_CLASSES] if aggregates else list(AGGREGATE_CLASSES)
    of = f"of {', '.join(within) or 'those aggregates'}" if aggregates else "of the domain"
    names = frozenset().union(*(_EVENTS_OF[a][0] for a in within))
    known_kinds = frozenset().union(*(_EVENTS_OF[a][1] for a in within))
    problems += [f"{name!r} is no event class {of}" for name in events if name not in names]
    problems += [f"{name!r} is the kind of no event class {of}" for name in kinds if name not in known_kinds]
    if problems:
        raise UnknownEventName(f"{where}: {'; '.join(problems)} (a class renamed, or a name misspelt?)")
