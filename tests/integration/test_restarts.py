"""Worker and broker restarts mid-way: the account view still ends exact (no loss, no double count)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.broker import free_port
from tests.conftest import EngineProcess, wait_for
from tests.integration.http import call

pytestmark = pytest.mark.integration
ACCOUNT = "carrier-sites"


class Desk:
    """Drives incidents over HTTP and remembers what the store says."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.ids: list[str] = []
        self.cursor: dict[str, int] = {}
        self.counter = itertools.count()

    def open(self, n: int) -> None:
        for _ in range(n):
            i = next(self.counter)
            status, body = call("POST", f"{self.base}/api/incidents", {
                "account": ACCOUNT, "ci": f"link-{i}", "title": f"link {i} down",
                "impact": 1 + i % 3, "urgency": 1 + (i // 3) % 3, "channel": "monitoring",
            })  # fmt: skip
            assert status == 201, body
            self.ids.append(body["id"])
            self.cursor[body["id"]] = 0

    def advance(self, step: int) -> None:
        """Move every incident one step further through its life."""
        script = [
            ("acknowledge", {}), ("assign", {"group": "N2 network"}),
            ("hold", {"reason": "awaiting_supplier"}), ("resume", {}), ("restore", {}),
            ("resolve", {"code": "fixed"}), ("reopen", {"reason": "flapping again"}),
            ("resolve", {"code": "third_party"}), ("close", {}),
        ]  # fmt: skip
        for n, incident in enumerate(self.ids):
            if step >= n % 3 and self.cursor[incident] < len(script):  # staggered stages
                command, body = script[self.cursor[incident]]
                status, reply = call("POST", f"{self.base}/api/incidents/{incident}/{command}", body)
                assert status == 200, (command, reply)
                self.cursor[incident] += 1

    def store(self, incident: str) -> dict:
        return call("GET", f"{self.base}/api/incidents/{incident}")[1]

    def view_matches_store(self) -> bool:
        everything = call("GET", f"{self.base}/api/accounts/{ACCOUNT}/incidents?include=all")[1]
        if sorted(i["id"] for i in everything["incidents"]) != sorted(self.ids):
            return False
        for incident in self.ids:
            truth = self.store(incident)
            seen = call("GET", f"{self.base}/api/accounts/{ACCOUNT}/incidents/{incident}")[1]
            if (seen["version"], seen["status"]) != (truth["version"], truth["status"]):
                return False
            assert [e["version"] for e in seen["timeline"]] == list(range(1, truth["version"] + 1))
            assert [e["event_type"] for e in seen["timeline"]] == [e["event_type"] for e in truth["timeline"]]
        return True


def test_view_ends_exact_across_worker_and_broker_restarts(
    spawn: Callable[..., EngineProcess], tmp_path: Path, sqlite_env: dict[str, str]
) -> None:
    kafka_port, http_port = free_port(), free_port()
    bootstrap = f"127.0.0.1:{kafka_port}"
    env = {**sqlite_env, "ITIL_DATA_DIR": str(tmp_path / "var"), "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "ITIL_HTTP_PORT": str(http_port)}  # fmt: skip

    def start_broker() -> EngineProcess:
        broker = spawn("broker", "--port", str(kafka_port), env=env)
        broker.wait_output("embedded broker:", 30)
        return broker

    def start_worker() -> EngineProcess:
        return spawn("worker", env=env)

    broker = start_broker()
    web = spawn("web", "--with-relay", env=env)
    web.wait_output("ITIL engine: http://", 60)
    worker = start_worker()
    desk = Desk(f"http://127.0.0.1:{http_port}")

    desk.open(6)
    desk.advance(0)
    desk.advance(1)
    wait_for(desk.view_matches_store, 90, interval=0.5, what="view after the first steps")

    # the worker dies hard (offsets not committed), work goes on without it
    worker.kill()
    desk.advance(2)
    desk.open(2)
    # the broker dies and comes back empty, work goes on
    broker.kill()
    desk.advance(3)
    broker = start_broker()
    desk.advance(4)
    worker = start_worker()
    wait_for(desk.view_matches_store, 120, interval=0.5, what="view after worker and broker restarts")

    # the broker dies again while the worker runs: the worker reconnects and catches up
    broker.kill()
    desk.advance(5)
    broker = start_broker()
    desk.advance(6)
    desk.advance(7)
    wait_for(desk.view_matches_store, 150, interval=0.5, what="view after a broker restart under a live worker")
    assert any(desk.store(i)["status"] == "resolved" for i in desk.ids)
