"""Every rule of the Change aggregate and its scheduling helpers, called with explicit instants."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from hypothesis import given
from hypothesis import strategies as st

from domain.change import (
    APPROVED,
    ASSESSMENT,
    AUTHORISATION,
    AUTHORISED,
    CANCELLABLE_STATUSES,
    CANCELLED,
    CLOSED,
    DRAFT,
    FAILED,
    IMPLEMENTED,
    IMPLEMENTING,
    PENDING,
    REJECTED,
    REVIEW,
    SCHEDULED,
    STATUSES,
    Change,
    ChangeConflict,
    FreezeWindow,
    ScheduleConflict,
    ScheduledWindow,
    find_conflicts,
    within_maintenance_windows,
)
from domain.errors import DomainError, IllegalTransition, InvalidCommand

CHANGE_ID = UUID("c4a11e00-0000-4000-8000-000000000042")
OTHER_CHANGE_ID = UUID("c4a11e00-0000-4000-8000-000000000043")
PROBLEM_ID = UUID("7a2d0c1b-0000-4000-8000-000000000007")
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
REQUESTER = "n2-network"
CHANGE_MANAGER = "change-manager"
TECHNICIAN = "field-tech"
WINDOW_START = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)
WINDOW_END = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


LATER = at(600)


def request(**overrides: Any) -> Change:
    fields: dict[str, Any] = {
        "id": CHANGE_ID,
        "account": "resto-chain",
        "type": "normal",
        "title": "Upgrade router firmware to 7.3",
        "description": "Fixes the nightly watchdog reboots",
        "affected_cis": ("router-12", "router-13"),
        "actor": REQUESTER,
        "at": at(0),
    }
    fields.update(overrides)
    return Change.request(**fields)


def event_names(change: Change) -> list[str]:
    return [type(e).__name__ for e in change.pending_events]


def assert_refused(
    change: Change,
    error: type[DomainError],
    command: Callable[[], object],
    match: str | None = None,
) -> DomainError:
    """The command raises `error` and leaves the change exactly as it was: no event, no change."""
    pending = len(change.pending_events)
    version = change.version
    before = change.summary()
    state = copy.deepcopy(vars(change))
    with pytest.raises(error, match=match) as refusal:
        command()
    assert len(change.pending_events) == pending
    assert change.version == version
    assert change.summary() == before
    assert vars(change) == state
    if isinstance(refusal.value, IllegalTransition):
        assert str(change.id) in str(refusal.value)
    return refusal.value


def assess(change: Change, risk: str = "low", when: datetime | None = None) -> None:
    change.assess(
        risk=risk,
        impact="restaurants 12 and 13 lose their backup link for 5 minutes",
        implementation_plan="push firmware 7.3, reboot",
        backout_plan="reflash firmware 7.2",
        actor=REQUESTER,
        at=when or at(2),
    )


# -- changes in each status ---------------------------------------------------------------------------


def draft(type: str = "normal") -> Change:
    if type == "standard":
        return request(type="standard", template="replace a payment terminal")
    return request(type=type)


def in_assessment() -> Change:
    change = draft()
    change.submit(actor=REQUESTER, at=at(1))
    return change


def awaiting_authorisation(risk: str = "low") -> Change:
    change = in_assessment()
    assess(change, risk)
    return change


def with_cab(members: tuple[str, ...] = ("alice", "bob", "carol"), risk: str = "high") -> Change:
    change = awaiting_authorisation(risk)
    change.convene_cab(members=members, actor=CHANGE_MANAGER, at=at(3))
    return change


def emergency_awaiting_authorisation() -> Change:
    change = draft("emergency")
    change.submit(actor=REQUESTER, at=at(1))
    return change


def with_emergency_cab(members: tuple[str, ...] = ("alice", "dave")) -> Change:
    change = emergency_awaiting_authorisation()
    change.convene_cab(members=members, emergency=True, actor=CHANGE_MANAGER, at=at(2))
    return change


def authorised() -> Change:
    change = awaiting_authorisation("low")
    change.approve(approver=CHANGE_MANAGER, actor=CHANGE_MANAGER, at=at(3))
    return change


def scheduled() -> Change:
    change = authorised()
    change.schedule(start=WINDOW_START, end=WINDOW_END, actor=CHANGE_MANAGER, at=at(4))
    return change


def implementing() -> Change:
    change = scheduled()
    change.start_implementation(actor=TECHNICIAN, at=WINDOW_START)
    return change


def implemented() -> Change:
    change = implementing()
    change.complete(notes="both routers on 7.3", actor=TECHNICIAN, at=WINDOW_START + timedelta(minutes=30))
    return change


def failed() -> Change:
    change = implementing()
    change.fail(
        reason="router-13 did not boot",
        backout_performed="reflashed 7.2 on router-13",
        actor=TECHNICIAN,
        at=WINDOW_START + timedelta(minutes=40),
    )
    return change


def in_review() -> Change:
    change = implemented()
    change.review(outcome="successful, no incident", actor=CHANGE_MANAGER, at=WINDOW_END + timedelta(hours=10))
    return change


def closed() -> Change:
    change = in_review()
    change.close(actor=CHANGE_MANAGER, at=WINDOW_END + timedelta(hours=11))
    return change


def rejected() -> Change:
    change = awaiting_authorisation("low")
    change.reject(approver=CHANGE_MANAGER, reason="not now", actor=CHANGE_MANAGER, at=at(3))
    return change


def cancelled() -> Change:
    change = in_assessment()
    change.cancel(reason="no longer needed", actor=REQUESTER, at=at(2))
    return change


BUILDERS: dict[str, Callable[[], Change]] = {
    DRAFT: draft,
    ASSESSMENT: in_assessment,
    AUTHORISATION: awaiting_authorisation,
    AUTHORISED: authorised,
    SCHEDULED: scheduled,
    IMPLEMENTING: implementing,
    IMPLEMENTED: implemented,
    FAILED: failed,
    REVIEW: in_review,
    CLOSED: closed,
    REJECTED: rejected,
    CANCELLED: cancelled,
}

AFTER_ALL = datetime(2026, 6, 5, 9, 0, tzinfo=UTC)
"""An instant after every builder's last step."""

COMMANDS: dict[str, Callable[[Change, datetime], None]] = {
    "submit": lambda c, t: c.submit(actor=REQUESTER, at=t),
    "assess": lambda c, t: c.assess(
        risk="medium", impact="none", implementation_plan="do", backout_plan="undo", actor=REQUESTER, at=t
    ),
    "convene_cab": lambda c, t: c.convene_cab(members=("alice",), actor=CHANGE_MANAGER, at=t),
    "approve": lambda c, t: c.approve(approver=CHANGE_MANAGER, actor=CHANGE_MANAGER, at=t),
    "reject": lambda c, t: c.reject(approver=CHANGE_MANAGER, reason="no", actor=CHANGE_MANAGER, at=t),
    "schedule": lambda c, t: c.schedule(
        start=AFTER_ALL + timedelta(days=1),
        end=AFTER_ALL + timedelta(days=1, hours=1),
        actor=CHANGE_MANAGER,
        at=t,
    ),
    "start_implementation": lambda c, t: c.start_implementation(actor=TECHNICIAN, at=t),
    "complete": lambda c, t: c.complete(notes="done", actor=TECHNICIAN, at=t),
    "fail": lambda c, t: c.fail(reason="broke", backout_performed="rolled back", actor=TECHNICIAN, at=t),
    "review": lambda c, t: c.review(outcome="ok", actor=CHANGE_MANAGER, at=t),
    "close": lambda c, t: c.close(actor=CHANGE_MANAGER, at=t),
    "cancel": lambda c, t: c.cancel(reason="not needed", actor=REQUESTER, at=t),
}

