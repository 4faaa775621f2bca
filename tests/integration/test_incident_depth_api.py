"""Accounts, escalations, major incidents, parent/child outages, the reopen period and comments over HTTP.

The web application is the real one (web/), served in-process by aiohttp's test server
inside `asyncio.run`, over the real store, account view and SLA side (SQLite and PostgreSQL).
Its clock is a hand-driven one; `engine.pump()` delivers the stored events to the consumers as
the worker would, so the account view can be read back without Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from application.app import ItilApplication
from application.batching import GroupCommitter
from domain import commands as cmd
from processes.sla import SlaConsumer, SlaProcess, SlaSchedule
from projections.account_incidents import AccountIncidentsProjection
from projections.db import Database
from projections.records import envelope_of
from projections.sla import SlaDashboardProjection
from projections.tracking import Delivery
from streams.envelope import decode, encode
from web.api import Caller, Forbidden, WebApi

PARIS = ZoneInfo("Europe/Paris")
ACCOUNT = "resto-chain"
RESTO_ROWS = [[1, 1, 2], [1, 2, 3], [2, 3, 4]]


def paris(day: str, hm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=PARIS)


class Engine:
    """The store, the account view and the SLA side in one process, with a hand-driven clock."""

    def __init__(self, env: dict[str, str]) -> None:
        self.now = paris("2026-05-18", "09:00")
        self.app = ItilApplication(env=env)
        self.db = Database.from_store_env(env)
        self.view = AccountIncidentsProjection(self.db)
        self.sla = SlaDashboardProjection(self.db)
        self.schedule = SlaSchedule(self.db)
        self.consumer = SlaConsumer(self.db, SlaProcess(self.app, self.schedule, lambda: self.now))
        for owner in (self.view, self.sla, self.schedule, self.consumer):
            owner.create_tables()
        self.published = 0
        self.previous: int | None = None

    def pump(self) -> None:
        """Deliver every stored event not yet delivered to the view, the dashboard and the SLA process."""
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


class Recording:
    """An access policy that lets everyone in but "intern" on account settings, and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str | None, str, str | None]] = []

    def authorize(self, caller: Caller, action: str, account: str | None) -> None:
        self.asked.append((caller.name, action, account))
        if caller.name == "intern" and action == "account.admin":
            raise Forbidden(f"{caller.name} may not administer account {account}")


