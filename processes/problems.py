"""Problem processes: recurring incidents propose a problem; a problem's workaround and resolution
reach the incidents it causes.

`RecurringIncidentsProcess` keeps, in its own table, the recent incidents of each account per CI and
per category (a "series"). When `threshold` incidents of a series fall within `window`, it logs a
problem whose id is derived from the account, the series and the series' first incident, so a
redelivered or replayed event finds the problem it already proposed. While that problem is open,
later incidents of the series within the window are linked to it, on both sides.

`ProblemIncidentsProcess` pushes a known error's workaround to every open incident it causes, and
resolves them when the problem is resolved.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.account import period_text
from domain.incident import CANCELLED, Incident
from domain.problem import CLOSED, RESOLVED, Problem
from itil.application import ItilApplication, LinkIncidentToProblem, NoteWorkaround, ResolveIncident
from itil.problems import AddIncidentToProblem, LogProblem, incidents_of, is_linked
from processes.incidents import CommandProcess, happened_since, kind_of, later, when
from projections.db import Database

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(days=7)
DEFAULT_THRESHOLD = 3

RECURRING_PROBLEM_NS = uuid5(NAMESPACE_URL, "urn:itil-engine:recurring-incidents-problem")

SERIES_SCHEMA = """CREATE TABLE IF NOT EXISTS recurring_incidents (
    account TEXT NOT NULL,
    series TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    logged_us BIGINT NOT NULL,
    problem_id TEXT,
    PRIMARY KEY (account, series, incident_id)
)"""
SERIES_INDEX = (
    "CREATE INDEX IF NOT EXISTS recurring_incidents_recent ON recurring_incidents (account, series, logged_us)"
)


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def series_of(ci: str | None, category: str | None) -> list[str]:
    """The series an incident belongs to: its CI's, then its category's ("ci:router-42", "category:network")."""
    return [f"{kind}:{value}" for kind, value in (("ci", ci), ("category", category)) if value]


def recurring_problem_id(account: str, series: str, first_incident: UUID) -> UUID:
    """The problem proposed for a series, found again from the series and its first incident."""
    return uuid5(RECURRING_PROBLEM_NS, f"{account}|{series}|{first_incident}")


def _belongs(problem: Problem, account: str, series: str) -> bool:
    """Whether a problem is about this series (the one proposed for it, or one logged by hand on it)."""
    kind, value = series.split(":", 1)
    if problem.account != account:
        return False
    return problem.ci == value if kind == "ci" else (problem.ci is None and problem.category == value)


def _open_at(app: ItilApplication, problem_id: UUID, at: datetime) -> bool:
    """Whether the problem was open at `at` (or, logged after `at`, when it was logged).

    Read from its history rather than its current state, so that replaying the incidents of a
    problem resolved since links them as they were linked the first time.
    """
    is_open = False
    for e in app.events.get(problem_id):
        if isinstance(e, Problem.Logged):
            is_open = True
        elif e.at > at:  # type: ignore[attr-defined]
            break
        elif isinstance(e, Problem.InvestigationReopened):
            is_open = True
        elif isinstance(e, Problem.Resolved | Problem.Closed | Problem.Cancelled):
            is_open = False
    return is_open


class RecurringIncidentsProcess(CommandProcess):
    """Proposes a problem when incidents keep coming back on one CI (or category) of an account."""

    name = "recurring_incidents_process"
    reads = ("Incident",)
    actor = "recurring-incidents-process"

    def __init__(
        self,
        db: Database,
        app: ItilApplication,
        window: timedelta = DEFAULT_WINDOW,
        threshold: int = DEFAULT_THRESHOLD,
    ) -> None:
        super().__init__(db, app)
        if window <= timedelta(0) or threshold < 2:
            raise ValueError("the window must be longer than zero and the threshold at least 2 incidents")
        self.window = window
        self.threshold = threshold

    def schema(self) -> Sequence[str]:
        return (SERIES_SCHEMA, SERIES_INDEX)

    def react(self, envelope: dict[str, Any]) -> None:
        if envelope["aggregate_type"] != "Incident":
            return
        kind = kind_of(envelope)
        incident_id = UUID(str(envelope["aggregate_id"]))
        payload = envelope["payload"]
        at = when(envelope["occurred_at"])
        if kind == "Logged":
            self._track(incident_id, payload["account"], series_of(payload.get("ci"), payload.get("category")), at, at)
        elif kind == "Categorised":
            incident = self.incident(incident_id)
            if incident is None:
                return
            if payload.get("previous_category"):
                self._forget(incident_id, f"category:{payload['previous_category']}")
            self._track(
                incident_id, incident.account, series_of(incident.ci, payload["category"]), incident.logged_at, at
            )
        elif kind == "Cancelled":
            self._forget(incident_id, None)

    # -- the series -----------------------------------------------------------------------

    def _track(self, incident_id: UUID, account: str, series: list[str], logged: datetime, at: datetime) -> None:
        """Count the incident in its series; once it belongs to a problem of one, the next are not needed."""
        for one in series:
            if self._step(incident_id, account, one, logged, at):
                return

    def _step(self, incident_id: UUID, account: str, series: str, logged: datetime, at: datetime) -> bool:
        """Record the incident in one series; link or propose a problem. True when it belongs to one."""
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO recurring_incidents (account, series, incident_id, logged_us, problem_id)"
                " VALUES (?, ?, ?, ?, NULL) ON CONFLICT (account, series, incident_id) DO NOTHING",
                (account, series, str(incident_id), _us(logged)),
            )
            tx.execute(
                "DELETE FROM recurring_incidents WHERE account = ? AND series = ? AND logged_us < ?",
                (account, series, _us(logged - 2 * self.window)),
            )
            row = tx.execute(
                "SELECT problem_id FROM recurring_incidents WHERE account = ? AND series = ? AND incident_id = ?",
                (account, series, str(incident_id)),
            ).one()
        if row is not None and row["problem_id"]:
            self._link(UUID(row["problem_id"]), [incident_id], at)
            return True
        incident = self.incident(incident_id)
        if incident is None or incident.status == CANCELLED:
            self._forget(incident_id, None)
            return False
        for problem_id in incident.problem_ids:
            problem = self.app.find(problem_id, Problem)
            if problem is not None and _belongs(problem, account, series):
                self._mark(account, series, [incident_id], problem_id)
                return True
        active = self._active_problem(account, series, logged)
        if active is not None:
            self._mark(account, series, [incident_id], active)
            self._link(active, [incident_id], at)
            return True
        group = self._recurring_group(account, series, incident_id, logged)
        if not group:
            return False
        self._propose(account, series, group, at)
        return True

    def _active_problem(self, account: str, series: str, logged: datetime) -> UUID | None:
        """The series' problem that was open when this incident was logged, if one has incidents within the window."""
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT problem_id, MAX(logged_us) AS latest FROM recurring_incidents"
                " WHERE account = ? AND series = ? AND problem_id IS NOT NULL AND logged_us BETWEEN ? AND ?"
                " GROUP BY problem_id ORDER BY latest DESC, problem_id",
                (account, series, _us(logged - self.window), _us(logged + self.window)),
            ).all()
        for r in rows:
            problem_id = UUID(r["problem_id"])
            if _open_at(self.app, problem_id, logged):
                return problem_id
        return None

    def _recurring_group(
        self, account: str, series: str, incident_id: UUID, logged: datetime
    ) -> list[tuple[int, UUID]] | None:
        """The earliest run of `threshold` or more unlinked incidents within one window, this one among them."""
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT incident_id, logged_us FROM recurring_incidents"
                " WHERE account = ? AND series = ? AND problem_id IS NULL AND logged_us BETWEEN ? AND ?",
                (account, series, _us(logged - self.window), _us(logged + self.window)),
            ).all()
        candidates = sorted((r["logged_us"], UUID(r["incident_id"])) for r in rows)
        span = int(self.window.total_seconds() * 1_000_000)
        for i, (start, _) in enumerate(candidates):
            group = [c for c in candidates[i:] if c[0] <= start + span]
            if len(group) >= self.threshold and incident_id in {c[1] for c in group}:
                return group
        return None

    def _propose(self, account: str, series: str, group: list[tuple[int, UUID]], at: datetime) -> None:
        kind, value = series.split(":", 1)
        incident_ids = tuple(i for _, i in group)
        first = self.incident(incident_ids[0])
        problem_id = recurring_problem_id(account, series, incident_ids[0])
        title = f"Recurring incidents on {value}" if kind == "ci" else f"Recurring {value} incidents"
        since = f" since {first.logged_at.isoformat()}" if first is not None else ""
        description = (
            f"{len(incident_ids)} incidents of {account} on {kind} {value} within {period_text(self.window)}{since};"
            " proposed by the engine from recurring incidents"
        )
        existed = self.app.find(problem_id, Problem) is not None
        problem = self.issue(
            LogProblem(
                id=problem_id,
                account=account,
                title=title,
                actor=self.actor,
                at=at,
                description=description,
                ci=value if kind == "ci" else None,
                category=value if kind == "category" else None,
                incident_ids=incident_ids,
            )
        )
        if problem is None:
            return
        self._mark(account, series, list(incident_ids), problem_id)
        self._link(problem_id, list(incident_ids), at)
        if not existed:
            log.info("%s: proposed problem %s (%s) for %d incidents", self.name, problem_id, title, len(incident_ids))

    def _mark(self, account: str, series: str, incident_ids: list[UUID], problem_id: UUID) -> None:
        """The incidents belong to the series' problem; they no longer count in their other series."""
        with self.db.transaction() as tx:
            tx.executemany(
                "UPDATE recurring_incidents SET problem_id = ?"
                " WHERE account = ? AND series = ? AND incident_id = ? AND problem_id IS NULL",
                [(str(problem_id), account, series, str(i)) for i in incident_ids],
            )
            tx.executemany(
                "DELETE FROM recurring_incidents"
                " WHERE account = ? AND series <> ? AND incident_id = ? AND problem_id IS NULL",
                [(account, series, str(i)) for i in incident_ids],
            )

    def _forget(self, incident_id: UUID, series: str | None) -> None:
        """An incident cancelled (or moved to another category) no longer counts where no problem claimed it."""
        with self.db.transaction() as tx:
            if series is None:
                tx.execute(
                    "DELETE FROM recurring_incidents WHERE incident_id = ? AND problem_id IS NULL", (str(incident_id),)
                )
            else:
                tx.execute(
                    "DELETE FROM recurring_incidents WHERE incident_id = ? AND series = ? AND problem_id IS NULL",
                    (str(incident_id), series),
                )

    def _link(self, problem_id: UUID, incident_ids: list[UUID], at: datetime) -> None:
        """Link the incidents to the problem (both at once); what is already linked (or was unlinked) stays so."""
        problem = self.app.find(problem_id, Problem)
        if problem is None:
            return
        for incident_id in incident_ids:
            incident = self.incident(incident_id)
            if incident is None:
                continue
            if is_linked(self.app, problem, incident):
                if problem_id not in incident.problem_ids:  # linked by a problem of version 1, on its side only
                    self.issue(LinkIncidentToProblem(incident_id, problem_id, actor=self.actor, at=later(at, incident)))
                continue
            if not problem.is_open or self._unlinked(problem, incident_id):
                continue
            linked = self.issue(AddIncidentToProblem(problem_id, incident_id, actor=self.actor, at=later(at, problem)))
            problem = linked if linked is not None else problem

    def _unlinked(self, problem: Problem, incident_id: UUID) -> bool:
        """Whether someone unlinked the incident from the problem: it was found not to be caused by it.

        The incident's history says so (a short one); a problem of version 1 recorded it on its side only.
        """
        if problem.links_on_incidents:
            return happened_since(
                self.app, incident_id, Incident.ProblemUnlinked, match=lambda e: e.problem_id == problem.id
            )
        return happened_since(
            self.app, problem.id, Problem.IncidentUnlinked, match=lambda e: e.incident_id == incident_id
        )


