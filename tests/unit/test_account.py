"""The Account aggregate: its ROC, its priority matrix, its reopen period, and informing the ROC once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.account import DEFAULT_REOPEN_PERIOD, Account, account_id, period_text, profile_of
from domain.errors import DomainError, IllegalTransition, InvalidCommand
from domain.priority import DEFAULT_MATRIX, check_matrix, matrix_of_rows, matrix_rows, priority_of

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ADMIN = "service-manager"
INCIDENT = UUID("6f1c1e0a-0000-4000-8000-000000000042")
RESTO_ROWS = [[1, 1, 2], [1, 2, 3], [2, 3, 4]]
"""The restaurant chain's matrix: payment outages matter more than usual."""


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def registered(roc: str | None = "anne.roc") -> Account:
    return Account.register(account="resto-chain", name="Resto Chain SAS", roc=roc, actor=ADMIN, at=at(0))


def event_names(account: Account) -> list[str]:
    return [type(e).__name__ for e in account.collect_events()]


def assert_refused(account: Account, error: type[DomainError], command: Callable[[], object], match: str) -> None:
    pending = len(account.pending_events)
    before = account.profile()
    with pytest.raises(error, match=match):
        command()
    assert len(account.pending_events) == pending
    assert account.profile() == before


# -- registration ---------------------------------------------------------------------------------


def test_an_account_is_found_from_its_name_alone() -> None:
    account = registered()

    assert account.id == account_id("resto-chain") == account_id("  resto-chain ")
    assert account_id("resto-chain") != account_id("bakery-chain")
    assert (account.account, account.name, account.roc) == ("resto-chain", "Resto Chain SAS", "anne.roc")
    assert event_names(account) == ["Registered"]


def test_a_registered_account_runs_on_the_defaults() -> None:
    account = registered(roc=None)

    assert account.roc is None
    assert account.matrix == DEFAULT_MATRIX
    assert account.reopen_period == DEFAULT_REOPEN_PERIOD == timedelta(days=7)
    assert account.informs == []


def test_an_account_without_a_name_is_named_after_itself() -> None:
    assert Account.register(account="resto-chain", name=" ", actor=ADMIN, at=at(0)).name == "resto-chain"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"account": " "}, "account is required"),
        ({"actor": ""}, "actor is required"),
        ({"at": datetime(2025, 3, 3, 9, 0)}, "time zone"),
    ],
)
def test_registering_with_invalid_details_is_refused(overrides: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"account": "resto-chain", "name": "", "roc": None, "actor": ADMIN, "at": at(0)}
    with pytest.raises(InvalidCommand, match=message):
        Account.register(**(fields | overrides))


# -- ROC ------------------------------------------------------------------------------------------


def test_setting_the_roc_records_who_it_was_before() -> None:
    account = registered()
    account.set_roc(roc=" marc.roc ", actor=ADMIN, at=at(1))

    assert account.roc == "marc.roc"
    last = account.collect_events()[-1]
    assert isinstance(last, Account.RocSet)
    assert (last.roc, last.previous_roc) == ("marc.roc", "anne.roc")


def test_setting_the_same_roc_again_changes_nothing() -> None:
    account = registered()
    account.set_roc(roc="anne.roc", actor=ADMIN, at=at(1))

    assert event_names(account) == ["Registered"]


def test_setting_an_empty_roc_is_refused() -> None:
    account = registered()

    assert_refused(account, InvalidCommand, lambda: account.set_roc(roc=" ", actor=ADMIN, at=at(1)), "roc is required")


# -- priority matrix ------------------------------------------------------------------------------


def test_setting_a_priority_matrix_changes_the_priority_of_impact_and_urgency() -> None:
    account = registered()
    account.set_priority_matrix(matrix=matrix_of_rows(RESTO_ROWS), actor=ADMIN, at=at(1))

    assert priority_of(1, 2, account.matrix) == 1
    assert priority_of(1, 2, DEFAULT_MATRIX) == 2
    last = account.collect_events()[-1]
    assert isinstance(last, Account.PriorityMatrixSet)
    assert last.rows == RESTO_ROWS


