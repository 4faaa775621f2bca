"""Account commands: register an account, change its settings, inform its ROC."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.account import Account, account_id
from domain.commands import InformRoc, RegisterAccount, SetAccountRoc, SetPriorityMatrix, SetReopenPeriod
from domain.errors import IllegalTransition, InvalidCommand, NotFound

if TYPE_CHECKING:
    from application.app import ItilApplication


def register_account(app: ItilApplication, command: RegisterAccount) -> Account:
    """Register an account once; registering it again with the same details changes nothing."""
    account = Account.register(
        account=command.account, name=command.name, roc=command.roc, actor=command.actor, at=command.at
    )
    registered = app.create(account.id, Account, lambda: account)
    if (registered.name, registered.roc) != (account.name, account.roc):
        raise IllegalTransition(
            f"cannot register account {account.account}: it is already registered (as {registered.name!r},"
            f" ROC {registered.roc or 'none'}); change its ROC or settings instead"
        )
    return registered


def _registered(app: ItilApplication, account: str) -> list[tuple[UUID, type[Aggregate], str]]:
    """The ids for `app.update` of a registered account; NotFound when it was never registered."""
    if not isinstance(account, str) or not account.strip():
        raise InvalidCommand("account is required")
    if app.find_account(account) is None:
        raise NotFound(f"there is no registered account {account.strip()!r}; register it first")
    return [(account_id(account), Account, "account")]


def change_account(app: ItilApplication, command: SetAccountRoc | SetPriorityMatrix | SetReopenPeriod) -> Account:
    """Change one of a registered account's settings; setting the value it already has changes nothing."""

    def change(account: Account) -> None:
        if isinstance(command, SetAccountRoc):
            account.set_roc(roc=command.roc, actor=command.actor, at=command.at)
        elif isinstance(command, SetPriorityMatrix):
            account.set_priority_matrix(matrix=command.matrix, actor=command.actor, at=command.at)
        else:
            account.set_reopen_period(period=command.period, actor=command.actor, at=command.at)

    [account] = app.update(_registered(app, command.account), change)
    return account


def inform_roc(app: ItilApplication, command: InformRoc) -> Account:
    """Inform the ROC; carried out again (a redelivered event), it informs nobody twice."""
    if app.find_account(command.account) is None:
        raise IllegalTransition(
            f"cannot inform the ROC of account {command.account} about {command.subject}: the account has no ROC"
            " (it is not registered); register it with its ROC first"
        )

    def inform(account: Account) -> None:
        account.inform_roc(
            subject_id=command.subject_id, subject=command.subject, reason=command.reason,
            actor=command.actor, at=command.at,
        )  # fmt: skip

    [account] = app.update(_registered(app, command.account), inform)
    return account


HANDLERS: Mapping[type, Callable[[ItilApplication, Any], Any]] = MappingProxyType(
    {
        RegisterAccount: register_account,
        SetAccountRoc: change_account,
        SetPriorityMatrix: change_account,
        SetReopenPeriod: change_account,
        InformRoc: inform_roc,
    }
)
"""Command class -> handler(app, command) of this area; the application's table is built from these."""