class ProblemIncidentsProcess(CommandProcess):
    """Tells the incidents a problem causes what it learnt: its workaround, then its resolution."""

    name = "problem_incidents_process"
    reads = ("Problem", "Incident")
    actor = "problem-incidents-process"

    def react(self, envelope: dict[str, Any]) -> None:
        kind = f"{envelope['aggregate_type']}.{kind_of(envelope)}"
        aggregate_id = UUID(str(envelope["aggregate_id"]))
        payload = envelope["payload"]
        at = when(envelope["occurred_at"])
        if kind == "Problem.WorkaroundPublished":
            problem = self.app.find(aggregate_id, Problem)
            if problem is None or problem.workaround != payload["workaround"]:
                return  # a later workaround replaced this one; its own event pushes it
            linked = incidents_of(self.app, problem)
            for incident_id in linked:
                self._push_workaround(problem, incident_id, at, linked)
        elif kind == "Problem.IncidentLinked":
            problem = self.app.find(aggregate_id, Problem)
            if problem is not None and problem.workaround is not None and problem.is_open:
                self._push_workaround(problem, UUID(str(payload["incident_id"])), at)
        elif kind == "Incident.ProblemLinked":
            problem = self.app.find(UUID(str(payload["problem_id"])), Problem)
            if problem is not None and problem.workaround is not None and problem.is_open:
                self._push_workaround(problem, aggregate_id, at)
        elif kind == "Problem.Resolved":
            problem = self.app.find(aggregate_id, Problem)
            if problem is None or problem.status not in (RESOLVED, CLOSED) or problem.resolved_at != at:
                return  # reopened (or resolved again) since: this resolution no longer holds
            for incident_id in incidents_of(self.app, problem):
                self._resolve(problem, incident_id, at)

    def _push_workaround(
        self, problem: Problem, incident_id: UUID, at: datetime, linked: Collection[UUID] | None = None
    ) -> None:
        """Note the problem's workaround on one incident it is linked to (`linked`: all of them, when known)."""
        workaround = problem.workaround
        incident = self.incident(incident_id)
        if workaround is None or incident is None or not incident.is_open:
            return
        if not (incident_id in linked if linked is not None else is_linked(self.app, problem, incident)):
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
