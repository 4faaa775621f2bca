"""Steps for features/changes.feature: CAB, emergency CAB, standard templates, freezes and conflicts."""

from __future__ import annotations

from uuid import uuid5

from pytest_bdd import given, parsers, scenarios, then, when

from domain import commands as cmd
from domain.change import AUTHORISATION, AUTHORISED, BY_CAB, BY_EMERGENCY_CAB, BY_TEMPLATE, PENDING, SCHEDULED, Change
from tests.bdd.harness import *  # noqa: F403 - the shared steps and the `story` fixture
from tests.bdd.harness import ACCOUNT, ACTOR, DAY, IDS, WHEN, WINDOW, Story, authorised_change, moment, names, window
from tests.integration.test_processes import paris

scenarios("changes.feature")

CHANGE = r'"(?P<change>[^"]+)"'
VERB = r"(?P<verb>{}|tries to {})"
MEMBERS = r'(?P<members>"[^"]+"(?:, "[^"]+")* and "[^"]+")'


def load(story: Story, change: str) -> Change:
    return story.app.load(story.change_id(change), Change, "change")


# -- requesting --------------------------------------------------------------------------------------


@given(
    parsers.re(
        rf'{ACTOR} requested the (?P<kind>normal|emergency) change {CHANGE} on "(?P<ci>[^"]+)" of {ACCOUNT} on {WHEN}'
    )
)
@when(
    parsers.re(
        rf'{ACTOR} requests the (?P<kind>normal|emergency) change {CHANGE} on "(?P<ci>[^"]+)" of {ACCOUNT} on {WHEN}'
    )
)
def request(story: Story, actor: str, kind: str, change: str, ci: str, account: str, when: str) -> None:
    change_id = uuid5(IDS, f"change/{change}")
    story.changes[change] = change_id
    at = moment(when)
    story.do(cmd.RequestChange(id=change_id, account=account, type=kind, title=change, affected_cis=(ci,),
                               actor=actor, at=at))  # fmt: skip
    if kind == "normal":
        story.do(cmd.SubmitChange(change_id, actor=actor, at=at))


@when(
    parsers.re(
        rf'{ACTOR} requests the standard change {CHANGE} on "(?P<ci>[^"]+)" of {ACCOUNT} from the template'
        rf' "(?P<template>[^"]+)" on {WHEN}'
    )
)
def request_standard(story: Story, actor: str, change: str, ci: str, account: str, template: str, when: str) -> None:
    change_id = uuid5(IDS, f"change/{change}")
    story.changes[change] = change_id
    story.do(cmd.RequestChange(id=change_id, account=account, type="standard", title=change, affected_cis=(ci,),
                               actor=actor, at=moment(when), template=template))  # fmt: skip


@when(parsers.re(rf"{ACTOR} submits {CHANGE} on {WHEN}"))
def submit(story: Story, actor: str, change: str, when: str) -> None:
    story.do(cmd.SubmitChange(story.change_id(change), actor=actor, at=moment(when)))


@given(
    parsers.re(
        rf'{ACTOR} had the change {CHANGE} on "(?P<ci>[^"]+)" of {ACCOUNT} authorised by the change manager on {WHEN}'
    )
)
def had_authorised(story: Story, actor: str, change: str, ci: str, account: str, when: str) -> None:
    authorised_change(story, actor, change, ci, account, moment(when))


# -- authorising -------------------------------------------------------------------------------------


@when(parsers.re(rf"{ACTOR} assesses {CHANGE} as (?P<risk>low|medium|high) risk on {WHEN}"))
def assess(story: Story, actor: str, change: str, risk: str, when: str) -> None:
    story.do(cmd.AssessChange(story.change_id(change), risk=risk, impact="the Marseille restaurants lose payments for 10 min",
                              implementation_plan="swap at night", backout_plan="put the old switch back",
                              actor=actor, at=moment(when)))  # fmt: skip


@when(
    parsers.re(
        rf"{ACTOR} {VERB.format('convenes', 'convene')} the (?P<cab>CAB|emergency CAB) {MEMBERS} for {CHANGE} on {WHEN}"
    )
)
def convene(story: Story, actor: str, verb: str, cab: str, members: str, change: str, when: str) -> None:
    command = cmd.ConveneCab(story.change_id(change), members=names(members), actor=actor, at=moment(when),
                             emergency=cab == "emergency CAB")  # fmt: skip
    story.attempt(verb, command)