COMMAND_STATES: dict[str, Callable[[], Change]] = {
    "submit": draft,
    "assess": in_assessment,
    "convene_cab": lambda: awaiting_authorisation("medium"),
    "approve": awaiting_authorisation,
    "reject": awaiting_authorisation,
    "schedule": authorised,
    "start_implementation": scheduled,
    "complete": implementing,
    "fail": implementing,
    "review": implemented,
    "close": in_review,
    "cancel": draft,
}
"""For each command, a change on which it would be accepted at a valid instant."""


# -- request ---------------------------------------------------------------------------------------------


def test_requesting_records_a_draft_change_with_its_details() -> None:
    change = request(problem_id=PROBLEM_ID, affected_cis=[" router-12 ", "router-13"])

    assert change.id == CHANGE_ID
    assert change.version == 1
    assert change.status == DRAFT
    assert change.type == "normal"
    assert change.account == "resto-chain"
    assert change.title == "Upgrade router firmware to 7.3"
    assert change.affected_cis == ("router-12", "router-13")
    assert change.template is None
    assert change.problem_id == PROBLEM_ID
    assert change.requested_at == change.last_at == at(0)
    assert change.risk is None
    assert change.cab_members is None
    assert event_names(change) == ["Requested"]


def test_requesting_a_standard_change_names_its_template() -> None:
    change = request(type="standard", template=" replace a payment terminal ")

    assert change.type == "standard"
    assert change.template == "replace a payment terminal"


@pytest.mark.parametrize("template", [None, "", "  "])
def test_requesting_a_standard_change_without_a_template_is_refused(template: Any) -> None:
    with pytest.raises(InvalidCommand, match="a standard change's template is required"):
        request(type="standard", template=template)


@pytest.mark.parametrize("type", ["normal", "emergency"])
def test_requesting_a_non_standard_change_from_a_template_is_refused(type: str) -> None:
    with pytest.raises(InvalidCommand, match=f"only a standard change comes from a template; a {type} change"):
        request(type=type, template="replace a payment terminal")


def test_a_blank_template_on_a_normal_change_is_ignored() -> None:
    assert request(template="  ").template is None


INVALID_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"type": "urgent"}, "change type must be one of standard, normal, emergency"),
    ({"type": None}, "change type must be one of"),
    ({"title": " "}, "title is required"),
    ({"account": ""}, "account is required"),
    ({"actor": None}, "actor is required"),
    ({"at": datetime(2026, 6, 1, 9, 0)}, "time zone"),
    ({"affected_cis": ()}, "a change must name at least one affected CI"),
    ({"affected_cis": "router-12"}, "affected CIs must be a list of names"),
    ({"affected_cis": None}, "affected CIs must be a list of names"),
    ({"affected_cis": ("router-12", " ")}, "each of the affected CIs is required"),
    ({"affected_cis": ("router-12", "router-12 ")}, "affected CIs list router-12 twice"),
    ({"problem_id": "PRB-7"}, "problem id must be a UUID"),
]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [pytest.param(o, m, id=",".join(f"{k}={v!r}" for k, v in o.items())) for o, m in INVALID_REQUESTS],
)
def test_requesting_with_invalid_details_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        request(**overrides)


# -- submit --------------------------------------------------------------------------------------------------


def test_submitting_a_normal_change_sends_it_to_assessment() -> None:
    change = draft()
    change.submit(actor=REQUESTER, at=at(1))

    assert change.status == ASSESSMENT
    assert change.submitted_at == at(1)
    assert event_names(change) == ["Requested", "Submitted"]


def test_submitting_an_emergency_change_skips_assessment() -> None:
    change = draft("emergency")
    change.submit(actor=REQUESTER, at=at(1))

    assert change.status == AUTHORISATION
    assert event_names(change) == ["Requested", "Submitted"]


def test_submitting_a_standard_change_authorises_it_by_its_template() -> None:
    change = draft("standard")
    change.submit(actor=REQUESTER, at=at(1))

    assert change.status == AUTHORISED
    assert change.authorisation_basis == "standard_template"
    assert change.authorised_at == at(1)
    assert change.risk is None
    assert change.approvals == {}
    assert event_names(change) == ["Requested", "Submitted", "Authorised"]


@pytest.mark.parametrize("status", [s for s in STATUSES if s != DRAFT])
def test_submitting_a_change_that_is_not_a_draft_is_refused(status: str) -> None:
    change = BUILDERS[status]()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.submit(actor=REQUESTER, at=AFTER_ALL),
        match=f"cannot submit change {CHANGE_ID}: it",
    )


# -- assess ---------------------------------------------------------------------------------------------------


def test_assessing_a_normal_change_records_risk_and_plans_and_sends_it_to_authorisation() -> None:
    change = in_assessment()
    change.assess(
        risk="medium",
        impact=" 2 restaurants without backup link ",
        implementation_plan=" push and reboot ",
        backout_plan=" reflash 7.2 ",
        actor=REQUESTER,
        at=at(2),
    )

    assert change.status == AUTHORISATION
    assert (change.risk, change.impact, change.implementation_plan, change.backout_plan) == (
        "medium",
        "2 restaurants without backup link",
        "push and reboot",
        "reflash 7.2",
    )
    assert change.assessed_at == at(2)
    assert event_names(change)[-1] == "Assessed"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("risk", "critical", "risk must be one of low, medium, high"),
        ("risk", None, "risk must be one of"),
        ("impact", " ", "impact is required"),
        ("implementation_plan", "", "implementation plan is required"),
        ("implementation_plan", None, "implementation plan is required"),
        ("backout_plan", "  ", "backout plan is required"),
    ],
)
def test_assessing_without_risk_impact_or_plans_is_refused(field: str, value: Any, message: str) -> None:
    change = in_assessment()
    fields: dict[str, Any] = {"risk": "low", "impact": "i", "implementation_plan": "p", "backout_plan": "b"}
    fields[field] = value

    assert_refused(change, InvalidCommand, lambda: change.assess(**fields, actor=REQUESTER, at=at(2)), match=message)


def test_assessing_a_standard_change_is_refused_as_it_is_pre_approved() -> None:
    change = draft("standard")
    change.submit(actor=REQUESTER, at=at(1))

    assert_refused(
        change,
        IllegalTransition,
        lambda: assess(change),
        match="it is a standard change, pre-approved by its template 'replace a payment terminal'",
    )


