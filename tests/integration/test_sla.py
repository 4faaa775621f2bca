"""SLA clocks, warnings, breaches and statements, driven by a clock the test controls.

The store, the SLA process and the projections are the real ones (SQLite and PostgreSQL);
events are handed to the consumers as the worker would, straight from the store's
notification log, so no test waits on Kafka here (the broker path has its own tests).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from application.app import ItilApplication
from application.whatif import what_if_statement
from domain import commands as cmd
from domain.calendar import always, business_hours
from domain.contract import Escalation, Terms
from domain.errors import IllegalTransition
from processes.sla import SlaConsumer, SlaProcess, SlaSchedule
from projections.account_incidents import AccountIncidentsProjection
from projections.db import Database
from projections.records import envelope_of
from projections.sla import SlaDashboardProjection
from projections.tracking import Delivery
from streams.envelope import decode, encode

PARIS = ZoneInfo("Europe/Paris")
H = 3600


def paris(day: str, hm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=PARIS)


def office_terms(**overrides: Any) -> Terms:
    """P2: respond in 30 min, restore in 4 h, on Mon–Fri 08–18 in Paris with French holidays."""
    values: dict[str, Any] = {
        "targets": {
            1: {"response": 15 * 60, "restoration": 1 * H},
            2: {"response": 30 * 60, "restoration": 4 * H},
            3: {"response": 1 * H, "restoration": 8 * H},
            4: {"response": 4 * H, "restoration": 24 * H},
        },
        "calendar": business_hours("08:00", "18:00"),
        "escalations": (Escalation(75, "assignment_group"), Escalation(90, "roc")),
    }
    values.update(overrides)
    return Terms(**values)


class Engine:
    """The engine's SLA side in one process, with a hand-driven clock."""

    def __init__(self, env: dict[str, str]) -> None:
        self.now = paris("2026-05-01", "00:00")
        self.app = ItilApplication(env=env)
        self.db = Database.from_store_env(env)
        self.view = AccountIncidentsProjection(self.db)
        self.sla = SlaDashboardProjection(self.db)
        self.schedule = SlaSchedule(self.db)
        self.process = SlaProcess(self.app, self.schedule, lambda: self.now)
        self.consumer = SlaConsumer(self.db, self.process)
        for owner in (self.view, self.sla, self.schedule, self.consumer):
            owner.create_tables()
        self.published = 0
        self.previous: int | None = None

    def pump(self) -> None:
        """Deliver every stored event not yet delivered to the view, the dashboard and the process."""
        while True:
            notifications = self.app.recorder.select_notifications(start=self.published + 1, limit=500)
            if not notifications:
                return
            batch = []
            for n in notifications:
                envelope = envelope_of(self.app.mapper.to_domain_event(n), n.id, self.previous)
                batch.append(Delivery("itil.events", 0, n.id - 1, decode(encode(envelope))))
                self.previous = self.published = n.id
            for consumer in (self.view, self.sla, self.consumer):
                consumer.apply(batch)

    def at(self, moment: datetime) -> None:
        """Time passes to `moment`: the ticker records what fell due."""
        self.now = moment
        self.pump()
        self.process.tick(moment)
        self.pump()

    def contract(self, terms: Terms, effective_from: datetime, service: str | None = None) -> None:
        self.app.add_contract_version(
            cmd.AddContractVersion(
                account="resto-chain",
                effective_from=effective_from,
                terms=terms,
                actor="roc-anne",
                at=effective_from,
                service=service,
            )  # fmt: skip
        )

    def log(self, at: datetime, impact: int = 1, urgency: int = 2, service: str | None = None) -> UUID:
        incident = uuid4()
        self.app.handle(cmd.LogIncident(id=incident, account="resto-chain", title="router down", impact=impact,
                                        urgency=urgency, channel="phone", reporter="manager", actor="n1", at=at,
                                        ci="router-42", service=service))  # fmt: skip
        self.at(at)
        return incident

    def do(self, command: Any) -> None:
        self.app.handle(command)
        self.at(command.at)

    def sla_events(self, incident: UUID) -> list[tuple[str, datetime, dict[str, Any]]]:
        from domain.sla import sla_id

        return [
            (type(e).__name__, e.at.astimezone(PARIS), e.__dict__)  # type: ignore[attr-defined]
            for e in self.app.events.get(sla_id(incident))
        ]