@when(parsers.re(rf"{ACTOR} {VERB.format('approves', 'approve')} {CHANGE} on {WHEN}"))
def approve(story: Story, actor: str, verb: str, change: str, when: str) -> None:
    story.attempt(verb, cmd.ApproveChange(story.change_id(change), approver=actor, actor=actor, at=moment(when)))


@when(parsers.re(rf'{ACTOR} rejects {CHANGE} because "(?P<reason>[^"]+)" on {WHEN}'))
def reject(story: Story, actor: str, change: str, reason: str, when: str) -> None:
    story.do(cmd.RejectChange(story.change_id(change), approver=actor, reason=reason, actor=actor, at=moment(when)))


@then(parsers.re(rf'{CHANGE} is still awaiting authorisation, "(?P<last>[^"]+)" yet to approve'))
def still_awaiting(story: Story, change: str, last: str) -> None:
    found = load(story, change)
    assert found.status == AUTHORISATION
    assert [m for m, vote in found.approvals.items() if vote == PENDING] == [last]


@then(parsers.re(rf"{CHANGE} is authorised by the (?P<cab>CAB|emergency CAB)"))
def authorised_by_cab(story: Story, change: str, cab: str) -> None:
    found = load(story, change)
    assert (found.status, found.authorisation_basis) == (
        AUTHORISED,
        BY_EMERGENCY_CAB if cab == "emergency CAB" else BY_CAB,
    )
    assert found.cab_emergency == (cab == "emergency CAB")


@then(parsers.re(rf'{CHANGE} is authorised by its template "(?P<template>[^"]+)"'))
def authorised_by_template(story: Story, change: str, template: str) -> None:
    found = load(story, change)
    assert (found.status, found.authorisation_basis, found.template) == (AUTHORISED, BY_TEMPLATE, template)


@then(parsers.re(rf"no CAB was convened for {CHANGE}"))
def no_cab(story: Story, change: str) -> None:
    found = load(story, change)
    assert (found.cab_members, found.approvals, found.risk) == (None, {}, None)


@then(parsers.re(rf'{CHANGE} is rejected because "(?P<reason>[^"]+)"'))
def rejected(story: Story, change: str, reason: str) -> None:
    found = load(story, change)
    assert (found.status, found.rejection_reason) == ("rejected", reason)


@then(parsers.re(r'the change is refused because "(?P<reason>[^"]+)"'))
def refused_because(story: Story, reason: str) -> None:
    assert story.refusal is not None, "nothing was refused"
    assert reason in str(story.refusal), str(story.refusal)


# -- planning ----------------------------------------------------------------------------------------


@given(
    parsers.re(
        rf'{ACTOR} froze the changes of {ACCOUNT} for the "(?P<freeze>[^"]+)"'
        rf" from (?P<start>{DAY} at \d\d:\d\d) to (?P<end>{DAY} at \d\d:\d\d)"
    )
)
def freeze(story: Story, actor: str, account: str, freeze: str, start: str, end: str) -> None:
    story.do(cmd.AddFreezeWindow(account=account, name=freeze, start=moment(start), end=moment(end), actor=actor,
                                 at=paris("2026-01-05", "09:00"), reason="no change during the sales"))  # fmt: skip


@given(parsers.re(rf"{ACTOR} (?P<verb>scheduled) {CHANGE} {WINDOW}"))
@when(parsers.re(rf"{ACTOR} {VERB.format('schedules', 'schedule')} {CHANGE} {WINDOW}"))
def schedule(story: Story, actor: str, verb: str, change: str, day: str, start: str, end: str) -> None:
    first, last = window(day, start, end)
    found = load(story, change)
    story.attempt(verb, cmd.ScheduleChange(found.id, start=first, end=last, actor=actor, at=found.last_at))


@then(parsers.re(rf"{CHANGE} is scheduled {WINDOW}"))
def scheduled(story: Story, change: str, day: str, start: str, end: str) -> None:
    found = load(story, change)
    assert (found.status, found.scheduled_start, found.scheduled_end) == (SCHEDULED, *window(day, start, end))


@then(parsers.re(rf"the change is refused because it overlaps the change {CHANGE} on CI (?P<ci>\S+)"))
def refused_overlapping(story: Story, change: str, ci: str) -> None:
    assert story.refusal is not None, "nothing was refused"
    assert f"change {story.change_id(change)} on CI {ci} overlaps" in str(story.refusal), str(story.refusal)
