"""The API refuses at the door, with a clear answer and the field named, what would otherwise crash it
or the engine downstream: never a 500, never a dropped connection."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from application.app import ItilApplication
from projections.account_incidents import AccountIncidentsProjection
from projections.db import Database
from web.api import WebApi

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)
ALICE = {"X-Actor": "alice"}


def scenario(store_env: dict[str, str], steps: Any) -> None:
    app = ItilApplication(env=store_env)
    view = AccountIncidentsProjection(Database.from_store_env(store_env))
    view.create_tables()

    async def run() -> None:
        async with TestClient(TestServer(WebApi(app, view, lambda: NOW).build())) as client:
            await steps(client)

    asyncio.run(run())


def test_a_body_nested_without_end_gets_400(sqlite_env: dict[str, str]) -> None:
    async def steps(client: TestClient) -> None:
        for depth in (100_000, 65):
            body = '{"account": ' + "[" * depth + "]" * depth + "}"
            response = await client.post("/api/incidents", data=body, headers=ALICE)
            answer = await response.json()
            assert response.status == 400 and "nests more than 64 levels deep" in answer["error"], (depth, answer)

    scenario(sqlite_env, steps)


def test_names_texts_and_instants_that_would_break_the_engine_get_422_naming_them(
    store_env: dict[str, str],
) -> None:
    async def steps(client: TestClient) -> None:
        response = await client.post("/api/accounts/acme%0D%0Aroot", json={"name": "x", "roc": "anne"}, headers=ALICE)
        answer = await response.json()
        assert response.status == 422 and "account must not contain line breaks" in answer["error"], answer

        incident = {"account": "acme", "ci": "tpe-1", "title": "down\u0000", "impact": 2, "urgency": 1,
                    "channel": "phone"}  # fmt: skip
        response = await client.post("/api/incidents", json=incident, headers=ALICE)
        answer = await response.json()
        assert response.status == 422 and "title must not contain" in answer["error"], answer

        incident |= {"title": "down", "at": "0001-01-01T00:00:00+14:00"}
        response = await client.post("/api/incidents", json=incident, headers=ALICE)
        answer = await response.json()
        assert response.status == 422 and "between 2000 and 2099" in answer["error"], answer

        contract = {"targets": {"P1": {"restoration": "99999999999999d"}}, "calendar": {"preset": "24x7"}}
        response = await client.post("/api/sla/accounts/acme/contract", json=contract, headers=ALICE)
        answer = await response.json()
        assert response.status == 422 and "at most 366 days" in answer["error"], answer

        response = await client.post("/api/incidents", json=incident | {"at": None}, headers=ALICE)
        assert response.status == 201  # the same incident, dated now: accepted

    scenario(store_env, steps)


def test_while_the_store_is_unreachable_the_api_answers_503_with_retry_after_then_recovers(
    pg_env: dict[str, str],
) -> None:
    import psycopg

    from tests.conftest import PG

    database = pg_env["POSTGRES_DBNAME"]

    def admin(sql: str) -> None:
        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:  # type: ignore[arg-type]
            conn.execute(sql)

    incident = {"account": "acme", "ci": "tpe-1", "title": "Terminal offline", "impact": 2, "urgency": 1,
                "channel": "phone"}  # fmt: skip

    async def steps(client: TestClient) -> None:
        assert (await client.post("/api/incidents", json=incident, headers=ALICE)).status == 201
        admin(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
        admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
        try:
            response = await client.post("/api/incidents", json=incident, headers=ALICE)
            assert response.status == 503 and response.headers["Retry-After"] == "5"
            assert "unavailable" in (await response.json())["error"]
        finally:
            admin(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
        for _ in range(20):  # the pool connects again
            response = await client.post("/api/incidents", json=incident, headers=ALICE)
            if response.status == 201:
                break
            await asyncio.sleep(0.5)
        assert response.status == 201

    scenario(pg_env | {"POSTGRES_CONNECT_TIMEOUT": "1"}, steps)  # the store gives up on a connection in 1 s
