"""Group commit: concurrent commands carried out together, their events saved in one transaction.

While one batch is being saved, the commands that arrive queue up; the next batch takes all of
them. At low load a batch is one command (no added latency); under load one transaction (one
fsync, one round trip) carries many commands. Each command is still checked against the current
state of its aggregate (commands on the same aggregate apply in arrival order), a refused command
changes nothing and gets its own error, and optimistic concurrency still holds: if another
writer saved first, the batch's commands are carried out again one by one on fresh state.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.errors import DomainError
from itil.application import ItilApplication

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one command left behind: the aggregate's id and its state just after the command."""

    id: UUID
    summary: dict[str, Any]


class GroupCommitter:
    """Carries out commands from many threads, saving each batch's events in one transaction."""

    def __init__(self, app: ItilApplication, max_batch: int = 500, keep: int = 20_000) -> None:
        self.app = app
        self.max_batch = max_batch
        self.keep = keep
        self._kept: OrderedDict[UUID, Any] = OrderedDict()
        self._queue: queue.Queue[tuple[Any, Future[Outcome]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.commands = 0

    def start(self) -> GroupCommitter:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
            self._thread = None

    def submit(self, command: Any) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        self.start()
        self._queue.put((command, future))
        return future

    def handle(self, command: Any) -> Outcome:
        """Carry out one command (blocking) and return what it left behind."""
        return self.submit(command).result()

    # -- the committing thread --------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            try:
                self._commit(batch)
            except Exception as error:  # never leave a caller waiting
                log.exception("group commit failed")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)

    def _commit(self, batch: list[tuple[Any, Future[Outcome]]]) -> None:
        self.batches += 1
        self.commands += len(batch)
        cache = self._fresh_kept([c for c, _ in batch])
        done: list[tuple[Future[Outcome], Outcome]] = []
        alone: list[tuple[Any, Future[Outcome]]] = []
        for command, future in batch:
            if not self.app.can_prepare(command):
                alone.append((command, future))
                continue
            try:
                aggregate = self.app.prepare(command, cache)
            except DomainError as error:
                future.set_exception(error)
                continue
            except Exception as error:
                future.set_exception(error)
                continue
            done.append((future, Outcome(aggregate.id, _summary(aggregate))))
        changed = [a for a in cache.values() if isinstance(a, Aggregate) and a.pending_events]
        if changed:
            try:
                self.app.save(*changed)
            except IntegrityError:
                # Someone else saved one of these aggregates first: replay the batch one by one.
                for aggregate_id in cache:
                    if isinstance(aggregate_id, UUID):
                        self._kept.pop(aggregate_id, None)
                self._one_by_one([(c, f) for c, f in batch if not f.done()])
                return
            self.app.saved()
        for aggregate_id, aggregate in cache.items():
            if isinstance(aggregate, Aggregate):
                self._kept[aggregate_id] = aggregate
                self._kept.move_to_end(aggregate_id)
        while len(self._kept) > self.keep:
            self._kept.popitem(last=False)
        for future, outcome in done:
            future.set_result(outcome)
        for command, future in alone:
            self._one(command, future)

    def _fresh_kept(self, commands: list[Any]) -> dict[UUID, Any]:
        """The batch's aggregates this committer saved last, when nobody has saved them since.

        One query checks every aggregate of the batch; an aggregate saved elsewhere in the
        meantime (another process) is dropped and loaded afresh by `prepare`. Ids that were
        never stored are remembered as such, so logging a new incident reads nothing.
        """
        ids = {i for c in commands if isinstance(i := getattr(c, "incident_id", None) or getattr(c, "id", None), UUID)}
        stored = self.app.stored_versions(list(ids))
        cache: dict[UUID, Any] = {}
        for aggregate_id in ids:
            kept = self._kept.get(aggregate_id)
            if kept is not None and stored.get(aggregate_id) == kept.version:
                cache[aggregate_id] = kept
            elif kept is not None:
                del self._kept[aggregate_id]
            if aggregate_id not in stored:
                cache[aggregate_id] = None  # never stored: logging it reads nothing more
        return cache

    def _one_by_one(self, items: list[tuple[Any, Future[Outcome]]]) -> None:
        for command, future in items:
            self._one(command, future)

    def _one(self, command: Any, future: Future[Outcome]) -> None:
        try:
            aggregate = self.app.handle(command)
        except Exception as error:
            future.set_exception(error)
            return
        future.set_result(Outcome(aggregate.id, _summary(aggregate)))


def _summary(aggregate: Any) -> dict[str, Any]:
    summary: Callable[[], dict[str, Any]] | None = getattr(aggregate, "summary", None)
    return summary() if summary is not None else {"id": str(aggregate.id), "version": aggregate.version}
