"""Configuration management: the handlers of the commands on CIs (their routes: `web.configuration`).

A CI's id is derived from its account and name (`ci_id`), so incidents, changes and processes
name CIs the way people do and a repeated registration finds the CI it already made.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from uuid import NAMESPACE_URL, UUID, uuid5

from application.app import ItilApplication
from domain.commands import ChangeCiState, RegisterCi, RelateCis, RetireCi, UnrelateCis, UpdateCiAttributes
from domain.configuration import ConfigurationItem
from domain.errors import IllegalTransition, NotFound

_CI_NS = uuid5(NAMESPACE_URL, "urn:itil-engine:configuration-item")


def ci_id(account: str, ci_name: str) -> UUID:
    """The id of the CI named `ci_name` on `account` (names are trimmed, as the aggregate keeps them)."""
    return uuid5(_CI_NS, f"{account.strip()}/{ci_name.strip()}")


# -- commands -------------------------------------------------------------------------------------


# -- handlers -------------------------------------------------------------------------------------


def ci_words(account: str, ci_name: str) -> str:
    return f"CI {ci_name!r} on account {account}"


def find_ci(app: ItilApplication, account: str, ci_name: str) -> ConfigurationItem | None:
    if not account.strip() or not ci_name.strip():
        return None
    return app.find(ci_id(account, ci_name), ConfigurationItem)


def _on_ci(
    app: ItilApplication, account: str, ci_name: str, act: Callable[[ConfigurationItem], None]
) -> ConfigurationItem:
    if find_ci(app, account, ci_name) is None:
        raise NotFound(f"there is no {ci_words(account, ci_name)}")
    [ci] = app.update([(ci_id(account, ci_name), ConfigurationItem, "CI")], act)
    result: ConfigurationItem = ci
    return result


def register_ci(app: ItilApplication, c: RegisterCi) -> ConfigurationItem:
    existing = find_ci(app, c.account, c.ci_name)
    if existing is not None:
        if existing.kind != c.kind:
            raise IllegalTransition(
                f"cannot register {ci_words(c.account, c.ci_name)} as a {c.kind}: it is already registered"
                f" as a {existing.kind} ({existing.id})"
            )
        return existing  # the same registration carried out twice has the effect of once
    return app.create(
        ci_id(c.account, c.ci_name),
        ConfigurationItem,
        lambda: ConfigurationItem.register(
            id=ci_id(c.account, c.ci_name),
            account=c.account,
            ci_name=c.ci_name,
            kind=c.kind,
            actor=c.actor,
            at=c.at,
            attributes=c.attributes,
        ),  # fmt: skip
    )


def relate_cis(app: ItilApplication, c: RelateCis) -> ConfigurationItem:
    if c.target_ci.strip() != c.ci_name.strip() and find_ci(app, c.account, c.target_ci) is None:
        raise NotFound(f"there is no {ci_words(c.account, c.target_ci)} to relate {c.ci_name!r} to; register it first")
    return _on_ci(
        app, c.account, c.ci_name,
        lambda ci: ci.relate(relation=c.relation, target_ci=c.target_ci, actor=c.actor, at=c.at),
    )  # fmt: skip


def unrelate_cis(app: ItilApplication, c: UnrelateCis) -> ConfigurationItem:
    return _on_ci(
        app, c.account, c.ci_name,
        lambda ci: ci.unrelate(relation=c.relation, target_ci=c.target_ci, actor=c.actor, at=c.at),
    )  # fmt: skip


def change_ci_state(app: ItilApplication, c: ChangeCiState) -> ConfigurationItem:
    return _on_ci(
        app, c.account, c.ci_name, lambda ci: ci.change_state(state=c.state, reason=c.reason, actor=c.actor, at=c.at)
    )


def update_ci_attributes(app: ItilApplication, c: UpdateCiAttributes) -> ConfigurationItem:
    return _on_ci(
        app, c.account, c.ci_name, lambda ci: ci.update_attributes(attributes=c.attributes, actor=c.actor, at=c.at)
    )


def retire_ci(app: ItilApplication, c: RetireCi) -> ConfigurationItem:
    return _on_ci(app, c.account, c.ci_name, lambda ci: ci.retire(reason=c.reason, actor=c.actor, at=c.at))


HANDLERS = MappingProxyType(
    {
        RegisterCi: register_ci,
        RelateCis: relate_cis,
        UnrelateCis: unrelate_cis,
        ChangeCiState: change_ci_state,
        UpdateCiAttributes: update_ci_attributes,
        RetireCi: retire_ci,
    }
)
"""Command class -> handler(app, command) of this area; the application's table is built from these."""
