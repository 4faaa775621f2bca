"""The relay's envelopes made from stored JSON are the ones made from domain events, value for value."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import suppress
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification, StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.app import ItilApplication
from domain import commands as cmd
from domain.contract import Terms
from domain.errors import DomainError
from domain.monitoring import Alarm
from projections.records import envelope_of, event_id, record_of
from streams.envelope import StoredEnvelopes, encode
from tests.integration.test_process_batches import storm_with_later_changes
from tests.integration.test_processes import Engine
from tests.unit.test_upcasting import INCIDENT, V1_LOGGED

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=timezone(timedelta(hours=2)))
IDS = uuid5(NAMESPACE_URL, "urn:itil-engine:tests:relay-envelopes")
SLA_COMMANDS = (
    cmd.StartSlaClocks,
    cmd.StopSlaClock,
    cmd.PauseSlaClocks,
    cmd.ResumeSlaClocks,
    cmd.RestartSlaClocks,
    cmd.RetargetSlaClocks,
    cmd.CancelSlaClocks,
    cmd.CheckSlaClocks,
)


def json_module_message(envelope: dict[str, Any]) -> bytes:
    """The message as the relay wrote it before orjson: the contract's reference encoding."""
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def notifications(app: ItilApplication) -> Iterator[Notification]:
    start = 1
    while page := app.recorder.select_notifications(start=start, limit=500):
        yield from page
        start = page[-1].id + 1


def domain_event_message(app: ItilApplication, stored: StoredEvent, position: int, previous: int | None) -> Any:
    """The message of the domain-event path (mapper, `envelope_of`, the json module), parsed."""
    return json.loads(json_module_message(envelope_of(app.mapper.to_domain_event(stored), position, previous)))


