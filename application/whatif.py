"""What-if: an account's SLA statement for a month under other terms, replayed from the store.

Nothing is saved: the incidents' stored histories are fed, in memory, through the same SLA
process and clocks as live, against the alternative terms. The live figures are untouched.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from application.app import ItilApplication, carry_out
from domain.contract import SlaTerms, Terms, terms_in_force
from domain.sla import IncidentSla
from processes.sla import command_for
from projections.account_incidents import AccountIncidentsProjection
from projections.records import envelope_of
from projections.sla import statement

WHAT_IF_VERSION = 0


def replay_clocks(app: ItilApplication, incident_id: UUID, terms: Terms, now: datetime) -> IncidentSla | None:
    """The clocks one incident would have had under `terms`, from its stored history."""
    versions = [{"version": WHAT_IF_VERSION, "effective_from": datetime.min.replace(tzinfo=ZoneInfo("UTC")),
                 "service": None, "terms": terms.to_dict()}]  # fmt: skip

    def lookup(account: str, service: str | None, priority: int, at: datetime) -> SlaTerms | None:
        return terms_in_force(versions, service=service, priority=priority, at=at)

    sla: IncidentSla | None = None
    for event in app.history(incident_id):
        command = command_for(envelope_of(event, None))
        if command is not None:
            sla = carry_out(sla, command, lookup)
    if sla is not None:
        sla.check(now)
    return sla


def figures_rows(sla: IncidentSla, now: datetime) -> list[dict[str, Any]]:
    """The clocks in the row shape the statement reads."""
    f = sla.figures(now)
    return [
        {
            "incident_id": f["incident_id"], "metric": metric, "priority": f["priority"],
            "contract_version": f["contract_version"],
            "state": "cancelled" if f["cancelled"] else m["state"], "target_seconds": m["target_seconds"],
            "elapsed_seconds": m["elapsed_seconds"] if m["state"] == "stopped" else None,
            "met": None if m["met"] is None else int(m["met"]),
            "breached_at": m["breached_at"].isoformat() if m["breached_at"] else None,
        }
        for metric, m in f["metrics"].items()
    ]  # fmt: skip


def what_if_statement(
    app: ItilApplication, view: AccountIncidentsProjection, account: str, month: str, terms: Terms, now: datetime
) -> dict[str, Any]:
    """The month's statement as it would read under `terms`; incidents are those logged that month."""
    zone = ZoneInfo(terms.calendar.timezone)
    rows: list[dict[str, Any]] = []
    replayed = 0
    for incident in view.account_incidents(account, now, include_closed=True)["incidents"]:
        logged = datetime.fromisoformat(incident["logged_at"])
        if logged.astimezone(zone).strftime("%Y-%m") != month:
            continue
        sla = replay_clocks(app, UUID(incident["id"]), terms, now)
        if sla is not None:
            rows += figures_rows(sla, now)
            replayed += 1
    return {"account": account, "month": month, "replayed_incidents": replayed, "figures": statement(rows)}
