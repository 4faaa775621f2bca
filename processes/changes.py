"""The change outcome process: a change's success resolves the problems it was meant to fix; its
failure sends them back to investigation.

A change is linked to a problem when it was requested for it (`problem_id`) or proposed on it
(`Problem.ChangeProposed`); the process keeps those links in its own table, since a change's
completion does not say which problems proposed it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.change import Change
from domain.commands import ReopenInvestigation, ResolveProblem
from domain.events import aggregate_name, event_name
from domain.problem import KNOWN_ERROR, ROOT_CAUSE_KNOWN, Problem
from processes.incidents import CommandProcess, happened_since, kind_of, later, when

log = logging.getLogger(__name__)

CHANGE_PROBLEMS_SCHEMA = """CREATE TABLE IF NOT EXISTS change_problems (
    change_id TEXT NOT NULL,
    problem_id TEXT NOT NULL,
    PRIMARY KEY (change_id, problem_id)
)"""

RESOLVABLE = (ROOT_CAUSE_KNOWN, KNOWN_ERROR)
"""Problem statuses in which a change's outcome decides what happens next."""

_PROBLEM_CHANGE_PROPOSED = event_name(Problem.ChangeProposed)
_CHANGE_REQUESTED = event_name(Change.Requested)
_CHANGE_COMPLETED = event_name(Change.Completed)
_CHANGE_FAILED = event_name(Change.Failed)


class ChangeOutcomeProcess(CommandProcess):
    """Resolves a problem via its completed change; reopens its investigation when the change failed."""

    name = "change_outcome_process"
    reads = (aggregate_name(Problem), aggregate_name(Change))
    actor = "change-outcome-process"

    def schema(self) -> Sequence[str]:
        return (CHANGE_PROBLEMS_SCHEMA,)

    def react(self, envelope: dict[str, Any]) -> None:
        kind = f"{envelope['aggregate_type']}.{kind_of(envelope)}"
        aggregate_id = UUID(str(envelope["aggregate_id"]))
        payload = envelope["payload"]
        if kind == _PROBLEM_CHANGE_PROPOSED:
            self._remember(UUID(str(payload["change_id"])), aggregate_id)
        elif kind == _CHANGE_REQUESTED and payload.get("problem_id"):
            self._remember(aggregate_id, UUID(str(payload["problem_id"])))
        elif kind == _CHANGE_COMPLETED:
            at = when(envelope["occurred_at"])
            for problem in self._problems(aggregate_id):
                self._resolve(problem, aggregate_id, at)
        elif kind == _CHANGE_FAILED:
            at = when(envelope["occurred_at"])
            for problem in self._problems(aggregate_id):
                self._reopen(problem, aggregate_id, payload, at)

    def _remember(self, change_id: UUID, problem_id: UUID) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO change_problems (change_id, problem_id) VALUES (?, ?)"
                " ON CONFLICT (change_id, problem_id) DO NOTHING",
                (str(change_id), str(problem_id)),
            )

    def _problems(self, change_id: UUID) -> list[Problem]:
        """The problems this change was meant to fix, as they stand now."""
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT problem_id FROM change_problems WHERE change_id = ? ORDER BY problem_id", (str(change_id),)
            ).all()
        ids = [UUID(r["problem_id"]) for r in rows]
        change = self.app.find(change_id, Change)
        if change is not None and change.problem_id is not None and change.problem_id not in ids:
            ids.append(change.problem_id)
        found = [self.app.find(i, Problem) for i in ids]
        return [p for p in found if p is not None]

    def _resolve(self, problem: Problem, change_id: UUID, at: datetime) -> None:
        if happened_since(self.app, problem.id, Problem.Resolved, match=lambda e: e.via_change_id == change_id):
            return  # resolved via this change already (and perhaps reopened since, by someone who knew why)
        if problem.status not in RESOLVABLE:
            log.info(
                "%s: change %s completed, but problem %s is %s: not resolved", self.name, change_id, problem.id,
                problem.status,
            )  # fmt: skip
            return
        change = self.app.find(change_id, Change)
        title = f' "{change.title}"' if change is not None else ""
        notes = f"change {change_id}{title} completed"
        if change is not None and change.completion_notes:
            notes += f": {change.completion_notes}"
        command = ResolveProblem(
            problem.id, actor=self.actor, at=later(at, problem), via_change_id=change_id, notes=notes
        )
        self.issue(command)

    def _reopen(self, problem: Problem, change_id: UUID, payload: dict[str, Any], at: datetime) -> None:
        if problem.status not in RESOLVABLE:
            return  # still under investigation (nothing to reopen), or resolved otherwise since
        if happened_since(self.app, problem.id, Problem.InvestigationReopened, at):
            return
        change = self.app.find(change_id, Change)
        title = f' "{change.title}"' if change is not None else ""
        reason = f"change {change_id}{title} failed: {payload['reason']} (backed out: {payload['backout_performed']})"
        self.issue(ReopenInvestigation(problem.id, reason=reason, actor=self.actor, at=later(at, problem)))