def carry_out(app: ItilApplication, *commands: Any) -> None:
    """Carry out each command; one the domain refuses stores nothing, which is fine for a corpus."""
    for command in commands:
        with suppress(DomainError):
            if isinstance(command, SLA_COMMANDS):
                app.handle_sla(command)
            elif isinstance(command, cmd.AddContractVersion):
                app.add_contract_version(command)
            else:
                app.handle(command)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fill(engine: Engine) -> None:
    """Every kind of aggregate through the application: incidents, problems, changes, SLA clocks,
    accounts, contracts, CIs, alarms, and what the processes issue in reaction."""
    app = engine.app
    storm_with_later_changes(app)
    account = "café-chain"
    carry_out(
        app,
        cmd.RegisterAccount(account=account, actor="roc", at=at(0), name="Café ☕", roc="zoé"),
        cmd.SetAccountRoc(account=account, roc="anne", actor="roc", at=at(1)),
        cmd.SetReopenPeriod(account=account, period=timedelta(days=3), actor="roc", at=at(1)),
        cmd.SetPriorityMatrix(account=account, matrix={(1, 1): 1, (2, 2): 3}, actor="roc", at=at(2)),
        cmd.AddContractVersion(
            account=account,
            effective_from=at(0),
            terms=Terms(targets={3: {"response": 900}}),
            actor="roc",
            at=at(2),
            name="Contrat café",
        ),
        cmd.RegisterCi(
            account=account,
            ci_name="tpe-0042",
            kind="payment_terminal",
            actor="cmdb",
            at=at(3),
            attributes={"modèle": "X9", "série": "42"},
        ),
        cmd.RegisterCi(account=account, ci_name="router-1", kind="router", actor="cmdb", at=at(3)),
        cmd.RelateCis(
            account=account, ci_name="tpe-0042", relation="depends_on", target_ci="router-1", actor="cmdb", at=at(4)
        ),
        cmd.UpdateCiAttributes(account=account, ci_name="tpe-0042", attributes={"série": "43"}, actor="cmdb", at=at(5)),
        cmd.ChangeCiState(account=account, ci_name="router-1", state="down", reason="panne", actor="fleet", at=at(6)),
    )
    for n in range(3):
        incident = uuid5(IDS, f"incident {n}")
        when = at(10 + 60 * n)

        def later(minutes: float, when: datetime = when) -> datetime:
            return when + timedelta(minutes=minutes)

        carry_out(
            app,
            cmd.LogIncident(
                id=incident,
                account=account,
                title=f"Caisse {n} hors ligne — €",
                impact=1 + n,
                urgency=2,
                channel="phone",
                reporter="gérant",
                actor="n1",
                at=when,
                ci="tpe-0042",
                service="paiement",
                description="L'écran reste noir",
                category="hardware",
            ),
            cmd.StartSlaClocks(incident, account, "paiement", 3, when),
            cmd.AcknowledgeIncident(incident, actor="n1", at=later(1)),
            cmd.ReprioritiseIncident(incident, 1, 1, actor="n1", at=later(2)),
            cmd.AssignIncident(incident, "N2 réseau", "n1", later(3), "éve"),
            cmd.EscalateIncidentFunctionally(incident, "N3", "câblage", "éve", later(4)),
            cmd.EscalateIncidentHierarchically(incident, "manager", "client VIP", "éve", later(4)),
            cmd.HoldIncident(incident, "awaiting_customer", "éve", later(5), note="rappel à 14 h"),
            cmd.PauseSlaClocks(incident, "awaiting_customer", later(5), 8),
            cmd.ResumeIncident(incident, "éve", later(7.000001)),
            cmd.ResumeSlaClocks(incident, "resumed", later(7), 9),
            cmd.DeclareMajorIncident(incident, "toutes les caisses", "mgr", later(8)),
            cmd.RestoreService(incident, "éve", later(30), note="redémarré"),
            cmd.StopSlaClock(incident, "resolution", "restored", later(30), 11, False),
            cmd.ResolveIncident(incident, "fixed", "éve", later(40), "ok"),
            cmd.ReopenIncident(incident, "encore", "gérant", later(50)),
            cmd.ResolveIncident(incident, "fixed", "éve", later(55)),
            cmd.CloseIncident(incident, "n1", later(120)),
            cmd.CheckSlaClocks(incident, later(2880)),
        )
    other, problem, change = uuid5(IDS, "cancelled"), uuid5(IDS, "problem"), uuid5(IDS, "change")
    first, second = uuid5(IDS, "incident 0"), uuid5(IDS, "incident 1")
    carry_out(
        app,
        cmd.LogIncident(
            id=other,
            account=account,
            title="doublon",
            impact=3,
            urgency=3,
            channel="email",
            reporter="r",
            actor="r",
            at=at(300),
            related_incident=first,
        ),
        cmd.AttachIncident(other, second, "n1", at(301)),
        cmd.CancelIncident(other, "doublon", "n1", at(302)),
        cmd.LogProblem(
            id=problem,
            account=account,
            title="TPE X9 instables",
            actor="pm",
            at=at(400),
            ci="tpe-0042",
            incident_ids=(first,),
        ),
        cmd.AddIncidentToProblem(problem, second, "pm", at(401)),
        cmd.StartInvestigation(problem, "pm", at(402)),
        cmd.RecordRootCause(problem, "firmware 1.2 défectueux", "pm", at(403)),
        cmd.PublishWorkaround(problem, "redémarrer le TPE", "pm", at(404)),
        cmd.RequestChange(
            id=change,
            account=account,
            type="normal",
            title="firmware 1.3",
            affected_cis=("tpe-0042",),
            actor="pm",
            at=at(405),
            problem_id=problem,
        ),
        cmd.ProposeChange(problem, change, "pm", at(406)),
        cmd.SubmitChange(change, "pm", at(407)),
        cmd.AssessChange(change, "low", "minor", "flasher", "reflasher 1.2", "cm", at(408)),
        cmd.ConveneCab(change, ("cab-1", "cab-2"), "cm", at(409)),
        cmd.ApproveChange(change, "cab-1", "cab-1", at(410)),
        cmd.ApproveChange(change, "cab-2", "cab-2", at(411)),
        cmd.ScheduleChange(change, at(2000), at(2060), "cm", at(412)),
        cmd.StartChange(change, "tech", at(2001)),
        cmd.CompleteChange(change, "tech", at(2050), notes="fait"),
        cmd.ReviewChange(change, "successful", "cm", at(2100)),
        cmd.CloseChange(change, "cm", at(2101)),
        cmd.ResolveProblem(problem, "pm", at(2102), via_change_id=change),
        cmd.CloseProblem(problem, "pm", at(2103)),
        cmd.AddFreezeWindow(account, "soldes", at(5000), at(6000), "cm", at(2104), "soldes d'été"),
    )
    for n in range(5):
        alarm = Alarm.track(account=account, dedup_key=f"tpe-{n}/ping", actor="centreon", at=at(n))
        alarm.raise_alarm(
            ci=f"tpe-{n}",
            check="ping",
            severity="major",
            summary="injoignable",
            hold_seconds=0,
            actor="centreon",
            at=at(n),
        )
        alarm.open_incident(incident_id=uuid5(IDS, f"alarm {n}"), actor="alarms", at=at(n + 1))
        alarm.raise_alarm(
            ci=f"tpe-{n}",
            check="ping",
            severity="critical",
            summary="toujours",
            hold_seconds=0,
            actor="centreon",
            at=at(n + 2),
        )
        alarm.annotate(note="vu", actor="n1", at=at(n + 3))
        alarm.request_automation(
            request_id=uuid5(IDS, f"auto {n}"),
            action="reboot",
            incident_id=uuid5(IDS, f"alarm {n}"),
            actor="alarms",
            at=at(n + 4),
        )
        alarm.clear(summary="revenu", actor="centreon", at=at(n + 5))
        app.save(alarm)
    engine.pump()


