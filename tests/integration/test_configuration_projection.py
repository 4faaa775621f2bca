"""The CI registry kept from ConfigurationItem events, on SQLite and PostgreSQL.

Events are the real stored ones, handed to the projection as the worker would (envelopes built
from the store's notification log), so no test waits on Kafka here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from application.app import ItilApplication
from application.configuration import ci_id
from domain.commands import ChangeCiState, LogProblem, RegisterCi, RelateCis, RetireCi, UnrelateCis, UpdateCiAttributes
from projections.configuration import CiRegistryProjection
from projections.db import Database
from projections.records import envelope_of
from projections.tracking import Delivery
from streams.envelope import decode, encode

ACCOUNT = "resto-chain"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Registry:
    """The store and the CI registry in one process; `pump` delivers what was stored since last time."""

    def __init__(self, env: dict[str, str]) -> None:
        self.app = ItilApplication(env=env)
        self.db = Database.from_store_env(env)
        self.view = CiRegistryProjection(self.db)
        self.view.create_tables()
        self.view.create_tables()  # creating the tables again is harmless
        self.published = 0
        self.previous: int | None = None

    def stored(self) -> list[Delivery]:
        """Every stored event not yet taken, as the worker would receive it."""
        batch = []
        for n in self.app.recorder.select_notifications(start=self.published + 1, limit=1000):
            envelope = envelope_of(self.app.mapper.to_domain_event(n), n.id, self.previous)
            batch.append(Delivery("itil.events", 0, n.id - 1, decode(encode(envelope))))
            self.previous = self.published = n.id
        return batch

    def pump(self) -> int:
        return self.view.apply(self.stored())

    def do(self, *commands: Any) -> None:
        for command in commands:
            self.app.handle(command)

    def rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with self.db.transaction(write=False) as tx:
            cis = tx.execute("SELECT * FROM view_cis ORDER BY account, name").all()
            relations = tx.execute("SELECT * FROM view_ci_relations ORDER BY account, ci, relation, target").all()
        return cis, relations


@pytest.fixture
def registry(store_env: dict[str, str]) -> Registry:
    return Registry(store_env)


def register(name: str, kind: str, minutes: int = 0, account: str = ACCOUNT, **attributes: str) -> RegisterCi:
    return RegisterCi(account, name, kind, "cmdb-sync", at(minutes), attributes=attributes)


def relate(name: str, relation: str, target: str, minutes: int = 1, account: str = ACCOUNT) -> RelateCis:
    return RelateCis(account, name, relation, target, "cmdb-sync", at(minutes))


def a_restaurant_network(registry: Registry) -> None:
    """A carrier link serving a site, with a router and two payment terminals at the site."""
    registry.do(
        register("link-orange-12", "carrier_link", carrier="Orange", reference="FT-778"),
        register("site-12", "site", address="12 quai du Port, Marseille"),
        register("router-12", "router"),
        register("tpe-12-1", "payment_terminal"),
        register("tpe-12-2", "payment_terminal"),
        relate("site-12", "depends_on", "link-orange-12"),
        relate("router-12", "located_at", "site-12"),
        relate("router-12", "depends_on", "link-orange-12"),
        relate("tpe-12-1", "located_at", "site-12"),
        relate("tpe-12-2", "located_at", "site-12"),
        relate("tpe-12-2", "connected_to", "router-12"),
    )


def test_registered_cis_are_listed_by_name_with_kind_state_and_attributes(registry: Registry) -> None:
    a_restaurant_network(registry)
    assert registry.pump() == 11

    listed = registry.view.list(ACCOUNT)

    assert [(c["ci_name"], c["kind"], c["state"]) for c in listed] == [
        ("link-orange-12", "carrier_link", "operational"),
        ("router-12", "router", "operational"),
        ("site-12", "site", "operational"),
        ("tpe-12-1", "payment_terminal", "operational"),
        ("tpe-12-2", "payment_terminal", "operational"),
    ]
    link = listed[0]
    assert link["attributes"] == {"carrier": "Orange", "reference": "FT-778"}
    assert link["ci_id"] == str(ci_id(ACCOUNT, "link-orange-12"))
    assert link["version"] == 1
    assert [c["ci_name"] for c in registry.view.list(ACCOUNT, kind="payment_terminal")] == ["tpe-12-1", "tpe-12-2"]
    assert registry.view.list("another-account") == []


def test_one_ci_reads_with_its_relations_and_who_relates_to_it(registry: Registry) -> None:
    a_restaurant_network(registry)
    registry.pump()

    site = registry.view.get(ACCOUNT, "site-12")

    assert site is not None
    assert site["relations"] == [{"relation": "depends_on", "target_ci": "link-orange-12"}]
    assert site["related_from"] == [
        {"ci": "router-12", "relation": "located_at"},
        {"ci": "tpe-12-1", "relation": "located_at"},
        {"ci": "tpe-12-2", "relation": "located_at"},
    ]
    assert registry.view.get(ACCOUNT, "router-99") is None


def test_an_outage_of_the_carrier_link_reaches_everything_at_the_site(registry: Registry) -> None:
    a_restaurant_network(registry)
    registry.pump()

    assert registry.view.relations(ACCOUNT)["router-12"] == [
        ("depends_on", "link-orange-12"),
        ("located_at", "site-12"),
    ]
    assert registry.view.dependents(ACCOUNT, "link-orange-12") == ["router-12", "site-12", "tpe-12-1", "tpe-12-2"]
    assert registry.view.dependents(ACCOUNT, "router-12") == []  # connected_to does not spread an outage
    assert registry.view.dependents(ACCOUNT, "tpe-12-1") == []


def test_state_attributes_unrelating_and_retirement_are_followed(registry: Registry) -> None:
    a_restaurant_network(registry)
    registry.do(
        ChangeCiState(ACCOUNT, "link-orange-12", "down", "carrier outage", "supervision", at(10)),
        UpdateCiAttributes(ACCOUNT, "link-orange-12", {"reference": "FT-779", "sla": "GTR 4h"}, "cmdb-sync", at(11)),
        UnrelateCis(ACCOUNT, "router-12", "depends_on", "link-orange-12", "cmdb-sync", at(12)),
        RetireCi(ACCOUNT, "tpe-12-2", "replaced by tpe-12-3", "field-tech", at(13)),
    )
    registry.pump()

    link = registry.view.get(ACCOUNT, "link-orange-12")
    assert link is not None
    assert (link["state"], link["state_reason"]) == ("down", "carrier outage")
    assert link["attributes"] == {"carrier": "Orange", "reference": "FT-779", "sla": "GTR 4h"}
    assert link["version"] == 3
    assert link["updated_at"] == at(11).isoformat()
    router = registry.view.get(ACCOUNT, "router-12")
    assert router is not None and router["relations"] == [{"relation": "located_at", "target_ci": "site-12"}]
    assert [c["ci_name"] for c in registry.view.list(ACCOUNT, state="retired")] == ["tpe-12-2"]
    assert "tpe-12-2" not in registry.view.relations(ACCOUNT)  # a retired CI spreads nothing any more
    assert registry.view.dependents(ACCOUNT, "link-orange-12") == ["router-12", "site-12", "tpe-12-1"]


def test_the_same_ci_name_on_two_accounts_is_two_cis(registry: Registry) -> None:
    registry.do(register("router-1", "router"), register("router-1", "server", account="other-account"))
    registry.pump()
    assert [c["kind"] for c in registry.view.list(ACCOUNT)] == ["router"]
    assert [c["kind"] for c in registry.view.list("other-account")] == ["server"]
    assert ci_id(ACCOUNT, "router-1") != ci_id("other-account", "router-1")


def test_events_of_other_aggregates_are_passed_over(registry: Registry) -> None:
    registry.do(
        register("router-1", "router"),
        LogProblem(uuid4(), ACCOUNT, "watchdog reboots", "n2", at(5)),
    )
    assert registry.pump() == 1
    assert len(registry.view.list(ACCOUNT)) == 1


def test_the_same_batch_delivered_twice_changes_nothing(registry: Registry) -> None:
    a_restaurant_network(registry)
    registry.do(RetireCi(ACCOUNT, "tpe-12-2", "replaced", "field-tech", at(13)))
    batch = registry.stored()
    assert registry.view.apply(batch) == 12
    before = registry.rows()
    positions = registry.view.positions("itil.events")

    assert registry.view.apply(batch) == 0
    assert registry.view.apply(batch[3:7]) == 0

    assert registry.rows() == before
    assert (
        registry.view.positions("itil.events") == positions == {0: (batch[-1].envelope["position"], batch[-1].offset)}
    )


def test_events_replayed_past_the_positions_are_still_applied_once(registry: Registry) -> None:
    """Even without the position check (a replay into a rebuilt position table), versions guard the rows."""
    a_restaurant_network(registry)
    registry.do(UnrelateCis(ACCOUNT, "router-12", "depends_on", "link-orange-12", "cmdb-sync", at(12)))
    envelopes = [d.envelope for d in registry.stored()]
    with registry.db.transaction() as tx:
        assert registry.view.apply_events(tx, envelopes) == 12
    before = registry.rows()

    with registry.db.transaction() as tx:
        assert registry.view.apply_events(tx, envelopes) == 0

    assert registry.rows() == before
    assert ("depends_on", "link-orange-12") not in registry.view.relations(ACCOUNT)["router-12"]


def test_the_registry_catches_up_batch_by_batch(registry: Registry) -> None:
    registry.do(register("site-12", "site"), register("router-12", "router"))
    registry.pump()
    registry.do(relate("router-12", "located_at", "site-12", minutes=5))
    registry.pump()
    registry.do(ChangeCiState(ACCOUNT, "site-12", "maintenance", "works", "field-tech", at(6)))
    registry.pump()
    assert registry.view.dependents(ACCOUNT, "site-12") == ["router-12"]
    site = registry.view.get(ACCOUNT, "site-12")
    assert site is not None and (site["state"], site["version"]) == ("maintenance", 2)
