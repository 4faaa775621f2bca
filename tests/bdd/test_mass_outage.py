"""Steps for features/mass_outage.feature: a carrier link's parent incident carries the restaurants' incidents."""

from __future__ import annotations

from pytest_bdd import given, parsers, scenarios, then, when

from domain import commands as cmd
from tests.bdd.harness import *  # noqa: F403 - the shared steps and the `story` fixture
from tests.bdd.harness import ACCOUNT, ACTOR, TITLE, WHEN, Story, log_incident, moment

scenarios("mass_outage.feature")

PARENT = r'"(?P<parent>[^"]+)"'


@given(parsers.re(rf"these restaurants of {ACCOUNT} called the N1 hotline:"))
def restaurants_called(story: Story, account: str, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert header == ["incident", "CI", "logged"], header
    for title, ci, logged in rows:
        log_incident(story, "hotline N1", title, ci, account, moment(logged))
        story.attached_children.append(title)


@given(parsers.re(rf"{ACTOR} attached the restaurants' incidents to {PARENT} on {WHEN}"))
@when(parsers.re(rf"{ACTOR} attaches the restaurants' incidents to {PARENT} on {WHEN}"))
def attach_restaurants(story: Story, actor: str, parent: str, when: str) -> None:
    for title in story.attached_children:
        story.do(cmd.AttachIncident(story.incident_id(title), story.incident_id(parent), actor=actor, at=moment(when)))


@when(parsers.re(rf"{ACTOR} attaches {TITLE} to {PARENT} on {WHEN}"))
def attach(story: Story, actor: str, title: str, parent: str, when: str) -> None:
    story.do(cmd.AttachIncident(story.incident_id(title), story.incident_id(parent), actor=actor, at=moment(when)))


@then(parsers.re(rf"{PARENT} has (?P<count>\d+) child incidents"), converters={"count": int})
def has_children(story: Story, parent: str, count: int) -> None:
    children = story.incident(parent).children
    assert children == [story.incident_id(t) for t in story.attached_children]
    assert len(children) == count
    for child in children:
        assert story.engine.incident(child).parent_id == story.incident_id(parent)
