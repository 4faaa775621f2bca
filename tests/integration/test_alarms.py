"""Supervision alarms become incidents: storms, repeats, clears, flapping holds, automation, redelivery.

The store, the intake processor, the alarm process, the CI registry and the views are the real ones
(SQLite and PostgreSQL). Messages go through `IntakeProcessor.handle` as the intake consumers hand them
over one at a time, and again through `IntakeProcessor.handle_batch` as they hand over a storm (the
Kafka wiring has its own tests); stored events are pumped to the consumers as the worker would; the
clock is the test's.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from eventsourcing.persistence import IntegrityError

from application.alarm_context import CiGraphs
from application.alarms import AlarmProcess
from application.app import ItilApplication
from application.configuration import ci_id
from domain.commands import (
    AssignIncident,
    CloseIncident,
    RegisterCi,
    RelateCis,
    ReprioritiseIncident,
    ResolveIncident,
    RestoreService,
    SetAlarmRules,
)
from domain.configuration import DEGRADED, DOWN, OPERATIONAL, RETIRED, ConfigurationItem
from domain.incident import RESTORED, Incident
from domain.monitoring import Alarm, AlarmRule, alarm_id, episode_incident_id
from processes.alarms import AlarmEventsConsumer
from processes.incidents import MassOutageProcess
from projections.account_incidents import AccountIncidentsProjection
from projections.alarms import AlarmsProjection
from projections.configuration import CiRegistryProjection
from projections.db import Database
from projections.records import envelope_of
from projections.tracking import Delivery
from streams.contracts import (
    ALERTS_TOPIC,
    AUTOMATION_RESULTS_TOPIC,
    FLEET_TOPIC,
    AutomationRequestV1,
    decode_intake,
)
from streams.envelope import decode, encode
from streams.intake import IntakeProcessor, Outcome
from web.api import WebApi

PARIS = ZoneInfo("Europe/Paris")
ACCOUNT = "resto-chain"
LINK = "link-orange-paca"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=PARIS)
TOPICS = {"alarm": ALERTS_TOPIC, "automation": AUTOMATION_RESULTS_TOPIC, "ci": FLEET_TOPIC}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def site(n: int) -> str:
    return f"resto-{n:03d}"


class Engine:
    """The supervision side of the engine in one process, with a hand-driven clock."""

    def __init__(self, env: dict[str, str], batched: bool = False, **parameters: Any) -> None:
        self.batched = batched
        self.queued: list[tuple[str, int, int, bytes | None, bytes | None]] = []
        self.now = T0
        self.app = ItilApplication(env=env)
        self.db = Database.from_store_env(env)
        self.registry = CiRegistryProjection(self.db)
        self.view = AlarmsProjection(self.db)
        self.incidents = AccountIncidentsProjection(self.db)
        self.sent: list[dict[str, Any]] = []
        self.process = AlarmProcess(
            self.app, self.db, self.registry, publisher=self.publish, clock=lambda: self.now, **parameters
        )
        self.watch = AlarmEventsConsumer(self.db, self.process)
        self.outages = MassOutageProcess(self.db, self.app)
        self.intake = IntakeProcessor(self.app, self.db, alarms=self.process, clock=lambda: self.now)
        for owner in (self.registry, self.view, self.incidents, self.process, self.watch, self.outages, self.intake):
            owner.create_tables()
        self.consumers = (self.registry, self.view, self.incidents, self.watch, self.outages)
        self.published = 0
        self.previous: int | None = None
        self.messages: list[tuple[str, bytes]] = []
        self.counter = 0

    def publish(self, request: dict[str, Any]) -> None:
        """The automation platform is asked to act on an incident: it must be stored by then."""
        assert self.app.find(UUID(request["incident_id"]), Incident) is not None, "automation before its incident"
        self.sent.append(request)

    def carry_out_queued(self) -> Outcome | None:
        """Hand the queued messages to the intake in one batch, as the intake consumer does in a storm."""
        if not self.queued:
            return None
        outcomes = self.intake.handle_batch(self.queued)
        self.queued.clear()
        assert not [o.reason for o in outcomes if o.dead]
        return outcomes[-1]

    def pump(self) -> None:
        """Deliver every stored event not yet delivered to the views and processes."""
        self.carry_out_queued()
        while True:
            notifications = self.app.recorder.select_notifications(start=self.published + 1, limit=1000)
            if not notifications:
                return
            batch = []
            for n in notifications:
                envelope = envelope_of(self.app.mapper.to_domain_event(n), n.id, self.previous)
                batch.append(Delivery("itil.events", 0, n.id - 1, decode(encode(envelope))))
                self.previous = self.published = n.id
            for consumer in self.consumers:
                consumer.apply(batch)

    def stored(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    # -- messages -------------------------------------------------------------------------------

    def send(self, message_type: str, pump: bool = True, source: str = "centreon", **body: Any) -> Outcome:
        """Publish one intake message of `message_type` (fields as JSON values) and carry it out."""
        self.counter += 1
        message = {
            "message_id": f"{source}-{self.counter}",
            "type": message_type,
            "schema_version": 1,
            "sent_at": self.now.isoformat(),
            "source": source,
            **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in body.items()},
        }
        topic = TOPICS[message_type.split(".")[0]]
        raw = json.dumps(message).encode()
        self.messages.append((topic, raw))
        if self.batched:
            self.queued.append((topic, 0, self.counter, None, raw))
            if not pump:
                return Outcome("queued")
            outcome = self.carry_out_queued()
            assert outcome is not None
        else:
            outcome = self.intake.handle(topic, 0, self.counter, None, raw)
        assert not outcome.dead, outcome.reason
        if pump:
            self.pump()
        return outcome

    def alarm(self, kind: str, ci: str, check: str, when: datetime, severity: str = "critical", **extra: Any) -> Any:
        key = extra.pop("dedup_key", f"centreon:{ci}:{check}")
        fields: dict[str, Any] = {"account": ACCOUNT, "ci": ci, "check": check, "dedup_key": key, "at": when}
        if kind != "cleared":
            fields["severity"] = severity
            fields.setdefault("summary", f"{check} failing on {ci}")
        fields.update(extra)
        return self.send(f"alarm.{kind}", **fields)

    def raised(self, ci: str, check: str, when: datetime, **extra: Any) -> Alarm:
        outcome = self.alarm("raised", ci, check, when, **extra)
        found: Alarm = outcome.result
        return found

    def cleared(self, ci: str, check: str, when: datetime, **extra: Any) -> Alarm:
        outcome = self.alarm("cleared", ci, check, when, **extra)
        found: Alarm = outcome.result
        return found

    def redeliver_everything(self) -> None:
        """Every message again, straight to its handler, as if the intake had lost its record of them."""
        for topic, raw in self.messages:
            message = decode_intake(topic, raw)
            self.intake.handlers[message.type](self.app, message)
        self.pump()

    # -- setup and reading ----------------------------------------------------------------------

    def carrier_sites(self, count: int) -> None:
        """`count` restaurant sites that depend on one carrier link."""
        self.app.handle(RegisterCi(ACCOUNT, LINK, "carrier_link", "cmdb-sync", T0 - timedelta(days=1)))
        for n in range(1, count + 1):
            self.app.handle(RegisterCi(ACCOUNT, site(n), "site", "cmdb-sync", T0 - timedelta(days=1)))
            self.app.handle(RelateCis(ACCOUNT, site(n), "depends_on", LINK, "cmdb-sync", T0 - timedelta(days=1)))
        self.pump()

    def rules(self, *rules: AlarmRule) -> None:
        self.app.handle(SetAlarmRules(ACCOUNT, rules, "roc-anne", T0 - timedelta(hours=1)))

    def incident(self, incident_id: UUID | None) -> Incident:
        assert incident_id is not None
        return self.app.get_incident(incident_id)

    def alarm_of(self, ci: str, check: str) -> Alarm:
        found = self.app.find(alarm_id(ACCOUNT, f"centreon:{ci}:{check}"), Alarm)
        assert found is not None
        return found

    def monitoring_incidents(self) -> list[Incident]:
        rows = self.incidents.db.transaction(write=False)
        with rows as tx:
            ids = [r["incident_id"] for r in tx.execute("SELECT incident_id FROM view_incidents").all()]
        return [self.app.get_incident(UUID(i)) for i in ids]


@pytest.fixture(params=["one by one", "in batches"])
def engine(store_env: dict[str, str], request: pytest.FixtureRequest) -> Engine:
    return Engine(store_env, batched=request.param == "in batches")


# -- mass outages ---------------------------------------------------------------------------------


def test_the_ci_graph_follows_the_registry_without_being_told(engine: Engine) -> None:
    graphs = CiGraphs(engine.registry, ttl=3600)  # as in an intake process: no consumer invalidates it
    engine.app.handle(RegisterCi(ACCOUNT, LINK, "carrier_link", "cmdb-sync", T0 - timedelta(days=1)))
    engine.app.handle(RegisterCi(ACCOUNT, site(1), "site", "cmdb-sync", T0 - timedelta(days=1)))
    engine.pump()
    assert not graphs.graph(ACCOUNT).has_dependents(LINK)
    engine.app.handle(RelateCis(ACCOUNT, site(1), "depends_on", LINK, "cmdb-sync", T0 - timedelta(days=1)))
    engine.pump()
    assert graphs.graph(ACCOUNT).has_dependents(LINK)


def test_an_alarm_storm_behind_a_carrier_link_becomes_one_parent_incident_with_a_child_per_site(
    engine: Engine,
) -> None:
    engine.carrier_sites(50)
    storm = [(site(n), check) for n in range(1, 51) for check in ("ping", "bgp", "voip", "http")]
    random.Random(7).shuffle(storm)
    for i, (ci, check) in enumerate(storm):  # 200 alarms in 100 seconds
        engine.alarm("raised", ci, check, at(i / 2), pump=False)
    engine.pump()

    incidents = engine.monitoring_incidents()
    parents = [i for i in incidents if i.children]
    assert len(parents) == 1 and len(incidents) == 51
    parent = parents[0]
    assert (parent.ci, parent.channel, parent.impact, parent.priority) == (LINK, "monitoring", 1, 1)
    assert parent.title == f"Mass outage behind {LINK}"
    children = {engine.incident(c).ci: engine.incident(c) for c in parent.children}
    assert sorted(children) == [site(n) for n in range(1, 51)]
    assert all(c.parent_id == parent.id for c in children.values())
    for ci, check in storm:  # each alarm is on its site's child incident
        assert engine.alarm_of(ci, check).incident_id == children[ci].id

    # the link's own alarm joins the parent; a late site alarm joins its site's child
    assert engine.raised(LINK, "ping", at(110)).incident_id == parent.id
    assert engine.raised(site(7), "dns", at(115)).incident_id == children[site(7)].id
    assert len(engine.monitoring_incidents()) == 51


def test_the_outage_parent_is_restored_when_the_last_alarm_behind_it_clears(engine: Engine) -> None:
    engine.carrier_sites(4)
    for n in range(1, 5):
        engine.raised(site(n), "ping", at(n))
    engine.raised(LINK, "bgp", at(10))
    parent = engine.incident(engine.alarm_of(LINK, "bgp").incident_id)
    assert len(parent.children) == 4

    for n in range(1, 5):
        engine.cleared(site(n), "ping", at(600 + n))
        assert engine.incident(engine.alarm_of(site(n), "ping").incident_id).status == RESTORED
    assert engine.incident(parent.id).status != RESTORED  # the link still alarms
    engine.cleared(LINK, "bgp", at(700))
    restored = engine.incident(parent.id)
    assert (restored.status, restored.restored_at) == (RESTORED, at(700))

    # the outage is over: a new alarm behind the link opens an incident of its own
    again = engine.raised(site(1), "ping", at(800))
    assert engine.incident(again.incident_id).parent_id is None


def test_an_outage_over_within_the_window_leaves_nothing_for_the_next_alarm_to_join(engine: Engine) -> None:
    engine.carrier_sites(3)
    for n in range(1, 4):
        engine.raised(site(n), "ping", at(n))
    parent = engine.incident(engine.alarm_of(site(1), "ping").incident_id).parent_id
    for n in range(1, 4):
        engine.cleared(site(n), "ping", at(10 + n))
    assert engine.incident(parent).status == RESTORED
    again = engine.raised(site(1), "ping", at(20))
    fresh = engine.incident(again.incident_id)
    assert (fresh.parent_id, fresh.status) == (None, "new")


def test_an_alarm_on_the_upstream_ci_first_becomes_the_parent_of_the_outage(engine: Engine) -> None:
    engine.carrier_sites(3)
    link = engine.raised(LINK, "ping", at(0))
    for n in range(1, 4):
        engine.raised(site(n), "ping", at(n))
    parent = engine.incident(link.incident_id)
    assert parent.id == episode_incident_id(link.id, 1)
    assert sorted(engine.incident(c).ci or "" for c in parent.children) == [site(1), site(2), site(3)]


def test_alarms_on_few_cis_or_spread_over_time_are_not_correlated(engine: Engine) -> None:
    engine.carrier_sites(5)
    engine.raised(site(1), "ping", at(0))
    engine.raised(site(2), "ping", at(10))
    engine.raised(site(3), "ping", at(200))  # the first one is out of the 120 s window
    assert all(not i.children and i.parent_id is None for i in engine.monitoring_incidents())
    assert len(engine.monitoring_incidents()) == 3


# -- one alarm ------------------------------------------------------------------------------------


def test_a_repeated_alarm_updates_count_and_last_seen_on_one_incident(engine: Engine) -> None:
    for second in (0, 30, 60, 90):
        engine.raised("router-42", "ping", at(second))
    engine.alarm("updated", "router-42", "ping", at(120), severity="major", summary="loss down to 40%")
    alarm = engine.alarm_of("router-42", "ping")
    assert (alarm.episode, alarm.count, alarm.last_seen, alarm.severity) == (1, 5, at(120), "major")
    incident = engine.incident(alarm.incident_id)
    assert (incident.channel, incident.priority, incident.ci, incident.logged_at) == (
        "monitoring",
        1,
        "router-42",
        at(0),
    )
    assert len(engine.monitoring_incidents()) == 1

    [listed] = engine.view.alarms(ACCOUNT)
    assert (listed["count"], listed["status"], listed["incident_id"]) == (5, "open", str(incident.id))
    assert datetime.fromisoformat(listed["last_seen"]) == at(120)


def test_a_clear_restores_service_and_the_next_raise_opens_a_new_incident(engine: Engine) -> None:
    first = engine.raised("router-42", "ping", at(0)).incident_id
    engine.cleared("router-42", "ping", at(300), summary="ping answers again")
    restored = engine.incident(first)
    assert (restored.status, restored.restored_at) == (RESTORED, at(300))
    assert engine.view.alarms(ACCOUNT) == []

    again = engine.raised("router-42", "ping", at(3600))
    assert again.episode == 2 and again.incident_id not in (None, first)


def test_alarms_on_one_ci_share_its_incident_until_the_last_one_clears(engine: Engine) -> None:
    ping = engine.raised("router-42", "ping", at(0))
    bgp = engine.raised("router-42", "bgp", at(20))
    assert bgp.incident_id == ping.incident_id
    engine.cleared("router-42", "ping", at(100))
    assert engine.incident(ping.incident_id).status != RESTORED
    engine.cleared("router-42", "bgp", at(200))
    assert engine.incident(ping.incident_id).status == RESTORED


def test_rules_set_the_priority_and_a_rule_may_annotate_instead_of_restoring(engine: Engine) -> None:
    engine.rules(AlarmRule("disk-*", "warning", impact=3, urgency=2, on_clear="annotate"))
    alarm = engine.raised("srv-1", "disk-usage", at(0), severity="minor")
    incident = engine.incident(alarm.incident_id)
    assert (incident.impact, incident.urgency, incident.priority) == (3, 2, 4)
    engine.cleared("srv-1", "disk-usage", at(60))
    assert engine.incident(alarm.incident_id).status == "new"
    [note] = engine.alarm_of("srv-1", "disk-usage").annotations
    assert "left for the team to restore" in note["note"]
    [work_note] = engine.app.comments(alarm.incident_id)
    assert work_note.text == (
        "alarm disk-usage on srv-1 cleared; service not restored automatically: the alarm rule leaves it to the team"
    )
    assert (work_note.customer_visible, work_note.author, work_note.actor, work_note.at) == (
        False, "centreon", "centreon", at(60),
    )  # fmt: skip
    detail = engine.incidents.incident_detail(str(alarm.incident_id), at(60))
    assert detail is not None and detail["timeline"][-1]["summary"] == f"Work note by centreon: {work_note.text}"


def test_an_annotating_clear_redelivered_leaves_one_work_note(engine: Engine) -> None:
    engine.rules(AlarmRule("disk-*", "warning", impact=3, urgency=2, on_clear="annotate"))
    alarm = engine.raised("srv-1", "disk-usage", at(0), severity="minor")
    assert alarm.incident_id is not None
    engine.app.handle(AssignIncident(alarm.incident_id, group="N2 systems", actor="n2-tech", at=at(120)))
    engine.cleared("srv-1", "disk-usage", at(60))  # reaches the engine after the technician acted
    [work_note] = engine.app.comments(alarm.incident_id)
    assert work_note.at == at(60)  # when the alarm cleared (a comment keeps its own instant)

    engine.redeliver_everything()

    assert len(engine.app.comments(alarm.incident_id)) == 1


def test_no_work_note_is_left_on_an_incident_closed_before_its_alarm_cleared(engine: Engine) -> None:
    engine.rules(AlarmRule("disk-*", "warning", impact=3, urgency=2, on_clear="annotate"))
    alarm = engine.raised("srv-1", "disk-usage", at(0), severity="minor")
    assert alarm.incident_id is not None
    engine.app.handle(ResolveIncident(alarm.incident_id, code="fixed", actor="n2-tech", at=at(30)))
    engine.app.handle(CloseIncident(alarm.incident_id, actor="n2-tech", at=at(40)))

    outcome = engine.cleared("srv-1", "disk-usage", at(60))

    assert outcome.is_active is False
    assert engine.app.comments(alarm.incident_id) == []


# -- flapping -------------------------------------------------------------------------------------


def test_a_flapping_alarm_cleared_within_its_hold_opens_nothing(engine: Engine) -> None:
    engine.rules(AlarmRule("tpe-*", hold_seconds=300, impact=2, urgency=2))
    assert engine.raised("tpe-0042", "tpe-offline", at(0)).is_held
    cleared = engine.cleared("tpe-0042", "tpe-offline", at(60))
    assert (cleared.status, cleared.incident_id) == ("cleared", None)
    engine.now = at(600)
    assert engine.process.tick() == 0
    assert engine.monitoring_incidents() == []
    last = list(engine.app.events.get(cleared.id))[-1]
    assert isinstance(last, Alarm.Cleared) and last.incident_id is None


def reprioritisations(engine: Engine, incident_id: UUID | None) -> list[tuple[int, int]]:
    assert incident_id is not None
    return [(e.impact, e.urgency) for e in engine.app.events.get(incident_id) if isinstance(e, Incident.Reprioritised)]


def test_an_alarm_that_gets_worse_raises_its_incident_priority_and_a_calmer_one_never_lowers_it(
    engine: Engine,
) -> None:
    engine.rules(AlarmRule("ping", "critical", impact=1, urgency=1), AlarmRule("ping", "warning", impact=3, urgency=2))
    alarm = engine.raised("resto-001", "ping", at(0), severity="minor")
    assert (engine.incident(alarm.incident_id).impact, engine.incident(alarm.incident_id).urgency) == (3, 2)

    engine.alarm("updated", "resto-001", "ping", at(60), severity="major")  # the same rule: nothing to change
    engine.alarm("updated", "resto-001", "ping", at(120), severity="critical")
    worse = engine.incident(alarm.incident_id)
    assert (worse.impact, worse.urgency, worse.priority) == (1, 1, 1)
    engine.alarm("updated", "resto-001", "ping", at(180), severity="minor")
    engine.redeliver_everything()

    assert reprioritisations(engine, alarm.incident_id) == [(1, 1)]
    assert engine.incident(alarm.incident_id).priority == 1


def test_a_worse_alarm_leaves_a_restored_incident_and_a_higher_priority_set_by_people_as_they_are(
    engine: Engine,
) -> None:
    engine.rules(AlarmRule("ping", "critical", impact=2, urgency=1), AlarmRule("ping", "warning", impact=3, urgency=3))
    first = engine.raised("resto-001", "ping", at(0), severity="minor")
    engine.app.handle(RestoreService(first.incident_id, actor="n2-tech", at=at(30)))
    second = engine.raised("resto-002", "ping", at(0), severity="minor")
    engine.app.handle(ReprioritiseIncident(second.incident_id, impact=1, urgency=3, actor="roc-anne", at=at(30)))

    engine.alarm("updated", "resto-001", "ping", at(60), severity="critical")
    engine.alarm("updated", "resto-002", "ping", at(60), severity="critical")

    assert reprioritisations(engine, first.incident_id) == []
    assert reprioritisations(engine, second.incident_id) == [(1, 3), (1, 1)]  # impact kept, urgency raised


def test_a_rule_changed_applies_to_the_very_next_alarm(engine: Engine) -> None:
    """The rules are set through the API, maybe in another process: the intake reads the change from the store."""
    engine.rules(AlarmRule("tpe-*", hold_seconds=300, impact=2, urgency=2))
    engine.pump()
    assert engine.raised("tpe-0042", "tpe-offline", at(0)).is_held
    engine.rules(AlarmRule("tpe-*", impact=2, urgency=2))  # no hold any more; nothing told the intake
    second = engine.raised("tpe-0043", "tpe-offline", at(1))
    assert not second.is_held and second.incident_id is not None
    engine.rules(AlarmRule("tpe-*", hold_seconds=60, impact=2, urgency=2))
    assert engine.raised("tpe-0044", "tpe-offline", at(2)).is_held


def test_a_held_alarm_not_cleared_opens_its_incident_when_the_hold_expires(engine: Engine) -> None:
    engine.rules(AlarmRule("tpe-*", hold_seconds=300, impact=2, urgency=2))
    engine.raised("tpe-0042", "tpe-offline", at(0))
    engine.raised("tpe-0042", "tpe-offline", at(120))
    assert engine.process.tick(at(299)) == 0
    assert engine.alarm_of("tpe-0042", "tpe-offline").incident_id is None
    assert [a["status"] for a in (engine.pump(), engine.view.alarms(ACCOUNT))[1]] == ["held"]
    assert engine.process.tick(at(305)) == 1
    engine.pump()
    alarm = engine.alarm_of("tpe-0042", "tpe-offline")
    incident = engine.incident(alarm.incident_id)
    assert (incident.logged_at, incident.priority, alarm.count) == (at(300), 3, 2)
    assert engine.process.tick(at(400)) == 0
    engine.cleared("tpe-0042", "tpe-offline", at(500))
    assert engine.incident(alarm.incident_id).status == RESTORED


# -- automation -----------------------------------------------------------------------------------


def test_an_automatic_corrective_action_is_requested_and_its_success_restores_service(engine: Engine) -> None:
    engine.rules(AlarmRule("tpe-gateway", "major", impact=2, urgency=1, automation="restart-tpe-gateway"))
    alarm = engine.raised("gw-aubagne", "tpe-gateway", at(0))
    [request] = engine.sent
    AutomationRequestV1().load(request)  # the message follows its contract
    assert (request["action"], request["incident_id"], request["ci"]) == (
        "restart-tpe-gateway", str(alarm.incident_id), "gw-aubagne",
    )  # fmt: skip
    assert engine.alarm_of("gw-aubagne", "tpe-gateway").automations[UUID(request["request_id"])]["succeeded"] is None

    engine.send(
        "automation.result", source="rundeck", request_id=request["request_id"], incident_id=request["incident_id"],
        action="restart-tpe-gateway", outcome="success", detail="gateway restarted", at=at(90),
    )  # fmt: skip
    incident = engine.incident(alarm.incident_id)
    assert (incident.status, incident.restored_at) == (RESTORED, at(90))
    assert engine.alarm_of("gw-aubagne", "tpe-gateway").automations[UUID(request["request_id"])]["succeeded"] is True
    engine.raised("gw-aubagne", "tpe-gateway", at(100))  # a repeat asks nothing more
    assert len(engine.sent) == 1


def test_a_failed_corrective_action_is_recorded_and_service_stays_down(engine: Engine) -> None:
    engine.rules(AlarmRule("*", "warning", impact=2, urgency=2, automation="reboot"))
    alarm = engine.raised("srv-1", "http", at(0))
    [request] = engine.sent
    engine.send(
        "automation.result", source="rundeck", request_id=request["request_id"], incident_id=request["incident_id"],
        action="reboot", outcome="failure", detail="host unreachable", at=at(90),
    )  # fmt: skip
    assert engine.incident(alarm.incident_id).status == "new"
    assert engine.alarm_of("srv-1", "http").automations[UUID(request["request_id"])]["succeeded"] is False


def test_an_automation_result_nobody_asked_for_is_dead_lettered(engine: Engine) -> None:
    raw = json.dumps({
        "message_id": "rundeck-1", "type": "automation.result", "schema_version": 1, "sent_at": T0.isoformat(),
        "source": "rundeck", "request_id": str(UUID(int=1)), "incident_id": str(UUID(int=2)), "action": "reboot",
        "outcome": "success", "at": T0.isoformat(),
    }).encode()  # fmt: skip
    outcome = engine.intake.handle(AUTOMATION_RESULTS_TOPIC, 0, 1, None, raw)
    assert outcome.dead and "no alarm requested automation" in (outcome.reason or "")


# -- idempotence ----------------------------------------------------------------------------------


def test_redelivering_every_message_changes_nothing(engine: Engine) -> None:
    engine.carrier_sites(5)
    engine.rules(
        AlarmRule("tpe-*", hold_seconds=300, impact=2, urgency=2),
        AlarmRule("gateway", impact=2, urgency=1, automation="restart-gateway"),
    )
    for n in range(1, 6):
        engine.raised(site(n), "ping", at(n))
        engine.raised(site(n), "ping", at(30 + n))
    engine.raised("gw-1", "gateway", at(40))
    engine.raised("tpe-1", "tpe-offline", at(50))
    engine.raised("tpe-2", "tpe-offline", at(50))
    engine.cleared("tpe-2", "tpe-offline", at(60))
    engine.process.tick(at(400))
    engine.cleared(site(1), "ping", at(500))
    [request] = engine.sent
    engine.send(
        "automation.result", source="rundeck", request_id=request["request_id"], incident_id=request["incident_id"],
        action="restart-gateway", outcome="success", at=at(510),
    )  # fmt: skip
    for n in range(2, 6):
        engine.cleared(site(n), "ping", at(600 + n))
    engine.pump()
    before = engine.stored()
    alarms = engine.view.alarms(ACCOUNT, active=False)

    for topic, raw in engine.messages:  # through the intake: each one a duplicate
        assert engine.intake.handle(topic, 0, 0, None, raw).status == "duplicate"
    engine.redeliver_everything()
    engine.process.tick(at(1000))
    engine.pump()
    assert engine.stored() == before
    assert engine.view.alarms(ACCOUNT, active=False) == alarms
    assert len(engine.sent) == 1


def test_the_alarms_view_applies_a_batch_again_without_change(engine: Engine) -> None:
    """Each alarm's row is read once per batch; events it already holds (its first included) change nothing."""
    for n in range(1, 4):
        engine.raised(site(n), "ping", at(n))
        engine.raised(site(n), "ping", at(60 + n))
    engine.cleared(site(2), "ping", at(200))
    engine.pump()
    alarms = engine.view.alarms(ACCOUNT, active=False)
    assert sorted((a["ci"], a["count"], a["status"]) for a in alarms) == [
        (site(1), 2, "open"), (site(2), 2, "cleared"), (site(3), 2, "open"),
    ]  # fmt: skip
    everything = [
        decode(encode(envelope_of(engine.app.mapper.to_domain_event(n), n.id, None)))
        for n in engine.app.recorder.select_notifications(start=1, limit=10_000)
    ]
    firsts = [e for e in everything if e["event_type"] == "Alarm.Tracked"]
    with engine.db.transaction() as tx:
        assert engine.view.apply_events(tx, firsts) == 0
        assert engine.view.apply_events(tx, everything) == 0
    assert engine.view.alarms(ACCOUNT, active=False) == alarms