@pytest.fixture
def engine(sqlite_env: dict[str, str]) -> Engine:
    engine = Engine(sqlite_env)
    fill(engine)
    return engine


def test_every_stored_event_makes_the_same_message_from_its_stored_json(engine: Engine) -> None:
    app = engine.app
    envelopes = StoredEnvelopes(app.mapper)
    previous: int | None = None
    types = set()
    for n in notifications(app):
        aggregate_id = str(n.originator_id)
        fast = envelopes.from_state(n, n.id, previous, aggregate_id)
        expected = domain_event_message(app, n, n.id, previous)
        assert fast is not None, n.topic  # stored by today's code: none needs the domain-event path
        assert json.loads(envelopes.message(n, n.id, previous, aggregate_id)) == expected
        assert json.loads(encode(fast)) == expected
        assert envelopes.record(n, n.id, aggregate_id) == record_of(app.mapper.to_domain_event(n), n.id, aggregate_id)
        types.add(expected["event_type"])
        previous = n.id
    aggregates = {t.partition(".")[0] for t in types}
    assert {"Incident", "IncidentSla", "Problem", "Change", "Account", "ServiceContract", "Alarm"} <= aggregates
    assert len(types) > 40


def test_an_event_stored_by_an_older_class_version_is_upcast_as_before(tmp_path: Path) -> None:
    app = ItilApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")})
    stored = StoredEvent(INCIDENT, 1, "domain.incident:Incident.Logged", json.dumps(V1_LOGGED).encode())
    envelopes = StoredEnvelopes(app.mapper)
    assert envelopes.from_state(stored, 1, None, str(INCIDENT)) is None
    message = json.loads(envelopes.message(stored, 1, None, str(INCIDENT)))
    assert message == domain_event_message(app, stored, 1, None)
    assert message["payload"]["category"] is None
    assert envelopes.record(stored, 1, str(INCIDENT)) == record_of(app.mapper.to_domain_event(stored), 1, str(INCIDENT))


