"""Steps for features/major_incident.feature: the ROC hears of a major incident at once, and only once."""

from __future__ import annotations

import pytest
from pytest_bdd import parsers, scenarios, then, when

from domain import commands as cmd
from domain.account import Account, account_id
from tests.bdd.harness import *  # noqa: F403 - the shared steps and the `story` fixture
from tests.bdd.harness import ACCOUNT, ACTOR, TITLE, WHEN, Story, moment

scenarios("major_incident.feature")

ROC = r'"(?P<roc>[^"]+)"'


def informs(story: Story, account: str) -> list[dict[str, object]]:
    found = story.app.find(account_id(account), Account)
    return [] if found is None else list(found.informs)


@when(parsers.re(rf'{ACTOR} declares {TITLE} a major incident because "(?P<reason>[^"]+)" on {WHEN}'))
def declare(story: Story, actor: str, title: str, reason: str, when: str) -> None:
    story.do(cmd.DeclareMajorIncident(story.incident_id(title), reason=reason, actor=actor, at=moment(when)))


@then(parsers.re(rf'{ROC} is informed of the major incident {TITLE} because "(?P<reason>[^"]+)"'))
def roc_informed(story: Story, roc: str, title: str, reason: str) -> None:
    incident = story.incident(title)
    [inform] = [i for i in informs(story, incident.account) if i["subject_id"] == incident.id]
    assert (inform["roc"], inform["reason"]) == (roc, reason)
    assert title in str(inform["subject"])


@then(parsers.re(rf"{ROC} was informed of {TITLE} only once"))
def informed_once(story: Story, roc: str, title: str) -> None:
    incident = story.incident(title)
    assert [i["roc"] for i in informs(story, incident.account) if i["subject_id"] == incident.id] == [roc]


@then(parsers.re(rf"{TITLE} is a major incident"))
def is_major(story: Story, title: str) -> None:
    incident = story.incident(title)
    assert incident.is_major and incident.is_open


@then(parsers.re(rf"nobody was informed for {ACCOUNT}"))
def nobody_informed(story: Story, account: str) -> None:
    assert informs(story, account) == []


@then(parsers.re(rf'the engine logged that it could not inform the ROC of {ACCOUNT} because "(?P<why>[^"]+)"'))
def refusal_logged(story: Story, account: str, why: str, caplog: pytest.LogCaptureFixture) -> None:
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("processes")]
    assert any("InformRoc refused" in line and account in line and why in line for line in lines), lines