def test_a_redelivered_storm_finds_the_incidents_it_opened(engine: Engine) -> None:
    engine.carrier_sites(10)
    for n in range(1, 11):
        engine.raised(site(n), "ping", at(n))
    before = engine.stored()
    engine.redeliver_everything()
    assert engine.stored() == before
    assert len(engine.monitoring_incidents()) == 11


def test_a_storm_batch_that_meets_a_concurrent_save_is_carried_out_again_whole(
    store_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(store_env, batched=True)
    engine.carrier_sites(4)
    save = engine.app.save
    refused: list[int] = []

    def someone_saved_first(*aggregates: Any, **kwargs: Any) -> Any:
        if len(aggregates) > 1 and not refused:
            refused.append(len(aggregates))
            raise IntegrityError("someone saved first")
        return save(*aggregates, **kwargs)

    monkeypatch.setattr(engine.app, "save", someone_saved_first)
    before = engine.stored()
    for n in range(1, 5):
        engine.alarm("raised", site(n), "ping", at(n), pump=False)
        engine.alarm("updated", site(n), "ping", at(10 + n), pump=False)
    with pytest.raises(IntegrityError):
        engine.carry_out_queued()  # the intake consumer retries the batch
    assert refused and engine.stored() == before

    engine.pump()
    incidents = engine.monitoring_incidents()
    parents = [i for i in incidents if i.children]
    assert len(parents) == 1 and len(incidents) == 5
    for n in range(1, 5):
        alarm = engine.alarm_of(site(n), "ping")
        assert (alarm.count, alarm.episode) == (2, 1)
        assert engine.incident(alarm.incident_id).parent_id == parents[0].id


# -- fleet ----------------------------------------------------------------------------------------


def fleet(engine: Engine, ci: str, state: str, when: datetime, **extra: Any) -> Any:
    body = {"account": ACCOUNT, "ci": ci, "kind": "payment terminal", "state": state, "at": when, **extra}
    return engine.send("ci.state", source="tpe-fleet", **body).result


def test_the_fleet_reports_terminals_installed_down_degraded_up_and_replaced(engine: Engine) -> None:
    engine.app.handle(RegisterCi(ACCOUNT, "resto-001", "site", "cmdb-sync", T0))
    installed = fleet(engine, "tpe-0042", "installed", at(0))
    assert (installed.kind, installed.state) == ("payment_terminal", OPERATIONAL)
    engine.app.handle(RelateCis(ACCOUNT, "tpe-0042", "located_at", "resto-001", "cmdb-sync", at(1)))
    assert fleet(engine, "tpe-0042", "down", at(10)).state == DOWN
    assert fleet(engine, "tpe-0042", "down", at(11)).state == DOWN  # reported again: nothing changes
    assert fleet(engine, "tpe-0042", "degraded", at(20)).state == DEGRADED
    assert fleet(engine, "tpe-0042", "up", at(30)).state == OPERATIONAL
    assert fleet(engine, "tpe-0042", "down", at(25)).state == OPERATIONAL  # older than the last report
    replacement = fleet(engine, "tpe-0042", "replaced", at(40), replaced_by="tpe-0613")
    assert (replacement.ci_name, replacement.state, replacement.relations) == (
        "tpe-0613", OPERATIONAL, (("located_at", "resto-001"),),
    )  # fmt: skip
    old = engine.app.find(ci_id(ACCOUNT, "tpe-0042"), ConfigurationItem)
    assert old is not None and old.state == RETIRED and old.retirement_reason is not None
    assert "replaced by tpe-0613" in old.retirement_reason
    assert fleet(engine, "tpe-0099", "down", at(50)).state == DOWN  # unknown until now: registered, then down


# -- HTTP -----------------------------------------------------------------------------------------


def test_alarm_rules_and_open_alarms_over_http(engine: Engine) -> None:
    async def scenario() -> None:
        webapp = WebApi(engine.app, engine.incidents, lambda: engine.now).build()
        async with TestClient(TestServer(webapp)) as client:
            response = await client.get(f"/api/accounts/{ACCOUNT}/alarm-rules")
            body = await response.json()
            assert response.status == 200 and (body["version"], body["rules"]) == (0, [])
            assert [r["min_severity"] for r in body["default_rules"]] == ["critical", "major", "minor", "warning"]

            rules = {"rules": [{"check": "tpe-*", "min_severity": "major", "impact": 2, "urgency": 1,
                                "hold_seconds": 120, "automation": "restart-tpe"}]}  # fmt: skip
            response = await client.put(f"/api/accounts/{ACCOUNT}/alarm-rules", json=rules, headers={"X-Actor": "roc"})
            body = await response.json()
            assert response.status == 200, body
            assert body["version"] == 1 and body["rules"][0]["on_clear"] == "restore"
            response = await client.put(f"/api/accounts/{ACCOUNT}/alarm-rules", json=rules, headers={"X-Actor": "roc"})
            assert (await response.json())["version"] == 1  # the same rules again change nothing

            bad = {"rules": [{"check": "x", "impact": 4, "urgency": 1, "on_clear": "close"}]}
            response = await client.put(f"/api/accounts/{ACCOUNT}/alarm-rules", json=bad, headers={"X-Actor": "roc"})
            body = await response.json()
            assert response.status == 422 and set(body["fields"]["rules"]["0"]) == {"impact", "on_clear"}

            await asyncio.to_thread(engine.raised, "router-42", "ping", at(0))
            await asyncio.to_thread(engine.raised, "router-42", "ping", at(30))
            response = await client.get(f"/api/accounts/{ACCOUNT}/alarms")
            [alarm] = (await response.json())["alarms"]
            assert (alarm["dedup_key"], alarm["count"], alarm["status"]) == ("centreon:router-42:ping", 2, "open")
            assert alarm["incident_id"] == str(engine.alarm_of("router-42", "ping").incident_id)
            response = await client.get(f"/api/accounts/{ACCOUNT}/alarms?limit=0")
            assert response.status == 422

    engine.now = at(0)
    asyncio.run(scenario())