class Api:
    """The engine's HTTP API as agents and service managers call it, on the engine's clock."""

    def __init__(self, client: TestClient, engine: Engine) -> None:
        self.client = client
        self.engine = engine

    async def call(self, method: str, path: str, body: Any = None, actor: str = "hotline-n1") -> tuple[int, Any]:
        response = await self.client.request(method, path, json=body, headers={"X-Actor": actor})
        return response.status, await response.json()

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200, actor: str = "hotline-n1") -> Any:
        got, reply = await self.call(method, path, body, actor)
        assert got == status, reply
        return reply

    async def log(self, ci: str, account: str = ACCOUNT, impact: int = 2, urgency: int = 2, **extra: Any) -> str:
        body = {"account": account, "ci": ci, "title": f"{ci} down", "impact": impact, "urgency": urgency,
                "channel": "phone", **extra}  # fmt: skip
        reply = await self.ok("POST", "/api/incidents", body, status=201)
        incident: str = reply["id"]
        return incident

    async def command(self, incident: str, name: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        return await self.call("POST", f"/api/incidents/{incident}/{name}", body or {})

    async def detail(self, incident: str, account: str = ACCOUNT) -> Any:
        self.engine.pump()
        return await self.ok("GET", f"/api/accounts/{account}/incidents/{incident}")


def serve(
    engine: Engine,
    scenario: Callable[[Api], Awaitable[None]],
    policy: Recording | None = None,
    group_commit: bool = False,
) -> None:
    """Run `scenario` against the web application built as itil/runtime.py builds it (with its group
    commit when `group_commit`)."""

    async def run() -> None:
        committer = GroupCommitter(engine.app).start() if group_commit else None
        webapp = WebApi(
            engine.app, engine.view, lambda: engine.now, policy=policy, sla=engine.sla, committer=committer
        ).build()
        try:
            async with TestClient(TestServer(webapp)) as client:
                await scenario(Api(client, engine))
        finally:
            if committer is not None:
                committer.stop()

    asyncio.run(run())


@pytest.fixture
def engine(store_env: dict[str, str]) -> Engine:
    return Engine(store_env)


# -- accounts ---------------------------------------------------------------------------------------


def test_an_account_is_registered_and_configured_by_its_service_manager(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        defaults = await api.ok("GET", f"/api/accounts/{ACCOUNT}")
        assert (defaults["registered"], defaults["roc"]) == (False, None)
        assert defaults["priority_matrix_rows"] == [[1, 2, 3], [2, 3, 4], [3, 4, 4]]
        assert defaults["reopen_period"] == {"seconds": 7 * 86400, "text": "7 days"}

        status, missing = await api.call("PUT", f"/api/accounts/{ACCOUNT}/roc", {"roc": "anne.roc"})
        assert status == 404 and "register it first" in missing["error"]

        response = await api.client.post(
            f"/api/accounts/{ACCOUNT}", json={"name": "Resto Chain SAS", "roc": "anne.roc"}, headers={"X-Actor": "sm"}
        )
        assert response.status == 201 and response.headers["Location"] == f"/api/accounts/{ACCOUNT}"
        registered = await response.json()
        assert (registered["registered"], registered["name"], registered["roc"]) == (
            True,
            "Resto Chain SAS",
            "anne.roc",
        )
        again = await api.ok("POST", f"/api/accounts/{ACCOUNT}", {"name": "Resto Chain SAS", "roc": "anne.roc"}, 201)
        assert again["version"] == 1
        status, conflict = await api.call("POST", f"/api/accounts/{ACCOUNT}", {"roc": "marc.roc"})
        assert status == 409 and "already registered" in conflict["error"]

        changed = await api.ok("PUT", f"/api/accounts/{ACCOUNT}/roc", {"roc": "marc.roc"})
        assert changed["roc"] == "marc.roc"

        as_cells = {f"{i},{u}": RESTO_ROWS[i - 1][u - 1] for i in (1, 2, 3) for u in (1, 2, 3)}
        matrix = await api.ok("PUT", f"/api/accounts/{ACCOUNT}/priority-matrix", {"matrix": as_cells})
        assert matrix["priority_matrix_rows"] == RESTO_ROWS
        assert matrix["priority_matrix"]["2,1"] == 1
        as_rows = await api.ok("PUT", f"/api/accounts/{ACCOUNT}/priority-matrix", {"matrix": RESTO_ROWS})
        assert as_rows["version"] == matrix["version"]  # the same matrix again changes nothing

        period = await api.ok("PUT", f"/api/accounts/{ACCOUNT}/reopen-period", {"days": 3})
        assert period["reopen_period"] == {"seconds": 3 * 86400, "text": "3 days"}
        period = await api.ok("PUT", f"/api/accounts/{ACCOUNT}/reopen-period", {"hours": 36})
        assert period["reopen_period"]["text"] == "36 hours"

        profile = await api.ok("GET", f"/api/accounts/{ACCOUNT}")
        assert (profile["roc"], profile["priority_matrix_rows"], profile["reopen_period"]["seconds"]) == (
            "marc.roc", RESTO_ROWS, 36 * 3600,
        )  # fmt: skip

    serve(engine, scenario)


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("priority-matrix", {"matrix": {"1,1": 1}}, "must cover all 9 cells; it lacks impact 1 × urgency 2"),
        ("priority-matrix", {"matrix": RESTO_ROWS[:2]}, "the request is not valid"),
        ("priority-matrix", {"matrix": {"high,low": 1}}, "the request is not valid"),
        ("priority-matrix", {"matrix": [[1, 1, 2], [1, 2, 3], [2, 3, 5]]}, "a priority must be 1 (critical)"),
        ("reopen-period", {}, "the reopen period must be longer than zero"),
        ("reopen-period", {"days": -1}, "the request is not valid"),
        ("roc", {"roc": ""}, "the request is not valid"),
    ],
)
def test_wrong_account_settings_are_refused_with_a_readable_reason(
    engine: Engine, path: str, body: dict[str, Any], message: str
) -> None:
    async def scenario(api: Api) -> None:
        await api.ok("POST", f"/api/accounts/{ACCOUNT}", {"roc": "anne.roc"}, 201)
        before = engine.app.recorder.max_notification_id()

        status, reply = await api.call("PUT", f"/api/accounts/{ACCOUNT}/{path}", body)

        assert status == 422 and message in reply["error"], reply
        assert engine.app.recorder.max_notification_id() == before

    serve(engine, scenario)