def test_assessing_a_normal_change_during_authorisation_is_refused() -> None:
    change = awaiting_authorisation("low")

    assert_refused(
        change,
        IllegalTransition,
        lambda: assess(change, "high", at(3)),
        match="only emergency changes are assessed during authorisation",
    )
    assert change.risk == "low"


def test_an_emergency_change_can_be_assessed_during_authorisation() -> None:
    change = emergency_awaiting_authorisation()
    assess(change, "high")

    assert change.status == AUTHORISATION
    assert change.risk == "high"
    assert event_names(change)[-1] == "Assessed"


def test_an_emergency_change_can_be_assessed_while_its_emergency_cab_sits() -> None:
    change = with_emergency_cab()
    change.approve(approver="alice", actor=CHANGE_MANAGER, at=at(3))
    assess(change, "medium", at(4))

    assert (change.status, change.risk) == (AUTHORISATION, "medium")


def test_assessing_an_emergency_change_twice_is_refused() -> None:
    change = emergency_awaiting_authorisation()
    assess(change, "high")

    assert_refused(
        change,
        IllegalTransition,
        lambda: assess(change, "low", at(3)),
        match="it was already assessed as high risk",
    )


def test_assessing_a_draft_says_to_submit_it_first() -> None:
    change = draft()

    assert_refused(change, IllegalTransition, lambda: assess(change), match="it is a draft; submit it first")


@pytest.mark.parametrize("status", [AUTHORISED, SCHEDULED, IMPLEMENTING, CLOSED, REJECTED, CANCELLED])
def test_assessing_a_change_past_authorisation_is_refused(status: str) -> None:
    change = BUILDERS[status]()

    assert_refused(change, IllegalTransition, lambda: assess(change, "low", AFTER_ALL), match="cannot assess")


# -- authorisation by the change manager ----------------------------------------------------------------------


@pytest.mark.parametrize("role", [None, "change_manager"])
def test_the_change_manager_authorises_a_low_risk_change(role: str | None) -> None:
    change = awaiting_authorisation("low")
    change.approve(approver=" change-manager ", role=role, actor=CHANGE_MANAGER, at=at(3))

    assert change.status == AUTHORISED
    assert change.authorisation_basis == "change_manager"
    assert change.authorised_at == at(3)
    assert change.approvals == {CHANGE_MANAGER: APPROVED}
    assert event_names(change)[-2:] == ["Approved", "Authorised"]
    approval = change.pending_events[-2]
    assert (approval.approver, approval.role) == (CHANGE_MANAGER, "change_manager")  # type: ignore[attr-defined]


def test_the_change_manager_rejects_a_low_risk_change_with_a_reason() -> None:
    change = awaiting_authorisation("low")
    change.reject(approver=CHANGE_MANAGER, reason=" conflicts with the summer sales ", actor=CHANGE_MANAGER, at=at(3))

    assert change.status == REJECTED
    assert change.rejection_reason == "conflicts with the summer sales"
    assert change.rejected_at == at(3)
    assert change.approvals == {CHANGE_MANAGER: "rejected"}
    assert event_names(change)[-1] == "Rejected"


def test_rejecting_without_a_reason_is_refused() -> None:
    change = awaiting_authorisation("low")

    assert_refused(
        change,
        InvalidCommand,
        lambda: change.reject(approver=CHANGE_MANAGER, reason=" ", actor=CHANGE_MANAGER, at=at(3)),
        match="reason is required",
    )


@pytest.mark.parametrize("approver", ["", "  ", None])
def test_a_vote_without_an_approver_is_refused(approver: Any) -> None:
    change = awaiting_authorisation("low")

    assert_refused(
        change,
        InvalidCommand,
        lambda: change.approve(approver=approver, actor=CHANGE_MANAGER, at=at(3)),
        match="approver is required",
    )


def test_a_vote_in_an_unknown_role_is_refused() -> None:
    change = awaiting_authorisation("low")

    assert_refused(
        change,
        InvalidCommand,
        lambda: change.approve(approver="bob", role="ceo", actor=CHANGE_MANAGER, at=at(3)),
        match="role must be one of change_manager, cab_member, not 'ceo'",
    )


@pytest.mark.parametrize("vote", ["approve", "reject"])
def test_a_cab_vote_on_a_low_risk_change_is_refused_as_no_cab_is_needed(vote: str) -> None:
    change = awaiting_authorisation("low")

    assert_refused(
        change,
        IllegalTransition,
        lambda: _vote(change, vote, "alice", role="cab_member"),
        match="as a CAB member: it is low risk, no CAB is needed; the change manager decides",
    )


def test_convening_a_cab_for_a_low_risk_change_is_refused() -> None:
    change = awaiting_authorisation("low")

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.convene_cab(members=("alice",), actor=CHANGE_MANAGER, at=at(3)),
        match="it is low risk, the change manager authorises it without a CAB",
    )


# -- authorisation by the CAB ----------------------------------------------------------------------------------


def _vote(change: Change, vote: str, approver: Any, when: datetime | None = None, role: str | None = None) -> None:
    when = when or at(10)
    if vote == "approve":
        change.approve(approver=approver, role=role, actor=CHANGE_MANAGER, at=when)
    else:
        change.reject(approver=approver, reason="too risky", role=role, actor=CHANGE_MANAGER, at=when)


@pytest.mark.parametrize("risk", ["medium", "high"])
@pytest.mark.parametrize("vote", ["approve", "reject"])
def test_a_medium_or_high_risk_change_cannot_be_decided_before_its_cab_is_convened(risk: str, vote: str) -> None:
    change = awaiting_authorisation(risk)

    assert_refused(
        change,
        IllegalTransition,
        lambda: _vote(change, vote, CHANGE_MANAGER),
        match=f"it is {risk} risk and needs a CAB, convene the CAB first",
    )


@pytest.mark.parametrize("risk", ["medium", "high"])
def test_convening_a_cab_records_its_members(risk: str) -> None:
    change = awaiting_authorisation(risk)
    change.convene_cab(members=[" alice ", "bob"], actor=CHANGE_MANAGER, at=at(3))

    assert change.status == AUTHORISATION
    assert change.cab_members == ("alice", "bob")
    assert change.cab_emergency is False
    assert change.approvals == {"alice": PENDING, "bob": PENDING}
    assert event_names(change)[-1] == "CabConvened"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ((), "a CAB needs at least one member"),
        ([], "a CAB needs at least one member"),
        ("alice", "CAB members must be a list of names"),
        (("alice", " "), "each of the CAB members is required"),
        (("alice", "bob", "alice"), "CAB members list alice twice"),
    ],
)
def test_convening_a_cab_without_distinct_members_is_refused(members: Any, message: str) -> None:
    change = awaiting_authorisation("high")

    assert_refused(
        change,
        InvalidCommand,
        lambda: change.convene_cab(members=members, actor=CHANGE_MANAGER, at=at(3)),
        match=message,
    )


def test_convening_a_second_cab_is_refused() -> None:
    change = with_cab()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.convene_cab(members=("erin",), actor=CHANGE_MANAGER, at=at(4)),
        match="the CAB is already convened",
    )


