"""Recurring incidents propose a problem.

`RecurringIncidentsProcess` keeps, in its own table, the recent incidents of each account per CI and
per category (a "series"). When `threshold` incidents of a series fall within `window`, it logs a
problem whose id is derived from the account, the series and the series' first incident, so a
redelivered or replayed event finds the problem it already proposed. While that problem is open,
later incidents of the series within the window are linked to it, on both sides.

It decides from history as it stood when each event was stored: an incident as its event left it,
a problem as of the event's position in the log, a link when its own event comes. What was stored
since (a cancellation, a link made later, a problem resolved or reopened since) waits for its own
event. So a fresh process given the whole history in the order the live run read it (store order,
on one partition) makes the decisions the live run made, however far behind and in whatever
batches that run went, and finds them made. It also remembers the last event of each incident it
reacted to: history delivered again to it as it is changes nothing.

Some 650 lines because the decision from history as it stood (series, windows, links, replay
safety) is one process's state; the problem's reach to its incidents is `processes.problems`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError

from domain.account import period_text
from domain.commands import AddIncidentToProblem, LinkIncidentToProblem, LogProblem
from domain.events import aggregate_name, event_kind
from domain.incident import Incident
from domain.problem import Problem
from processes.incidents import CommandProcess, happened_since, kind_of, later, when
from processes.ports import Commands
from projections.db import Database

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(days=7)
DEFAULT_THRESHOLD = 3

RECURRING_PROBLEM_NS = uuid5(NAMESPACE_URL, "urn:itil-engine:recurring-incidents-problem")

_INCIDENT = aggregate_name(Incident)
_LOGGED = event_kind(Incident.Logged)
_CATEGORISED = event_kind(Incident.Categorised)
_CANCELLED = event_kind(Incident.Cancelled)
_PROBLEM_LINKED = event_kind(Incident.ProblemLinked)

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
SERIES_BY_INCIDENT_INDEX = (
    "CREATE INDEX IF NOT EXISTS recurring_incidents_incident ON recurring_incidents (incident_id)"
)
REACTED_SCHEMA = """CREATE TABLE IF NOT EXISTS recurring_reacted (
    incident_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL
)"""
"""The version of the last event of each incident the process reacted to (its Logged event, its last
Categorised): a redelivered one, or an older one, is passed over."""


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


def _open_at(history: Iterable[object] | None, at: datetime) -> bool:
    """Whether a problem was open at `at` (or, logged after `at`, when it was logged), by its `history`
    as of the event the process reacts to.

    None for a history: nothing of the problem was stored yet when that event was, so the process
    itself logged it, for an earlier event, after this one was stored: it is open. Read from its history as
    of the event rather than its current state, so that replaying the incidents of a problem
    resolved (or reopened) since links them as they were linked the first time.
    """
    if history is None:
        return True
    is_open = False
    for e in history:
        if isinstance(e, Problem.Logged):
            is_open = True
        elif e.at > at:  # type: ignore[attr-defined]
            break
        elif isinstance(e, Problem.InvestigationReopened):
            is_open = True
        elif isinstance(e, Problem.Resolved | Problem.Closed | Problem.Cancelled):
            is_open = False
    return is_open


@dataclass(frozen=True)
class _Logged:
    """What the recurring-incidents process reads of an `Incident.Logged` event."""

    incident_id: UUID
    version: int
    position: int
    account: str
    series: list[str]
    at: datetime

    @classmethod
    def of(cls, envelope: dict[str, Any]) -> _Logged:
        payload = envelope["payload"]
        return cls(
            incident_id=UUID(str(envelope["aggregate_id"])),
            version=int(envelope["aggregate_version"]),
            position=int(envelope["position"]),
            account=payload["account"],
            series=series_of(payload.get("ci"), payload.get("category")),
            at=when(envelope["occurred_at"]),
        )


class RecurringIncidentsProcess(CommandProcess):
    """Proposes a problem when incidents keep coming back on one CI (or category) of an account."""

    name = "recurring_incidents_process"
    reads = (_INCIDENT,)
    actor = "recurring-incidents-process"

    def __init__(
        self,
        db: Database,
        app: Commands,
        window: timedelta = DEFAULT_WINDOW,
        threshold: int = DEFAULT_THRESHOLD,
    ) -> None:
        super().__init__(db, app)
        if window <= timedelta(0) or threshold < 2:
            raise ValueError("the window must be longer than zero and the threshold at least 2 incidents")
        self.window = window
        self.threshold = threshold

    def schema(self) -> Sequence[str]:
        return (SERIES_SCHEMA, SERIES_INDEX, SERIES_BY_INCIDENT_INDEX, REACTED_SCHEMA)

    def react_many(self, envelopes: list[dict[str, Any]]) -> None:
        """React to a batch's events as one by one; runs of logged incidents on distinct series go together.

        An incident's step reads and writes only its series' rows (and its own rows elsewhere), so
        the steps of incidents none of whose series another shares see what they would one by one,
        whatever their order: a run of them records its rows in one transaction (`_track_many`).
        Any other event the process reacts to ends the run first and is reacted to alone.
        """
        run: list[_Logged] = []
        taken: set[tuple[str, str]] = set()
        for envelope in envelopes:
            if envelope["aggregate_type"] != _INCIDENT:
                continue
            kind = kind_of(envelope)
            if kind == _LOGGED:
                try:
                    logged = _Logged.of(envelope)
                except Exception:
                    self._track_many(run)  # the events before it are still reacted to
                    raise
                if not logged.series:
                    continue  # counted in no series
                keys = {(logged.account, one) for one in logged.series}
                if keys & taken:
                    self._track_many(run)
                    run, taken = [], set()
                run.append(logged)
                taken |= keys
            elif kind in (_CATEGORISED, _CANCELLED, _PROBLEM_LINKED):
                self._track_many(run)
                run, taken = [], set()
                self.react(envelope)
        self._track_many(run)

    def react(self, envelope: dict[str, Any]) -> None:
        if envelope["aggregate_type"] != _INCIDENT:
            return
        kind = kind_of(envelope)
        incident_id = UUID(str(envelope["aggregate_id"]))
        payload = envelope["payload"]
        if kind == _CANCELLED:
            self._forget(incident_id, None)
        elif kind == _PROBLEM_LINKED:
            self._claim(incident_id, UUID(str(payload["problem_id"])))
        elif kind in (_LOGGED, _CATEGORISED):
            version = int(envelope["aggregate_version"])
            if self._reacted([incident_id]).get(incident_id, 0) >= version:
                return  # delivered again
            at = when(envelope["occurred_at"])
            position = int(envelope["position"])
            if kind == _LOGGED:
                series = series_of(payload.get("ci"), payload.get("category"))
                if not series:
                    return
                self._track(incident_id, payload["account"], series, at, at, position)
            else:
                incident = self._incident_as_of(incident_id, version)
                if incident is None:
                    return
                if payload.get("previous_category"):
                    self._forget(incident_id, f"category:{payload['previous_category']}")
                self._track(
                    incident_id, incident.account, series_of(incident.ci, payload["category"]), incident.logged_at,
                    at, position, incident.problem_ids,
                )  # fmt: skip
            with self.db.transaction() as tx:
                self._remember(tx, [(incident_id, version)])

    def _incident_as_of(self, incident_id: UUID, version: int) -> Incident | None:
        """The incident as the event of this version left it."""
        try:
            found: Any = self.app.repository.get(incident_id, version=version)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, Incident) else None

    def _history_as_of(self, problem_id: UUID, position: int) -> Iterable[Any] | None:
        """The problem's events stored up to `position` of the log (None: none yet)."""
        version = self.app.version_at(problem_id, position)
        return None if version is None else self.app.events.get(problem_id, lte=version)

    def _open_since(self, problem_id: UUID, position: int | None) -> bool:
        """Whether the problem was open when the event at `position` was stored (None: the process logged
        it for that very event) and has not been resolved, closed or cancelled since.

        Linking an incident to it then succeeds however late the process gets to the event; to a
        problem closed in between, the live run's link may have been refused, so a replay does
        not make it either, even if the problem was reopened since.
        """
        version = None if position is None else self.app.version_at(problem_id, position)
        if version is not None:
            then: Any = self.app.repository.get(problem_id, version=version)
            if not then.is_open:
                return False
        closing = (Problem.Resolved, Problem.Closed, Problem.Cancelled)
        return not any(isinstance(e, closing) for e in self.app.events.get(problem_id, gt=version or 0))

    # -- what the process remembers --------------------------------------------------------

    def _reacted(self, incident_ids: Sequence[UUID]) -> dict[UUID, int]:
        """The version of each incident's last event the process reacted to, for those it reacted to."""
        found: dict[UUID, int] = {}
        with self.db.transaction(write=False) as tx:
            for start in range(0, len(incident_ids), 400):
                chunk = [str(i) for i in incident_ids[start : start + 400]]
                rows = tx.execute(
                    "SELECT incident_id, version FROM recurring_reacted"
                    f" WHERE incident_id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ).all()
                found.update((UUID(r["incident_id"]), r["version"]) for r in rows)
        return found

    @staticmethod
    def _remember(tx: Any, reacted: Iterable[tuple[UUID, int]]) -> None:
        tx.insert_many(
            "INSERT INTO recurring_reacted (incident_id, version) VALUES (?, ?)"
            " ON CONFLICT (incident_id) DO UPDATE SET version = excluded.version"
            " WHERE recurring_reacted.version < excluded.version",
            [(str(incident_id), version) for incident_id, version in reacted],
        )

    # -- the series -----------------------------------------------------------------------

    def _track(
        self,
        incident_id: UUID,
        account: str,
        series: list[str],
        logged: datetime,
        at: datetime,
        position: int,
        problem_ids: Sequence[UUID] = (),
    ) -> None:
        """Count the incident in its series; once it belongs to a problem of one, the next are not needed.

        `problem_ids`: the problems the incident named when the event at `position` was stored.
        """
        for one in series:
            if self._step(incident_id, account, one, logged, at, position, problem_ids):
                return

    def _track_many(self, run: list[_Logged]) -> None:
        """`_track` each logged incident of a run whose series are all distinct, in order.

        Their first series' rows are recorded (and read) in one transaction for the whole run. An
        incident whose rows show nothing to link or propose is done with that series; any other
        takes the one-by-one way from there (its queries again, after the run's earlier steps).
        Those steps only ever remove rows of the run's other series, never add or claim any: what
        the run's read showed as nothing to do still is. Further series (an incident's category)
        are tracked one by one. Incidents already reacted to are passed over; one a problem claims
        already (its reaction was cut short) only links again, one by one.
        """
        if not run:
            return
        reacted = self._reacted([one.incident_id for one in run])
        run = [one for one in run if reacted.get(one.incident_id, 0) < one.version]
        if len(run) < 2:
            for one in run:
                self._track(one.incident_id, one.account, one.series, one.at, one.at, one.position)
                with self.db.transaction() as tx:
                    self._remember(tx, [(one.incident_id, one.version)])
            return
        rows, added, claimed = self._record_rows(run)
        reached = -1  # the last incident whose step began
        try:
            for one in run:
                reached += 1
                if one.incident_id in claimed:
                    self._track(one.incident_id, one.account, one.series, one.at, one.at, one.position)
                    continue
                series = one.series[0]
                found = rows.get((one.account, series), [])
                if not self._nothing_to_do(one, found):
                    own = next((r["problem_id"] for r in found if r["incident_id"] == str(one.incident_id)), None)
                    if self._decide(one.incident_id, one.account, series, one.at, one.at, one.position, own):
                        continue
                self._track(one.incident_id, one.account, one.series[1:], one.at, one.at, one.position)
        except BaseException:
            self._settle(run, reached, added, run[:reached])
            raise
        self._settle(run, len(run) - 1, added, run)

    def _record_rows(
        self, run: list[_Logged]
    ) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], set[UUID], set[UUID]]:
        """`_step`'s insert in each incident's first series, in one transaction: those series' rows
        afterwards, the incidents whose rows it added (the others were recorded before), and those
        a problem claims already (recorded and decided before: nothing added for them)."""
        found: dict[tuple[str, str], list[dict[str, Any]]] = {}
        claimed: set[UUID] = set()
        with self.db.transaction() as tx:
            for start in range(0, len(run), 400):
                chunk = run[start : start + 400]
                rows = tx.execute(  # a join, not `(account, series) IN (VALUES …)`, which SQLite runs as a scan
                    f"WITH wanted (account, series) AS (VALUES {', '.join(['(?, ?)'] * len(chunk))})"
                    " SELECT r.account, r.series, r.incident_id, r.logged_us, r.problem_id FROM wanted"
                    " JOIN recurring_incidents AS r ON r.account = wanted.account AND r.series = wanted.series",
                    [value for one in chunk for value in (one.account, one.series[0])],
                ).all()
                for r in rows:
                    found.setdefault((r["account"], r["series"]), []).append(r)
                claims = tx.execute(
                    "SELECT incident_id FROM recurring_incidents WHERE problem_id IS NOT NULL"
                    f" AND incident_id IN ({', '.join('?' * len(chunk))})",
                    [str(one.incident_id) for one in chunk],
                ).all()
                claimed.update(UUID(r["incident_id"]) for r in claims)
            recorded = {(key, r["incident_id"]) for key, rows in found.items() for r in rows}
            new = [
                one for one in run
                if ((one.account, one.series[0]), str(one.incident_id)) not in recorded
                and one.incident_id not in claimed
            ]  # fmt: skip
            tx.insert_many(
                "INSERT INTO recurring_incidents (account, series, incident_id, logged_us, problem_id)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, series, incident_id) DO NOTHING",
                [(one.account, one.series[0], str(one.incident_id), _us(one.at), None) for one in new],
            )
        for one in new:
            found.setdefault((one.account, one.series[0]), []).append(
                {"account": one.account, "series": one.series[0], "incident_id": str(one.incident_id),
                 "logged_us": _us(one.at), "problem_id": None}
            )  # fmt: skip
        return found, {one.incident_id for one in new}, claimed

    def _settle(self, run: list[_Logged], reached: int, added: set[UUID], done: list[_Logged]) -> None:
        """After a run's steps up to `reached` (the last may have failed): the series of those
        reached forget their incidents too old to count, as `_step` does; the rows added for those
        not reached are taken back, as if their steps had not begun (they come again); those `done`
        are remembered as reacted to."""
        with self.db.transaction() as tx:
            tx.executemany(
                "DELETE FROM recurring_incidents WHERE account = ? AND series = ? AND logged_us < ?",
                [(one.account, one.series[0], _us(one.at - 2 * self.window)) for one in run[: reached + 1]],
            )
            tx.executemany(
                "DELETE FROM recurring_incidents"
                " WHERE account = ? AND series = ? AND incident_id = ? AND problem_id IS NULL",
                [(one.account, one.series[0], str(one.incident_id)) for one in run[reached + 1 :]
                 if one.incident_id in added],
            )  # fmt: skip
            self._remember(tx, [(one.incident_id, one.version) for one in done])

    def _nothing_to_do(self, one: _Logged, rows: list[dict[str, Any]]) -> bool:
        """Whether a logged incident's series rows call for nothing: no problem within the window,
        and no run of `threshold` unclaimed incidents with this one."""
        low, high = _us(one.at - self.window), _us(one.at + self.window)
        near = [r for r in rows if low <= r["logged_us"] <= high]
        if any(r["problem_id"] for r in near):
            return False
        return self._earliest_run(near, one.incident_id) is None

    def _step(
        self,
        incident_id: UUID,
        account: str,
        series: str,
        logged: datetime,
        at: datetime,
        position: int,
        problem_ids: Sequence[UUID] = (),
    ) -> bool:
        """Record the incident in one series; link or propose a problem. True when it belongs to one.

        An incident a problem of another series claims counts in no other (its reaction cut short
        and come again finds it so).
        """
        with self.db.transaction() as tx:
            claims = {
                r["series"]: r["problem_id"]
                for r in tx.execute(
                    "SELECT series, problem_id FROM recurring_incidents"
                    " WHERE incident_id = ? AND problem_id IS NOT NULL",
                    (str(incident_id),),
                ).all()
            }
            if claims and series not in claims:
                return False
            if not claims:
                tx.execute(
                    "INSERT INTO recurring_incidents (account, series, incident_id, logged_us, problem_id)"
                    " VALUES (?, ?, ?, ?, NULL) ON CONFLICT (account, series, incident_id) DO NOTHING",
                    (account, series, str(incident_id), _us(logged)),
                )
                tx.execute(
                    "DELETE FROM recurring_incidents WHERE account = ? AND series = ? AND logged_us < ?",
                    (account, series, _us(logged - 2 * self.window)),
                )
        return self._decide(incident_id, account, series, logged, at, position, claims.get(series), problem_ids)

    def _decide(
        self,
        incident_id: UUID,
        account: str,
        series: str,
        logged: datetime,
        at: datetime,
        position: int,
        claimed_by: str | None,
        problem_ids: Sequence[UUID] = (),
    ) -> bool:
        """`_step` once the incident's row is recorded (`claimed_by`: the problem its row belongs to).

        `problem_ids`: the problems the incident named when the event at `position` was stored (none
        when it was logged).
        """
        if claimed_by:
            self._link(UUID(claimed_by), [incident_id], at, position)
            return True
        for problem_id in problem_ids:
            problem = self.app.find(problem_id, Problem)  # its account, CI and category never change
            if problem is not None and _belongs(problem, account, series):
                self._mark(account, series, [incident_id], problem_id)
                return True
        active = self._active_problem(account, series, logged, position)
        if active is not None:
            self._mark(account, series, [incident_id], active)
            self._link(active, [incident_id], at, position)
            return True
        group = self._recurring_group(account, series, incident_id, logged)
        if not group:
            return False
        self._propose(account, series, group, at)
        return True

    def _active_problem(self, account: str, series: str, logged: datetime, position: int) -> UUID | None:
        """The series' problem that was open when this incident was logged, if one has incidents within
        the window; as the log stood at `position`."""
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT problem_id, MAX(logged_us) AS latest FROM recurring_incidents"
                " WHERE account = ? AND series = ? AND problem_id IS NOT NULL AND logged_us BETWEEN ? AND ?"
                " GROUP BY problem_id ORDER BY latest DESC, problem_id",
                (account, series, _us(logged - self.window), _us(logged + self.window)),
            ).all()
        for r in rows:
            problem_id = UUID(r["problem_id"])
            if _open_at(self._history_as_of(problem_id, position), logged):
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
        return self._earliest_run(rows, incident_id)

    def _earliest_run(self, rows: list[dict[str, Any]], incident_id: UUID) -> list[tuple[int, UUID]] | None:
        """Among unclaimed rows, the earliest run of `threshold` or more within one window, with this incident."""
        if len(rows) < self.threshold:
            return None
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
        self._link(problem_id, list(incident_ids), at, None)
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

    def _claim(self, incident_id: UUID, problem_id: UUID) -> None:
        """The incident was linked to a problem (by hand, or by this process): a problem about one of its
        series claims it there, from this event on."""
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT account, series FROM recurring_incidents WHERE incident_id = ? AND problem_id IS NULL",
                (str(incident_id),),
            ).all()
        if not rows:
            return  # claimed already (this process's own links), or counted in no series
        problem = self.app.find(problem_id, Problem)  # its account, CI and category never change
        if problem is None:
            return
        for r in rows:
            if _belongs(problem, r["account"], r["series"]):
                self._mark(r["account"], r["series"], [incident_id], problem_id)
                return

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

    def _link(self, problem_id: UUID, incident_ids: list[UUID], at: datetime, position: int | None) -> None:
        """Link the incidents to the problem (both at once) if it has stayed open since the event at
        `position` was stored (None: the process logged it for this very event); what is already
        linked (or was unlinked) stays so."""
        problem = self.app.find(problem_id, Problem)
        if problem is None:
            return
        open_since: bool | None = None
        for incident_id in incident_ids:
            incident = self.incident(incident_id)
            if incident is None:
                continue
            if self.app.is_linked(problem, incident):
                if problem_id not in incident.problem_ids:  # linked by a problem of version 1, on its side only
                    self.issue(LinkIncidentToProblem(incident_id, problem_id, actor=self.actor, at=later(at, incident)))
                continue
            if not problem.is_open or self._unlinked(problem, incident_id):
                continue  # closed (the link would be refused), or found not to be caused by it
            if open_since is None:
                open_since = self._open_since(problem_id, position)
            if not open_since:
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
