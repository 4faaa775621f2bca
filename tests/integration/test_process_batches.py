"""The recurring-incidents and SLA processes given a whole batch at once do what they do one event at a time.

A storm's batches reach them hundreds of events at a time, often long after later changes were stored
(incidents cancelled or linked to a problem since, a contract changed); the recurring-incidents process
decides as the history stood at each event, and sees the later changes when their own events come.
Twin stores get the same history in the same batches; one twin's processes react to each event in turn
(`Process.react_many` as it is by default), the other's work the batch at once: every aggregate ends
with the same events, and the processes' tables with the same rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5
from zoneinfo import ZoneInfo

import pytest

from application import problems as prb
from application.app import ItilApplication
from application.eventsourcing_internals import share_writer_lock
from domain import commands as cmd
from domain.contract import Terms, standard_terms
from domain.errors import InvalidCommand
from domain.problem import Problem
from domain.sla import IncidentSla, sla_id
from processes.problems import ProblemIncidentsProcess
from processes.recurring import RecurringIncidentsProcess, recurring_problem_id
from processes.sla import SlaConsumer, SlaProcess, SlaSchedule
from projections.db import Database
from projections.records import envelope_of
from projections.tracking import Delivery, Process
from streams.envelope import decode, encode
from tests.conftest import pg_database

PARIS = ZoneInfo("Europe/Paris")
ACCOUNT = "resto-chain"
IDS = uuid5(NAMESPACE_URL, "urn:itil-engine:tests:process-batches")
MON, TUE, WED, THU = "2026-06-01", "2026-06-02", "2026-06-03", "2026-06-04"


def paris(day: str, hm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=PARIS)


@pytest.fixture(params=["sqlite", "postgres"])
def twin_envs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """Two empty stores of one kind."""
    if request.param == "sqlite":
        yield tuple(  # type: ignore[misc]
            {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / f"{twin}.sqlite")}
            for twin in ("one", "batch")
        )
        return
    with pg_database() as one, pg_database() as batch:
        yield one, batch


class Twin:
    """A store, and the processes of the worker's processes' agent that a storm keeps busy.

    `one_by_one`: they react to each event of a batch in turn, as `Process.react_many` does by default.
    """

    def __init__(self, env: dict[str, str], one_by_one: bool = False) -> None:
        self.people = ItilApplication(env=env)
        self.app = ItilApplication(env=env)  # the worker's own: nothing in its cache yet
        self.db = Database.from_store_env(env)
        share_writer_lock(self.app.recorder, self.db.writer_lock)
        self.schedule = SlaSchedule(self.db)
        self.schedule.create_tables()
        self.sla = SlaProcess(self.app, self.schedule, lambda: paris(MON, "00:00"))
        self.recurring = RecurringIncidentsProcess(self.db, self.app)
        self.processes: list[Process] = [
            self.recurring, ProblemIncidentsProcess(self.db, self.app), SlaConsumer(self.db, self.sla)
        ]  # fmt: skip
        for process in self.processes:
            process.create_tables()
            if one_by_one:
                process.react_many = functools.partial(Process.react_many, process)  # type: ignore[method-assign]
        self.delivered = 0

    def close(self) -> None:
        for app in (self.people, self.app):
            app.close()
        self.db.close()

    def deliveries(self, start: int = 1) -> list[Delivery]:
        found, previous = [], start - 1 or None
        for n in self.app.recorder.select_notifications(start=start, limit=100_000):
            envelope = decode(encode(envelope_of(self.app.mapper.to_domain_event(n), n.id, previous)))
            found.append(Delivery("itil.events", 0, n.id - 1, envelope))
            previous = n.id
        return found

    def pump(self) -> None:
        """Deliver what was stored since the last delivery as one batch, until the processes issue nothing more."""
        while fresh := self.deliveries(self.delivered + 1):
            self.delivered = fresh[-1].envelope["position"]
            for process in self.processes:
                process.apply(fresh)

    def stored(self) -> dict[UUID, list[tuple[int, str, dict[str, Any]]]]:
        """Each aggregate's events (their recording instants aside)."""
        found: dict[UUID, list[tuple[int, str, dict[str, Any]]]] = {}
        for n in self.app.recorder.select_notifications(start=1, limit=100_000):
            event = self.app.mapper.to_domain_event(n)
            state = {k: v for k, v in event.__dict__.items() if k != "timestamp"}
            found.setdefault(event.originator_id, []).append(
                (event.originator_version, type(event).__qualname__, state)
            )
        return found

    def rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with self.db.transaction(write=False) as tx:
            series = tx.execute("SELECT * FROM recurring_incidents ORDER BY account, series, incident_id").all()
            schedule = tx.execute("SELECT * FROM sla_schedule ORDER BY incident_id").all()
        return series, schedule


