"""Problems, changes, the change calendar and the CI registry over HTTP, on SQLite and PostgreSQL.

The web app is the real one (aiohttp, in process) over the real store; the CI registry is fed
stored events as the worker would, and the clock is the test's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from application.app import ItilApplication
from application.configuration import ci_id
from domain.configuration import KINDS
from projections.account_incidents import AccountIncidentsProjection
from projections.configuration import CiRegistryProjection
from projections.db import Database
from projections.records import envelope_of
from projections.sla import SlaDashboardProjection
from projections.tracking import Delivery
from streams.envelope import decode, encode
from web.api import Caller, Forbidden, WebApi

PARIS = ZoneInfo("Europe/Paris")
ACCOUNT = "resto-chain"


def paris(day: str, hm: str) -> str:
    return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=PARIS).isoformat()


class RecordingPolicy:
    """Lets everyone through except on `forbidden_account`; remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str | None, str, str | None]] = []
        self.forbidden_account: str | None = None

    def authorize(self, caller: Caller, action: str, account: str | None) -> None:
        self.asked.append((caller.name, action, account))
        if account is not None and account == self.forbidden_account:
            raise Forbidden(f"{caller.name} may not {action} on {account}")


class Api:
    """The engine's HTTP side in one process: store, projections, web app, a hand-driven clock."""

    def __init__(self, env: dict[str, str]) -> None:
        self.now = datetime(2026, 6, 1, 9, 0, tzinfo=PARIS)  # a Monday
        self.app = ItilApplication(env=env)
        self.db = Database.from_store_env(env)
        self.incidents = AccountIncidentsProjection(self.db)
        self.sla = SlaDashboardProjection(self.db)
        self.cis = CiRegistryProjection(self.db)
        for projection in (self.incidents, self.sla, self.cis):
            projection.create_tables()
        self.policy = RecordingPolicy()
        self.published = 0
        self.previous: int | None = None

    def pump(self) -> None:
        """Deliver every stored event not yet delivered to the CI registry."""
        while True:
            notifications = self.app.recorder.select_notifications(start=self.published + 1, limit=500)
            if not notifications:
                return
            batch = []
            for n in notifications:
                envelope = envelope_of(self.app.mapper.to_domain_event(n), n.id, self.previous)
                batch.append(Delivery("itil.events", 0, n.id - 1, decode(encode(envelope))))
                self.previous = self.published = n.id
            self.cis.apply(batch)

    def run(self, scenario: Callable[[Client], Awaitable[None]]) -> None:
        async def main() -> None:
            webapp = WebApi(self.app, self.incidents, lambda: self.now, policy=self.policy, sla=self.sla).build()
            async with TestClient(TestServer(webapp)) as client:
                await scenario(Client(client, self))

        asyncio.run(main())


class Client:
    """JSON calls; each one a minute after the one before."""

    def __init__(self, client: TestClient[Any, Any], api: Api) -> None:
        self.client = client
        self.api = api

    async def call(
        self, method: str, path: str, body: Any = None, actor: str | None = "n2-network", raw: bytes | None = None
    ) -> tuple[int, Any]:
        self.api.now += timedelta(minutes=1)
        headers = {"X-Actor": actor} if actor else {}
        if raw is not None:
            response = await self.client.request(method, path, data=raw, headers=headers)
        else:
            response = await self.client.request(method, path, json=body, headers=headers)
        return response.status, await response.json()

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200, actor: str = "n2-network") -> Any:
        got, answer = await self.call(method, path, body, actor=actor)
        assert got == status, answer
        return answer

    async def refused(self, status: int, method: str, path: str, body: Any = None, actor: str = "n2-network") -> str:
        got, answer = await self.call(method, path, body, actor=actor)
        assert got == status, answer
        message: str = answer["error"]
        return message

    # -- shortcuts ----------------------------------------------------------------------------

    async def register_ci(self, name: str, kind: str, **attributes: str) -> Any:
        body = {"ci": name, "kind": kind, "attributes": attributes}
        return await self.ok("POST", f"/api/cis/{ACCOUNT}", body, status=201, actor="cmdb-sync")

    async def request_change(self, type: str, title: str, cis: list[str], **extra: Any) -> str:
        body = {"account": ACCOUNT, "type": type, "title": title, "affected_cis": cis, **extra}
        change = await self.ok("POST", "/api/changes", body, status=201)
        assert change["status"] == "draft"
        return str(change["id"])

    async def change(self, change_id: str, command: str, body: Any = None, actor: str = "n2-network") -> Any:
        return await self.ok("POST", f"/api/changes/{change_id}/{command}", body or {}, actor=actor)

    async def problem(self, problem_id: str, command: str, body: Any = None) -> Any:
        return await self.ok("POST", f"/api/problems/{problem_id}/{command}", body or {})

    async def standard_change(self, title: str, cis: list[str], start: str, end: str) -> str:
        change_id = await self.request_change("standard", title, cis, template="router-reboot")
        assert (await self.change(change_id, "submit"))["status"] == "authorised"
        await self.change(change_id, "schedule", {"start": start, "end": end})
        return change_id