def test_setting_the_matrix_it_already_has_changes_nothing() -> None:
    account = registered()
    account.set_priority_matrix(matrix=DEFAULT_MATRIX, actor=ADMIN, at=at(1))

    assert event_names(account) == ["Registered"]


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ({}, "must cover all 9 cells; it lacks impact 1 × urgency 1"),
        ({k: v for k, v in DEFAULT_MATRIX.items() if k != (2, 3)}, "it lacks impact 2 × urgency 3$"),
        ({**DEFAULT_MATRIX, (4, 1): 4}, "impact must be 1 .* not 4"),
        ({**DEFAULT_MATRIX, (1, 0): 4}, "urgency must be 1 .* not 0"),
        ({**DEFAULT_MATRIX, (1, 1): 5}, "a priority must be 1 .* not 5"),
        ({**DEFAULT_MATRIX, (1, 1): 0}, "a priority must be 1 .* not 0"),
        ({**DEFAULT_MATRIX, (1, 1): "1"}, "a priority must be 1 .* not '1'"),
        ({**DEFAULT_MATRIX, (1, 1): True}, "a priority must be 1"),
        ({**DEFAULT_MATRIX, "1,1": 1}, r"named by \(impact, urgency\), not '1,1'"),
        ([[1, 2, 3]], "maps each"),
    ],
)
def test_an_incomplete_or_wrong_matrix_is_refused(matrix: Any, message: str) -> None:
    account = registered()

    assert_refused(
        account, InvalidCommand, lambda: account.set_priority_matrix(matrix=matrix, actor=ADMIN, at=at(1)), message
    )


def test_a_matrix_reads_and_writes_as_rows() -> None:
    assert matrix_rows(DEFAULT_MATRIX) == [[1, 2, 3], [2, 3, 4], [3, 4, 4]]
    assert matrix_of_rows(matrix_rows(DEFAULT_MATRIX)) == check_matrix(DEFAULT_MATRIX) == dict(DEFAULT_MATRIX)
    with pytest.raises(InvalidCommand, match="3 rows"):
        matrix_of_rows([[1, 2, 3], [2, 3, 4]])


# -- reopen period --------------------------------------------------------------------------------


def test_setting_the_reopen_period() -> None:
    account = registered()
    account.set_reopen_period(period=timedelta(hours=36), actor=ADMIN, at=at(1))

    assert account.reopen_period == timedelta(hours=36)
    last = account.collect_events()[-1]
    assert isinstance(last, Account.ReopenPeriodSet)
    assert last.seconds == 36 * 3600


def test_setting_the_reopen_period_it_already_has_changes_nothing() -> None:
    account = registered()
    account.set_reopen_period(period=timedelta(days=7), actor=ADMIN, at=at(1))

    assert event_names(account) == ["Registered"]


@pytest.mark.parametrize(
    ("period", "message"),
    [
        (timedelta(0), "longer than zero"),
        (timedelta(days=-1), "longer than zero"),
        (7, "longer than zero"),
        (timedelta(milliseconds=1500), "whole seconds"),
    ],
)
def test_an_empty_or_negative_reopen_period_is_refused(period: Any, message: str) -> None:
    account = registered()

    assert_refused(
        account, InvalidCommand, lambda: account.set_reopen_period(period=period, actor=ADMIN, at=at(1)), message
    )