def test_convening_an_emergency_cab_for_a_normal_change_is_refused() -> None:
    change = awaiting_authorisation("high")

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.convene_cab(members=("alice",), emergency=True, actor=CHANGE_MANAGER, at=at(3)),
        match="it is a normal change, only emergency changes go to the emergency CAB",
    )


@pytest.mark.parametrize(("status", "why"), [(DRAFT, "submit it first"), (ASSESSMENT, "assess it first")])
def test_convening_a_cab_before_authorisation_is_refused(status: str, why: str) -> None:
    change = BUILDERS[status]()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.convene_cab(members=("alice",), actor=CHANGE_MANAGER, at=at(3)),
        match=why,
    )


@pytest.mark.parametrize("status", [AUTHORISED, SCHEDULED, CLOSED, REJECTED, CANCELLED])
def test_convening_a_cab_after_the_decision_is_refused(status: str) -> None:
    change = BUILDERS[status]()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.convene_cab(members=("alice",), actor=CHANGE_MANAGER, at=AFTER_ALL),
        match=f"cannot convene a CAB for change {CHANGE_ID}",
    )


def test_each_cab_approval_is_recorded_per_member_until_the_last_one() -> None:
    change = with_cab()
    change.approve(approver="alice", actor=CHANGE_MANAGER, at=at(4))
    change.approve(approver="carol", role="cab_member", actor=CHANGE_MANAGER, at=at(5))

    assert change.status == AUTHORISATION
    assert change.approvals == {"alice": APPROVED, "bob": PENDING, "carol": APPROVED}
    assert event_names(change)[-2:] == ["Approved", "Approved"]
    assert change.pending_events[-1].role == "cab_member"  # type: ignore[attr-defined]


def test_the_last_cab_approval_authorises_the_change() -> None:
    change = with_cab()
    for minute, member in enumerate(("alice", "bob", "carol"), start=4):
        change.approve(approver=member, actor=CHANGE_MANAGER, at=at(minute))

    assert change.status == AUTHORISED
    assert change.authorisation_basis == "cab"
    assert change.authorised_at == at(6)
    assert change.approvals == {"alice": APPROVED, "bob": APPROVED, "carol": APPROVED}
    assert event_names(change)[-4:] == ["Approved", "Approved", "Approved", "Authorised"]


def test_a_single_member_cab_authorises_with_its_one_approval() -> None:
    change = with_cab(("alice",), risk="medium")
    change.approve(approver="alice", actor=CHANGE_MANAGER, at=at(4))

    assert change.status == AUTHORISED
    assert event_names(change)[-2:] == ["Approved", "Authorised"]


@pytest.mark.parametrize("approvals_before", [0, 2])
def test_any_cab_rejection_rejects_the_change(approvals_before: int) -> None:
    change = with_cab()
    for member in ("alice", "carol")[:approvals_before]:
        change.approve(approver=member, actor=CHANGE_MANAGER, at=at(4))
    change.reject(approver="bob", reason="clashes with the router migration", actor=CHANGE_MANAGER, at=at(5))

    assert change.status == REJECTED
    assert change.rejection_reason == "clashes with the router migration"
    assert change.approvals["bob"] == "rejected"
    assert change.authorisation_basis is None
    assert event_names(change)[-1] == "Rejected"


@pytest.mark.parametrize("vote", ["approve", "reject"])
def test_a_vote_from_someone_outside_the_cab_is_refused(vote: str) -> None:
    change = with_cab(("alice", "bob"))

    assert_refused(
        change,
        IllegalTransition,
        lambda: _vote(change, vote, "mallory"),
        match=r"mallory is not a member of the CAB \(alice, bob\)",
    )


@pytest.mark.parametrize(("first", "second"), [("approve", "approve"), ("approve", "reject")])
def test_a_second_vote_from_the_same_member_is_refused(first: str, second: str) -> None:
    change = with_cab()
    _vote(change, first, "alice", at(4))

    assert_refused(
        change,
        IllegalTransition,
        lambda: _vote(change, second, "alice", at(5)),
        match=r"alice already voted \(approved\)",
    )


@pytest.mark.parametrize("vote", ["approve", "reject"])
def test_the_change_manager_cannot_decide_alone_once_a_cab_is_convened(vote: str) -> None:
    change = with_cab()

    assert_refused(
        change,
        IllegalTransition,
        lambda: _vote(change, vote, "alice", role="change_manager"),
        match="as change manager: the CAB decides it",
    )


@pytest.mark.parametrize("vote", ["approve", "reject"])
@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_vote_after_the_cab_decided_is_refused(decision: str, vote: str) -> None:
    change = with_cab(("alice", "bob"))
    _vote(change, decision, "alice", at(4))
    if decision == "approve":
        _vote(change, "approve", "bob", at(5))

    assert_refused(
        change,
        IllegalTransition,
        lambda: _vote(change, vote, "bob", at(6)),
        match="the decision was already taken",
    )


@pytest.mark.parametrize("vote", ["approve", "reject"])
@pytest.mark.parametrize("status", [AUTHORISED, SCHEDULED, IMPLEMENTING, IMPLEMENTED, FAILED, REVIEW, CLOSED, REJECTED])
def test_a_vote_on_a_change_already_decided_is_refused(status: str, vote: str) -> None:
    change = BUILDERS[status]()

    assert_refused(
        change,
        IllegalTransition,
        lambda: _vote(change, vote, CHANGE_MANAGER, AFTER_ALL),
        match="the decision was already taken",
    )


@pytest.mark.parametrize("vote", ["approve", "reject"])
@pytest.mark.parametrize(
    ("status", "why"),
    [(DRAFT, "it is a draft; submit it first"), (ASSESSMENT, "it is in assessment; assess it first")],
)
def test_a_vote_before_authorisation_is_refused(status: str, why: str, vote: str) -> None:
    change = BUILDERS[status]()

    assert_refused(change, IllegalTransition, lambda: _vote(change, vote, CHANGE_MANAGER), match=why)


@pytest.mark.parametrize("vote", ["approve", "reject"])
def test_a_vote_on_a_cancelled_change_is_refused(vote: str) -> None:
    change = cancelled()

    assert_refused(change, IllegalTransition, lambda: _vote(change, vote, CHANGE_MANAGER), match="it is cancelled")


# -- emergency changes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vote", ["approve", "reject"])
def test_an_emergency_change_cannot_be_decided_before_its_emergency_cab_is_convened(vote: str) -> None:
    change = emergency_awaiting_authorisation()

    assert_refused(
        change,
        IllegalTransition,
        lambda: _vote(change, vote, CHANGE_MANAGER),
        match="an emergency change is decided by the emergency CAB, convene it first",
    )


def test_an_emergency_change_needs_the_emergency_cab_even_when_low_risk() -> None:
    change = emergency_awaiting_authorisation()
    assess(change, "low")

    assert change.needs_cab
    assert_refused(change, IllegalTransition, lambda: _vote(change, "approve", CHANGE_MANAGER), match="emergency CAB")