@pytest.fixture
def api(store_env: dict[str, str]) -> Api:
    return Api(store_env)


ASSESSMENT = {
    "risk": "medium",
    "impact": "restaurants 12 and 13 lose their backup link for 5 minutes",
    "implementation_plan": "push firmware 7.3 to router-12 then switch-9, reboot both",
    "backout_plan": "reflash firmware 7.2",
}


# -- normal changes -------------------------------------------------------------------------------


def test_a_normal_change_from_cab_approval_through_failure_review_and_closure(api: Api) -> None:
    async def scenario(c: Client) -> None:
        await c.register_ci("router-12", "router")
        await c.register_ci("switch-9", "switch")
        windows = {"windows": [{"weekday": "Sun", "start": "22:00", "end": "04:00"}]}
        answer = await c.ok("PUT", f"/api/cis/{ACCOUNT}/router-12/maintenance-windows", windows)
        assert answer["windows"] == [{"weekday": 6, "day": "Sunday", "start": "22:00", "end": "04:00"}]
        freeze = {"start": paris("2026-06-24", "00:00"), "end": paris("2026-07-01", "00:00"), "reason": "summer sales"}
        await c.ok("PUT", f"/api/accounts/{ACCOUNT}/freeze-windows/summer-sales", freeze, actor="change-manager")
        reboot = await c.standard_change(
            "Reboot router-12", ["router-12"], paris("2026-06-07", "23:00"), paris("2026-06-07", "23:30")
        )

        change = await c.request_change("normal", "Upgrade firmware to 7.3", ["router-12", "switch-9"])
        assert (await c.change(change, "submit"))["status"] == "assessment"
        assessed = await c.change(change, "assess", ASSESSMENT)
        assert (assessed["status"], assessed["risk"]) == ("authorisation", "medium")
        message = await c.refused(409, "POST", f"/api/changes/{change}/approve", {}, actor="change-manager")
        assert message == f"cannot approve change {change}: it is medium risk and needs a CAB, convene the CAB first"
        convened = await c.change(change, "convene-cab", {"members": ["alice", "bob"]}, actor="change-manager")
        assert (convened["cab_members"], convened["cab_emergency"]) == (["alice", "bob"], False)
        half = await c.change(change, "approve", actor="alice")
        assert (half["status"], half["approvals"]) == ("authorisation", {"alice": "approved", "bob": "pending"})
        message = await c.refused(409, "POST", f"/api/changes/{change}/approve", {}, actor="carol")
        assert message == f"cannot approve change {change}: carol is not a member of the CAB (alice, bob)"
        authorised = await c.change(change, "approve", actor="bob")
        assert (authorised["status"], authorised["authorisation_basis"]) == ("authorised", "cab")

        over_freeze = {"start": paris("2026-06-30", "22:00"), "end": paris("2026-07-01", "02:00")}
        message = await c.refused(409, "POST", f"/api/changes/{change}/schedule", over_freeze)
        assert message == (
            f"cannot schedule change {change} 2026-06-30T22:00+02:00–2026-07-01T02:00+02:00:"
            " freeze window summer-sales overlaps (2026-06-24T00:00+02:00–2026-07-01T00:00+02:00)"
        )
        over_reboot = {"start": paris("2026-06-07", "23:15"), "end": paris("2026-06-08", "01:00")}
        message = await c.refused(409, "POST", f"/api/changes/{change}/schedule", over_reboot)
        assert f"change {reboot} on CI router-12 overlaps (2026-06-07T23:00+02:00–23:30)" in message

        tuesday = {"start": paris("2026-06-09", "14:00"), "end": paris("2026-06-09", "15:00")}
        scheduled = await c.change(change, "schedule", tuesday)
        assert (scheduled["status"], scheduled["outside_maintenance_window"]) == ("scheduled", True)
        calendar = await c.ok("GET", f"/api/accounts/{ACCOUNT}/change-calendar")
        assert [b["change_id"] for b in calendar["bookings"]] == [reboot, change]

        await c.change(change, "start", actor="field-tech")
        failed = await c.change(
            change, "fail", {"reason": "switch-9 did not boot 7.3", "backout_performed": "reflashed 7.2 on both"}
        )
        assert (failed["status"], failed["backout_performed"]) == ("failed", "reflashed 7.2 on both")
        calendar = await c.ok("GET", f"/api/accounts/{ACCOUNT}/change-calendar")
        assert [b["change_id"] for b in calendar["bookings"]] == [reboot]  # the failed change freed its window
        message = await c.refused(409, "POST", f"/api/changes/{change}/close", {})
        assert message == f"cannot close change {change}: it failed; review it first"
        await c.change(change, "review", {"outcome": "vendor bug on switch-9; retry with 7.3.1"})
        closed = await c.change(change, "close", actor="change-manager")
        assert closed["status"] == "closed"

        story = await c.ok("GET", f"/api/changes/{change}")
        assert [e["event_type"].split(".")[1] for e in story["timeline"]] == [
            "Requested", "Submitted", "Assessed", "CabConvened", "Approved", "Approved", "Authorised",
            "Scheduled", "ImplementationStarted", "Failed", "Reviewed", "Closed",
        ]  # fmt: skip
        assert story["timeline"][3]["summary"] == "CAB convened: alice, bob"
        assert story["timeline"][7]["summary"].endswith("(outside the maintenance windows)")
        assert [e["actor"] for e in story["timeline"]][4:6] == ["alice", "bob"]

        cancelled = await c.change(reboot, "cancel", {"reason": "router replaced instead"})
        assert cancelled["status"] == "cancelled"
        calendar = await c.ok("GET", f"/api/accounts/{ACCOUNT}/change-calendar")
        assert calendar["bookings"] == []
        assert calendar["freeze_windows"][0]["name"] == "summer-sales"

    api.run(scenario)


