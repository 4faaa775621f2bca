"""Steps for features/problems.feature: recurring incidents, known errors, and the changes that fix them."""

from __future__ import annotations

from pytest_bdd import given, parsers, scenarios, then, when

from application import problems as prb
from domain import commands as cmd
from domain.problem import KNOWN_ERROR, RESOLVED, UNDER_INVESTIGATION
from tests.bdd.harness import *  # noqa: F403 - the shared steps and the `story` fixture
from tests.bdd.harness import ACCOUNT, ACTOR, TITLE, WHEN, WINDOW, Story, authorised_change, moment, window

scenarios("problems.feature")

CI = r'"(?P<ci>[^"]+)"'
PROBLEM = rf"the problem on {CI}"
CHANGE = r'the change "(?P<change>[^"]+)"'


# -- the problem ----------------------------------------------------------------------------------


@then(parsers.re(rf"no problem is proposed for {CI}"))
def no_problem(story: Story, ci: str) -> None:
    assert [p.title for p in story.engine.problems() if ci in (p.ci, p.category)] == []


@then(parsers.re(rf'the problem "(?P<problem>[^"]+)" is proposed for {ACCOUNT}, linking:'))
def problem_proposed(story: Story, problem: str, account: str, datatable: list[list[str]]) -> None:
    [found] = [p for p in story.engine.problems() if p.title == problem]
    assert (found.account, found.status) == (account, "new")
    assert prb.incidents_of(story.app, found) == tuple(story.incident_id(row[0]) for row in datatable)
    assert found.incident_count == len(datatable)


@then(parsers.re(rf"{TITLE} names {PROBLEM}"))
def names_problem(story: Story, title: str, ci: str) -> None:
    assert story.incident(title).problem_ids == [story.problem_on(ci).id]


@then(parsers.re(rf"{TITLE} names no problem"))
def names_no_problem(story: Story, title: str) -> None:
    assert story.incident(title).problem_ids == []


@then(parsers.re(rf"{PROBLEM} links (?P<count>\d+) incidents, the last being {TITLE}"), converters={"count": int})
def problem_links(story: Story, ci: str, count: int, title: str) -> None:
    linked = prb.incidents_of(story.app, story.problem_on(ci))
    assert (len(linked), linked[-1]) == (count, story.incident_id(title))


@when(parsers.re(rf"{ACTOR} unlinks {TITLE} from {PROBLEM} on {WHEN}"))
def unlink_incident(story: Story, actor: str, title: str, ci: str, when: str) -> None:
    problem_id = story.problem_on(ci).id
    story.do(cmd.RemoveIncidentFromProblem(problem_id, story.incident_id(title), actor=actor, at=moment(when)))


@when(parsers.re(rf"{ACTOR} starts investigating {PROBLEM} on {WHEN}"))
def investigate(story: Story, actor: str, ci: str, when: str) -> None:
    story.do(cmd.StartInvestigation(story.problem_on(ci).id, actor=actor, at=moment(when)))


@given(parsers.re(rf'{ACTOR} found the root cause "(?P<cause>[^"]+)" of {PROBLEM} on {WHEN}'))
def root_cause(story: Story, actor: str, cause: str, ci: str, when: str) -> None:
    problem_id = story.problem_on(ci).id
    story.do(cmd.StartInvestigation(problem_id, actor=actor, at=moment(when)))
    story.do(cmd.RecordRootCause(problem_id, analysis=cause, actor=actor, at=moment(when)))


@given(parsers.re(rf'{ACTOR} published the workaround "(?P<workaround>[^"]+)" for {PROBLEM} on {WHEN}'))
@when(parsers.re(rf'{ACTOR} publishes the workaround "(?P<workaround>[^"]+)" for {PROBLEM} on {WHEN}'))
def publish_workaround(story: Story, actor: str, workaround: str, ci: str, when: str) -> None:
    story.do(cmd.PublishWorkaround(story.problem_on(ci).id, workaround=workaround, actor=actor, at=moment(when)))


@then(parsers.re(rf"{PROBLEM} is a known error"))
def known_error(story: Story, ci: str) -> None:
    assert story.problem_on(ci).status == KNOWN_ERROR


@then(parsers.re(rf'{TITLE} shows the workaround "(?P<workaround>[^"]+)"'))
def shows_workaround(story: Story, title: str, workaround: str) -> None:
    incident = story.incident(title)
    assert incident.workaround == workaround
    assert incident.workaround_problem_id in incident.problem_ids


@then(parsers.re(rf"{TITLE} shows no workaround"))
def shows_no_workaround(story: Story, title: str) -> None:
    assert story.incident(title).workaround is None


# -- the change meant to fix it --------------------------------------------------------------------


@given(
    parsers.re(
        rf"{ACTOR} had {CHANGE} on {CI} requested for the problem on \"(?P<problem_ci>[^\"]+)\","
        rf" authorised by the change manager and scheduled {WINDOW}"
    )
)
def change_for_problem(
    story: Story, actor: str, change: str, ci: str, problem_ci: str, day: str, start: str, end: str
) -> None:
    problem = story.problem_on(problem_ci)
    first, last = window(day, start, end)
    at = problem.last_at
    change_id = authorised_change(story, actor, change, ci, problem.account, at, problem_id=problem.id)
    story.do(cmd.ScheduleChange(change_id, start=first, end=last, actor="change manager", at=at))


@when(parsers.re(rf"{ACTOR} starts {CHANGE} on {WHEN}"))
def start_change(story: Story, actor: str, change: str, when: str) -> None:
    story.do(cmd.StartChange(story.change_id(change), actor=actor, at=moment(when)))


@when(parsers.re(rf"{ACTOR} completes {CHANGE} on {WHEN}"))
def complete_change(story: Story, actor: str, change: str, when: str) -> None:
    story.do(cmd.CompleteChange(story.change_id(change), actor=actor, at=moment(when), notes="firmware 15.4 running"))


@when(
    parsers.re(
        rf'{ACTOR} records that {CHANGE} failed on {WHEN} because "(?P<reason>[^"]+)",'
        r' backed out by "(?P<backout>[^"]+)"'
    )
)
def fail_change(story: Story, actor: str, change: str, when: str, reason: str, backout: str) -> None:
    command = cmd.FailChange(story.change_id(change), reason=reason, backout_performed=backout, actor=actor,
                             at=moment(when))  # fmt: skip
    story.do(command)


@then(parsers.re(rf"{PROBLEM} is resolved by {CHANGE}"))
def resolved_by_change(story: Story, ci: str, change: str) -> None:
    problem = story.problem_on(ci)
    assert (problem.status, problem.resolved_via_change_id) == (RESOLVED, story.change_id(change))


@then(parsers.re(rf'{PROBLEM} is under investigation again because {CHANGE} failed: "(?P<reason>[^"]+)"'))
def investigated_again(story: Story, ci: str, change: str, reason: str) -> None:
    problem = story.problem_on(ci)
    assert problem.status == UNDER_INVESTIGATION
    assert problem.reopen_reason is not None
    assert f'change {story.change_id(change)} "{change}" failed: {reason}' in problem.reopen_reason