def test_convening_a_normal_cab_for_an_emergency_change_is_refused() -> None:
    change = emergency_awaiting_authorisation()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.convene_cab(members=("alice",), actor=CHANGE_MANAGER, at=at(2)),
        match="it is an emergency change, convene the emergency CAB instead",
    )


def test_convening_the_emergency_cab_records_it_as_emergency() -> None:
    change = with_emergency_cab()

    assert change.cab_members == ("alice", "dave")
    assert change.cab_emergency is True
    assert event_names(change)[-1] == "CabConvened"


def test_convening_a_second_emergency_cab_is_refused() -> None:
    change = with_emergency_cab()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.convene_cab(members=("erin",), emergency=True, actor=CHANGE_MANAGER, at=at(3)),
        match="the emergency CAB is already convened",
    )


def test_all_emergency_cab_approvals_authorise_an_emergency_change_without_assessment() -> None:
    change = with_emergency_cab()
    change.approve(approver="alice", actor=CHANGE_MANAGER, at=at(3))
    change.approve(approver="dave", actor=CHANGE_MANAGER, at=at(4))

    assert change.status == AUTHORISED
    assert change.authorisation_basis == "emergency_cab"
    assert change.risk is None
    assert event_names(change)[-1] == "Authorised"


def test_any_emergency_cab_rejection_rejects_the_emergency_change() -> None:
    change = with_emergency_cab()
    change.approve(approver="alice", actor=CHANGE_MANAGER, at=at(3))
    change.reject(approver="dave", reason="restart the service instead", actor=CHANGE_MANAGER, at=at(4))

    assert change.status == REJECTED
    assert change.approvals == {"alice": APPROVED, "dave": "rejected"}


def test_a_vote_from_outside_the_emergency_cab_names_the_emergency_cab() -> None:
    change = with_emergency_cab()

    assert_refused(
        change,
        IllegalTransition,
        lambda: _vote(change, "approve", "bob"),
        match=r"bob is not a member of the emergency CAB \(alice, dave\)",
    )


# -- schedule --------------------------------------------------------------------------------------------------


def test_scheduling_an_authorised_change_records_its_window() -> None:
    change = authorised()
    change.schedule(start=WINDOW_START, end=WINDOW_END, actor=CHANGE_MANAGER, at=at(4))

    assert change.status == SCHEDULED
    assert (change.scheduled_start, change.scheduled_end) == (WINDOW_START, WINDOW_END)
    assert change.outside_maintenance_window is False
    assert event_names(change)[-1] == "Scheduled"
    assert change.pending_events[-1].outside_maintenance_window is False  # type: ignore[attr-defined]


def test_scheduling_outside_the_maintenance_windows_is_accepted_and_flagged() -> None:
    change = authorised()
    change.schedule(start=at(300), end=at(330), outside_maintenance_window=True, actor=CHANGE_MANAGER, at=at(4))

    assert change.status == SCHEDULED
    assert change.outside_maintenance_window is True
    assert change.pending_events[-1].outside_maintenance_window is True  # type: ignore[attr-defined]


def test_a_standard_change_is_scheduled_right_after_submission() -> None:
    change = draft("standard")
    change.submit(actor=REQUESTER, at=at(1))
    change.schedule(start=WINDOW_START, end=WINDOW_END, actor=REQUESTER, at=at(2))

    assert change.status == SCHEDULED


def test_rescheduling_a_scheduled_change_moves_its_window() -> None:
    change = scheduled()
    change.schedule(
        start=WINDOW_START + timedelta(days=1), end=WINDOW_END + timedelta(days=1), actor=CHANGE_MANAGER, at=at(5)
    )

    assert change.status == SCHEDULED
    assert change.scheduled_start == WINDOW_START + timedelta(days=1)
    assert event_names(change)[-2:] == ["Scheduled", "Scheduled"]


def test_rescheduling_only_to_flag_it_outside_the_maintenance_windows_is_accepted() -> None:
    change = scheduled()
    change.schedule(start=WINDOW_START, end=WINDOW_END, outside_maintenance_window=True, actor=CHANGE_MANAGER, at=at(5))

    assert change.outside_maintenance_window is True


def test_rescheduling_to_the_same_window_is_refused() -> None:
    change = scheduled()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.schedule(start=WINDOW_START, end=WINDOW_END, actor=CHANGE_MANAGER, at=at(5)),
        match="it is already scheduled 2026-06-01T22:00\\+00:00–23:00",
    )


@pytest.mark.parametrize("end", [WINDOW_START, WINDOW_START - timedelta(minutes=1)])
def test_scheduling_a_window_that_ends_before_it_starts_is_refused(end: datetime) -> None:
    change = authorised()

    assert_refused(
        change,
        InvalidCommand,
        lambda: change.schedule(start=WINDOW_START, end=end, actor=CHANGE_MANAGER, at=at(4)),
        match="must be after the start",
    )


@pytest.mark.parametrize("bound", ["start", "end"])
def test_scheduling_with_a_naive_window_is_refused(bound: str) -> None:
    change = authorised()
    window: dict[str, Any] = {"start": WINDOW_START, "end": WINDOW_END}
    window[bound] = window[bound].replace(tzinfo=None)

    assert_refused(
        change,
        InvalidCommand,
        lambda: change.schedule(**window, actor=CHANGE_MANAGER, at=at(4)),
        match=f"the {bound} must be a date-time with a time zone",
    )


def test_scheduling_over_another_change_on_a_shared_ci_names_that_change_and_ci() -> None:
    change = authorised()
    conflict = ScheduleConflict(
        kind="change",
        reference=str(OTHER_CHANGE_ID),
        start=datetime(2026, 6, 1, 21, 30, tzinfo=UTC),
        end=datetime(2026, 6, 1, 22, 30, tzinfo=UTC),
        detail="on CI router-12",
    )

    error = assert_refused(
        change,
        ChangeConflict,
        lambda: change.schedule(
            start=WINDOW_START, end=WINDOW_END, conflicts=[conflict], actor=CHANGE_MANAGER, at=at(4)
        ),
    )
    assert str(error) == (
        f"cannot schedule change {CHANGE_ID} 2026-06-01T22:00+00:00–23:00: change {OTHER_CHANGE_ID}"
        " on CI router-12 overlaps (2026-06-01T21:30+00:00–22:30)"
    )
    assert isinstance(error, IllegalTransition)


def test_scheduling_over_a_freeze_window_names_the_freeze() -> None:
    change = authorised()
    freeze = ScheduleConflict(
        kind="freeze",
        reference="summer-sales",
        start=datetime(2026, 6, 1, 0, 0, tzinfo=UTC),
        end=datetime(2026, 6, 15, 0, 0, tzinfo=UTC),
    )

    assert_refused(
        change,
        ChangeConflict,
        lambda: change.schedule(
            start=WINDOW_START, end=WINDOW_END, conflicts=(freeze,), actor=CHANGE_MANAGER, at=at(4)
        ),
        match=r"freeze window summer-sales overlaps \(2026-06-01T00:00\+00:00–2026-06-15T00:00\+00:00\)",
    )