@pytest.fixture
def engine(store_env: dict[str, str]) -> Engine:
    e = Engine(store_env)
    e.contract(office_terms(), paris("2026-05-01", "00:00"))
    return e


def test_gtr_breach_falls_at_the_exact_business_instant_across_a_weekend(engine: Engine) -> None:
    incident = engine.log(paris("2026-05-15", "17:00"))  # a Friday, P2
    engine.at(paris("2026-05-15", "17:10"))
    engine.do(cmd.AcknowledgeIncident(incident, actor="n1", at=paris("2026-05-15", "17:20")))
    engine.at(paris("2026-05-18", "12:00"))  # Monday noon: the ticker catches up

    events = engine.sla_events(incident)
    reached = [(kind, at.strftime("%a %H:%M"), d.get("metric"), d.get("threshold")) for kind, at, d in events
               if kind in ("ThresholdReached", "Breached")]  # fmt: skip
    assert reached == [
        ("ThresholdReached", "Fri 17:15", "response", 50),
        ("ThresholdReached", "Mon 09:00", "restoration", 50),  # Fri 17–18 + Mon 08–09
        ("ThresholdReached", "Mon 10:00", "restoration", 75),
        ("ThresholdReached", "Mon 10:36", "restoration", 90),
        ("Breached", "Mon 11:00", "restoration", None),
    ]
    escalated = [(at.strftime("%a %H:%M"), d["notify"]) for kind, at, d in events if kind == "Escalated"]
    assert escalated == [("Mon 10:00", "assignment_group"), ("Mon 10:36", "roc")]
    stopped = [d for kind, _, d in events if kind == "ClockStopped"]
    assert [(d["metric"], d["elapsed_seconds"], d["met"]) for d in stopped] == [("response", 1200.0, True)]

    engine.at(paris("2026-05-18", "12:00"))  # ticking again records nothing twice
    assert len(engine.sla_events(incident)) == len(events)

    breaches = engine.sla.breaches("resto-chain", "2026-05")
    assert [(b["metric"], b["breached_at"]) for b in breaches] == [
        ("restoration", paris("2026-05-18", "11:00").astimezone(ZoneInfo("UTC")).isoformat())
    ]
    explanation = [e["summary"] for e in engine.sla.explanation(str(incident))]
    assert explanation[0].startswith("Clocks started: P2, contract version 1")
    assert "Restoration target of 4 h breached" in explanation


def test_roc_sees_the_incident_at_risk_with_business_time_left(engine: Engine) -> None:
    incident = engine.log(paris("2026-05-18", "09:00"))  # Monday, P2: restore by 13:00
    engine.at(paris("2026-05-18", "11:30"))
    at_risk = engine.sla.at_risk(engine.now, "resto-chain")
    restoration = next(r for r in at_risk if r["metric"] == "restoration")
    assert restoration["incident_id"] == str(incident)
    assert restoration["time_left_seconds"] == 1.5 * H
    assert restoration["last_threshold"] == 50
    assert restoration["title"] == "router down"
    assert [r["metric"] for r in at_risk] == ["restoration"]  # response (due 09:30) is breached, not at risk
    assert [b["metric"] for b in engine.sla.breaches("resto-chain")] == ["response"]


