"""The ConfigurationItem aggregate: one CI (site, link, router, terminal...), its state and relations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import IllegalTransition, InvalidCommand
from domain.rules import InOrder, TextsChecked, aware, check_name, one_of, required

KINDS = (
    "site",
    "carrier_link",
    "router",
    "server",
    "payment_terminal",
    "switch",
    "firewall",
    "application",
    "other",
)

DEPENDS_ON = "depends_on"
LOCATED_AT = "located_at"
CONNECTED_TO = "connected_to"
RELATIONS = (DEPENDS_ON, LOCATED_AT, CONNECTED_TO)
DEPENDENCY_RELATIONS = (DEPENDS_ON, LOCATED_AT)
"""Relations along which an outage spreads: from the target to the CI that holds the relation."""

OPERATIONAL = "operational"
DOWN = "down"
DEGRADED = "degraded"
MAINTENANCE = "maintenance"
RETIRED = "retired"
STATES = (OPERATIONAL, DOWN, DEGRADED, MAINTENANCE, RETIRED)

_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})


def _attributes(values: object) -> dict[str, str]:
    if not isinstance(values, Mapping):
        raise InvalidCommand(f"attributes must be a mapping of names to texts, not {values!r}")
    attributes: dict[str, str] = {}
    for name, value in values.items():
        name = required("an attribute name", name)
        if name in attributes:
            raise InvalidCommand(f"attribute {name!r} is given twice")
        attributes[name] = required(f"attribute {name!r}'s value", value)
    return attributes


def dependents(relations: Mapping[str, Iterable[tuple[str, str]]], ci: str) -> set[str]:
    """Every CI that depends on, or is located at, `ci`, directly or through other CIs.

    `relations` maps each CI's name to its own relations as (relation, target CI) pairs, e.g.
    the sites behind a failing carrier link and the payment terminals at those sites.
    `connected_to` does not propagate; `ci` itself is never among its dependents.
    """
    held_by: dict[str, set[str]] = {}
    for source, pairs in relations.items():
        for relation, target in pairs:
            if relation in DEPENDENCY_RELATIONS:
                held_by.setdefault(target, set()).add(source)
    found: set[str] = set()
    to_visit = [ci]
    while to_visit:
        for source in held_by.get(to_visit.pop(), ()):
            if source != ci and source not in found:
                found.add(source)
                to_visit.append(source)
    return found


class ConfigurationItem(TextsChecked, InOrder, Aggregate):
    """A configuration item of a customer account: what it is, what it relies on, whether it works."""

    class Event(Aggregate.Event):
        actor: str
        at: datetime

    class Registered(Event, Aggregate.Created):
        account: str
        ci_name: str
        kind: str
        attributes: dict[str, str]

    class Related(Event):
        relation: str
        target_ci: str

    class Unrelated(Event):
        relation: str
        target_ci: str

    class StateChanged(Event):
        state: str
        reason: str

    class AttributesUpdated(Event):
        attributes: dict[str, str]

    class Retired(Event):
        reason: str

    @event(Registered)
    def __init__(
        self,
        *,
        account: str,
        ci_name: str,
        kind: str,
        attributes: dict[str, str],
        actor: str,
        at: datetime,
    ) -> None:
        self.account = account
        self.ci_name = ci_name
        self.kind = kind
        self.attributes: dict[str, str] = dict(attributes)
        self._relations: tuple[tuple[str, str], ...] = ()
        self.registered_at = at
        self.last_at = at
        self.state = OPERATIONAL
        self.state_reason: str | None = None
        self.state_changed_at: datetime | None = None
        self.retired_at: datetime | None = None
        self.retirement_reason: str | None = None

    @classmethod
    def register(
        cls,
        *,
        id: UUID,  # noqa: A002 - the application chooses ids, the aggregate never does
        account: str,
        ci_name: str,
        kind: str,
        actor: str,
        at: datetime,
        attributes: Mapping[str, str] = _NO_ATTRIBUTES,
    ) -> ConfigurationItem:
        """Register a configuration item, operational, under the name incidents and changes use for it."""
        return cls._create(
            cls.Registered,
            id=id,
            account=check_name("account", account),
            ci_name=check_name("CI name", ci_name),
            kind=one_of("kind", kind, KINDS),
            attributes=_attributes(attributes),
            actor=required("actor", actor),
            at=aware(at),
        )

    # -- properties ---------------------------------------------------------------

    @property
    def relations(self) -> tuple[tuple[str, str], ...]:
        """This CI's own relations as (relation, target CI) pairs, in the order they were made."""
        return self._relations

    @property
    def is_retired(self) -> bool:
        return self.state == RETIRED

    # -- commands -----------------------------------------------------------------

    def relate(self, *, relation: str, target_ci: str, actor: str, at: datetime) -> None:
        """Record that this CI depends on, is located at, or is connected to another CI."""
        self._check("relate", actor, at)
        relation = one_of("relation", relation, RELATIONS)
        target_ci = required("target CI", target_ci)
        if target_ci == self.ci_name:
            raise InvalidCommand(f"cannot relate {self._name()} to itself ({relation})")
        if (relation, target_ci) in self._relations:
            raise IllegalTransition(
                f"cannot relate {self._name()} to {target_ci}: it is already {_relation_text(relation)} it"
            )
        self._related(relation=relation, target_ci=target_ci, actor=actor, at=at)

    def unrelate(self, *, relation: str, target_ci: str, actor: str, at: datetime) -> None:
        """Remove one of this CI's relations."""
        self._check("unrelate", actor, at)
        relation = one_of("relation", relation, RELATIONS)
        target_ci = required("target CI", target_ci)
        if (relation, target_ci) not in self._relations:
            raise IllegalTransition(
                f"cannot unrelate {self._name()} from {target_ci}: it is not {_relation_text(relation)} it"
            )
        self._unrelated(relation=relation, target_ci=target_ci, actor=actor, at=at)

    def change_state(self, *, state: str, reason: str, actor: str, at: datetime) -> None:
        """Record that the CI is operational, down, degraded or in maintenance (or retire it)."""
        state = one_of("state", state, STATES)
        if state == RETIRED:
            self.retire(reason=reason, actor=actor, at=at)
            return
        self._check("change the state of", actor, at)
        if state == self.state:
            raise IllegalTransition(f"cannot change the state of {self._name()}: it is already {state}")
        self._state_changed(state=state, reason=required("reason", reason), actor=actor, at=at)

    def update_attributes(self, *, attributes: Mapping[str, str], actor: str, at: datetime) -> None:
        """Set some attributes (serial number, carrier reference, address...); others are kept."""
        self._check("update the attributes of", actor, at)
        given = _attributes(attributes)
        if not given:
            raise InvalidCommand(f"cannot update the attributes of {self._name()}: no attribute was given")
        changed = {name: value for name, value in given.items() if self.attributes.get(name) != value}
        if not changed:
            raise IllegalTransition(f"cannot update the attributes of {self._name()}: they already have these values")
        self._attributes_updated(attributes=changed, actor=actor, at=at)

    def retire(self, *, reason: str, actor: str, at: datetime) -> None:
        """Take the CI out of service for good; nothing can change it afterwards."""
        self._check("retire", actor, at)
        self._retired(reason=required("reason", reason), actor=actor, at=at)

    # -- rules --------------------------------------------------------------------

    def _name(self) -> str:
        return f"CI {self.ci_name} ({self.id})"

    def _check(self, verb: str, actor: str, at: datetime) -> None:
        super()._check(verb, actor, at)
        if self.state == RETIRED:
            raise IllegalTransition(
                f"cannot {verb} {self._name()}: it was retired at {self._retired_at_text()}"
                f" ({self.retirement_reason}); register a new CI instead"
            )

    def _retired_at_text(self) -> str:
        return self.retired_at.isoformat() if self.retired_at else "?"

    # -- mutators: only assign state ---------------------------------------------

    @event(Related)
    def _related(self, relation: str, target_ci: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self._relations = (*self._relations, (relation, target_ci))

    @event(Unrelated)
    def _unrelated(self, relation: str, target_ci: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self._relations = tuple(pair for pair in self._relations if pair != (relation, target_ci))

    @event(StateChanged)
    def _state_changed(self, state: str, reason: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.state = state
        self.state_reason = reason
        self.state_changed_at = at

    @event(AttributesUpdated)
    def _attributes_updated(self, attributes: dict[str, str], actor: str, at: datetime) -> None:
        self._stamp(at)
        self.attributes = {**self.attributes, **attributes}

    @event(Retired)
    def _retired(self, reason: str, actor: str, at: datetime) -> None:
        self._stamp(at)
        self.state = RETIRED
        self.state_reason = reason
        self.state_changed_at = at
        self.retired_at = at
        self.retirement_reason = reason

    def summary(self) -> dict[str, Any]:
        """The CI's current state as plain values."""
        return {
            "id": str(self.id),
            "version": self.version,
            "account": self.account,
            "ci_name": self.ci_name,
            "kind": self.kind,
            "state": self.state,
            "state_reason": self.state_reason,
            "attributes": dict(self.attributes),
            "relations": [{"relation": relation, "target_ci": target} for relation, target in self._relations],
            "registered_at": self.registered_at,
            "state_changed_at": self.state_changed_at,
            "retired_at": self.retired_at,
            "retirement_reason": self.retirement_reason,
        }


def _relation_text(relation: str) -> str:
    return {DEPENDS_ON: "depending on", LOCATED_AT: "located at", CONNECTED_TO: "connected to"}[relation]
