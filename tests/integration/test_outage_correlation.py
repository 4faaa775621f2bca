"""Mass outages: the parent's priority follows its worst alarm, the same storm gives the same outage
whatever the order its alarms come in, and each account sets its correlation in its alarm rules."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.commands import SetAlarmRules
from domain.incident import RESTORED, Incident
from domain.monitoring import RESTORE, WAIT, Correlation
from tests.integration.test_alarms import ACCOUNT, LINK, T0, Engine, at, site
from tests.integration.test_alarms import engine as engine  # noqa: F401 - the same fixture
from web.api import WebApi


def correlate(engine: Engine, **settings: Any) -> None:
    """Give the account its correlation settings (and no rules of its own: the default ones apply)."""
    command = SetAlarmRules(ACCOUNT, (), "roc-anne", T0 - timedelta(hours=1), correlation=Correlation(**settings))
    engine.app.handle(command)


def parent_of(engine: Engine) -> Incident:
    [parent] = [i for i in engine.monitoring_incidents() if i.children]
    return parent


def work_notes(engine: Engine, incident: Incident) -> list[str]:
    return [c.text for c in engine.app.comments(incident.id) if not c.customer_visible]


# -- the parent's priority ----------------------------------------------------------------------------


def test_an_outage_of_warnings_rises_to_p1_when_critical_alarms_join_it(engine: Engine) -> None:
    engine.carrier_sites(6)
    for n in (1, 2, 3):
        engine.raised(site(n), "cpu", at(n), severity="warning")
    parent = parent_of(engine)
    assert (parent.title, parent.impact, parent.urgency, parent.priority) == (f"Mass outage behind {LINK}", 1, 3, 3)
    assert work_notes(engine, parent) == []

    engine.raised(site(4), "ping", at(10), severity="critical")  # a new site, critical
    raised = engine.incident(parent.id)
    assert (raised.impact, raised.urgency, raised.priority) == (1, 1, 1)
    [note] = work_notes(engine, raised)
    assert "raised from P3 to P1" in note and f"ping critical on {site(4)}" in note

    engine.raised(LINK, "ping", at(12), severity="critical")  # the link's own alarm joins the parent: no change
    engine.raised(site(5), "cpu", at(14), severity="warning")  # a calmer one never lowers it
    after = engine.incident(parent.id)
    assert (after.priority, len(work_notes(engine, after))) == (1, 1)


def test_an_alarm_of_the_outage_that_gets_worse_raises_the_parent(engine: Engine) -> None:
    engine.carrier_sites(3)
    for n in (1, 2, 3):
        engine.raised(site(n), "ping", at(n), severity="warning")
    parent = parent_of(engine)
    assert parent.priority == 3

    engine.alarm("updated", site(2), "ping", at(20), severity="major")
    raised = engine.incident(parent.id)
    assert (raised.impact, raised.urgency, raised.priority) == (1, 2, 2)
    assert "an alarm in it got worse" in work_notes(engine, raised)[0]
    child = engine.incident(engine.alarm_of(site(2), "ping").incident_id)
    assert child.priority == 4  # the children keep the outage's: the parent carries it


def test_a_parent_already_worse_than_its_alarms_is_left_as_it_is(engine: Engine) -> None:
    engine.carrier_sites(3)
    engine.raised(LINK, "bgp", at(0), severity="critical")  # the link's own incident, P1
    for n in (1, 2, 3):
        engine.raised(site(n), "ping", at(n), severity="minor")
    parent = parent_of(engine)
    assert (parent.ci, parent.priority, work_notes(engine, parent)) == (LINK, 1, [])


# -- the same storm, the same outage ------------------------------------------------------------------

STORM = [
    (LINK, "carrier-ping", "critical"),
    *[(site(n), "cpu", "warning") for n in range(1, 6)],
    (site(2), "memory", "warning"),
    (site(4), "ping", "major"),
]


def outcome(engine: Engine) -> dict[str, Any]:
    """What the operator sees of the storm, ids left out (they depend on which alarm came first)."""
    incidents = engine.monitoring_incidents()
    parent = parent_of(engine)
    children = sorted(engine.incident(c).ci or "" for c in parent.children)
    placed = {
        (ci, check): "parent" if engine.alarm_of(ci, check).incident_id == parent.id
        else engine.incident(engine.alarm_of(ci, check).incident_id).ci
        for ci, check, _ in STORM
    }  # fmt: skip
    return {
        "incidents": len(incidents),
        "parents": sum(1 for i in incidents if i.children),
        "parent": (parent.ci, parent.impact, parent.urgency, parent.priority),
        "children": children,
        "placed": placed,
    }


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(len(STORM))), batched=st.booleans())
def test_the_same_storm_in_any_order_gives_the_same_outage(order: list[int], batched: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(Path(directory) / "itil.sqlite")}
        engine = Engine(env, batched=batched)
        engine.carrier_sites(5)
        for k, i in enumerate(order):  # each alarm at its own instant, in the order it arrives
            ci, check, severity = STORM[i]
            engine.alarm("raised", ci, check, at(k), severity=severity, pump=False)
        engine.pump()
        assert outcome(engine) == {
            "incidents": 6,
            "parents": 1,
            "parent": (LINK, 1, 1, 1),
            "children": [site(n) for n in range(1, 6)],
            "placed": {(LINK, "carrier-ping"): "parent", **{(ci, check): ci for ci, check, _ in STORM[1:]}},
        }


# -- the upstream CI's clear -------------------------------------------------------------------------


def test_by_default_a_clear_of_the_upstream_alarm_notes_it_and_waits_for_the_sites(engine: Engine) -> None:
    engine.carrier_sites(3)
    for n in (1, 2, 3):
        engine.raised(site(n), "ping", at(n))
    engine.raised(LINK, "bgp", at(5))
    parent = parent_of(engine)

    engine.cleared(LINK, "bgp", at(60))
    waiting = engine.incident(parent.id)
    assert waiting.status != RESTORED
    [note] = work_notes(engine, waiting)
    assert "stays open until the alarms still active behind it clear" in note and "upstream_clear: wait" in note

    for n in (1, 2, 3):
        engine.cleared(site(n), "ping", at(100 + n))
    assert engine.incident(parent.id).status == RESTORED


def test_an_account_may_restore_the_outage_when_its_upstream_ci_comes_back(engine: Engine) -> None:
    correlate(engine, upstream_clear=RESTORE)
    engine.carrier_sites(3)
    for n in (1, 2, 3):
        engine.raised(site(n), "ping", at(n))
    engine.raised(LINK, "bgp", at(5))
    parent = parent_of(engine)

    engine.cleared(LINK, "bgp", at(60))
    restored = engine.incident(parent.id)
    assert (restored.status, restored.restored_at) == (RESTORED, at(60))
    assert "upstream_clear: restore" in work_notes(engine, restored)[0]
    assert all(engine.incident(c).status == RESTORED for c in restored.children)  # the mass-outage process

    again = engine.raised(site(1), "dns", at(70))  # the outage is over: nothing joins it
    assert engine.incident(again.incident_id).parent_id is None


# -- each account its correlation ---------------------------------------------------------------------


def test_an_account_sets_its_threshold_and_window(engine: Engine) -> None:
    correlate(engine, threshold=5, window_seconds=30)
    engine.carrier_sites(6)
    for n in (1, 2, 3, 4):
        engine.raised(site(n), "ping", at(n))
    assert all(i.parent_id is None and not i.children for i in engine.monitoring_incidents())  # 4 < 5

    engine.raised(site(5), "ping", at(50))  # 5 CIs, but the first ones more than 30 s before
    assert all(not i.children for i in engine.monitoring_incidents())
    engine.raised(site(6), "ping", at(52))
    for n in (1, 2, 3):
        engine.raised(site(n), "bgp", at(53 + n))  # now 5 CIs within 30 s
    parent = parent_of(engine)
    assert parent.description.startswith(f"Alarms on 5 or more CIs that depend on {LINK} within 30 s")


@pytest.mark.parametrize(
    ("correlation", "field"),
    [
        ({"threshold": 1}, "threshold"),
        ({"window_seconds": 86400}, "window_seconds"),
        ({"upstream_clear": "close"}, "upstream_clear"),
        ({"thresold": 4}, "thresold"),
    ],
)
def test_correlation_over_http_is_checked_at_the_door(engine: Engine, correlation: dict[str, Any], field: str) -> None:
    async def scenario() -> None:
        webapp = WebApi(engine.app, engine.incidents, lambda: engine.now).build()
        async with TestClient(TestServer(webapp)) as client:
            url, roc = f"/api/accounts/{ACCOUNT}/alarm-rules", {"X-Actor": "roc"}
            body = await (await client.get(url)).json()
            assert body["correlation"] == {"window_seconds": 120, "threshold": 3, "upstream_clear": WAIT}
            assert body["correlation_is_default"] is True

            wanted = {"window_seconds": 300, "threshold": 10, "upstream_clear": RESTORE}
            response = await client.put(url, json={"rules": [], "correlation": wanted}, headers=roc)
            body = await response.json()
            assert response.status == 200 and (body["correlation"], body["version"]) == (wanted, 1)
            response = await client.put(url, json={"rules": [{"impact": 1, "urgency": 1}]}, headers=roc)
            body = await response.json()  # rules without correlation: the correlation is kept
            assert (body["correlation"], body["version"], body["correlation_is_default"]) == (wanted, 2, False)

            response = await client.put(url, json={"rules": [], "correlation": correlation}, headers=roc)
            body = await response.json()
            assert response.status == 422 and field in body["fields"]["correlation"], body

    engine.now = at(0)
    asyncio.run(scenario())