def test_the_access_policy_is_asked_about_the_account_in_the_path(engine: Engine) -> None:
    policy = Recording()

    async def scenario(api: Api) -> None:
        status, refused = await api.call("POST", f"/api/accounts/{ACCOUNT}", {"roc": "anne.roc"}, actor="intern")
        assert status == 403, refused
        await api.ok("POST", f"/api/accounts/{ACCOUNT}", {"roc": "anne.roc"}, 201, actor="sm")
        await api.ok("PUT", f"/api/accounts/{ACCOUNT}/reopen-period", {"days": 2}, actor="sm")
        await api.ok("GET", f"/api/accounts/{ACCOUNT}", actor="intern")

    serve(engine, scenario, policy)
    assert policy.asked == [
        ("intern", "account.admin", ACCOUNT),
        ("sm", "account.admin", ACCOUNT),
        ("sm", "account.admin", ACCOUNT),
        ("intern", "account.read", ACCOUNT),
    ]


def test_the_roc_informs_show_in_the_account_profile_once_each(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        await api.ok("POST", f"/api/accounts/{ACCOUNT}", {"roc": "anne.roc"}, 201)
        incident = UUID(await api.log("router-resto-042"))
        inform = cmd.InformRoc(ACCOUNT, incident, "Restaurant 42 router down", "GTR at 90 %", "sla-process", engine.now)
        engine.app.handle(inform)
        engine.app.handle(inform)  # redelivered

        profile = await api.ok("GET", f"/api/accounts/{ACCOUNT}")

        assert profile["roc_informs_total"] == 1
        [informed] = profile["roc_informs"]
        assert (informed["roc"], informed["subject_id"], informed["reason"]) == (
            "anne.roc",
            str(incident),
            "GTR at 90 %",
        )

    serve(engine, scenario)


# -- incidents ----------------------------------------------------------------------------------------


def test_an_incident_is_prioritised_by_its_accounts_matrix_and_categorised(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        await api.ok("POST", f"/api/accounts/{ACCOUNT}", {"roc": "anne.roc"}, 201, actor="sm")
        await api.ok("PUT", f"/api/accounts/{ACCOUNT}/priority-matrix", {"matrix": RESTO_ROWS}, actor="sm")

        resto = await api.ok(
            "GET", f"/api/incidents/{await api.log('tpe-042', urgency=1, category='payment terminal')}"
        )
        bakery = await api.ok("GET", f"/api/incidents/{await api.log('tpe-003', account='bakery-chain', urgency=1)}")
        assert (resto["priority"], resto["category"], bakery["priority"], bakery["category"]) == (
            1, "payment terminal", 2, None,
        )  # fmt: skip

        status, body = await api.command(resto["id"], "reprioritise", {"impact": 3, "urgency": 1})
        assert status == 200 and body["priority"] == 2  # the chain's matrix; the common one says P3
        status, body = await api.command(resto["id"], "categorise", {"category": "network"})
        assert status == 200 and body["category"] == "network"
        status, body = await api.command(resto["id"], "categorise", {"category": "network"})
        assert status == 409 and "already in category 'network'" in body["error"]
        status, body = await api.command(resto["id"], "categorise", {})
        assert status == 422 and set(body["fields"]) == {"category"}

        detail = await api.detail(resto["id"])
        assert detail["category"] == "network"
        assert [e["summary"] for e in detail["timeline"]][-1] == "Categorised as network (was payment terminal)"
        assert "category payment terminal" in detail["timeline"][0]["summary"]

    serve(engine, scenario)


def test_the_hotline_escalates_functionally_then_to_the_roc_and_declares_a_major_incident(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        incident = await api.log("carrier-link-orange-paca", impact=1, urgency=1)
        status, body = await api.command(incident, "escalate", {"to_group": "N2 network", "reason": "link down"})
        assert status == 409 and "not assigned to a group yet" in body["error"]
        await api.command(incident, "assign", {"group": "N1 hotline", "assignee": "julie"})

        status, body = await api.command(incident, "escalate", {"to_group": "N2 network", "reason": "link down"})
        assert status == 200, body
        assert (body["assignment_group"], body["assignee"], body["support_tier"]) == ("N2 network", None, 2)
        status, body = await api.command(incident, "escalate", {"to_group": "N2 systems", "reason": "servers?"})
        assert status == 409 and "N2 network (tier 2) to N2 systems (tier 2)" in body["error"]
        status, body = await api.command(incident, "escalate", {"to_group": "Orange", "reason": "carrier"})
        assert status == 422 and "support tier is unknown" in body["error"]

        status, body = await api.command(incident, "escalate-hierarchically", {"level": "roc", "reason": "40 sites"})
        assert status == 200 and body["escalation_level"] == "roc"
        status, body = await api.command(incident, "escalate-hierarchically", {"level": "ceo", "reason": "x"})
        assert status == 422 and set(body["fields"]) == {"level"}

        status, body = await api.command(incident, "declare-major", {"reason": "40 restaurants cannot take cards"})
        assert status == 200 and body["is_major"] is True
        status, body = await api.command(incident, "declare-major", {"reason": "still down"})
        assert status == 409 and "already is a major incident" in body["error"]

        engine.pump()
        view = await api.ok("GET", f"/api/accounts/{ACCOUNT}/incidents")
        assert view["major_open"] == 1
        [listed] = view["incidents"]
        assert (listed["is_major"], listed["assignment_group"], listed["assignee"]) == (True, "N2 network", None)
        detail = await api.detail(incident)
        assert detail["escalation_level"] == "roc"
        assert [e["summary"] for e in detail["timeline"]][-3:] == [
            "Escalated from N1 hotline to N2 network: link down",
            "Escalated to the ROC: 40 sites",
            "Declared a major incident: 40 restaurants cannot take cards",
        ]

    serve(engine, scenario)


def test_restaurants_are_attached_to_the_parent_incident_of_a_carrier_outage(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        parent = await api.log("carrier-link-orange-paca", impact=1, urgency=1)
        children = [await api.log(f"router-resto-{n:03d}") for n in (42, 57, 61)]
        for child in children:
            status, body = await api.command(child, "attach-to", {"parent_id": parent})
            assert status == 200, body
            assert body["id"] == child and body["parent_id"] == parent

        assert [str(c) for c in engine.app.get_incident(UUID(parent)).children] == children
        detail = await api.detail(parent)
        assert detail["children"] == children and detail["children_count"] == 3
        child_detail = await api.detail(children[0])
        assert child_detail["parent_id"] == parent
        assert child_detail["timeline"][-1]["summary"] == f"Attached to parent incident {parent}"

        other = await api.log("carrier-link-sfr-paca")
        status, body = await api.command(children[0], "attach-to", {"parent_id": other})
        assert status == 409 and f"already a child of incident {parent}" in body["error"]
        status, body = await api.command(other, "attach-to", {"parent_id": children[1]})
        assert status == 409 and f"it is itself a child of incident {parent}" in body["error"]
        bakery = await api.log("router-bakery-003", account="bakery-chain")
        status, body = await api.command(bakery, "attach-to", {"parent_id": parent})
        assert status == 409 and "that one is on account resto-chain" in body["error"]
        status, body = await api.command(other, "attach-to", {"parent_id": str(uuid4())})
        assert status == 404 and "there is no incident" in body["error"]
        status, body = await api.command(other, "attach-to", {"parent_id": "restaurant 42"})
        assert status == 422 and set(body["fields"]) == {"parent_id"}
        status, body = await api.command(other, "attach-to", {"parent_id": other})
        assert status == 409 and "to itself" in body["error"]
        assert engine.app.get_incident(UUID(other)).version == 1

    serve(engine, scenario)


def test_past_the_reopen_period_a_new_incident_is_logged_related_to_the_first(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        await api.ok("POST", f"/api/accounts/{ACCOUNT}", {"roc": "anne.roc"}, 201, actor="sm")
        await api.ok("PUT", f"/api/accounts/{ACCOUNT}/reopen-period", {"days": 2}, actor="sm")
        first = await api.log("router-resto-042")
        status, _ = await api.command(first, "resolve", {"code": "fixed"})
        assert status == 200

        engine.now += timedelta(days=1)
        status, reopened = await api.command(first, "reopen", {"reason": "down again"})
        assert status == 200 and reopened["status"] == "new"
        status, _ = await api.command(first, "resolve", {"code": "fixed"})
        assert status == 200

        engine.now += timedelta(days=2, minutes=1)
        status, refused = await api.command(first, "reopen", {"reason": "down again"})
        assert status == 409
        assert (
            "more than 2 days ago" in refused["error"] and "log a new incident related to this one" in refused["error"]
        )

        follow_up = await api.log("router-resto-042", related_incident=first)
        detail = await api.detail(follow_up)
        assert detail["related_incident"] == first
        assert f"follows up incident {first}" in detail["timeline"][0]["summary"]

        body = {"account": ACCOUNT, "ci": "x", "title": "t", "impact": 2, "urgency": 2, "channel": "phone"}
        status, reply = await api.call("POST", "/api/incidents", {**body, "related_incident": str(uuid4())})
        assert status == 404 and "there is no incident" in reply["error"]
        status, reply = await api.call(
            "POST", "/api/incidents", {**body, "account": "bakery-chain", "related_incident": first}
        )
        assert status == 422 and "is on account resto-chain, not bakery-chain" in reply["error"]

    serve(engine, scenario)


# -- comments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("group_commit", [False, True], ids=["one by one", "group commit"])
def test_agents_and_customers_comment_an_incident_and_read_the_comments_in_order(
    engine: Engine, group_commit: bool
) -> None:
    async def scenario(api: Api) -> None:
        incident = await api.log("tpe-0042")
        path = f"/api/incidents/{incident}/comments"
        response = await api.client.post(
            path,
            json={
                "text": " The terminal restarts every ten minutes. ",
                "author": "J. Martin",
                "customer_visible": True,
            },
            headers={"X-Actor": "hotline-n1"},
        )
        assert response.status == 201 and response.headers["Location"] == path
        first = await response.json()
        assert first == {
            "incident_id": incident, "number": 1, "version": 2, "author": "J. Martin",
            "text": "The terminal restarts every ten minutes.", "customer_visible": True,
            "at": engine.now.isoformat(), "actor": "hotline-n1",
        }  # fmt: skip
        await api.command(incident, "assign", {"group": "field technicians"})
        engine.now += timedelta(minutes=5)
        note = await api.ok("POST", path, {"text": "carrier ticket 4411", "customer_visible": False}, 201, "n2-tech")
        assert (note["number"], note["version"], note["author"], note["actor"]) == (2, 4, "n2-tech", "n2-tech")
        earlier = (engine.now - timedelta(minutes=1)).isoformat()  # written before the note, recorded after it
        late = await api.ok("POST", path, {"text": "late", "author": "J. Martin", "customer_visible": True,
                                           "at": earlier}, 201)  # fmt: skip
        assert (late["number"], late["at"]) == (3, earlier)

        listed = await api.ok("GET", path)
        assert (listed["incident_id"], listed["total"]) == (incident, 3)
        assert listed["comments"] == [first, note, late]
        customer = await api.ok("GET", f"{path}?customer_visible=true")
        assert [c["number"] for c in customer["comments"]] == [1, 3]
        internal = await api.ok("GET", f"{path}?customer_visible=false")
        assert [c["text"] for c in internal["comments"]] == ["carrier ticket 4411"]

        state = await api.ok("GET", f"/api/incidents/{incident}")
        assert (state["comment_count"], state["last_commented_at"]) == (3, engine.now.isoformat())
        detail = await api.detail(incident)
        assert [e["summary"] for e in detail["timeline"] if e["event_type"] == "Incident.Commented"] == [
            "Comment (customer-visible) by J. Martin: The terminal restarts every ten minutes.",
            "Work note by n2-tech: carrier ticket 4411",
            "Comment (customer-visible) by J. Martin: late",
        ]

    serve(engine, scenario, group_commit=group_commit)


def test_comment_requests_are_checked_like_the_other_incident_commands(engine: Engine) -> None:
    async def scenario(api: Api) -> None:
        incident = await api.log("tpe-0042")
        path = f"/api/incidents/{incident}/comments"
        before = engine.app.recorder.max_notification_id()

        status, body = await api.call("POST", path, {"customer_visible": True})
        assert (status, body["error"], set(body["fields"])) == (422, "the request is not valid", {"text"})
        status, body = await api.call("POST", path, {"text": "hello"})
        assert status == 422 and set(body["fields"]) == {"customer_visible"}
        status, body = await api.call("POST", path, {"text": "hello", "customer_visible": "yes"})
        assert status == 422 and set(body["fields"]) == {"customer_visible"}
        status, body = await api.call("POST", path, {"text": "x" * 20_001, "customer_visible": True})
        assert status == 422 and set(body["fields"]) == {"text"}
        status, body = await api.call("POST", path, {"text": "   ", "customer_visible": True})
        assert (status, body["error"]) == (422, "the comment's text is required")
        future = (engine.now + timedelta(hours=1)).isoformat()
        status, body = await api.call("POST", path, {"text": "hello", "customer_visible": True, "at": future})
        assert status == 422 and "is in the future" in body["error"]
        response = await api.client.post(path, json={"text": "hello", "customer_visible": True})
        assert response.status == 422 and "who is acting?" in (await response.json())["error"]
        response = await api.client.post(path, data=b"{not json", headers={"X-Actor": "hotline-n1"})
        assert response.status == 400 and "not valid JSON" in (await response.json())["error"]
        status, body = await api.call("GET", f"{path}?customer_visible=maybe")
        assert (status, body["error"]) == (422, "customer_visible must be true or false, not 'maybe'")

        unknown = str(uuid4())
        for method in ("GET", "POST"):
            status, body = await api.call(
                method, f"/api/incidents/{unknown}/comments", {"text": "x", "customer_visible": True}
            )
            assert (status, body["error"]) == (404, f"there is no incident {unknown}")
        status, body = await api.call("GET", "/api/incidents/not-an-id/comments")
        assert status == 404 and "not an incident id" in body["error"]
        assert engine.app.recorder.max_notification_id() == before

        await api.command(incident, "resolve", {"code": "fixed"})
        await api.command(incident, "close")
        status, body = await api.call("POST", path, {"text": "It failed again.", "customer_visible": True})
        assert status == 409
        assert body["error"] == (
            f"cannot comment on incident {incident}: it is closed; a closed incident takes no more comments,"
            " log a new one related to it"
        )
        assert (await api.ok("GET", path))["comments"] == []

    serve(engine, scenario)


def test_the_access_policy_is_asked_about_commenting_and_reading_comments(engine: Engine) -> None:
    policy = Recording()

    async def scenario(api: Api) -> None:
        incident = await api.log("tpe-0042")
        await api.ok("POST", f"/api/incidents/{incident}/comments", {"text": "hi", "customer_visible": True}, 201)
        await api.ok("GET", f"/api/incidents/{incident}/comments")
        assert policy.asked[-2:] == [
            ("hotline-n1", "incident.comment", ACCOUNT),
            ("hotline-n1", "incident.read", ACCOUNT),
        ]

    serve(engine, scenario, policy=policy)