def test_pending_customer_pauses_restoration_but_waiting_on_the_carrier_does_not(engine: Engine) -> None:
    incident = engine.log(paris("2026-05-18", "09:00"))  # Monday
    engine.do(cmd.AcknowledgeIncident(incident, actor="n1", at=paris("2026-05-18", "09:05")))
    engine.do(cmd.HoldIncident(incident, reason="awaiting_customer", actor="n1", at=paris("2026-05-18", "10:00")))
    engine.do(cmd.ResumeIncident(incident, actor="n1", at=paris("2026-05-19", "10:00")))  # a day later
    engine.do(cmd.HoldIncident(incident, reason="awaiting_supplier", actor="n1", at=paris("2026-05-19", "11:00")))
    engine.do(cmd.RestoreService(incident, actor="n2", at=paris("2026-05-19", "12:00")))

    stopped = {d["metric"]: d for kind, _, d in engine.sla_events(incident) if kind == "ClockStopped"}
    assert stopped["restoration"]["elapsed_seconds"] == 3 * H  # 09–10 Monday, 10–12 Tuesday
    assert stopped["restoration"]["met"] is True
    kinds = [kind for kind, _, _ in engine.sla_events(incident)]
    assert kinds.count("ClocksPaused") == 1 and kinds.count("ClocksResumed") == 1


def test_reopen_continues_the_restoration_clock(engine: Engine) -> None:
    incident = engine.log(paris("2026-05-18", "09:00"))
    engine.do(cmd.ResolveIncident(incident, code="fixed", actor="n2", at=paris("2026-05-18", "10:00")))
    engine.do(cmd.ReopenIncident(incident, reason="down again", actor="n1", at=paris("2026-05-18", "14:00")))
    engine.do(cmd.RestoreService(incident, actor="n2", at=paris("2026-05-18", "16:00")))
    stopped = [
        d for kind, _, d in engine.sla_events(incident) if kind == "ClockStopped" and d["metric"] == "restoration"
    ]
    assert [d["elapsed_seconds"] for d in stopped] == [1 * H, 3 * H]  # 1 h, then 2 h more after reopening


def test_priority_change_retargets_from_the_original_start(engine: Engine) -> None:
    incident = engine.log(paris("2026-05-18", "09:00"), impact=3, urgency=3)  # P4: 24 h
    engine.do(cmd.ReprioritiseIncident(incident, impact=1, urgency=1, actor="n1", at=paris("2026-05-18", "10:30")))
    events = engine.sla_events(incident)
    retargeted = [d for kind, _, d in events if kind == "Retargeted"]
    assert retargeted[0]["reason"] == "priority changed from P4 to P1"
    assert retargeted[0]["targets"]["restoration"] == 1 * H
    breach = [at for kind, at, d in events if kind == "Breached" and d["metric"] == "restoration"]
    assert breach == [paris("2026-05-18", "10:00")]  # P1's hour counted from 09:00, recorded when retargeted


def test_a_contract_change_never_rewrites_earlier_incidents(engine: Engine) -> None:
    before = engine.log(paris("2026-05-18", "09:00"))
    engine.now = paris("2026-05-18", "09:30")
    engine.contract(
        office_terms(targets={2: {"response": 10 * 60, "restoration": 1 * H}}), paris("2026-05-19", "00:00")
    )
    after = engine.log(paris("2026-05-19", "09:00"))
    targets = {i: next(d for k, _, d in engine.sla_events(i) if k == "ClocksStarted")["terms"] for i in (before, after)}
    assert (targets[before]["contract_version"], targets[before]["targets"]["restoration"]) == (1, 4 * H)
    assert (targets[after]["contract_version"], targets[after]["targets"]["restoration"]) == (2, 1 * H)
    with pytest.raises(IllegalTransition, match="in the past"):
        engine.app.add_contract_version(
            cmd.AddContractVersion(
                account="resto-chain",
                effective_from=paris("2026-05-01", "00:00"),
                terms=office_terms(),
                actor="roc",
                at=paris("2026-05-19", "10:00"),
            )  # fmt: skip
        )