def test_any_cab_member_rejecting_rejects_the_change(api: Api) -> None:
    async def scenario(c: Client) -> None:
        change = await c.request_change("normal", "Re-cable site 12", ["site-12"])
        await c.change(change, "submit")
        await c.change(change, "assess", {**ASSESSMENT, "risk": "high"})
        await c.change(change, "convene-cab", {"members": ["alice", "bob", "carol"]}, actor="change-manager")
        await c.change(change, "approve", actor="alice")
        rejected = await c.change(change, "reject", {"reason": "no technician on site that night"}, actor="bob")
        assert (rejected["status"], rejected["rejection_reason"]) == ("rejected", "no technician on site that night")
        assert rejected["approvals"] == {"alice": "approved", "bob": "rejected", "carol": "pending"}
        message = await c.refused(409, "POST", f"/api/changes/{change}/approve", {}, actor="carol")
        assert message == f"cannot approve change {change}: it was rejected; the decision was already taken"

    api.run(scenario)


def test_a_low_risk_change_is_authorised_by_the_change_manager(api: Api) -> None:
    async def scenario(c: Client) -> None:
        change = await c.request_change("normal", "Add a VLAN", ["switch-9"])
        await c.change(change, "submit")
        await c.change(change, "assess", {**ASSESSMENT, "risk": "low"})
        approved = await c.change(change, "approve", {"role": "change_manager"}, actor="change-manager")
        assert (approved["status"], approved["authorisation_basis"]) == ("authorised", "change_manager")
        assert approved["approvals"] == {"change-manager": "approved"}

    api.run(scenario)


def test_a_standard_change_from_its_template_is_authorised_on_submission(api: Api) -> None:
    async def scenario(c: Client) -> None:
        change = await c.request_change("standard", "Reboot TPE 12-1", ["tpe-12-1"], template="tpe-reboot")
        submitted = await c.change(change, "submit")
        assert (submitted["status"], submitted["authorisation_basis"], submitted["template"]) == (
            "authorised",
            "standard_template",
            "tpe-reboot",
        )
        message = await c.refused(409, "POST", f"/api/changes/{change}/assess", ASSESSMENT)
        assert (
            message
            == f"cannot assess change {change}: it is a standard change, pre-approved by its template 'tpe-reboot'"
        )
        body = {"account": ACCOUNT, "type": "standard", "title": "Reboot", "affected_cis": ["tpe-12-1"]}
        assert await c.refused(422, "POST", "/api/changes", body) == "a standard change's template is required"
        window = {"start": paris("2026-06-02", "03:00"), "end": paris("2026-06-02", "03:10")}
        scheduled = await c.change(change, "schedule", window)
        assert (scheduled["status"], scheduled["outside_maintenance_window"]) == ("scheduled", False)
        await c.change(change, "start", actor="field-tech")
        completed = await c.change(change, "complete", {"notes": "rebooted, payments OK"}, actor="field-tech")
        assert (completed["status"], completed["completion_notes"]) == ("implemented", "rebooted, payments OK")
        assert (await c.ok("GET", f"/api/accounts/{ACCOUNT}/change-calendar"))["bookings"] == []

    api.run(scenario)


def test_an_emergency_change_goes_straight_to_the_emergency_cab(api: Api) -> None:
    async def scenario(c: Client) -> None:
        change = await c.request_change("emergency", "Block the exploited VPN port", ["firewall-hq"])
        submitted = await c.change(change, "submit")
        assert submitted["status"] == "authorisation"
        message = await c.refused(409, "POST", f"/api/changes/{change}/approve", {}, actor="change-manager")
        assert "an emergency change is decided by the emergency CAB, convene it first" in message
        message = await c.refused(
            409, "POST", f"/api/changes/{change}/convene-cab", {"members": ["x"], "emergency": False}
        )
        assert "it is an emergency change, convene the emergency CAB instead" in message
        convened = await c.change(change, "convene-cab", {"members": ["ciso", "duty-manager"]}, actor="duty-manager")
        assert convened["cab_emergency"] is True
        assessed = await c.change(change, "assess", {**ASSESSMENT, "risk": "high"})
        assert (assessed["status"], assessed["risk"]) == ("authorisation", "high")
        await c.change(change, "approve", actor="ciso")
        authorised = await c.change(change, "approve", actor="duty-manager")
        assert (authorised["status"], authorised["authorisation_basis"]) == ("authorised", "emergency_cab")
        now = {"start": paris("2026-06-01", "10:00"), "end": paris("2026-06-01", "10:30")}
        assert (await c.change(change, "schedule", now))["status"] == "scheduled"

    api.run(scenario)