@pytest.fixture
def twin(store_env: dict[str, str]) -> Iterator[Twin]:
    alone = Twin(store_env)
    yield alone
    alone.close()


@pytest.fixture
def twins(twin_envs: tuple[dict[str, str], dict[str, str]]) -> Iterator[tuple[Twin, Twin]]:
    one, batch = Twin(twin_envs[0], one_by_one=True), Twin(twin_envs[1])
    yield one, batch
    one.close()
    batch.close()


def log(app: ItilApplication, title: str, at: datetime, ci: str | None, **kw: Any) -> UUID:
    incident_id = uuid5(IDS, title)
    app.handle(
        cmd.LogIncident(
            id=incident_id,
            account=kw.pop("account", ACCOUNT),
            title=title,
            impact=2,
            urgency=2,
            channel="monitoring",
            reporter="supervision",
            actor="supervision",
            at=at,
            ci=ci,
            **kw,
        )
    )
    return incident_id


def standard_contract(app: ItilApplication) -> None:
    """The account's contract from Monday: the standard terms."""
    app.add_contract_version(
        cmd.AddContractVersion(
            account=ACCOUNT,
            effective_from=paris(MON, "00:00"),
            terms=standard_terms(),
            actor="roc",
            at=paris(MON, "00:00"),
        )
    )


def storm_with_later_changes(app: ItilApplication) -> dict[str, UUID]:
    """A week of incidents, with what people changed since they were logged, all stored before any is handled."""
    standard_contract(app)
    app.add_contract_version(  # stricter from Wednesday: incidents logged since are measured against it
        cmd.AddContractVersion(
            account=ACCOUNT,
            effective_from=paris(WED, "00:00"),
            actor="roc",
            at=paris(MON, "00:00"),
            terms=Terms(targets={3: {"response": 600}}),
        )
    )
    hand_made = uuid5(IDS, "switch problem")
    app.handle(cmd.LogProblem(id=hand_made, account=ACCOUNT, title="switch reboots", actor="pm",
                              at=paris(MON, "08:00"), ci="switch-1"))  # fmt: skip
    ids = {"other": log(app, "Other account", paris(MON, "09:00"), "router-1", account="no-contract")}
    for n, day in enumerate((MON, MON, TUE, WED, THU)):  # the series' incidents interleaved, as in a storm
        # router-1: the third proposes a problem, the next join it
        ids[f"r1-{n}"] = log(app, f"R1 down {n}", paris(day, f"1{n}:00"), "router-1")
        if n < 3:  # router-2: the first is cancelled, but only after the third came: a problem all the same
            ids[f"r2-{n}"] = log(app, f"R2 down {n}", paris(day, f"1{n}:30"), "router-2")
            # switch-1 (and the network category): the first is linked by hand to the switch's problem, but only
            # after the third came: the process proposes its own
            ids[f"s1-{n}"] = log(app, f"S1 down {n}", paris(day, f"1{n}:40"), "switch-1", category="network")
        if n < 4:  # no CI: their category's series; one recategorised since
            ids[f"p-{n}"] = log(app, f"Power cut {n}", paris(day, f"1{n}:50"), None, category="power",
                                service="payments")  # fmt: skip
    app.handle(cmd.CancelIncident(ids["r2-0"], reason="duplicate", actor="n1", at=paris(THU, "18:00")))
    app.handle(cmd.LinkIncidentToProblem(ids["s1-0"], hand_made, actor="pm", at=paris(THU, "18:00")))
    app.handle(cmd.CategoriseIncident(ids["p-1"], category="network", actor="n1", at=paris(THU, "18:00")))
    ids["hand-made"] = hand_made
    return ids


