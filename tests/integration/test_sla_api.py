"""The SLA side of the HTTP API, served in-process around the SLA test harness.

The web application is the real one (web/) over the harness's store, account view and SLA
dashboard, served by aiohttp's test server inside `asyncio.run`. Its clock is the harness's
hand-driven clock: commands posted without an instant happen at `engine.now`, and `engine.at(...)`
delivers the stored events to the view, the dashboard and the SLA process, then runs the ticker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.integration.test_sla import Engine, H, office_terms, paris
from web.api import WebApi

ACCOUNT = "resto-chain"
OFFICE_HOURS: dict[str, Any] = {
    "targets": {
        "P1": {"response": "15m", "restoration": "1h"},
        "P2": {"response": "30m", "restoration": "4h"},
        "P3": {"response": "1h", "restoration": "8h"},
        "P4": {"response": "4h", "restoration": "24h"},
    },
    "calendar": {"preset": "business", "start": "08:00", "end": "18:00"},
    "escalations": [{"threshold": 75, "notify": "assignment_group"}, {"threshold": 90, "notify": "roc"}],
}
"""The harness's office_terms() as the ROC would post them."""


class Api:
    """The engine's HTTP API as a ROC or an agent calls it, on the harness's clock."""

    def __init__(self, client: TestClient, engine: Engine) -> None:
        self.client = client
        self.engine = engine

    async def call(self, method: str, path: str, body: Any = None, actor: str = "roc-anne") -> tuple[int, Any]:
        response = await self.client.request(method, path, json=body, headers={"X-Actor": actor})
        return response.status, await response.json()

    async def get(self, path: str) -> Any:
        status, body = await self.call("GET", path)
        assert status == 200, body
        return body

    async def contract(self, at: datetime, body: dict[str, Any] | None = None, account: str = ACCOUNT) -> Any:
        self.engine.now = at
        status, reply = await self.call("POST", f"/api/sla/accounts/{account}/contract", body or OFFICE_HOURS)
        assert status == 201, reply
        return reply

    async def log(self, at: datetime, title: str = "router down", account: str = ACCOUNT) -> str:
        """Log a P2 incident (impact 1, urgency 2) at `at`, then let the consumers see it."""
        self.engine.now = at
        status, reply = await self.call("POST", "/api/incidents", {
            "account": account, "ci": "router-42", "title": title, "impact": 1, "urgency": 2, "channel": "phone",
        }, actor="hotline-n1")  # fmt: skip
        assert status == 201, reply
        assert reply["priority"] == 2
        self.engine.at(at)
        incident: str = reply["id"]
        return incident

    async def command(self, incident: str, name: str, at: datetime, body: dict[str, Any] | None = None) -> None:
        self.engine.now = at
        status, reply = await self.call("POST", f"/api/incidents/{incident}/{name}", body or {}, actor="tech-07")
        assert status == 200, reply
        self.engine.at(at)


def serve(engine: Engine, scenario: Callable[[Api], Awaitable[None]]) -> None:
    """Run `scenario` against the web application built around the harness."""

    async def run() -> None:
        webapp = WebApi(engine.app, engine.view, lambda: engine.now, sla=engine.sla).build()
        async with TestClient(TestServer(webapp)) as client:
            await scenario(Api(client, engine))

    asyncio.run(run())


def utc(moment: datetime) -> str:
    """How the API writes an instant computed by the SLA clocks."""
    return moment.astimezone(UTC).isoformat()


def figure(figures: list[dict[str, Any]], metric: str, priority: str = "P2", version: int = 1) -> dict[str, Any]:
    found = [f for f in figures if (f["priority"], f["metric"], f["contract_version"]) == (priority, metric, version)]
    assert len(found) == 1, figures
    return found[0]


@pytest.fixture
def engine(store_env: dict[str, str]) -> Engine:
    return Engine(store_env)


# -- contracts ----------------------------------------------------------------------------


