"""What the alarm application learns from the store's events (its caches and correlation kept honest)."""

from __future__ import annotations

import logging
from typing import Any, Protocol
from uuid import UUID

from domain.configuration import ConfigurationItem
from domain.events import aggregate_name, event_kinds
from domain.incident import Incident
from domain.monitoring import MonitoringPolicy
from projections.db import Database
from projections.tracking import Process

log = logging.getLogger(__name__)


class Invalidates(Protocol):
    def invalidate(self, account: str | None = None) -> None: ...


class AlarmCaches(Protocol):
    """What this process needs of the alarm application: its caches, and forgetting an incident."""

    @property
    def graphs(self) -> Invalidates: ...

    @property
    def policies(self) -> Invalidates: ...

    def forget_incident(self, incident_id: UUID) -> None: ...


# -- itil.events: what the process learns from the store's events ----------------------------------


_SERVICE_BACK_OR_OVER = event_kinds(Incident.ServiceRestored, Incident.Resolved, Incident.Cancelled, Incident.Closed)
_CONFIGURATION_ITEM = aggregate_name(ConfigurationItem)
_MONITORING_POLICY = aggregate_name(MonitoringPolicy)
_INCIDENT = aggregate_name(Incident)


class AlarmEventsConsumer(Process):
    """Keeps the alarm process's caches and correlation honest from `itil.events`.

    A CI event drops the account's cached CI graph; an incident restored, resolved, cancelled or
    closed takes no new alarm any more (neither on its CI nor in its outage).
    """

    name = "alarm_process"
    reads = (_CONFIGURATION_ITEM, _MONITORING_POLICY, _INCIDENT)

    def __init__(self, db: Database, process: AlarmCaches) -> None:
        super().__init__(db)
        self.process = process

    def react(self, envelope: dict[str, Any]) -> None:
        kind = str(envelope["event_type"]).split(".")[-1]
        if envelope["aggregate_type"] == _CONFIGURATION_ITEM:
            account = envelope["payload"].get("account")
            self.process.graphs.invalidate(account if isinstance(account, str) else None)
        elif envelope["aggregate_type"] == _MONITORING_POLICY:
            self.process.policies.invalidate()
        elif envelope["aggregate_type"] == _INCIDENT and kind in _SERVICE_BACK_OR_OVER:
            self.process.forget_incident(UUID(str(envelope["aggregate_id"])))
