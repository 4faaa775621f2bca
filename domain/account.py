"""The Account aggregate: how incidents are run for one customer account (ROC, priority matrix, reopen period)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import IllegalTransition, InvalidCommand
from domain.priority import DEFAULT_MATRIX, check_matrix, matrix_of_rows, matrix_rows
from domain.rules import TextsChecked, aware, check_actor_and_instant, check_name, check_uuid, optional, required

DEFAULT_REOPEN_PERIOD = timedelta(days=7)
"""How long after resolution an incident may be reopened when the account says nothing else."""

_ACCOUNT_NS = uuid5(NAMESPACE_URL, "urn:itil-engine:account")


def account_id(account: str) -> UUID:
    """Each account has one Account aggregate, found from the account's name alone."""
    return uuid5(_ACCOUNT_NS, account.strip())


def period_text(period: timedelta) -> str:
    """A period as people say it: "7 days", "36 hours", "90 minutes"."""
    seconds = int(period.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


class Account(TextsChecked, Aggregate):
    """A customer account's incident settings and its ROC, who is informed of what matters."""

    class Event(Aggregate.Event):
        actor: str
        at: datetime

    class Registered(Event, Aggregate.Created):
        account: str
        name: str
        roc: str | None

    class RocSet(Event):
        roc: str
        previous_roc: str | None

    class PriorityMatrixSet(Event):
        rows: list[list[int]]
        """Priorities by impact (row, 1..3) and urgency (column, 1..3)."""

    class ReopenPeriodSet(Event):
        seconds: int

    class RocInformed(Event):
        roc: str
        subject_id: UUID
        subject: str
        reason: str

    @event(Registered)
    def __init__(self, *, account: str, name: str, roc: str | None, actor: str, at: datetime) -> None:
        self.account = account
        self.name = name
        self.roc = roc
        self.registered_at = at
        self.last_at = at
        self.matrix: Mapping[tuple[int, int], int] = DEFAULT_MATRIX
        self.reopen_period = DEFAULT_REOPEN_PERIOD
        self.informs: list[dict[str, Any]] = []
        self._informed: set[tuple[UUID, str]] = set()

    @classmethod
    def register(cls, *, account: str, name: str = "", roc: str | None = None, actor: str, at: datetime) -> Account:
        """Register an account, with its ROC when it already has one."""
        account = check_name("account", account)
        return cls._create(
            cls.Registered, id=account_id(account), account=account, name=optional(name) or account,
            roc=optional(roc), actor=required("actor", actor), at=aware(at),
        )  # fmt: skip

    # -- commands -----------------------------------------------------------------

    def set_roc(self, *, roc: str, actor: str, at: datetime) -> None:
        """Name the account's ROC; setting the same one again changes nothing."""
        check_actor_and_instant(actor, at)
        roc = required("roc", roc)
        if roc != self.roc:
            self._roc_set(roc=roc, previous_roc=self.roc, actor=actor, at=at)

    def set_priority_matrix(self, *, matrix: Mapping[tuple[int, int], int], actor: str, at: datetime) -> None:
        """Give the account its own impact × urgency -> priority matrix; all 9 cells are required."""
        check_actor_and_instant(actor, at)
        rows = matrix_rows(check_matrix(matrix))
        if rows != matrix_rows(self.matrix):
            self._priority_matrix_set(rows=rows, actor=actor, at=at)

    def set_reopen_period(self, *, period: timedelta, actor: str, at: datetime) -> None:
        """How long after resolution an incident of this account may still be reopened."""
        check_actor_and_instant(actor, at)
        if not isinstance(period, timedelta) or period <= timedelta(0):
            raise InvalidCommand(f"the reopen period must be longer than zero, not {period!r}")
        if period.total_seconds() != int(period.total_seconds()):
            raise InvalidCommand("the reopen period is counted in whole seconds")
        if period != self.reopen_period:
            self._reopen_period_set(seconds=int(period.total_seconds()), actor=actor, at=at)

    def inform_roc(self, *, subject_id: UUID, subject: str, reason: str, actor: str, at: datetime) -> bool:
        """Inform the ROC about a subject (an incident, a problem…); once per subject and reason.

        Returns False when the ROC was already informed of this subject for this reason.
        """
        check_actor_and_instant(actor, at)
        check_uuid("the subject id", subject_id)
        subject = required("subject", subject)
        reason = required("reason", reason)
        if (subject_id, reason) in self._informed:
            return False
        if self.roc is None:
            raise IllegalTransition(
                f"cannot inform the ROC of account {self.account} about {subject}: the account has no ROC;"
                " set one first"
            )
        self._roc_informed(roc=self.roc, subject_id=subject_id, subject=subject, reason=reason, actor=actor, at=at)
        return True

    def was_informed(self, subject_id: UUID, reason: str) -> bool:
        return (subject_id, reason) in self._informed

    # -- mutators: only assign state ---------------------------------------------

    @event(RocSet)
    def _roc_set(self, roc: str, previous_roc: str | None, actor: str, at: datetime) -> None:
        self.last_at = at
        self.roc = roc

    @event(PriorityMatrixSet)
    def _priority_matrix_set(self, rows: list[list[int]], actor: str, at: datetime) -> None:
        self.last_at = at
        self.matrix = matrix_of_rows(rows)

    @event(ReopenPeriodSet)
    def _reopen_period_set(self, seconds: int, actor: str, at: datetime) -> None:
        self.last_at = at
        self.reopen_period = timedelta(seconds=seconds)

    @event(RocInformed)
    def _roc_informed(self, roc: str, subject_id: UUID, subject: str, reason: str, actor: str, at: datetime) -> None:
        self.last_at = at
        self._informed.add((subject_id, reason))
        self.informs.append({"roc": roc, "subject_id": subject_id, "subject": subject, "reason": reason, "at": at})

    def profile(self) -> dict[str, Any]:
        """The account's settings as plain values."""
        return profile_of(
            account=self.account, name=self.name, roc=self.roc, matrix=self.matrix,
            reopen_period=self.reopen_period, informs=self.informs, registered=True, version=self.version,
        )  # fmt: skip


def profile_of(
    *,
    account: str,
    name: str | None = None,
    roc: str | None = None,
    matrix: Mapping[tuple[int, int], int] = DEFAULT_MATRIX,
    reopen_period: timedelta = DEFAULT_REOPEN_PERIOD,
    informs: list[dict[str, Any]] | None = None,
    registered: bool = False,
    version: int = 0,
) -> dict[str, Any]:
    """An account's settings as plain values; the defaults for an account never registered."""
    return {
        "account": account,
        "name": name or account,
        "registered": registered,
        "version": version,
        "roc": roc,
        "priority_matrix": {f"{i},{u}": p for (i, u), p in sorted(matrix.items())},
        "priority_matrix_rows": matrix_rows(matrix),
        "reopen_period": {"seconds": int(reopen_period.total_seconds()), "text": period_text(reopen_period)},
        "roc_informs": [dict(i) for i in informs or []],
    }