def test_scheduling_over_several_conflicts_names_each_of_them() -> None:
    change = scheduled()
    conflicts = find_conflicts(
        CHANGE_ID,
        change.affected_cis,
        WINDOW_START + timedelta(days=1),
        WINDOW_END + timedelta(days=1),
        others=[
            ScheduledWindow(
                OTHER_CHANGE_ID, ("router-13",), WINDOW_START + timedelta(days=1), WINDOW_END + timedelta(days=1)
            ),
            ScheduledWindow(
                "CHG-77", ("router-12", "router-13"), WINDOW_START + timedelta(days=1), WINDOW_END + timedelta(days=1)
            ),
        ],
        freezes=[FreezeWindow("year-end", WINDOW_START, WINDOW_END + timedelta(days=30))],
    )

    error = assert_refused(
        change,
        ChangeConflict,
        lambda: change.schedule(
            start=WINDOW_START + timedelta(days=1),
            end=WINDOW_END + timedelta(days=1),
            conflicts=conflicts,
            actor=CHANGE_MANAGER,
            at=at(5),
        ),
    )
    message = str(error)
    assert f"change {OTHER_CHANGE_ID} on CI router-13 overlaps" in message
    assert "change CHG-77 on CIs router-12, router-13 overlaps" in message
    assert "freeze window year-end overlaps" in message
    assert change.scheduled_start == WINDOW_START


def test_scheduling_with_something_that_is_not_a_conflict_is_refused() -> None:
    change = authorised()

    assert_refused(
        change,
        InvalidCommand,
        lambda: change.schedule(
            start=WINDOW_START,
            end=WINDOW_END,
            conflicts=["CHG-77"],  # type: ignore[list-item]
            actor=CHANGE_MANAGER,
            at=at(4),
        ),
        match="each conflict must be a ScheduleConflict",
    )


@pytest.mark.parametrize("status", [DRAFT, ASSESSMENT, AUTHORISATION])
def test_scheduling_before_authorisation_is_refused(status: str) -> None:
    change = BUILDERS[status]()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.schedule(start=WINDOW_START, end=WINDOW_END, actor=CHANGE_MANAGER, at=at(4)),
        match="it must be authorised first",
    )


@pytest.mark.parametrize("status", [IMPLEMENTING, IMPLEMENTED, FAILED, REVIEW, CLOSED, REJECTED, CANCELLED])
def test_scheduling_once_implementation_started_or_the_change_ended_is_refused(status: str) -> None:
    change = BUILDERS[status]()

    assert_refused(
        change,
        IllegalTransition,
        lambda: COMMANDS["schedule"](change, AFTER_ALL),
        match=f"cannot schedule change {CHANGE_ID}",
    )


# -- find_conflicts and within_maintenance_windows ----------------------------------------------------------


def _window(hour_from: float, hour_to: float) -> tuple[datetime, datetime]:
    day = datetime(2026, 6, 1, tzinfo=UTC)
    return day + timedelta(hours=hour_from), day + timedelta(hours=hour_to)


def test_another_change_on_a_shared_ci_overlapping_the_window_conflicts() -> None:
    start, end = _window(22, 23)
    other = ScheduledWindow(OTHER_CHANGE_ID, ("router-12", "switch-1"), *_window(21.5, 22.5))

    conflicts = find_conflicts(CHANGE_ID, ("router-12", "router-13"), start, end, [other], [])

    assert conflicts == [
        ScheduleConflict(
            kind="change", reference=str(OTHER_CHANGE_ID), start=other.start, end=other.end, detail="on CI router-12"
        )
    ]


def test_another_change_on_other_cis_does_not_conflict() -> None:
    start, end = _window(22, 23)
    other = ScheduledWindow(OTHER_CHANGE_ID, ("router-99",), start, end)

    assert find_conflicts(CHANGE_ID, ("router-12",), start, end, [other], []) == []


@pytest.mark.parametrize(("other_from", "other_to"), [(21, 22), (23, 24), (20, 21)])
def test_a_window_that_only_touches_or_misses_another_does_not_conflict(other_from: int, other_to: int) -> None:
    start, end = _window(22, 23)
    other = ScheduledWindow(OTHER_CHANGE_ID, ("router-12",), *_window(other_from, other_to))
    freeze = FreezeWindow("maintenance-freeze", *_window(other_from, other_to))

    assert find_conflicts(CHANGE_ID, ("router-12",), start, end, [other], [freeze]) == []


@pytest.mark.parametrize("own_id", [CHANGE_ID, str(CHANGE_ID)])
def test_a_change_never_conflicts_with_itself(own_id: UUID | str) -> None:
    start, end = _window(22, 23)
    itself = ScheduledWindow(own_id, ("router-12",), *_window(21, 23))

    assert find_conflicts(CHANGE_ID, ("router-12",), start, end, [itself], []) == []


def test_a_freeze_window_conflicts_whatever_the_cis() -> None:
    start, end = _window(22, 23)
    freeze = FreezeWindow("summer-sales", *_window(0, 24 * 14))

    assert find_conflicts(CHANGE_ID, ("router-12",), start, end, [], [freeze]) == [
        ScheduleConflict(kind="freeze", reference="summer-sales", start=freeze.start, end=freeze.end)
    ]


def test_conflicts_list_changes_then_freezes_in_the_order_given() -> None:
    start, end = _window(22, 23)
    others = [
        ScheduledWindow("CHG-2", ("router-12",), *_window(22, 24)),
        ScheduledWindow("CHG-1", ("router-12",), *_window(20, 22.5)),
    ]
    freezes = [FreezeWindow("b", *_window(0, 48)), FreezeWindow("a", *_window(22.5, 23))]

    conflicts = find_conflicts(CHANGE_ID, ("router-12",), start, end, others, freezes)

    assert [(c.kind, c.reference) for c in conflicts] == [
        ("change", "CHG-2"),
        ("change", "CHG-1"),
        ("freeze", "b"),
        ("freeze", "a"),
    ]


instants = st.integers(min_value=0, max_value=48 * 60).map(
    lambda m: datetime(2026, 6, 1, tzinfo=UTC) + timedelta(minutes=m)
)
windows = st.tuples(instants, st.integers(min_value=1, max_value=600)).map(
    lambda w: (w[0], w[0] + timedelta(minutes=w[1]))
)


@given(windows, windows)
def test_two_changes_on_the_same_ci_conflict_exactly_when_their_windows_overlap(
    mine: tuple[datetime, datetime], theirs: tuple[datetime, datetime]
) -> None:
    found = find_conflicts(CHANGE_ID, ("router-12",), *mine, [ScheduledWindow("CHG-1", ("router-12",), *theirs)], [])
    reverse = find_conflicts("CHG-1", ("router-12",), *theirs, [ScheduledWindow(CHANGE_ID, ("router-12",), *mine)], [])

    overlapping = max(mine[0], theirs[0]) < min(mine[1], theirs[1])
    assert bool(found) == bool(reverse) == overlapping


def test_a_window_inside_one_maintenance_window_is_within() -> None:
    assert within_maintenance_windows(*_window(22, 23), [_window(2, 5), _window(21, 24)])