@pytest.mark.parametrize(
    ("period", "text"),
    [
        (timedelta(days=7), "7 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=36), "36 hours"),
        (timedelta(minutes=90), "90 minutes"),
        (timedelta(seconds=61), "61 seconds"),
    ],
)
def test_a_period_reads_as_people_say_it(period: timedelta, text: str) -> None:
    assert period_text(period) == text


# -- informing the ROC ------------------------------------------------------------------------------


def test_informing_the_roc_records_whom_about_what_and_why() -> None:
    account = registered()
    informed = account.inform_roc(
        subject_id=INCIDENT, subject="incident 42", reason="GTR at 90 %", actor="sla-process", at=at(5)
    )

    assert informed
    last = account.collect_events()[-1]
    assert isinstance(last, Account.RocInformed)
    assert (last.roc, last.subject_id, last.subject, last.reason) == (
        "anne.roc",
        INCIDENT,
        "incident 42",
        "GTR at 90 %",
    )
    assert account.was_informed(INCIDENT, "GTR at 90 %")
    assert account.profile()["roc_informs"] == [
        {"roc": "anne.roc", "subject_id": INCIDENT, "subject": "incident 42", "reason": "GTR at 90 %", "at": at(5)}
    ]


def test_informing_the_roc_again_of_the_same_subject_and_reason_does_nothing() -> None:
    account = registered()
    account.inform_roc(subject_id=INCIDENT, subject="incident 42", reason="breach", actor="p", at=at(5))
    account.collect_events()

    again = account.inform_roc(subject_id=INCIDENT, subject="incident 42", reason="breach", actor="p", at=at(6))

    assert not again
    assert account.collect_events() == []
    assert len(account.informs) == 1


def test_the_roc_is_informed_again_of_the_same_subject_for_another_reason() -> None:
    account = registered()
    account.inform_roc(subject_id=INCIDENT, subject="incident 42", reason="GTR at 90 %", actor="p", at=at(5))
    account.inform_roc(subject_id=INCIDENT, subject="incident 42", reason="GTR breached", actor="p", at=at(6))

    assert [i["reason"] for i in account.informs] == ["GTR at 90 %", "GTR breached"]


def test_informing_the_roc_of_an_account_without_roc_is_refused() -> None:
    account = registered(roc=None)

    assert_refused(
        account,
        IllegalTransition,
        lambda: account.inform_roc(subject_id=INCIDENT, subject="incident 42", reason="r", actor="p", at=at(5)),
        "cannot inform the ROC of account resto-chain about incident 42: the account has no ROC; set one first",
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"subject_id": str(INCIDENT)}, "subject id must be a UUID"),
        ({"subject": " "}, "subject is required"),
        ({"reason": ""}, "reason is required"),
        ({"actor": ""}, "actor is required"),
    ],
)
def test_informing_the_roc_with_invalid_details_is_refused(overrides: dict[str, Any], message: str) -> None:
    account = registered()
    fields: dict[str, Any] = {
        "subject_id": INCIDENT,
        "subject": "incident 42",
        "reason": "r",
        "actor": "p",
        "at": at(5),
    }

    assert_refused(account, InvalidCommand, lambda: account.inform_roc(**(fields | overrides)), message)


# -- replay and profile ---------------------------------------------------------------------------


def test_replaying_the_events_rebuilds_the_same_account() -> None:
    account = registered()
    account.set_roc(roc="marc.roc", actor=ADMIN, at=at(1))
    account.set_priority_matrix(matrix=matrix_of_rows(RESTO_ROWS), actor=ADMIN, at=at(2))
    account.set_reopen_period(period=timedelta(days=3), actor=ADMIN, at=at(3))
    account.inform_roc(subject_id=INCIDENT, subject="incident 42", reason="breach", actor="p", at=at(4))

    replayed: Account | None = None
    for domain_event in account.collect_events():
        replayed = domain_event.mutate(replayed)

    assert replayed is not None
    assert replayed.profile() == account.profile()
    assert replayed.was_informed(INCIDENT, "breach")


def test_the_profile_of_an_account_never_registered_shows_the_defaults() -> None:
    profile = profile_of(account="bakery-chain")

    assert profile["registered"] is False
    assert profile["roc"] is None
    assert profile["priority_matrix"]["1,2"] == 2
    assert profile["priority_matrix_rows"] == [[1, 2, 3], [2, 3, 4], [3, 4, 4]]
    assert profile["reopen_period"] == {"seconds": 7 * 86400, "text": "7 days"}
    assert profile["roc_informs"] == []
