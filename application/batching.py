"""Group commit: concurrent commands carried out together, their events saved in one transaction.

While one batch is being written, the commands that arrive are carried out on top of it (together,
once as many have queued as it holds, or when it has been written); they form the next batch,
written as soon as the previous transaction has committed.
At low load a batch is one command (no added latency); under load one transaction (one fsync,
one round trip) carries many commands, and the Python work of the next batch overlaps the
database's work on the previous one. Each command is still checked against the current state
of its aggregate (commands on the same aggregate apply in arrival order), a refused command
changes nothing and gets its own error, and optimistic concurrency still holds: if another
writer saved first, the batch's commands (and those of the batch built on top of it) are
carried out again one by one on fresh state. No caller is answered before the transaction
its answer depends on has committed.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from application.app import STORED, ItilApplication

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one command left behind: the aggregate's id and its state just after the command."""

    id: UUID
    summary: dict[str, Any]


@dataclass
class _Batch:
    """Commands carried out together, answered once their transaction has committed."""

    cache: dict[Any, Any] = field(default_factory=dict)
    """Aggregate id -> the aggregate the batch's commands changed (None: never stored); STORED."""
    answers: list[tuple[Any, Future[Outcome], Outcome | BaseException]] = field(default_factory=list)
    """Each prepared command, its caller's future and its result or refusal, in arrival order."""
    alone: list[tuple[Any, Future[Outcome]]] = field(default_factory=list)
    """Commands group commit cannot prepare: carried out one by one once the batch is written."""
    write: Future[Any] | None = None
    changed: bool = False

    def commands(self) -> list[tuple[Any, Future[Outcome]]]:
        return [(c, f) for c, f, _ in self.answers] + self.alone

    def aggregate_ids(self) -> list[UUID]:
        return [i for i, a in self.cache.items() if isinstance(a, Aggregate)]