def test_a_window_spilling_out_of_the_maintenance_window_is_not_within() -> None:
    assert not within_maintenance_windows(*_window(22, 25), [_window(21, 24)])


def test_a_window_covered_by_back_to_back_maintenance_windows_is_within() -> None:
    assert within_maintenance_windows(*_window(22, 26), [_window(24, 30), _window(20, 24)])


def test_a_window_across_a_gap_between_maintenance_windows_is_not_within() -> None:
    assert not within_maintenance_windows(*_window(22, 26), [_window(20, 24), _window(24.5, 30)])


def test_without_maintenance_windows_nothing_is_within() -> None:
    assert not within_maintenance_windows(*_window(22, 23), [])


def test_checking_maintenance_windows_for_an_empty_window_is_refused() -> None:
    with pytest.raises(InvalidCommand, match="must be after the start"):
        within_maintenance_windows(*_window(23, 22), [_window(0, 48)])


@given(windows, st.lists(windows, max_size=5))
def test_a_window_is_within_maintenance_windows_exactly_when_every_minute_is_covered(
    mine: tuple[datetime, datetime], maintenance: list[tuple[datetime, datetime]]
) -> None:
    minutes = int((mine[1] - mine[0]).total_seconds() // 60)
    every_minute_covered = all(
        any(ws <= mine[0] + timedelta(minutes=m) and mine[0] + timedelta(minutes=m + 1) <= we for ws, we in maintenance)
        for m in range(minutes)
    )

    assert within_maintenance_windows(*mine, maintenance) == every_minute_covered


# -- implementation ---------------------------------------------------------------------------------------------


def test_starting_the_implementation_of_a_scheduled_change() -> None:
    change = scheduled()
    change.start_implementation(actor=TECHNICIAN, at=WINDOW_START)

    assert change.status == IMPLEMENTING
    assert change.implementation_started_at == WINDOW_START
    assert event_names(change)[-1] == "ImplementationStarted"


def test_starting_the_implementation_of_an_unscheduled_change_says_to_schedule_it() -> None:
    change = authorised()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.start_implementation(actor=TECHNICIAN, at=at(5)),
        match="it is authorised; schedule it first",
    )


@pytest.mark.parametrize("status", [s for s in STATUSES if s not in (SCHEDULED, AUTHORISED)])
def test_starting_the_implementation_of_a_change_that_is_not_scheduled_is_refused(status: str) -> None:
    change = BUILDERS[status]()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.start_implementation(actor=TECHNICIAN, at=AFTER_ALL),
        match=f"cannot start implementing change {CHANGE_ID}",
    )


def test_completing_the_implementation_records_its_notes() -> None:
    change = implementing()
    change.complete(notes=" both routers on 7.3 ", actor=TECHNICIAN, at=WINDOW_START + timedelta(minutes=30))

    assert change.status == IMPLEMENTED
    assert change.completion_notes == "both routers on 7.3"
    assert change.implemented_at == WINDOW_START + timedelta(minutes=30)
    assert event_names(change)[-1] == "Completed"


def test_completing_without_notes_is_accepted() -> None:
    change = implementing()
    change.complete(actor=TECHNICIAN, at=WINDOW_END)

    assert (change.status, change.completion_notes) == (IMPLEMENTED, "")


@pytest.mark.parametrize("command", ["complete", "fail"])
@pytest.mark.parametrize("status", [s for s in STATUSES if s != IMPLEMENTING])
def test_completing_or_failing_a_change_that_is_not_being_implemented_is_refused(command: str, status: str) -> None:
    change = BUILDERS[status]()
    verb = "complete" if command == "complete" else "record the failure of"

    assert_refused(
        change,
        IllegalTransition,
        lambda: COMMANDS[command](change, AFTER_ALL),
        match=f"cannot {verb} change {CHANGE_ID}",
    )


def test_failing_records_the_reason_and_the_backout_performed() -> None:
    change = implementing()
    change.fail(
        reason=" router-13 did not boot ",
        backout_performed=" reflashed 7.2 ",
        actor=TECHNICIAN,
        at=WINDOW_START + timedelta(minutes=40),
    )

    assert change.status == FAILED
    assert (change.failure_reason, change.backout_performed) == ("router-13 did not boot", "reflashed 7.2")
    assert change.failed_at == WINDOW_START + timedelta(minutes=40)
    assert event_names(change)[-1] == "Failed"


@pytest.mark.parametrize(
    ("reason", "backout", "message"),
    [
        ("", "reflashed", "reason is required"),
        ("broke", " ", "backout performed is required"),
        ("broke", None, "backout performed is required"),
    ],
)
def test_failing_without_a_reason_or_the_backout_performed_is_refused(reason: str, backout: Any, message: str) -> None:
    change = implementing()

    assert_refused(
        change,
        InvalidCommand,
        lambda: change.fail(reason=reason, backout_performed=backout, actor=TECHNICIAN, at=WINDOW_END),
        match=message,
    )


# -- review and close ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [implemented, failed])
def test_reviewing_an_implemented_or_failed_change_records_the_outcome(builder: Callable[[], Change]) -> None:
    change = builder()
    change.review(outcome=" lessons learnt ", actor=CHANGE_MANAGER, at=AFTER_ALL)

    assert change.status == REVIEW
    assert change.review_outcome == "lessons learnt"
    assert change.reviewed_at == AFTER_ALL
    assert event_names(change)[-1] == "Reviewed"


def test_reviewing_without_an_outcome_is_refused() -> None:
    change = implemented()

    assert_refused(
        change,
        InvalidCommand,
        lambda: change.review(outcome="", actor=CHANGE_MANAGER, at=AFTER_ALL),
        match="outcome is required",
    )


def test_reviewing_a_change_being_implemented_says_to_finish_it_first() -> None:
    change = implementing()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.review(outcome="ok", actor=CHANGE_MANAGER, at=AFTER_ALL),
        match="it is being implemented; complete it or record its failure first",
    )


@pytest.mark.parametrize("status", [s for s in STATUSES if s not in (IMPLEMENTED, FAILED)])
def test_reviewing_a_change_that_was_not_implemented_or_attempted_is_refused(status: str) -> None:
    change = BUILDERS[status]()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.review(outcome="ok", actor=CHANGE_MANAGER, at=AFTER_ALL),
        match=f"cannot review change {CHANGE_ID}",
    )


def test_closing_a_reviewed_change_closes_it_for_good() -> None:
    change = in_review()
    change.close(actor=CHANGE_MANAGER, at=AFTER_ALL)

    assert change.status == CLOSED
    assert change.closed_at == AFTER_ALL
    assert event_names(change)[-1] == "Closed"


@pytest.mark.parametrize("status", [IMPLEMENTED, FAILED])
def test_closing_an_unreviewed_change_says_to_review_it_first(status: str) -> None:
    change = BUILDERS[status]()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.close(actor=CHANGE_MANAGER, at=AFTER_ALL),
        match="review it first",
    )