def test_contract_versions_posted_by_the_roc_are_listed_with_their_terms(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        status, missing = await api.call("GET", f"/api/sla/accounts/{ACCOUNT}/contract")
        assert status == 404 and "has no service contract yet" in missing["error"]

        first = await api.contract(paris("2026-05-04", "08:00"))  # effective_from defaults to now
        assert (first["account"], first["version"]) == (ACCOUNT, 1)
        assert first["versions"][0]["effective_from"] == "2026-05-04T08:00:00+02:00"

        tighter = {**OFFICE_HOURS, "effective_from": "2026-06-01T00:00:00+02:00", "name": "resto-chain 2026",
                   "targets": {**OFFICE_HOURS["targets"], "P2": {"response": 900, "restoration": "2h"}}}  # fmt: skip
        second = await api.contract(paris("2026-05-04", "09:00"), tighter)
        assert second["version"] == 2

        contract = await api.get(f"/api/sla/accounts/{ACCOUNT}/contract")
        assert contract["account"] == ACCOUNT
        assert [(v["version"], v["effective_from"], v["service"]) for v in contract["versions"]] == [
            (1, "2026-05-04T08:00:00+02:00", None),
            (2, "2026-06-01T00:00:00+02:00", None),
        ]
        assert contract["versions"][0]["terms"] == office_terms().to_dict()
        assert contract["versions"][1]["terms"]["targets"]["2"] == {"response": 900, "restoration": 2 * H}

    serve(engine, scenario)


INVALID_CONTRACTS = [
    (
        {"targets": {"P2": {"response": "30m", "restoration": "4 hours"}}},
        ("targets", "P2", "value", "restoration", "value"),
        "'4 hours' is not a duration: use seconds or text like 15m, 4h, 1h30m",
    ),
    (
        {"targets": {"P2": {"repair": "4h"}}},
        ("targets", "P2", "value", "repair", "key"),
        "Must be one of: response, restoration, resolution.",
    ),
    ({"targets": {"P9": {"restoration": "4h"}}}, ("targets", "P9", "key"), "Must be one of: P1, P2, P3, P4."),
    (
        {"targets": {"P2": {"restoration": "4h"}}, "calendar": {"preset": "weekends"}},
        ("calendar", "preset"),
        "Must be one of: 24x7, business, custom.",
    ),
    (
        {"targets": {"P2": {"restoration": "0h"}}},
        ("targets", "P2", "value", "restoration", "value"),
        "a target must be longer than zero",
    ),
    (
        {"targets": {"P2": {"restoration": "4h"}}, "escalations": [{"threshold": 90, "notify": "the boss"}]},
        ("escalations", "0", "notify"),
        "Must be one of: assignment_group, roc, management.",
    ),
    ({"calendar": {"preset": "24x7"}}, ("targets",), "Missing data for required field."),
]


def test_invalid_contract_bodies_are_refused_with_a_message_per_field(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        api.engine.now = paris("2026-05-04", "08:00")
        for body, path, message in INVALID_CONTRACTS:
            status, reply = await api.call("POST", f"/api/sla/accounts/{ACCOUNT}/contract", body)
            assert status == 422, (body, reply)
            assert reply["error"] == "the request is not valid"
            messages: Any = reply["fields"]
            for key in path:
                messages = messages[key]
            assert messages == [message], (body, reply)

        for body, message in [
            ({"targets": {"P2": {"restoration": "4h"}}, "thresholds": [90, 50]}, "thresholds must be increasing"),
            ({"targets": {"P2": {"restoration": "4h"}}, "calendar": {"preset": "custom"}}, "needs hours"),
            ({"targets": {"P2": {"restoration": "4h"}}, "calendar": {"timezone": "Mars/Olympus"}}, "unknown time zone"),
            ({"targets": {"P2": {}}}, "P2 has no targets"),
        ]:
            status, reply = await api.call("POST", f"/api/sla/accounts/{ACCOUNT}/contract", body)
            assert status == 422 and message in reply["error"], (body, reply)

        status, _ = await api.call("GET", f"/api/sla/accounts/{ACCOUNT}/contract")
        assert status == 404  # nothing was recorded

    serve(engine, scenario)


def test_a_contract_version_effective_in_the_past_is_refused(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        await api.contract(paris("2026-05-01", "00:00"))
        api.engine.now = paris("2026-05-19", "10:00")
        backdated = {**OFFICE_HOURS, "effective_from": "2026-05-18T00:00:00+02:00"}
        status, reply = await api.call("POST", f"/api/sla/accounts/{ACCOUNT}/contract", backdated)
        assert status == 409, reply
        assert "in the past" in reply["error"]
        assert "never rewrites how earlier incidents were measured" in reply["error"]
        contract = await api.get(f"/api/sla/accounts/{ACCOUNT}/contract")
        assert [v["version"] for v in contract["versions"]] == [1]

    serve(engine, scenario)


def test_the_version_in_force_is_the_one_effective_latest_whatever_the_order_they_were_added(
    engine: Engine,
) -> None:
    async def scenario(api: Api) -> None:
        await api.contract(paris("2026-05-01", "00:00"))  # v1: GTR 4 h
        june = {**OFFICE_HOURS, "effective_from": "2026-06-01T00:00:00+02:00",
                "targets": {**OFFICE_HOURS["targets"], "P2": {"response": "30m", "restoration": "2h"}}}  # fmt: skip
        await api.contract(paris("2026-05-04", "08:00"), june)  # v2: GTR 2 h from 1 June
        late_may = {**OFFICE_HOURS, "effective_from": "2026-05-20T00:00:00+02:00",
                    "targets": {**OFFICE_HOURS["targets"], "P2": {"response": "30m", "restoration": "6h"}}}  # fmt: skip
        await api.contract(paris("2026-05-05", "08:00"), late_may)  # v3: GTR 6 h from 20 May

        in_may = await api.log(paris("2026-05-21", "09:00"))
        in_june = await api.log(paris("2026-06-02", "09:00"))
        clocks = {i: await api.get(f"/api/sla/incidents/{i}") for i in (in_may, in_june)}
        assert clocks[in_may]["contract_version"] == 3
        assert (clocks[in_june]["contract_version"], clocks[in_june]["metrics"]["restoration"]["target_seconds"]) == (
            2,
            2 * H,
        )

    serve(engine, scenario)


# -- one incident's clocks --------------------------------------------------------------------


def test_an_incident_logged_over_http_shows_its_clocks_and_their_explanation(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        await api.contract(paris("2026-05-01", "00:00"))
        incident = await api.log(paris("2026-05-18", "09:00"))  # Monday, P2: restore by 13:00
        await api.command(incident, "acknowledge", paris("2026-05-18", "09:10"))
        api.engine.at(paris("2026-05-18", "12:00"))

        clocks = await api.get(f"/api/sla/incidents/{incident}")
        assert (clocks["incident_id"], clocks["account"], clocks["priority"], clocks["contract_version"]) == (
            incident, ACCOUNT, 2, 1,
        )  # fmt: skip
        assert clocks["started_at"] == "2026-05-18T09:00:00+02:00"
        response, restoration = clocks["metrics"]["response"], clocks["metrics"]["restoration"]
        assert (response["state"], response["elapsed_seconds"], response["met"]) == ("stopped", 600.0, True)
        assert (restoration["state"], restoration["elapsed_seconds"], restoration["met"]) == ("running", 3 * H, None)
        assert restoration["deadline"] == utc(paris("2026-05-18", "13:00"))
        assert restoration["breached_at"] is None
        assert [e["summary"] for e in clocks["explanation"]] == [
            "Clocks started: P2, contract version 1: response 30 min, restoration 4 h",
            "Response clock stopped (acknowledged) after 10 min: met",
            "Restoration at 50 % of its 4 h target",
            "Restoration at 75 % of its 4 h target",
            "Escalated to the assignment group at 75 % of restoration",
        ]
        assert [e["version"] for e in clocks["explanation"]] == [1, 2, 3, 4, 5]

        status, unknown = await api.call("GET", f"/api/sla/incidents/{uuid4()}")
        assert status == 404 and "there is no incident" in unknown["error"]
        status, _ = await api.call("GET", "/api/sla/incidents/not-an-id")
        assert status == 404

    serve(engine, scenario)


def test_an_incident_of_an_account_without_contract_has_no_clocks(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        incident = await api.log(paris("2026-05-18", "09:00"), account="no-contract")
        status, reply = await api.call("GET", f"/api/sla/incidents/{incident}")
        assert status == 404 and "has no SLA clocks" in reply["error"]

    serve(engine, scenario)


# -- the ROC's views ----------------------------------------------------------------------------


def test_at_risk_lists_running_clocks_soonest_breach_first_per_account_and_for_all(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        await api.contract(paris("2026-05-01", "00:00"))
        await api.contract(paris("2026-05-01", "00:00"), account="port-authority")
        early = await api.log(paris("2026-05-18", "09:00"), "router 42 down")
        await api.command(early, "acknowledge", paris("2026-05-18", "09:05"))
        later = await api.log(paris("2026-05-18", "10:00"), "router 9 down")
        await api.command(later, "acknowledge", paris("2026-05-18", "10:05"))
        elsewhere = await api.log(paris("2026-05-18", "10:30"), "berth 3 scanner down", account="port-authority")
        await api.command(elsewhere, "acknowledge", paris("2026-05-18", "10:35"))
        waiting = await api.log(paris("2026-05-18", "10:40"), "restaurant 7 terminals offline")
        await api.command(waiting, "acknowledge", paris("2026-05-18", "10:45"))
        await api.command(waiting, "hold", paris("2026-05-18", "10:50"), {"reason": "awaiting_customer"})
        api.engine.at(paris("2026-05-18", "12:00"))

        account = await api.get(f"/api/sla/accounts/{ACCOUNT}/at-risk")
        assert (account["account"], account["as_of"]) == (ACCOUNT, "2026-05-18T12:00:00+02:00")
        rows = [(r["title"], r["metric"], r["time_left_seconds"], r["time_left"], r["last_threshold"])
                for r in account["at_risk"]]  # fmt: skip
        assert rows == [
            ("router 42 down", "restoration", 1 * H, "1 h", 75),
            ("router 9 down", "restoration", 2 * H, "2 h", 50),
        ]  # the incident awaiting the customer is paused, not at risk
        assert {r["account"] for r in account["at_risk"]} == {ACCOUNT}
        assert account["at_risk"][0]["deadline"] == utc(paris("2026-05-18", "13:00"))

        everyone = await api.get("/api/sla/at-risk")
        assert everyone["account"] is None
        assert [(r["account"], r["title"], r["time_left_seconds"]) for r in everyone["at_risk"]] == [
            (ACCOUNT, "router 42 down", 1 * H),
            (ACCOUNT, "router 9 down", 2 * H),
            ("port-authority", "berth 3 scanner down", 2.5 * H),
        ]

        nobody = await api.get("/api/sla/accounts/nobody/at-risk")
        assert nobody["at_risk"] == []

    serve(engine, scenario)


async def a_month_with_a_breach(api: Api) -> tuple[str, str, str]:
    """Friday's incident restored after 6 business hours, Monday's within 2 h, one still open."""
    await api.contract(paris("2026-05-01", "00:00"))
    late = await api.log(paris("2026-05-15", "17:00"), "router 42 down")  # Friday, P2
    await api.command(late, "acknowledge", paris("2026-05-15", "17:10"))
    met = await api.log(paris("2026-05-18", "09:00"), "router 9 down")
    await api.command(met, "acknowledge", paris("2026-05-18", "09:15"))
    await api.command(met, "restore", paris("2026-05-18", "11:00"))  # 2 h
    await api.command(late, "restore", paris("2026-05-18", "13:00"))  # Fri 17-18 + Mon 08-13: 6 h
    still_open = await api.log(paris("2026-05-18", "14:00"), "restaurant 7 terminals offline")
    await api.command(still_open, "acknowledge", paris("2026-05-18", "14:05"))
    api.engine.at(paris("2026-05-18", "15:00"))
    return late, met, still_open


def test_breaches_dashboard_and_statement_of_the_month(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        late, met, still_open = await a_month_with_a_breach(api)

        breaches = await api.get(f"/api/sla/accounts/{ACCOUNT}/breaches?month=2026-05")
        assert breaches["account"] == ACCOUNT
        assert [(b["incident_id"], b["metric"], b["breached_at"], b["elapsed_seconds"], b["met"])
                for b in breaches["breaches"]] == [
            (late, "restoration", utc(paris("2026-05-18", "11:00")), 6 * H, False),  # Friday 17:00 + 4 h
        ]  # fmt: skip
        assert (await api.get(f"/api/sla/accounts/{ACCOUNT}/breaches"))["breaches"] == breaches["breaches"]
        assert (await api.get(f"/api/sla/accounts/{ACCOUNT}/breaches?month=2026-06"))["breaches"] == []

        dashboard = await api.get(f"/api/sla/accounts/{ACCOUNT}/dashboard?month=2026-05")
        assert (dashboard["account"], dashboard["month"]) == (ACCOUNT, "2026-05")
        restoration = figure(dashboard["figures"], "restoration")
        assert (restoration["counted"], restoration["met"], restoration["breached"], restoration["open"]) == (
            3,
            1,
            1,
            1,
        )
        assert restoration["compliance_percent"] == 50.0
        assert restoration["mean_elapsed_seconds"] == 4 * H  # (6 h + 2 h) / 2, open clocks aside
        assert [w["incident_id"] for w in restoration["worst"]] == [late, met]
        assert figure(dashboard["figures"], "response")["compliance_percent"] == 100.0
        assert (await api.get(f"/api/sla/accounts/{ACCOUNT}/dashboard"))["month"] == "2026-05"  # now's month

        statement = await api.get(f"/api/sla/accounts/{ACCOUNT}/statement?month=2026-05")
        assert statement["figures"] == dashboard["figures"]
        incidents = {i["incident_id"]: i for i in statement["incidents"]}
        assert list(incidents) == [late, met, still_open]  # in the order they were logged
        assert incidents[late]["logged_at"] == "2026-05-15T17:00:00+02:00"
        assert incidents[late]["clocks"]["restoration"]["breached_at"] == utc(paris("2026-05-18", "11:00"))
        assert incidents[met]["clocks"]["restoration"]["met"] is True
        assert incidents[still_open]["clocks"]["restoration"]["state"] == "running"

        empty = await api.get(f"/api/sla/accounts/{ACCOUNT}/statement?month=2026-04")
        assert (empty["figures"], empty["incidents"]) == ([], [])
        for path in ("statement", "dashboard"):
            status, reply = await api.call("GET", f"/api/sla/accounts/{ACCOUNT}/{path}?month=bad")
            assert status == 422 and reply["error"] == "month must look like 2026-05, not 'bad'"
        status, _ = await api.call("GET", f"/api/sla/accounts/{ACCOUNT}/statement?month=2026-13")
        assert status == 422

    serve(engine, scenario)


def test_breaches_with_a_malformed_month_are_refused_like_the_statement(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        await a_month_with_a_breach(api)
        status, reply = await api.call("GET", f"/api/sla/accounts/{ACCOUNT}/breaches?month=May")
        assert status == 422, reply

    serve(engine, scenario)


def test_what_if_replays_the_month_under_other_terms_and_leaves_the_live_figures(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        await api.contract(paris("2026-05-01", "00:00"))
        met = await api.log(paris("2026-05-18", "09:00"), "router 9 down")
        await api.command(met, "acknowledge", paris("2026-05-18", "09:10"))
        await api.command(met, "restore", paris("2026-05-18", "11:00"))  # 2 h
        late = await api.log(paris("2026-05-18", "10:00"), "router 42 down")
        await api.command(late, "acknowledge", paris("2026-05-18", "10:20"))
        await api.command(late, "restore", paris("2026-05-18", "16:00"))  # 6 h: breached under 4 h
        api.engine.at(paris("2026-05-18", "17:00"))
        live_before = await api.get(f"/api/sla/accounts/{ACCOUNT}/dashboard?month=2026-05")
        stored_before = api.engine.app.recorder.max_notification_id()

        generous = {"month": "2026-05", "targets": {"P2": {"response": "30m", "restoration": "8h"}},
                    "calendar": {"preset": "24x7"}}  # fmt: skip
        status, what_if = await api.call("POST", f"/api/sla/accounts/{ACCOUNT}/what-if", generous)
        assert status == 200, what_if
        assert (what_if["account"], what_if["month"], what_if["replayed_incidents"]) == (ACCOUNT, "2026-05", 2)
        replayed = figure(what_if["what_if"], "restoration", version=0)
        assert (replayed["target_seconds"], replayed["met"], replayed["breached"]) == (8 * H, 2, 0)
        assert replayed["compliance_percent"] == 100.0
        assert what_if["live"] == live_before["figures"]
        live = figure(what_if["live"], "restoration")
        assert (live["target_seconds"], live["met"], live["breached"], live["compliance_percent"]) == (
            4 * H, 1, 1, 50.0,
        )  # fmt: skip

        stricter = {"month": "2026-05", "targets": {"P2": {"response": "5m", "restoration": "1h"}}}
        status, strict = await api.call("POST", f"/api/sla/accounts/{ACCOUNT}/what-if", stricter)
        assert status == 200, strict
        assert figure(strict["what_if"], "restoration", version=0)["breached"] == 2  # restored after 2 h and 6 h
        assert figure(strict["what_if"], "response", version=0)["breached"] == 2  # acknowledged after 10 and 20 min

        assert api.engine.app.recorder.max_notification_id() == stored_before  # nothing was stored
        assert await api.get(f"/api/sla/accounts/{ACCOUNT}/dashboard?month=2026-05") == live_before
        assert (await api.get(f"/api/sla/incidents/{late}"))["metrics"]["restoration"]["target_seconds"] == 4 * H

        for body in ({**generous, "month": "May"}, {"targets": generous["targets"]}):
            status, reply = await api.call("POST", f"/api/sla/accounts/{ACCOUNT}/what-if", body)
            assert status == 422 and "month" in reply["fields"], reply
        status, april = await api.call("POST", f"/api/sla/accounts/{ACCOUNT}/what-if", {**generous, "month": "2026-04"})
        assert status == 200 and (april["replayed_incidents"], april["what_if"]) == (0, [])

    serve(engine, scenario)