def test_freeze_windows_are_declared_redeclared_and_lifted(api: Api) -> None:
    async def scenario(c: Client) -> None:
        path = f"/api/accounts/{ACCOUNT}/freeze-windows/year-end"
        freeze = {"start": paris("2026-12-15", "00:00"), "end": paris("2027-01-05", "00:00"), "reason": "peak"}
        first = await c.ok("PUT", path, freeze, actor="change-manager")
        again = await c.ok("PUT", path, freeze, actor="change-manager")
        assert first["version"] == again["version"] == 2  # opened, then the freeze once
        assert again["changes_to_replan"] == []
        change = await c.standard_change(
            "Reboot", ["router-1"], paris("2027-01-10", "02:00"), paris("2027-01-10", "03:00")
        )
        longer = await c.ok("PUT", path, {**freeze, "end": paris("2027-01-15", "00:00")}, actor="change-manager")
        assert longer["changes_to_replan"] == [change]
        lifted = await c.ok("DELETE", path, actor="change-manager")
        assert lifted["freeze_windows"] == []
        message = await c.refused(404, "DELETE", path, actor="change-manager")
        assert (
            message
            == "there is no freeze window 'year-end' in the change calendar of account resto-chain (freeze windows: none)"
        )
        message = await c.refused(404, "DELETE", "/api/accounts/new-account/freeze-windows/x", actor="change-manager")
        assert message == "there is no freeze window 'x' for account new-account: it has no change calendar yet"

    api.run(scenario)


# -- problems -------------------------------------------------------------------------------------


async def log_incident(c: Client, title: str, account: str = ACCOUNT) -> str:
    body = {"account": account, "title": title, "impact": 2, "urgency": 2, "channel": "monitoring", "ci": "router-12"}
    incident = await c.ok("POST", "/api/incidents", body, status=201, actor="supervision")
    return str(incident["id"])


def test_a_problem_from_its_incidents_to_known_error_and_resolution_by_a_change(api: Api) -> None:
    async def scenario(c: Client) -> None:
        first = await log_incident(c, "router-12 rebooted")
        second = await log_incident(c, "router-12 rebooted again")
        body = {"account": ACCOUNT, "title": "router-12 reboots nightly", "ci": "router-12", "incident_ids": [first]}
        logged = await c.ok("POST", "/api/problems", body, status=201)
        problem = logged["id"]
        assert (logged["status"], logged["linked_incidents"]) == ("new", [first])
        linked = await c.problem(problem, "link-incident", {"incident_id": second})
        assert linked["linked_incidents"] == [first, second]
        message = await c.refused(409, "POST", f"/api/problems/{problem}/link-incident", {"incident_id": second})
        assert message == f"cannot link incident {second} to problem {problem}: it is already linked"
        message = await c.refused(409, "POST", f"/api/problems/{problem}/root-cause", {"analysis": "watchdog"})
        assert message == f"cannot record the root cause of problem {problem}: it is new; start the investigation first"

        assert (await c.problem(problem, "investigate"))["status"] == "under_investigation"
        analysed = await c.problem(problem, "root-cause", {"analysis": "firmware 7.2 watchdog leaks memory"})
        assert analysed["status"] == "root_cause_known"
        known = await c.problem(problem, "workaround", {"workaround": "reboot router-12 at 04:00 each night"})
        assert (known["status"], known["workaround"]) == ("known_error", "reboot router-12 at 04:00 each night")

        change = await c.request_change(
            "standard", "Upgrade router-12 to 7.3", ["router-12"], template="router-firmware", problem_id=problem
        )
        assert (await c.ok("GET", f"/api/problems/{problem}"))["change_ids"] == [change]
        message = await c.refused(409, "POST", f"/api/problems/{problem}/resolve", {"via_change_id": change})
        assert message == (
            f"cannot resolve problem {problem} via change {change}: the change is draft;"
            " only an implemented change removes the cause"
        )
        await c.change(change, "submit")
        await c.change(change, "schedule", {"start": paris("2026-06-02", "02:00"), "end": paris("2026-06-02", "03:00")})
        await c.change(change, "start", actor="field-tech")
        await c.change(change, "complete", actor="field-tech")
        resolved = await c.problem(problem, "resolve", {"via_change_id": change, "notes": "no reboot for a week"})
        assert (resolved["status"], resolved["resolved_via_change_id"]) == ("resolved", change)
        assert (await c.problem(problem, "close"))["status"] == "closed"

        story = await c.ok("GET", f"/api/problems/{problem}")
        assert [e["summary"] for e in story["timeline"]] == [
            "Logged: router-12 reboots nightly",
            f"Incident linked: {second}",
            "Investigation started",
            "Root cause recorded: firmware 7.2 watchdog leaks memory",
            "Workaround published: reboot router-12 at 04:00 each night",
            f"Change proposed: {change}",
            "Resolved: no reboot for a week",
            "Closed",
        ]
        assert story["timeline"][0]["actor"] == "n2-network"

    api.run(scenario)