@pytest.mark.parametrize("status", [s for s in STATUSES if s != REVIEW])
def test_closing_a_change_that_is_not_in_review_is_refused(status: str) -> None:
    change = BUILDERS[status]()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.close(actor=CHANGE_MANAGER, at=AFTER_ALL),
        match=f"cannot close change {CHANGE_ID}",
    )


# -- cancel --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", CANCELLABLE_STATUSES)
def test_cancelling_a_change_before_implementation_is_accepted(status: str) -> None:
    change = BUILDERS[status]()
    change.cancel(reason=" customer withdrew it ", actor=REQUESTER, at=AFTER_ALL)

    assert change.status == CANCELLED
    assert change.cancellation_reason == "customer withdrew it"
    assert change.cancelled_at == AFTER_ALL
    assert event_names(change)[-1] == "Cancelled"


def test_cancelling_a_change_with_a_cab_sitting_is_accepted() -> None:
    change = with_cab()
    change.approve(approver="alice", actor=CHANGE_MANAGER, at=at(4))
    change.cancel(reason="superseded", actor=REQUESTER, at=at(5))

    assert change.status == CANCELLED


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (IMPLEMENTING, "complete it or record its failure instead"),
        (IMPLEMENTED, "review and close it instead"),
        (FAILED, "review and close it instead"),
        (REVIEW, "review and close it instead"),
        (CLOSED, "it is closed"),
        (REJECTED, "it was rejected"),
        (CANCELLED, "it is cancelled"),
    ],
)
def test_cancelling_a_change_once_implementation_started_or_decided_against_is_refused(status: str, why: str) -> None:
    change = BUILDERS[status]()

    assert_refused(
        change,
        IllegalTransition,
        lambda: change.cancel(reason="not needed", actor=REQUESTER, at=AFTER_ALL),
        match=why,
    )


def test_cancelling_without_a_reason_is_refused() -> None:
    change = draft()

    assert_refused(
        change,
        InvalidCommand,
        lambda: change.cancel(reason="  ", actor=REQUESTER, at=at(1)),
        match="reason is required",
    )


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("status", [CLOSED, REJECTED, CANCELLED])
def test_every_command_on_a_closed_rejected_or_cancelled_change_is_refused(status: str, command: str) -> None:
    change = BUILDERS[status]()

    assert_refused(change, IllegalTransition, lambda: COMMANDS[command](change, AFTER_ALL))


# -- instants and actors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_dated_before_the_last_recorded_step_is_refused(command: str) -> None:
    change = COMMAND_STATES[command]()
    earlier = change.last_at - timedelta(seconds=1)

    error = assert_refused(
        change,
        InvalidCommand,
        lambda: COMMANDS[command](change, earlier),
        match="before its last recorded step",
    )
    assert str(CHANGE_ID) in str(error)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_at_the_same_instant_as_the_last_step_is_accepted(command: str) -> None:
    change = COMMAND_STATES[command]()
    version = change.version

    COMMANDS[command](change, change.last_at)

    assert change.version > version


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_with_a_naive_instant_is_refused(command: str) -> None:
    change = COMMAND_STATES[command]()

    assert_refused(
        change,
        InvalidCommand,
        lambda: COMMANDS[command](change, datetime(2026, 6, 1, 12, 0)),
        match="the instant must be a date-time with a time zone",
    )


@pytest.mark.parametrize("actor", ["", "   ", None])
def test_a_command_without_an_actor_is_refused(actor: Any) -> None:
    change = draft()

    assert_refused(
        change,
        InvalidCommand,
        lambda: change.submit(actor=actor, at=at(1)),
        match="actor is required",
    )


def test_instants_in_other_time_zones_are_compared_as_instants() -> None:
    change = draft()
    paris_summer = timezone(timedelta(hours=2))
    change.submit(actor=REQUESTER, at=datetime(2026, 6, 1, 11, 30, tzinfo=paris_summer))

    assert change.last_at == at(30)
    assert_refused(change, InvalidCommand, lambda: assess(change, "low", at(29)), match="before its last recorded step")


def test_every_event_records_who_did_it_and_when() -> None:
    change = with_cab(("alice",))
    change.approve(approver="alice", actor="cab-secretary", at=at(4))

    assert [(type(e).__name__, e.actor, e.at) for e in change.pending_events] == [  # type: ignore[attr-defined]
        ("Requested", REQUESTER, at(0)),
        ("Submitted", REQUESTER, at(1)),
        ("Assessed", REQUESTER, at(2)),
        ("CabConvened", CHANGE_MANAGER, at(3)),
        ("Approved", "cab-secretary", at(4)),
        ("Authorised", "cab-secretary", at(4)),
    ]


# -- summary and replay -----------------------------------------------------------------------------------------------


def test_the_summary_gives_plain_values_including_each_members_vote() -> None:
    change = with_cab(("alice", "bob"))
    change.approve(approver="bob", actor=CHANGE_MANAGER, at=at(4))

    summary = change.summary()

    assert summary["id"] == str(CHANGE_ID)
    assert summary["status"] == AUTHORISATION
    assert summary["affected_cis"] == ["router-12", "router-13"]
    assert summary["cab_members"] == ["alice", "bob"]
    assert summary["approvals"] == {"alice": PENDING, "bob": APPROVED}
    assert summary["risk"] == "high"


def _cab_history() -> Change:
    change = request(problem_id=PROBLEM_ID)
    change.submit(actor=REQUESTER, at=at(1))
    assess(change, "high")
    change.convene_cab(members=("alice", "bob"), actor=CHANGE_MANAGER, at=at(3))
    change.approve(approver="alice", actor=CHANGE_MANAGER, at=at(4))
    change.approve(approver="bob", actor=CHANGE_MANAGER, at=at(5))
    change.schedule(start=WINDOW_START, end=WINDOW_END, actor=CHANGE_MANAGER, at=at(6))
    change.schedule(
        start=WINDOW_START + timedelta(hours=1),
        end=WINDOW_END + timedelta(hours=1),
        outside_maintenance_window=True,
        actor=CHANGE_MANAGER,
        at=at(7),
    )
    change.start_implementation(actor=TECHNICIAN, at=WINDOW_START + timedelta(hours=1))
    change.fail(reason="no boot", backout_performed="reflashed 7.2", actor=TECHNICIAN, at=WINDOW_END)
    change.review(outcome="firmware image corrupt", actor=CHANGE_MANAGER, at=AFTER_ALL)
    change.close(actor=CHANGE_MANAGER, at=AFTER_ALL)
    return change


def test_replaying_the_events_rebuilds_the_same_change() -> None:
    for change in (_cab_history(), rejected(), with_emergency_cab(), cancelled()):
        replayed: Change | None = None
        for domain_event in change.collect_events():
            replayed = domain_event.mutate(replayed)

        assert replayed is not None
        assert replayed.summary() == change.summary()


def test_a_change_stored_and_read_back_has_the_same_summary() -> None:
    change = _cab_history()
    app: Application[UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(change)

    stored: Change = app.repository.get(CHANGE_ID)

    assert stored.summary() == change.summary()
    assert stored.affected_cis == ("router-12", "router-13")
    assert stored.cab_members == ("alice", "bob")