def test_a_batch_with_later_changes_in_the_store_does_what_one_event_at_a_time_does(twins: tuple[Twin, Twin]) -> None:
    one, batch = twins
    ids = storm_with_later_changes(one.people)
    assert storm_with_later_changes(batch.people) == ids

    one.pump()
    batch.pump()

    assert batch.stored() == one.stored()
    assert batch.rows() == one.rows()
    router = batch.app.load(recurring_problem_id(ACCOUNT, "ci:router-1", ids["r1-0"]), Problem, "problem")
    assert set(prb.incidents_of(batch.app, router)) == {ids[f"r1-{n}"] for n in range(5)}
    router_2 = batch.app.load(recurring_problem_id(ACCOUNT, "ci:router-2", ids["r2-0"]), Problem, "problem")
    assert set(prb.incidents_of(batch.app, router_2)) == {ids[f"r2-{n}"] for n in range(3)}
    switch = batch.app.load(recurring_problem_id(ACCOUNT, "ci:switch-1", ids["s1-0"]), Problem, "problem")
    assert set(prb.incidents_of(batch.app, switch)) == {ids[f"s1-{n}"] for n in range(3)}
    assert ids["hand-made"] in batch.app.get_incident(ids["s1-0"]).problem_ids
    terms = {k: batch.app.find_sla(ids[k]).terms.contract_version for k in ("r1-0", "r1-3")}  # type: ignore[union-attr]
    assert terms == {"r1-0": 1, "r1-3": 2}
    assert batch.app.find_sla(ids["other"]) is None

    before = batch.app.recorder.max_notification_id()
    for process in batch.processes:  # the whole history again, as one batch: nothing more
        process.react_many([d.envelope for d in batch.deliveries()])
    assert batch.app.recorder.max_notification_id() == before


def test_clocks_that_fail_to_start_leave_the_batchs_others_started_and_the_batch_to_come_again(
    twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = storm_with_later_changes(twin.people)
    consumer = twin.processes[-1]
    deliveries = twin.deliveries()
    start = IncidentSla.start

    def refuse_one(**kw: Any) -> IncidentSla:
        if kw["incident_id"] == ids["r1-2"]:
            raise InvalidCommand("the instant must carry a time zone")
        return start(**kw)

    monkeypatch.setattr(IncidentSla, "start", refuse_one)
    with pytest.raises(InvalidCommand):
        consumer.apply(deliveries)

    assert consumer.positions("itil.events") == {}  # nothing marked done
    started = {k for k, i in ids.items() if twin.app.find_sla(i) is not None}
    assert started == {k for k in ids if k.startswith(("r1-", "r2-", "s1-", "p-"))} - {"r1-2"}
    cancelled = twin.app.find(sla_id(ids["r2-0"]), IncidentSla)
    assert cancelled is not None and cancelled.cancelled  # the batch's later events were still carried out
    version = {k: twin.app.find_sla(ids[k]).version for k in started}  # type: ignore[union-attr]

    monkeypatch.setattr(IncidentSla, "start", start)
    consumer.apply(deliveries)  # the batch again, as the broker sends it once more

    assert twin.app.find_sla(ids["r1-2"]) is not None
    assert {k: twin.app.find_sla(ids[k]).version for k in started} == version  # type: ignore[union-attr]
    assert consumer.positions("itil.events")[0][0] == deliveries[-1].envelope["position"]


def test_a_failure_half_way_through_a_batch_of_logged_incidents_ends_as_one_by_one_would(
    twins: tuple[Twin, Twin], monkeypatch: pytest.MonkeyPatch
) -> None:
    for twin in twins:
        ids = storm_with_later_changes(twin.people)
        propose: Callable[..., None] = twin.recurring._propose
        failures = iter([RuntimeError("the store went away")])

        def fail_once(*args: Any, failures: Iterator[Exception] = failures, propose: Any = propose) -> None:
            failure = next(failures, None)
            if failure is not None:
                raise failure
            propose(*args)

        monkeypatch.setattr(twin.recurring, "_propose", fail_once)
        with pytest.raises(RuntimeError):
            twin.recurring.apply(twin.deliveries())
        assert twin.recurring.positions("itil.events") == {}  # nothing marked done
        assert twin.app.find(recurring_problem_id(ACCOUNT, "ci:router-1", ids["r1-0"]), Problem) is None

        twin.pump()  # the batch comes again, and what follows

    one, batch = twins
    assert batch.stored() == one.stored()
    assert batch.rows() == one.rows()


def test_clocks_started_after_a_contract_change_are_measured_against_its_new_version(twin: Twin) -> None:
    standard_contract(twin.people)
    monday = [log(twin.people, f"Monday {n}", paris(MON, f"1{n}:00"), f"router-{n}") for n in range(3)]
    twin.pump()
    twin.people.add_contract_version(
        cmd.AddContractVersion(
            account=ACCOUNT,
            effective_from=paris(TUE, "00:00"),
            actor="roc",
            at=paris(MON, "18:00"),
            terms=Terms(targets={3: {"response": 600}}),
        )
    )
    tuesday = [log(twin.people, f"Tuesday {n}", paris(TUE, f"1{n}:00"), f"router-{n}") for n in range(3)]
    twin.pump()

    versions = [twin.app.find_sla(i).terms.contract_version for i in monday + tuesday]  # type: ignore[union-attr]
    assert versions == [1, 1, 1, 2, 2, 2]