def test_a_change_is_proposed_for_a_problem_only_on_the_same_account(api: Api) -> None:
    async def scenario(c: Client) -> None:
        problem = (await c.ok("POST", "/api/problems", {"account": ACCOUNT, "title": "TPE drop payments"}, status=201))[
            "id"
        ]
        await c.problem(problem, "investigate")
        change = await c.request_change("normal", "Renew TPE certificates", ["tpe-12-1"])
        proposed = await c.problem(problem, "propose-change", {"change_id": change})
        assert proposed["change_ids"] == [change]
        body = {"account": "other", "type": "normal", "title": "x", "affected_cis": ["y"]}
        other = (await c.ok("POST", "/api/changes", body, status=201))["id"]
        message = await c.refused(422, "POST", f"/api/problems/{problem}/propose-change", {"change_id": other})
        assert message == (
            f"cannot propose change {other} for problem {problem}: the change is on account other,"
            " the problem on account resto-chain"
        )
        message = await c.refused(422, "POST", "/api/changes", {**body, "account": "other", "problem_id": problem})
        assert message.endswith(
            f"for problem {problem}: the problem is on account resto-chain, the change on account other"
        )

    api.run(scenario)


def test_problem_commands_refused_or_unknown_read_clearly(api: Api) -> None:
    async def scenario(c: Client) -> None:
        problem = (await c.ok("POST", "/api/problems", {"account": ACCOUNT, "title": "TPE drop payments"}, status=201))[
            "id"
        ]
        message = await c.refused(409, "POST", f"/api/problems/{problem}/resolve", {})
        assert message == f"cannot resolve problem {problem}: it is new; its root cause must be known first"
        await c.problem(problem, "investigate")
        await c.problem(problem, "root-cause", {"analysis": "expired certificate"})
        message = await c.refused(422, "POST", f"/api/problems/{problem}/resolve", {})
        assert message == "notes (how it was resolved without a change) is required"
        resolved = await c.problem(problem, "resolve", {"notes": "certificate renewed by the vendor"})
        assert resolved["status"] == "resolved"
        reopened = await c.problem(problem, "reopen-investigation", {"reason": "failures are back"})
        assert (reopened["status"], reopened["reopen_reason"]) == ("under_investigation", "failures are back")
        cancelled = await c.problem(problem, "cancel", {"reason": "duplicate of the fleet-wide problem"})
        assert cancelled["status"] == "cancelled"
        message = await c.refused(409, "POST", f"/api/problems/{problem}/investigate", {})
        assert message == f"cannot investigate problem {problem}: it is cancelled"

        missing = uuid4()
        assert await c.refused(404, "GET", f"/api/problems/{missing}") == f"there is no problem {missing}"
        assert await c.refused(404, "POST", f"/api/problems/{missing}/close") == f"there is no problem {missing}"
        assert await c.refused(404, "GET", "/api/problems/PRB-12") == "there is no problem 'PRB-12': not a problem id"
        message = await c.refused(404, "POST", f"/api/problems/{problem}/explode")
        assert message.startswith("unknown command 'explode'; use one of link-incident, unlink-incident, investigate")
        body = {"account": ACCOUNT, "title": "x", "incident_ids": [str(missing)]}
        assert await c.refused(404, "POST", "/api/problems", body) == f"there is no incident {missing}"
        foreign = await log_incident(c, "elsewhere", account="other-account")
        message = await c.refused(
            422, "POST", "/api/problems", {"account": ACCOUNT, "title": "x", "incident_ids": [foreign]}
        )
        assert "the incident is on account other-account, the problem on account resto-chain" in message

    api.run(scenario)