class GroupCommitter:
    """Carries out commands from many threads, saving each batch's events in one transaction."""

    def __init__(self, app: ItilApplication, max_batch: int = 500, keep: int = 20_000) -> None:
        self.app = app
        self.max_batch = max_batch
        self.keep = keep
        self._kept: OrderedDict[UUID, Any] = OrderedDict()
        self._base: dict[UUID, int] = {}
        """Aggregates of the batch being written -> their stored version before it."""
        self._incoming: deque[tuple[Any, Future[Outcome]]] = deque()
        self._wake = threading.Condition(threading.Lock())
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.commands = 0

    def start(self) -> GroupCommitter:
        if self._thread is not None:
            return self
        with self._lock:
            if self._thread is None:
                self._stopping = False
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="group-commit-writer")
                self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._thread.start()
        return self

    def stop(self) -> None:
        thread, writer = self._thread, self._writer
        if thread is not None:
            with self._wake:
                self._stopping = True
                self._wake.notify()
            thread.join(10)
            self._thread = None
        if writer is not None:
            writer.shutdown(wait=True)
            self._writer = None

    def submit(self, command: Any) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        self.start()
        with self._wake:
            self._incoming.append((command, future))
            self._wake.notify()
        return future

    def handle(self, command: Any) -> Outcome:
        """Carry out one command (blocking) and return what it left behind."""
        return self.submit(command).result()

    # -- the committing thread --------------------------------------------------------

    def _run(self) -> None:
        writing: _Batch | None = None  # written by the writer thread right now
        building: _Batch | None = None  # carried out on top of `writing`, written next
        while True:
            with self._wake:
                # While a batch is being written, the commands that arrive are carried out once as
                # many have queued as that batch holds (callers take turns: about as many as can
                # come), or when it has been written: one version query for the next batch rather
                # than one per arrival.
                wanted = 1 if writing is None else len(writing.answers) + len(writing.alone)
                while not (
                    len(self._incoming) >= wanted or self._stopping or (writing is not None and _written(writing))
                ):
                    self._wake.wait()
                room = self.max_batch - (len(building.answers) if building is not None else 0)
                items = [self._incoming.popleft() for _ in range(min(len(self._incoming), max(room, 1)))]
                stopping = self._stopping and not self._incoming
            try:
                if items:
                    building = building or _Batch()
                    self._prepare(building, items)
                full = building is not None and (building.alone or len(building.answers) >= self.max_batch)
                if writing is not None and (_written(writing) or stopping or full):
                    if not self._finish(writing, building):
                        building = None  # built on a batch that failed: carried out again one by one
                    writing = None
                if writing is None and building is not None:
                    writing, building = self._start_write(building), None
                    if writing.alone or stopping:
                        self._finish(writing, None)
                        writing = None
            except Exception as error:  # never leave a caller waiting
                log.exception("group commit failed")
                if writing is not None and writing.write is not None:
                    wait([writing.write])  # its callers learn whether it was written
                    if writing.write.exception() is None:
                        for _, future, answer in writing.answers:
                            if not future.done():
                                _answer(future, answer)
                for batch in (writing, building):
                    if batch is not None:
                        _fail(batch.commands(), error)
                _fail(items, error)
                writing = building = None
                self._kept.clear()
                self._base = {}
            if stopping and writing is None and building is None:
                return

    def _prepare(self, batch: _Batch, items: list[tuple[Any, Future[Outcome]]]) -> None:
        """Carry out these commands on top of the batch (and of the batch being written)."""
        try:
            self._fresh_kept(batch.cache, [c for c, _ in items])
        except Exception as error:  # the store could not be read: these commands fail, nothing else
            _fail(items, error)
            return
        for command, future in items:
            if batch.alone or not self.app.can_prepare(command):
                batch.alone.append((command, future))  # after the batch, in arrival order
                continue
            try:
                aggregate = self.app.prepare(command, batch.cache)
            except Exception as error:  # a refusal (DomainError) or anything else: this command's only
                batch.answers.append((command, future, error))
                continue
            batch.answers.append((command, future, Outcome(aggregate.id, _summary(aggregate))))

    def _start_write(self, batch: _Batch) -> _Batch:
        """Hand the batch's events to the writer thread; its aggregates stay kept for the next batch."""
        self.batches += 1
        self.commands += len(batch.answers) + len(batch.alone)
        changed = [a for a in batch.cache.values() if isinstance(a, Aggregate) and a.pending_events]
        batch.changed = bool(changed)
        self._base = {a.id: a.pending_events[0].originator_version - 1 for a in changed}
        for aggregate_id in batch.aggregate_ids():
            self._kept[aggregate_id] = batch.cache[aggregate_id]
            self._kept.move_to_end(aggregate_id)
        while len(self._kept) > self.keep:
            self._kept.popitem(last=False)
        write: Future[Any]
        if changed:
            assert self._writer is not None
            write = self._writer.submit(self.app.record, self.app.collect(*changed))
            write.add_done_callback(self._written)
        else:
            write = Future()
            write.set_result(None)
        batch.write = write
        return batch

    def _written(self, _write: Future[Any]) -> None:
        with self._wake:
            self._wake.notify()

    def _finish(self, batch: _Batch, built_on_it: _Batch | None) -> bool:
        """Wait for the batch's transaction and answer its callers; False when it failed.

        A batch built on a failed one is carried out again, one command at a time, on fresh state.
        """
        assert batch.write is not None
        try:
            error = batch.write.exception()
        finally:
            self._base = {}
        if error is None:
            if batch.changed:
                self.app.saved()
            for _, future, answer in batch.answers:
                _answer(future, answer)
            self._alone(batch.alone)
            return True
        for aggregate_id in batch.aggregate_ids() + (built_on_it.aggregate_ids() if built_on_it else []):
            self._kept.pop(aggregate_id, None)
        redo: list[tuple[Any, Future[Outcome]]] = []
        for command, future, answer in batch.answers:
            if not isinstance(answer, Outcome):
                _answer(future, answer)  # refused on the state as stored: stands
            elif isinstance(error, IntegrityError):
                redo.append((command, future))  # someone else saved one of these aggregates first
            else:
                future.set_exception(error)
        if not isinstance(error, IntegrityError):
            log.error("group commit failed", exc_info=error)
        self._alone(redo + batch.alone + (built_on_it.commands() if built_on_it else []))
        return False

    def _fresh_kept(self, cache: dict[Any, Any], commands: list[Any]) -> None:
        """Add to the cache the aggregates this committer saved last, when nobody has saved them since.

        One query checks every aggregate these commands read (their incidents, and the accounts
        of the incidents they log); an aggregate saved elsewhere in the meantime (another
        process) is dropped and loaded afresh by `prepare`. An aggregate of the batch being
        written may be seen as it was before that batch or after. Ids that were never stored are
        remembered as such, so logging a new incident reads nothing.
        """
        ids: set[UUID] = set()
        incident_ids: list[UUID] = []
        for command in commands:
            read = self.app.read_by(command)
            if read and read[0] not in cache:
                incident_ids.append(read[0])
                ids.update(read)
        if not ids:
            return
        stored = self.app.stored_versions(list(ids))
        cache.setdefault(STORED, {}).update(stored)
        for aggregate_id in incident_ids:
            if aggregate_id in cache:
                continue
            version = stored.get(aggregate_id)
            kept = self._kept.get(aggregate_id)
            if kept is not None:
                if version == kept.version or (version or 0) == self._base.get(aggregate_id, -1):
                    cache[aggregate_id] = kept
                    continue
                del self._kept[aggregate_id]
            if version is None:
                cache[aggregate_id] = None  # never stored: logging it reads nothing more

    def _alone(self, items: list[tuple[Any, Future[Outcome]]]) -> None:
        for command, future in items:
            self._one(command, future)

    def _one(self, command: Any, future: Future[Outcome]) -> None:
        try:
            aggregate = self.app.handle(command)
        except Exception as error:
            future.set_exception(error)
            return
        future.set_result(Outcome(aggregate.id, _summary(aggregate)))


def _written(batch: _Batch) -> bool:
    return batch.write is not None and batch.write.done()


def _answer(future: Future[Outcome], answer: Outcome | BaseException) -> None:
    if isinstance(answer, Outcome):
        future.set_result(answer)
    else:
        future.set_exception(answer)


def _fail(items: list[tuple[Any, Future[Outcome]]], error: BaseException) -> None:
    for _, future in items:
        if not future.done():
            future.set_exception(error)


def _summary(aggregate: Any) -> dict[str, Any]:
    summary: Callable[[], dict[str, Any]] | None = getattr(aggregate, "summary", None)
    return summary() if summary is not None else {"id": str(aggregate.id), "version": aggregate.version}
