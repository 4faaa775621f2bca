"""The intake adapter of supervision and fleet messages: alarms, automation results and CI states.

Alarm and automation messages go to the alarm application (`application.alarms.AlarmProcess`);
`ci.state` messages from the fleet systems (`itil.intake.fleet`) become CI registry commands.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from application.alarms import AlarmProcess
from application.configuration import ci_id
from domain.commands import (
    ChangeCiState,
    RegisterCi,
    RelateCis,
    RetireCi,
)
from domain.configuration import KINDS, OPERATIONAL, ConfigurationItem
from domain.errors import IllegalTransition
from domain.monitoring import Alarm
from streams.contracts import IntakeMessage

if TYPE_CHECKING:
    from streams.request_intake import BatchHandler, Commands, IntakeHandler

log = logging.getLogger(__name__)


class AlarmIntake:
    """The intake handlers of supervision and fleet messages, bound to one alarm process."""

    def __init__(self, alarms: AlarmProcess) -> None:
        self.alarms = alarms

    def sighted(self, app: Commands, message: IntakeMessage) -> Alarm | None:
        """Supervision raised (or updated) an alarm: an incident for its episode, unless held or a repeat."""
        return self.alarms.sighted(message)

    def cleared(self, app: Commands, message: IntakeMessage) -> Alarm | None:
        """Supervision cleared an alarm: its incident is restored (or annotated) when its last alarm cleared."""
        return self.alarms.cleared(message)

    def automation_result(self, app: Commands, message: IntakeMessage) -> Alarm:
        """The automation platform reports a corrective action: recorded; a success restores service."""
        return self.alarms.automation_result(message)

    def fleet_state(self, app: Commands, message: IntakeMessage) -> ConfigurationItem | None:
        return fleet_state(app, message, self.alarms)

    def batch(self, app: Commands, messages: Sequence[IntakeMessage]) -> list[Any]:
        """A storm's alarms a batch at a time: repeats of open alarms are saved in one transaction."""
        return self.alarms.take(messages)

    def handlers(self) -> dict[str, IntakeHandler]:
        """Message type -> handler(app, message)."""
        return {
            "alarm.raised": self.sighted,
            "alarm.updated": self.sighted,
            "alarm.cleared": self.cleared,
            "automation.result": self.automation_result,
            "ci.state": self.fleet_state,
        }

    def batch_handlers(self) -> dict[str, BatchHandler]:
        """Message type -> handler(app, messages) of the types carried out a batch at a time."""
        return dict.fromkeys(("alarm.raised", "alarm.updated", "alarm.cleared", "automation.result"), self.batch)


def ci_kind(kind: str) -> str:
    """The fleet system's kind ("payment terminal") as a CI kind ("payment_terminal"), else "other"."""
    name = "_".join(kind.strip().lower().replace("-", " ").split())
    return name if name in KINDS else "other"


def fleet_state(app: Commands, message: IntakeMessage, alarms: AlarmProcess | None = None) -> ConfigurationItem | None:
    """A fleet system reports a CI's state: installed, down, up, degraded, or replaced by another CI.

    A CI the registry does not know yet is registered first. A report no later than the CI's last
    recorded step, or of the state it already has, changes nothing (a redelivery, or out of order).
    """
    d = message.data
    account, name, state, at, actor = d["account"].strip(), d["ci"].strip(), d["state"], message.at, message.source
    kind = ci_kind(d["kind"])
    attributes = {} if kind != "other" else {"fleet kind": d["kind"].strip()}
    found = app.find(ci_id(account, name), ConfigurationItem)
    if found is None:
        found = app.handle(RegisterCi(account, name, kind, actor, at, attributes=attributes))
        if state == "installed":
            return found
    assert found is not None
    if alarms is not None:
        alarms.graphs.invalidate(account)  # the CI's relations may change: read them again
    if found.is_retired:
        raise IllegalTransition(f"CI {name} of {account} was retired; the fleet cannot report it {state}")
    if at < found.last_at:
        log.info("ci.state %s for %s at %s is older than its last step; ignored", state, name, at.isoformat())
        return found
    if state == "replaced":
        return _replace(app, found, d["replaced_by"].strip(), kind, attributes, actor, at)
    target = {"installed": OPERATIONAL, "up": OPERATIONAL, "down": "down", "degraded": "degraded"}[state]
    if found.state == target:
        return found
    reason = f"{state} reported by {actor}"
    changed: ConfigurationItem = app.handle(ChangeCiState(account, name, target, reason, actor, at))
    return changed


def _replace(
    app: Commands, old: ConfigurationItem, new_name: str, kind: str, attributes: dict[str, str], actor: str,
    at: datetime,
) -> ConfigurationItem:  # fmt: skip
    """Register the replacement with the relations of the CI it replaces, then retire that one."""
    account = old.account
    new = app.find(ci_id(account, new_name), ConfigurationItem)
    if new is None:
        new = app.handle(RegisterCi(account, new_name, kind, actor, at, attributes=attributes))
    assert new is not None
    for relation, target in old.relations:
        if (relation, target) not in new.relations and target != new_name:
            new = app.handle(RelateCis(account, new_name, relation, target, actor, at))
    app.handle(RetireCi(account, old.ci_name, f"replaced by {new_name} (reported by {actor})", actor, at))
    return new