def test_a_linked_incident_names_its_problem_until_it_is_unlinked(api: Api) -> None:
    async def scenario(c: Client) -> None:
        first = await log_incident(c, "router-12 rebooted")
        second = await log_incident(c, "router-12 rebooted again")
        body = {"account": ACCOUNT, "title": "router-12 reboots nightly", "incident_ids": [first]}
        problem = (await c.ok("POST", "/api/problems", body, status=201))["id"]
        assert (await c.ok("GET", f"/api/incidents/{first}"))["problem_ids"] == [problem]

        linked = await c.problem(problem, "link-incident", {"incident_id": second})
        assert (linked["linked_incidents"], linked["incident_count"]) == ([first, second], 2)
        assert (await c.ok("GET", f"/api/incidents/{second}"))["problem_ids"] == [problem]

        unlinked = await c.problem(problem, "unlink-incident", {"incident_id": first})
        assert (unlinked["linked_incidents"], unlinked["incident_count"]) == ([second], 1)
        assert (await c.ok("GET", f"/api/incidents/{first}"))["problem_ids"] == []
        message = await c.refused(409, "POST", f"/api/problems/{problem}/unlink-incident", {"incident_id": first})
        assert message == f"cannot unlink incident {first} from problem {problem}: it is not linked to it"

        relinked = await c.problem(problem, "link-incident", {"incident_id": first})
        assert relinked["linked_incidents"] == [second, first]
        shown = await c.ok("GET", f"/api/problems/{problem}")
        assert (shown["linked_incidents"], shown["incident_count"]) == ([second, first], 2)
        assert [e["summary"].split(":")[0] for e in shown["timeline"]] == [
            "Logged", "Incident linked", "Incident unlinked", "Incident linked",
        ]  # fmt: skip

    api.run(scenario)


def test_logging_a_problem_or_requesting_a_change_again_with_the_same_id_does_it_once(api: Api) -> None:
    async def scenario(c: Client) -> None:
        problem_id = str(uuid4())
        body = {"id": problem_id, "account": ACCOUNT, "title": "link flaps"}
        first = await c.ok("POST", "/api/problems", body, status=201)
        again = await c.ok("POST", "/api/problems", body, status=201)
        assert first == again and first["version"] == 1
        change_id = str(uuid4())
        request: dict[str, Any] = {
            "id": change_id,
            "account": ACCOUNT,
            "type": "normal",
            "title": "x",
            "affected_cis": ["y"],
            "problem_id": problem_id,
        }
        await c.ok("POST", "/api/changes", request, status=201)
        await c.ok("POST", "/api/changes", request, status=201)
        assert (await c.ok("GET", f"/api/problems/{problem_id}"))["change_ids"] == [change_id]
        message = await c.refused(409, "POST", "/api/changes", {**request, "id": problem_id})
        assert message == f"cannot create change {problem_id}: that id is already used by another record"

    api.run(scenario)


# -- configuration items --------------------------------------------------------------------------


def test_cis_are_registered_related_and_read_with_their_dependents(api: Api) -> None:
    async def scenario(c: Client) -> None:
        link = await c.register_ci("link-orange-12", "carrier_link", carrier="Orange")
        assert (link["ci_name"], link["state"], link["attributes"]) == (
            "link-orange-12",
            "operational",
            {"carrier": "Orange"},
        )
        assert link["id"] == str(ci_id(ACCOUNT, "link-orange-12"))
        again = await c.register_ci("link-orange-12", "carrier_link")
        assert again["version"] == 1
        message = await c.refused(409, "POST", f"/api/cis/{ACCOUNT}", {"ci": "link-orange-12", "kind": "router"})
        assert message.startswith(
            "cannot register CI 'link-orange-12' on account resto-chain as a router: it is already registered as a carrier_link"
        )
        for name, kind in (("site-12", "site"), ("router-12", "router"), ("tpe-12-1", "payment_terminal")):
            await c.register_ci(name, kind)
        relations = [
            ("site-12", "depends_on", "link-orange-12"),
            ("router-12", "located_at", "site-12"),
            ("tpe-12-1", "located_at", "site-12"),
            ("tpe-12-1", "connected_to", "router-12"),
        ]
        for ci, relation, target in relations:
            await c.ok("POST", f"/api/cis/{ACCOUNT}/{ci}/relate", {"relation": relation, "target": target})
        message = await c.refused(
            404, "POST", f"/api/cis/{ACCOUNT}/router-12/relate", {"relation": "depends_on", "target": "link-sfr-3"}
        )
        assert (
            message == "there is no CI 'link-sfr-3' on account resto-chain to relate 'router-12' to; register it first"
        )
        message = await c.refused(
            409, "POST", f"/api/cis/{ACCOUNT}/router-12/relate", {"relation": "located_at", "target": "site-12"}
        )
        assert "it is already located at it" in message
        down = await c.ok(
            "POST",
            f"/api/cis/{ACCOUNT}/link-orange-12/state",
            {"state": "down", "reason": "Orange outage"},
            actor="supervision",
        )
        assert (down["state"], down["state_reason"]) == ("down", "Orange outage")
        updated = await c.ok(
            "POST", f"/api/cis/{ACCOUNT}/link-orange-12/attributes", {"attributes": {"reference": "FT-778"}}
        )
        assert updated["attributes"] == {"carrier": "Orange", "reference": "FT-778"}
        api.pump()

        registry = await c.ok("GET", f"/api/cis/{ACCOUNT}")
        assert [(ci["ci_name"], ci["state"]) for ci in registry["cis"]] == [
            ("link-orange-12", "down"), ("router-12", "operational"), ("site-12", "operational"), ("tpe-12-1", "operational"),
        ]  # fmt: skip
        terminals = await c.ok("GET", f"/api/cis/{ACCOUNT}?kind=payment_terminal")
        assert [ci["ci_name"] for ci in terminals["cis"]] == ["tpe-12-1"]
        link = await c.ok("GET", f"/api/cis/{ACCOUNT}/link-orange-12")
        assert link["dependents"] == ["router-12", "site-12", "tpe-12-1"]
        assert link["related_from"] == [{"ci": "site-12", "relation": "depends_on"}]
        router = await c.ok("GET", f"/api/cis/{ACCOUNT}/router-12")
        assert (router["dependents"], router["relations"]) == ([], [{"relation": "located_at", "target_ci": "site-12"}])

        retired = await c.ok("POST", f"/api/cis/{ACCOUNT}/tpe-12-1/retire", {"reason": "replaced by tpe-12-9"})
        assert retired["state"] == "retired"
        message = await c.refused(409, "POST", f"/api/cis/{ACCOUNT}/tpe-12-1/state", {"state": "down", "reason": "x"})
        assert "it was retired at" in message and "register a new CI instead" in message
        api.pump()
        assert (await c.ok("GET", f"/api/cis/{ACCOUNT}/link-orange-12"))["dependents"] == ["router-12", "site-12"]
        unrelated = await c.ok(
            "POST", f"/api/cis/{ACCOUNT}/router-12/unrelate", {"relation": "located_at", "target": "site-12"}
        )
        assert unrelated["relations"] == []

    api.run(scenario)


