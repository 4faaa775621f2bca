"""A problem's reach to the incidents it causes: `ProblemIncidentsProcess` pushes a known error's
workaround to every open incident linked to it, and resolves them when the problem is resolved.

Recurring incidents proposing a problem: `processes.recurring`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.commands import LinkIncidentToProblem, NoteWorkaround, ResolveIncident
from domain.events import aggregate_name, event_name
from domain.incident import Incident
from domain.problem import CLOSED, RESOLVED, Problem
from processes.incidents import CommandProcess, happened_since, kind_of, later, when

log = logging.getLogger(__name__)

_INCIDENT = aggregate_name(Incident)
_PROBLEM_WORKAROUND_PUBLISHED = event_name(Problem.WorkaroundPublished)
_PROBLEM_INCIDENT_LINKED = event_name(Problem.IncidentLinked)
_INCIDENT_PROBLEM_LINKED = event_name(Incident.ProblemLinked)
_PROBLEM_RESOLVED = event_name(Problem.Resolved)


class ProblemIncidentsProcess(CommandProcess):
    """Tells the incidents a problem causes what it learnt: its workaround, then its resolution."""

    name = "problem_incidents_process"
    reads = (aggregate_name(Problem), _INCIDENT)
    actor = "problem-incidents-process"

    def react(self, envelope: dict[str, Any]) -> None:
        kind = f"{envelope['aggregate_type']}.{kind_of(envelope)}"
        aggregate_id = UUID(str(envelope["aggregate_id"]))
        payload = envelope["payload"]
        at = when(envelope["occurred_at"])
        if kind == _PROBLEM_WORKAROUND_PUBLISHED:
            problem = self.app.find(aggregate_id, Problem)
            if problem is None or problem.workaround != payload["workaround"]:
                return  # a later workaround replaced this one; its own event pushes it
            linked = self.app.incidents_of(problem)
            for incident_id in linked:
                self._push_workaround(problem, incident_id, at, linked)
        elif kind == _PROBLEM_INCIDENT_LINKED:
            problem = self.app.find(aggregate_id, Problem)
            if problem is not None and problem.workaround is not None and problem.is_open:
                self._push_workaround(problem, UUID(str(payload["incident_id"])), at)
        elif kind == _INCIDENT_PROBLEM_LINKED:
            problem = self.app.find(UUID(str(payload["problem_id"])), Problem)
            if problem is not None and problem.workaround is not None and problem.is_open:
                self._push_workaround(problem, aggregate_id, at)
        elif kind == _PROBLEM_RESOLVED:
            problem = self.app.find(aggregate_id, Problem)
            if problem is None or problem.status not in (RESOLVED, CLOSED) or problem.resolved_at != at:
                return  # reopened (or resolved again) since: this resolution no longer holds
            for incident_id in self.app.incidents_of(problem):
                self._resolve(problem, incident_id, at)

    def _push_workaround(
        self, problem: Problem, incident_id: UUID, at: datetime, linked: Collection[UUID] | None = None
    ) -> None:
        """Note the problem's workaround on one incident it is linked to (`linked`: all of them, when known)."""
        workaround = problem.workaround
        incident = self.incident(incident_id)
        if workaround is None or incident is None or not incident.is_open:
            return
        if not (incident_id in linked if linked is not None else self.app.is_linked(problem, incident)):
            return  # unlinked since
        if (incident.workaround_problem_id, incident.workaround) == (problem.id, workaround):
            return
        if happened_since(
            self.app, incident_id, Incident.WorkaroundNoted,
            match=lambda e: (e.problem_id, e.workaround) == (problem.id, workaround),
        ):  # fmt: skip
            return  # noted once; another problem's workaround replaced it since
        if problem.id not in incident.problem_ids:
            linked = self.issue(
                LinkIncidentToProblem(incident_id, problem.id, actor=self.actor, at=later(at, incident))
            )
            if linked is None:
                return
            incident = linked
        self.issue(NoteWorkaround(incident_id, problem.id, workaround, actor=self.actor, at=later(at, incident)))

    def _resolve(self, problem: Problem, incident_id: UUID, at: datetime) -> None:
        incident = self.incident(incident_id)
        if incident is None or not incident.is_open:
            return
        if happened_since(self.app, incident_id, Incident.Resolved, at):
            return  # resolved with the problem already, and reopened since
        restored_by_workaround = incident.workaround_problem_id == problem.id and incident.restored_at is not None
        code = "workaround" if restored_by_workaround else "fixed"
        notes = f'resolved with problem "{problem.title}" ({problem.id})'
        if problem.resolved_via_change_id is not None:
            notes += f", whose cause change {problem.resolved_via_change_id} removed"
        if problem.resolution_notes:
            notes += f": {problem.resolution_notes}"
        self.issue(ResolveIncident(incident_id, code=code, actor=self.actor, at=later(at, incident), notes=notes))
