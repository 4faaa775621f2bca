"""What the processes need of the application floor, as small protocols (the application satisfies them).

A process reacts to events and issues commands; it reads the store to decide, never writes it but
through a command. It depends on these, not on the application class, so that the floors' arrows
only go down.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.account import Account
from domain.commands import StartSlaClocks
from domain.incident import Incident
from domain.problem import Problem
from domain.sla import IncidentSla

A = TypeVar("A", bound=Aggregate)


class Commands(Protocol):
    """Carry out a command; find an aggregate, or read its history, in the store."""

    @property
    def repository(self) -> Any:
        """The store's aggregates: `get(id, version=…)` for an aggregate as an event of that version left it."""

    @property
    def events(self) -> Any:
        """The store's events: `get(id, gt=…, lte=…)`."""

    def handle(self, command: Any) -> Any: ...

    def find(self, aggregate_id: UUID, kind: type[A]) -> A | None: ...

    def find_account(self, account: str) -> Account | None: ...

    def version_at(self, aggregate_id: UUID, position: int) -> int | None: ...

    def incidents_of(self, problem: Problem) -> tuple[UUID, ...]: ...

    def is_linked(self, problem: Problem, incident: Incident) -> bool: ...


class SlaClocks(Protocol):
    """Carry out SLA commands (one, or a batch of clock starts); find an incident's clocks."""

    def find(self, aggregate_id: UUID, kind: type[A]) -> A | None: ...

    def handle_sla(self, command: Any) -> IncidentSla | None: ...

    def start_sla_clocks(self, commands: Sequence[StartSlaClocks]) -> list[IncidentSla | Exception | None]: ...