def test_unknown_cis_and_commands_are_not_found(api: Api) -> None:
    async def scenario(c: Client) -> None:
        assert (
            await c.refused(404, "GET", f"/api/cis/{ACCOUNT}/router-404")
            == "there is no CI 'router-404' on account resto-chain"
        )
        message = await c.refused(404, "POST", f"/api/cis/{ACCOUNT}/router-404/retire", {"reason": "gone"})
        assert message == "there is no CI 'router-404' on account resto-chain"
        windows = {"windows": [{"weekday": 6, "start": "22:00", "end": "04:00"}]}
        message = await c.refused(404, "PUT", f"/api/cis/{ACCOUNT}/router-404/maintenance-windows", windows)
        assert (
            message == "there is no CI 'router-404' on account resto-chain; register it before its maintenance windows"
        )
        await c.register_ci("router-12", "router")
        message = await c.refused(404, "POST", f"/api/cis/{ACCOUNT}/router-12/reboot", {})
        assert message == "unknown command 'reboot'; use one of relate, unrelate, state, attributes, retire"
        assert (await c.ok("GET", "/api/cis/empty-account"))["cis"] == []
        missing = uuid4()
        assert await c.refused(404, "POST", f"/api/changes/{missing}/submit") == f"there is no change {missing}"
        assert await c.refused(404, "GET", f"/api/changes/{missing}") == f"there is no change {missing}"
        assert await c.refused(404, "GET", "/api/changes/CHG-1") == "there is no change 'CHG-1': not a change id"
        problem = (await c.ok("POST", "/api/problems", {"account": ACCOUNT, "title": "x"}, status=201))["id"]
        message = await c.refused(404, "POST", f"/api/problems/{problem}/propose-change", {"change_id": str(missing)})
        assert message == f"there is no change {missing}"
        message = await c.refused(404, "GET", f"/api/changes/{problem}")  # a problem is not a change
        assert message == f"there is no change {problem}"

    api.run(scenario)


# -- bad requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "fields"),
    [
        ("POST", "/api/problems", {"account": ACCOUNT}, {"title": ["Missing data for required field."]}),
        ("POST", "/api/problems", {"account": ACCOUNT, "title": "x", "incident_ids": ["nope"]}, {"incident_ids": {"0": ["Not a valid UUID."]}}),
        ("POST", "/api/changes", {"account": ACCOUNT, "type": "urgent", "title": "x", "affected_cis": ["r"]}, {"type": ["Must be one of: standard, normal, emergency."]}),
        ("POST", "/api/changes", {"account": ACCOUNT, "type": "normal", "title": "x", "affected_cis": []}, {"affected_cis": ["Shorter than minimum length 1."]}),
        ("POST", "/api/changes", {"account": ACCOUNT, "type": "normal", "title": "x", "affected_cis": ["r"], "colour": "red"}, {"colour": ["Unknown field."]}),
        ("POST", "/api/changes/{change}/assess", {**ASSESSMENT, "risk": "extreme"}, {"risk": ["Must be one of: low, medium, high."]}),
        ("POST", "/api/changes/{change}/schedule", {"start": "2026-06-02T02:00:00", "end": "2026-06-02T03:00:00+02:00"}, {"start": ["Not a valid aware datetime."]}),
        ("POST", "/api/changes/{change}/convene-cab", {"members": "alice"}, {"members": ["Not a valid list."]}),
        ("POST", "/api/changes/{change}/fail", {"reason": "x"}, {"backout_performed": ["Missing data for required field."]}),
        ("PUT", "/api/accounts/resto-chain/freeze-windows/x", {"start": "2026-06-02T02:00:00+02:00"}, {"end": ["Missing data for required field."]}),
        ("PUT", "/api/cis/resto-chain/router-12/maintenance-windows", {"windows": [{"weekday": "Funday", "start": "22:00", "end": "04:00"}]}, {"windows": {"0": {"weekday": ["'Funday' is not a weekday: use 0 (Monday) to 6 (Sunday) or a name such as Mon"]}}}),
        ("POST", "/api/cis/resto-chain", {"ci": "r", "kind": "toaster"}, {"kind": [f"Must be one of: {', '.join(KINDS)}."]}),
        ("POST", "/api/cis/resto-chain/router-12/relate", {"relation": "near", "target": "x"}, {"relation": ["Must be one of: depends_on, located_at, connected_to."]}),
        ("POST", "/api/cis/resto-chain/router-12/attributes", {"attributes": {}}, {"attributes": ["Shorter than minimum length 1."]}),
    ],
)  # fmt: skip
def test_bad_bodies_are_refused_with_the_fields_at_fault(
    api: Api, method: str, path: str, body: dict[str, Any], fields: dict[str, Any]
) -> None:
    async def scenario(c: Client) -> None:
        await c.register_ci("router-12", "router")
        change = await c.request_change("normal", "x", ["router-12"])
        status, answer = await c.call(method, path.format(change=change), body)
        assert (status, answer) == (422, {"error": "the request is not valid", "fields": fields})

    api.run(scenario)


