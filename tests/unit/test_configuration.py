"""Every rule of the ConfigurationItem aggregate, and how outages spread through CI relations."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application

from domain.configuration import (
    DEGRADED,
    DOWN,
    KINDS,
    MAINTENANCE,
    OPERATIONAL,
    RELATIONS,
    RETIRED,
    ConfigurationItem,
    dependents,
)
from domain.errors import DomainError, IllegalTransition, InvalidCommand

CI_ID = UUID("0c1e0000-0000-4000-8000-000000000012")
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
CMDB = "cmdb-sync"
SUPERVISION = "supervision"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


LATER = at(600)


def register(**overrides: Any) -> ConfigurationItem:
    fields: dict[str, Any] = {
        "id": CI_ID,
        "account": "resto-chain",
        "ci_name": "router-resto-042",
        "kind": "router",
        "actor": CMDB,
        "at": at(0),
    }
    fields.update(overrides)
    return ConfigurationItem.register(**fields)


def event_names(ci: ConfigurationItem) -> list[str]:
    return [type(e).__name__ for e in ci.pending_events]


def assert_refused(
    ci: ConfigurationItem,
    error: type[DomainError],
    command: Callable[[], object],
    match: str | None = None,
) -> DomainError:
    """The command raises `error` and leaves the CI exactly as it was: no event, no change."""
    pending = len(ci.pending_events)
    version = ci.version
    before = ci.summary()
    state = copy.deepcopy(vars(ci))
    with pytest.raises(error, match=match) as refusal:
        command()
    assert len(ci.pending_events) == pending
    assert ci.version == version
    assert ci.summary() == before
    assert vars(ci) == state
    if isinstance(refusal.value, IllegalTransition):
        assert str(ci.id) in str(refusal.value)
        assert ci.ci_name in str(refusal.value)
    return refusal.value


def retired() -> ConfigurationItem:
    ci = register()
    ci.relate(relation="located_at", target_ci="site-resto-042", actor=CMDB, at=at(1))
    ci.retire(reason="replaced by router-resto-042b", actor=CMDB, at=at(2))
    return ci


COMMANDS: dict[str, Callable[[ConfigurationItem, datetime], None]] = {
    "relate": lambda c, t: c.relate(relation="depends_on", target_ci="link-orange-7", actor=CMDB, at=t),
    "unrelate": lambda c, t: c.unrelate(relation="located_at", target_ci="site-resto-042", actor=CMDB, at=t),
    "change_state": lambda c, t: c.change_state(state="down", reason="alarm", actor=SUPERVISION, at=t),
    "update_attributes": lambda c, t: c.update_attributes(attributes={"serial": "X1"}, actor=CMDB, at=t),
    "retire": lambda c, t: c.retire(reason="decommissioned", actor=CMDB, at=t),
}


def related() -> ConfigurationItem:
    """A CI on which every command would be accepted at a valid instant."""
    ci = register()
    ci.relate(relation="located_at", target_ci="site-resto-042", actor=CMDB, at=at(1))
    return ci


# -- register ---------------------------------------------------------------------------------------------


def test_registering_records_an_operational_ci_with_its_details() -> None:
    ci = register(attributes={" serial ": " FGT60F123 ", "firmware": "7.2"})

    assert ci.id == CI_ID
    assert ci.version == 1
    assert ci.account == "resto-chain"
    assert ci.ci_name == "router-resto-042"
    assert ci.kind == "router"
    assert ci.state == OPERATIONAL
    assert not ci.is_retired
    assert ci.attributes == {"serial": "FGT60F123", "firmware": "7.2"}
    assert ci.relations == ()
    assert ci.registered_at == ci.last_at == at(0)
    assert event_names(ci) == ["Registered"]


def test_registering_without_attributes_gives_each_ci_its_own_empty_attributes() -> None:
    first = register()
    second = register(id=UUID(int=2), ci_name="router-resto-043")
    first.update_attributes(attributes={"serial": "A"}, actor=CMDB, at=at(1))

    assert second.attributes == {}


@pytest.mark.parametrize("kind", KINDS)
def test_registering_accepts_every_known_kind(kind: str) -> None:
    assert register(kind=kind).kind == kind


INVALID_REGISTRATIONS: list[tuple[dict[str, Any], str]] = [
    ({"kind": "printer"}, "kind must be one of site, carrier_link, router"),
    ({"kind": None}, "kind must be one of"),
    ({"ci_name": " "}, "CI name is required"),
    ({"ci_name": None}, "CI name is required"),
    ({"account": ""}, "account is required"),
    ({"actor": ""}, "actor is required"),
    ({"at": datetime(2026, 6, 1, 9, 0)}, "time zone"),
    ({"attributes": [("serial", "X")]}, "attributes must be a mapping of names to texts"),
    ({"attributes": {" ": "X"}}, "an attribute name is required"),
    ({"attributes": {"serial": ""}}, "attribute 'serial''s value is required"),
    ({"attributes": {"ports": 24}}, "attribute 'ports''s value is required"),
    ({"attributes": {"serial": "A", " serial": "B"}}, "attribute 'serial' is given twice"),
]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [pytest.param(o, m, id=",".join(f"{k}={v!r}" for k, v in o.items())) for o, m in INVALID_REGISTRATIONS],
)
def test_registering_with_invalid_details_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        register(**overrides)


# -- relations --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("relation", RELATIONS)
def test_relating_records_the_relation_to_another_ci(relation: str) -> None:
    ci = register()
    ci.relate(relation=relation, target_ci=" site-resto-042 ", actor=CMDB, at=at(1))

    assert ci.relations == ((relation, "site-resto-042"),)
    assert event_names(ci)[-1] == "Related"


def test_a_ci_can_hold_different_relations_to_the_same_target() -> None:
    ci = related()
    ci.relate(relation="connected_to", target_ci="site-resto-042", actor=CMDB, at=at(2))

    assert ci.relations == (("located_at", "site-resto-042"), ("connected_to", "site-resto-042"))


def test_relating_a_ci_to_itself_is_refused() -> None:
    ci = register()

    error = assert_refused(
        ci,
        InvalidCommand,
        lambda: ci.relate(relation="depends_on", target_ci=" router-resto-042", actor=CMDB, at=at(1)),
        match=r"cannot relate CI router-resto-042 \(.*\) to itself \(depends_on\)",
    )
    assert str(CI_ID) in str(error)


@pytest.mark.parametrize(
    ("relation", "text"),
    [("depends_on", "depending on"), ("located_at", "located at"), ("connected_to", "connected to")],
)
def test_relating_twice_the_same_way_to_the_same_ci_is_refused(relation: str, text: str) -> None:
    ci = register()
    ci.relate(relation=relation, target_ci="site-resto-042", actor=CMDB, at=at(1))

    assert_refused(
        ci,
        IllegalTransition,
        lambda: ci.relate(relation=relation, target_ci="site-resto-042", actor=CMDB, at=at(2)),
        match=f"to site-resto-042: it is already {text} it",
    )


@pytest.mark.parametrize("command", ["relate", "unrelate"])
@pytest.mark.parametrize(
    ("relation", "target", "message"),
    [
        ("part_of", "site-resto-042", "relation must be one of depends_on, located_at, connected_to"),
        (None, "site-resto-042", "relation must be one of"),
        ("located_at", "  ", "target CI is required"),
        ("located_at", None, "target CI is required"),
    ],
)
def test_relating_or_unrelating_with_an_unknown_relation_or_no_target_is_refused(
    command: str, relation: Any, target: Any, message: str
) -> None:
    ci = related()
    method = ci.relate if command == "relate" else ci.unrelate

    assert_refused(
        ci, InvalidCommand, lambda: method(relation=relation, target_ci=target, actor=CMDB, at=at(2)), match=message
    )


def test_unrelating_removes_only_that_relation() -> None:
    ci = related()
    ci.relate(relation="depends_on", target_ci="link-orange-7", actor=CMDB, at=at(2))
    ci.unrelate(relation="located_at", target_ci=" site-resto-042 ", actor=CMDB, at=at(3))

    assert ci.relations == (("depends_on", "link-orange-7"),)
    assert event_names(ci)[-1] == "Unrelated"


def test_an_unrelated_ci_can_be_related_again() -> None:
    ci = related()
    ci.unrelate(relation="located_at", target_ci="site-resto-042", actor=CMDB, at=at(2))
    ci.relate(relation="located_at", target_ci="site-resto-042", actor=CMDB, at=at(3))

    assert ci.relations == (("located_at", "site-resto-042"),)


@pytest.mark.parametrize(("relation", "target"), [("located_at", "site-resto-043"), ("depends_on", "site-resto-042")])
def test_unrelating_a_relation_the_ci_does_not_hold_is_refused(relation: str, target: str) -> None:
    ci = related()

    assert_refused(
        ci,
        IllegalTransition,
        lambda: ci.unrelate(relation=relation, target_ci=target, actor=CMDB, at=at(2)),
        match=f"cannot unrelate CI router-resto-042 .* from {target}: it is not",
    )


# -- state ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [DOWN, DEGRADED, MAINTENANCE])
def test_changing_the_state_records_it_with_the_reason(state: str) -> None:
    ci = register()
    ci.change_state(state=state, reason=" alarm 4411 ", actor=SUPERVISION, at=at(1))

    assert ci.state == state
    assert ci.state_reason == "alarm 4411"
    assert ci.state_changed_at == at(1)
    assert event_names(ci)[-1] == "StateChanged"


def test_a_ci_down_comes_back_operational() -> None:
    ci = register()
    ci.change_state(state=DOWN, reason="alarm 4411", actor=SUPERVISION, at=at(1))
    ci.change_state(state=OPERATIONAL, reason="alarm 4411 cleared", actor=SUPERVISION, at=at(2))

    assert ci.state == OPERATIONAL
    assert ci.state_reason == "alarm 4411 cleared"


def test_changing_to_the_state_the_ci_is_already_in_is_refused() -> None:
    ci = register()
    ci.change_state(state=DOWN, reason="alarm 4411", actor=SUPERVISION, at=at(1))

    assert_refused(
        ci,
        IllegalTransition,
        lambda: ci.change_state(state=DOWN, reason="alarm 4412", actor=SUPERVISION, at=at(2)),
        match="it is already down",
    )


@pytest.mark.parametrize(
    ("state", "message"), [("broken", "state must be one of operational, down"), (None, "state must be one of")]
)
def test_changing_to_an_unknown_state_is_refused(state: Any, message: str) -> None:
    ci = register()

    assert_refused(
        ci,
        InvalidCommand,
        lambda: ci.change_state(state=state, reason="alarm", actor=SUPERVISION, at=at(1)),
        match=message,
    )


def test_changing_the_state_without_a_reason_is_refused() -> None:
    ci = register()

    assert_refused(
        ci,
        InvalidCommand,
        lambda: ci.change_state(state=DOWN, reason=" ", actor=SUPERVISION, at=at(1)),
        match="reason is required",
    )


def test_changing_the_state_to_retired_retires_the_ci() -> None:
    ci = register()
    ci.change_state(state=RETIRED, reason="site closed", actor=CMDB, at=at(1))

    assert ci.state == RETIRED
    assert ci.retirement_reason == "site closed"
    assert event_names(ci)[-1] == "Retired"


# -- attributes -------------------------------------------------------------------------------------------------------


def test_updating_attributes_sets_them_and_keeps_the_others() -> None:
    ci = register(attributes={"serial": "FGT60F123", "firmware": "7.2"})
    ci.update_attributes(attributes={"firmware": "7.3", "carrier_ref": "ORG-778"}, actor=CMDB, at=at(1))

    assert ci.attributes == {"serial": "FGT60F123", "firmware": "7.3", "carrier_ref": "ORG-778"}
    assert event_names(ci)[-1] == "AttributesUpdated"


def test_an_attributes_update_records_only_what_changed() -> None:
    ci = register(attributes={"serial": "FGT60F123", "firmware": "7.2"})
    ci.update_attributes(attributes={"serial": "FGT60F123", "firmware": "7.3"}, actor=CMDB, at=at(1))

    assert ci.pending_events[-1].attributes == {"firmware": "7.3"}  # type: ignore[attr-defined]


def test_updating_attributes_to_the_values_they_have_is_refused() -> None:
    ci = register(attributes={"serial": "FGT60F123"})

    assert_refused(
        ci,
        IllegalTransition,
        lambda: ci.update_attributes(attributes={"serial": " FGT60F123 "}, actor=CMDB, at=at(1)),
        match="they already have these values",
    )


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({}, "no attribute was given"),
        (None, "attributes must be a mapping"),
        ({"serial": None}, "attribute 'serial''s value is required"),
        ({"": "X"}, "an attribute name is required"),
    ],
)
def test_updating_attributes_with_nothing_or_invalid_values_is_refused(attributes: Any, message: str) -> None:
    ci = register()

    assert_refused(
        ci,
        InvalidCommand,
        lambda: ci.update_attributes(attributes=attributes, actor=CMDB, at=at(1)),
        match=message,
    )


# -- retire ----------------------------------------------------------------------------------------------------------------


def test_retiring_takes_the_ci_out_of_service_for_good() -> None:
    ci = retired()

    assert ci.state == RETIRED
    assert ci.is_retired
    assert ci.retired_at == at(2)
    assert ci.retirement_reason == "replaced by router-resto-042b"
    assert event_names(ci)[-1] == "Retired"


@pytest.mark.parametrize("builder", [register, lambda: _down()])
def test_a_ci_can_be_retired_whatever_its_state(builder: Callable[[], ConfigurationItem]) -> None:
    ci = builder()
    ci.retire(reason="decommissioned", actor=CMDB, at=LATER)

    assert ci.state == RETIRED


def _down() -> ConfigurationItem:
    ci = register()
    ci.change_state(state=DOWN, reason="alarm", actor=SUPERVISION, at=at(1))
    return ci


def test_retiring_without_a_reason_is_refused() -> None:
    ci = register()

    assert_refused(
        ci,
        InvalidCommand,
        lambda: ci.retire(reason="", actor=CMDB, at=at(1)),
        match="reason is required",
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_on_a_retired_ci_is_refused(command: str) -> None:
    ci = retired()

    assert_refused(
        ci,
        IllegalTransition,
        lambda: COMMANDS[command](ci, LATER),
        match=r"it was retired at 2026-06-01T09:02:00\+00:00 \(replaced by router-resto-042b\); register a new CI instead",
    )


def test_changing_a_retired_ci_back_to_operational_is_refused() -> None:
    ci = retired()

    assert_refused(
        ci,
        IllegalTransition,
        lambda: ci.change_state(state=OPERATIONAL, reason="back", actor=SUPERVISION, at=LATER),
        match="cannot change the state of CI router-resto-042",
    )


# -- instants and actors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_dated_before_the_last_recorded_step_is_refused(command: str) -> None:
    ci = related()
    earlier = ci.last_at - timedelta(seconds=1)

    error = assert_refused(
        ci, InvalidCommand, lambda: COMMANDS[command](ci, earlier), match="before its last recorded step"
    )
    assert str(CI_ID) in str(error)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_at_the_same_instant_as_the_last_step_is_accepted(command: str) -> None:
    ci = related()
    version = ci.version

    COMMANDS[command](ci, ci.last_at)

    assert ci.version == version + 1


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_with_a_naive_instant_is_refused(command: str) -> None:
    ci = related()

    assert_refused(ci, InvalidCommand, lambda: COMMANDS[command](ci, datetime(2026, 6, 1, 12, 0)), match="time zone")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("actor", ["", " ", None])
def test_a_command_without_an_actor_is_refused(command: str, actor: Any) -> None:
    ci = related()
    commands: dict[str, Callable[[], None]] = {
        "relate": lambda: ci.relate(relation="depends_on", target_ci="link-7", actor=actor, at=LATER),
        "unrelate": lambda: ci.unrelate(relation="located_at", target_ci="site-resto-042", actor=actor, at=LATER),
        "change_state": lambda: ci.change_state(state="down", reason="alarm", actor=actor, at=LATER),
        "update_attributes": lambda: ci.update_attributes(attributes={"a": "b"}, actor=actor, at=LATER),
        "retire": lambda: ci.retire(reason="gone", actor=actor, at=LATER),
    }

    assert_refused(ci, InvalidCommand, commands[command], match="actor is required")


# -- dependents ------------------------------------------------------------------------------------------------------------


NETWORK: dict[str, list[tuple[str, str]]] = {
    "link-orange-7": [],
    "site-resto-042": [("depends_on", "link-orange-7")],
    "site-resto-043": [("depends_on", "link-orange-7"), ("depends_on", "link-sfr-2")],
    "site-resto-044": [("depends_on", "link-sfr-2")],
    "router-resto-042": [("located_at", "site-resto-042"), ("connected_to", "link-orange-7")],
    "tpe-042-1": [("located_at", "site-resto-042")],
    "tpe-042-2": [("located_at", "site-resto-042"), ("connected_to", "router-resto-042")],
    "tpe-043-1": [("located_at", "site-resto-043")],
    "tpe-044-1": [("located_at", "site-resto-044")],
    "payment-gateway": [("connected_to", "link-orange-7")],
}


def test_the_sites_behind_a_failing_carrier_link_and_everything_at_them_depend_on_it() -> None:
    assert dependents(NETWORK, "link-orange-7") == {
        "site-resto-042",
        "site-resto-043",
        "router-resto-042",
        "tpe-042-1",
        "tpe-042-2",
        "tpe-043-1",
    }


def test_a_connection_alone_does_not_make_a_ci_dependent() -> None:
    assert "payment-gateway" not in dependents(NETWORK, "link-orange-7")
    assert dependents(NETWORK, "router-resto-042") == set()


def test_the_dependents_of_a_site_are_what_is_located_at_it() -> None:
    assert dependents(NETWORK, "site-resto-044") == {"tpe-044-1"}


def test_a_ci_nobody_relies_on_has_no_dependents() -> None:
    assert dependents(NETWORK, "tpe-042-1") == set()
    assert dependents(NETWORK, "unknown-ci") == set()


def test_dependency_cycles_end_and_never_list_the_ci_itself() -> None:
    relations = {
        "a": [("depends_on", "b")],
        "b": [("depends_on", "c")],
        "c": [("depends_on", "a")],
    }

    assert dependents(relations, "a") == {"b", "c"}


def test_dependents_can_be_computed_from_the_cis_own_relations() -> None:
    link = register(id=UUID(int=1), ci_name="link-orange-7", kind="carrier_link")
    site = register(id=UUID(int=2), ci_name="site-resto-042", kind="site")
    site.relate(relation="depends_on", target_ci="link-orange-7", actor=CMDB, at=at(1))
    tpe = register(id=UUID(int=3), ci_name="tpe-042-1", kind="payment_terminal")
    tpe.relate(relation="located_at", target_ci="site-resto-042", actor=CMDB, at=at(1))

    relations = {ci.ci_name: ci.relations for ci in (link, site, tpe)}

    assert dependents(relations, "link-orange-7") == {"site-resto-042", "tpe-042-1"}


# -- summary and replay ------------------------------------------------------------------------------------------------------


def test_the_summary_gives_plain_values() -> None:
    ci = related()
    ci.change_state(state=DEGRADED, reason="packet loss", actor=SUPERVISION, at=at(2))

    assert ci.summary() == {
        "id": str(CI_ID),
        "version": 3,
        "account": "resto-chain",
        "ci_name": "router-resto-042",
        "kind": "router",
        "state": DEGRADED,
        "state_reason": "packet loss",
        "attributes": {},
        "relations": [{"relation": "located_at", "target_ci": "site-resto-042"}],
        "registered_at": at(0),
        "state_changed_at": at(2),
        "retired_at": None,
        "retirement_reason": None,
    }


def _full_history() -> ConfigurationItem:
    ci = register(attributes={"serial": "FGT60F123"})
    ci.relate(relation="located_at", target_ci="site-resto-042", actor=CMDB, at=at(1))
    ci.relate(relation="depends_on", target_ci="link-orange-7", actor=CMDB, at=at(2))
    ci.unrelate(relation="depends_on", target_ci="link-orange-7", actor=CMDB, at=at(3))
    ci.change_state(state=DOWN, reason="alarm 4411", actor=SUPERVISION, at=at(4))
    ci.update_attributes(attributes={"firmware": "7.3"}, actor=CMDB, at=at(5))
    ci.change_state(state=OPERATIONAL, reason="alarm cleared", actor=SUPERVISION, at=at(6))
    ci.retire(reason="replaced", actor=CMDB, at=at(7))
    return ci


def test_replaying_the_events_rebuilds_the_same_ci() -> None:
    ci = _full_history()

    replayed: ConfigurationItem | None = None
    for domain_event in ci.collect_events():
        replayed = domain_event.mutate(replayed)

    assert replayed is not None
    assert replayed.summary() == ci.summary()


def test_a_ci_stored_and_read_back_has_the_same_summary() -> None:
    ci = _full_history()
    app: Application[UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(ci)

    stored: ConfigurationItem = app.repository.get(CI_ID)

    assert stored.summary() == ci.summary()
    assert stored.relations == (("located_at", "site-resto-042"),)