# -- any payload ----------------------------------------------------------------------------------


class Sample(Aggregate):
    """An aggregate whose one event carries whatever a test gives it."""

    class Noted(Aggregate.Event):
        actor: Any
        at: Any
        values: Any


offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
instants = st.one_of(
    st.datetimes(),  # naive
    st.builds(lambda d, o: d.replace(tzinfo=timezone(o)), st.datetimes(), offsets),
    st.builds(lambda d, m: d.replace(tzinfo=timezone(timedelta(minutes=m))), st.datetimes(), st.integers(-1439, 1439)),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(),
    st.sampled_from(["_type_", "_data_", "datetime_iso", "uuid_hex", "2026-06-01T09:00:00+02:00"]),
    st.uuids(),
    instants,
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(["_type_", "_data_"])), inner, max_size=4),
    ),
    max_leaves=12,
)


def outcome(make: Callable[[], bytes]) -> tuple[str, Any]:
    try:
        return "message", json.loads(make())
    except Exception as refused:  # noqa: BLE001 - both paths must refuse alike
        return "refused", type(refused)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=values,
    actor=st.one_of(st.text(), st.none(), st.integers()),
    occurred=instants,
    recorded=instants,
    version=st.integers(1, 2**31),
    previous=st.one_of(st.none(), st.integers(1, 2**40)),
)
def test_any_payload_makes_the_same_message_from_its_stored_json(
    sqlite_env: dict[str, str],
    values: Any,
    actor: Any,
    occurred: datetime,
    recorded: datetime,
    version: int,
    previous: int | None,
) -> None:
    app = ItilApplication(env=sqlite_env)
    event = Sample.Noted(
        originator_id=uuid5(IDS, "sample"),
        originator_version=version,
        timestamp=recorded,
        actor=actor,
        at=occurred,
        values=values,
    )
    try:
        stored = app.mapper.to_stored_event(event)
    except (TypeError, ValueError):
        return  # the store refuses it (ints too big for the transcoder's orjson are written by json)
    aggregate_id = str(stored.originator_id)
    fast = outcome(lambda: StoredEnvelopes(app.mapper).message(stored, 7, previous, aggregate_id))
    reference = outcome(lambda: json_module_message(envelope_of(app.mapper.to_domain_event(stored), 7, previous)))
    assert fast == reference
    fast_record = outcome(lambda: orjson.dumps(StoredEnvelopes(app.mapper).record(stored, 7, aggregate_id)))
    reference_record = outcome(lambda: orjson.dumps(record_of(app.mapper.to_domain_event(stored), 7, aggregate_id)))
    assert fast_record == reference_record


@given(aggregate=st.uuids(), version=st.integers(0, 2**64))
def test_an_event_id_is_the_uuid5_of_aggregate_and_version(aggregate: UUID, version: int) -> None:
    expected = str(uuid5(uuid5(NAMESPACE_URL, "urn:itil-engine:event"), f"{aggregate}:{version}"))
    assert event_id(aggregate, version) == event_id(str(aggregate), version) == expected


@given(values=values)
def test_encode_writes_the_values_the_json_module_writes(values: Any) -> None:
    envelope = {"payload": {"values": values}, "position": 1, "previous_position": None}
    try:
        reference = json_module_message(envelope)
    except TypeError:
        return  # UUIDs and datetimes: `envelope_of` never leaves them in an envelope
    assert json.loads(encode(envelope)) == json.loads(reference)


def test_non_finite_floats_and_huge_ints_are_written_as_the_json_module_writes_them() -> None:
    for value in (math.inf, -math.inf, 2**64, -(2**70), [1.5, {"x": math.inf}]):
        envelope = {"payload": {"value": value}, "previous_position": None}
        assert encode(envelope) == json_module_message(envelope)
    assert "NaN" in encode({"payload": {"value": math.nan}}).decode()