def test_refused_details_and_unreadable_requests_say_what_is_wrong(api: Api) -> None:
    async def scenario(c: Client) -> None:
        await c.register_ci("router-12", "router")
        path = f"/api/cis/{ACCOUNT}/router-12/maintenance-windows"
        message = await c.refused(422, "PUT", path, {"windows": [{"weekday": 6, "start": "25:00", "end": "04:00"}]})
        assert (
            message
            == "the start of the Sunday maintenance window of router-12 must be a time of day written HH:MM, from 00:00 to 24:00, not '25:00'"
        )
        message = await c.refused(422, "PUT", path, {"windows": [], "timezone": "Paris"})
        assert message == "unknown time zone 'Paris' (expected a name such as 'Europe/Paris')"
        change = await c.request_change("standard", "x", ["router-12"], template="t")
        await c.change(change, "submit")
        backwards = {"start": paris("2026-06-02", "03:00"), "end": paris("2026-06-02", "02:00")}
        message = await c.refused(422, "POST", f"/api/changes/{change}/schedule", backwards)
        assert message.startswith(
            f"cannot schedule change {change}: the end 2026-06-02T02:00:00+02:00 must be after the start"
        )
        status, answer = await c.call("POST", f"/api/changes/{change}/cancel", raw=b"{not json")
        assert status == 400 and answer["error"].startswith("the request body is not valid JSON")
        status, answer = await c.call("POST", f"/api/changes/{change}/cancel", {"reason": "x"}, actor=None)
        assert (status, answer["error"]) == (422, "who is acting? send the X-Actor header (or an actor field)")
        future = (api.now + timedelta(hours=2)).isoformat()
        message = await c.refused(422, "POST", f"/api/changes/{change}/cancel", {"reason": "x", "at": future})
        assert message.endswith("is in the future")

    api.run(scenario)


# -- access control -------------------------------------------------------------------------------


def test_access_is_checked_against_the_account_of_the_problem_or_change_in_the_path(api: Api) -> None:
    async def scenario(c: Client) -> None:
        problem = (await c.ok("POST", "/api/problems", {"account": "bank-branch", "title": "x"}, status=201))["id"]
        change = await c.request_change("normal", "x", ["router-12"])
        await c.register_ci("router-12", "router")
        api.policy.asked.clear()
        await c.ok("GET", f"/api/problems/{problem}")
        await c.change(change, "submit")
        await c.ok(
            "PUT",
            f"/api/accounts/{ACCOUNT}/freeze-windows/f",
            {"start": paris("2026-08-01", "00:00"), "end": paris("2026-08-02", "00:00")},
        )
        await c.ok("GET", f"/api/cis/{ACCOUNT}/router-12")
        assert api.policy.asked == [
            ("n2-network", "problem.read", "bank-branch"),
            ("n2-network", "change.update", ACCOUNT),
            ("n2-network", "change_calendar.update", ACCOUNT),
            ("n2-network", "account.read", ACCOUNT),
        ]
        api.policy.forbidden_account = "bank-branch"
        assert (
            await c.refused(403, "POST", f"/api/problems/{problem}/investigate")
            == "n2-network may not problem.update on bank-branch"
        )
        assert await c.refused(
            403,
            "POST",
            "/api/changes",
            {"account": "bank-branch", "type": "normal", "title": "x", "affected_cis": ["r"]},
        ) == ("n2-network may not change.request on bank-branch")
        assert (await c.ok("GET", f"/api/problems/{uuid4()}", status=404))["error"].startswith("there is no problem")

    api.run(scenario)