def test_monthly_statement_and_what_if_under_another_contract(engine: Engine) -> None:
    met = engine.log(paris("2026-05-18", "09:00"))
    engine.do(cmd.AcknowledgeIncident(met, actor="n1", at=paris("2026-05-18", "09:10")))
    engine.do(cmd.RestoreService(met, actor="n2", at=paris("2026-05-18", "11:00")))
    late = engine.log(paris("2026-05-18", "10:00"))
    engine.do(cmd.AcknowledgeIncident(late, actor="n1", at=paris("2026-05-18", "10:20")))
    engine.do(cmd.RestoreService(late, actor="n2", at=paris("2026-05-18", "16:00")))  # 6 h: breached
    cancelled = engine.log(paris("2026-05-18", "10:30"))
    engine.do(cmd.CancelIncident(cancelled, reason="duplicate", actor="n1", at=paris("2026-05-18", "10:35")))

    figures = {
        (f["priority"], f["metric"]): f for f in engine.sla.monthly_statement("resto-chain", "2026-05")["figures"]
    }
    restoration = figures[("P2", "restoration")]
    assert (restoration["counted"], restoration["met"], restoration["breached"]) == (2, 1, 1)
    assert restoration["compliance_percent"] == 50.0
    assert restoration["mean_elapsed_seconds"] == 4 * H  # (2 h + 6 h) / 2, in business time
    assert restoration["worst"][0]["incident_id"] == str(late)
    assert figures[("P2", "response")]["compliance_percent"] == 100.0

    # the same month under a 24/7, 8 h restoration contract: both met; the live figures are untouched
    generous = office_terms(targets={2: {"response": 30 * 60, "restoration": 8 * H}}, calendar=always())
    replay = what_if_statement(engine.app, engine.view, "resto-chain", "2026-05", generous, engine.now)
    what_if = {(f["priority"], f["metric"]): f for f in replay["figures"]}
    assert (what_if[("P2", "restoration")]["met"], what_if[("P2", "restoration")]["breached"]) == (2, 0)
    assert replay["replayed_incidents"] == 3
    again = engine.sla.monthly_statement("resto-chain", "2026-05")["figures"]
    assert {(f["priority"], f["metric"]): f for f in again}[("P2", "restoration")]["breached"] == 1


def test_redelivered_events_change_no_clock(engine: Engine) -> None:
    incident = engine.log(paris("2026-05-18", "09:00"))
    engine.do(cmd.HoldIncident(incident, reason="awaiting_customer", actor="n1", at=paris("2026-05-18", "10:00")))
    count = len(engine.sla_events(incident))
    # the process sees the whole history again (a republish after a broker loss)
    for n in engine.app.recorder.select_notifications(start=1, limit=1000):
        engine.process.react(decode(encode(envelope_of(engine.app.mapper.to_domain_event(n), n.id))))
    assert len(engine.sla_events(incident)) == count


def test_the_dashboard_aggregated_by_the_database_equals_the_statement(engine: Engine) -> None:
    for n, (restored, hour) in enumerate([("11:00", "09:00"), ("16:00", "10:00"), ("12:30", "11:00")]):
        incident = engine.log(paris("2026-05-18", hour), impact=1 + n % 2)
        engine.do(cmd.AcknowledgeIncident(incident, actor="n1", at=paris("2026-05-18", hour) + timedelta(minutes=5)))
        engine.do(cmd.RestoreService(incident, actor="n2", at=paris("2026-05-18", restored)))
    cancelled = engine.log(paris("2026-05-18", "11:30"))
    engine.do(cmd.CancelIncident(cancelled, reason="duplicate", actor="n1", at=paris("2026-05-18", "11:35")))
    engine.at(paris("2026-05-18", "17:00"))
    from projections.sla import statement

    assert engine.sla.dashboard("resto-chain", "2026-05")["figures"] == statement(
        engine.sla.rows("resto-chain", "2026-05")
    )
