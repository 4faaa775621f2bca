"""Group commit: many threads' commands share transactions, each still checked and answered alone."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from application.app import ItilApplication
from application.batching import GroupCommitter
from domain import commands as cmd
from domain.errors import IllegalTransition, InvalidCommand

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)


def log(incident_id, n: int = 0) -> cmd.LogIncident:  # type: ignore[no-untyped-def]
    return cmd.LogIncident(id=incident_id, account="acme", title=f"site {n} down", impact=2, urgency=1,
                           channel="monitoring", reporter="nagios", actor="nagios", at=T0, ci=f"site-{n}")  # fmt: skip


def test_concurrent_lifecycles_are_stored_whole_and_share_transactions(store_env: dict[str, str]) -> None:
    app = ItilApplication(env=store_env)
    committer = GroupCommitter(app).start()
    ids = [uuid4() for _ in range(40)]
    errors: list[BaseException] = []

    def life(k: int) -> None:
        try:
            i = ids[k]
            committer.handle(log(i, k))
            committer.handle(cmd.AcknowledgeIncident(i, actor="n1", at=T0 + timedelta(minutes=1)))
            committer.handle(cmd.AssignIncident(i, group="N2 network", actor="n1", at=T0 + timedelta(minutes=2)))
            outcome = committer.handle(cmd.ResolveIncident(i, code="fixed", actor="n2", at=T0 + timedelta(hours=1)))
            assert outcome.summary["status"] == "resolved"
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=life, args=(k,)) for k in range(len(ids))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committer.stop()
    assert errors == []
    fresh = ItilApplication(env=store_env)
    assert {fresh.get_incident(i).status for i in ids} == {"resolved"}
    assert all(fresh.get_incident(i).version == 5 for i in ids)  # logged, ack, assigned, restored, resolved
    assert committer.batches < committer.commands  # some transactions carried several commands


def test_a_refused_command_gets_its_own_error_and_the_rest_of_the_batch_is_saved(store_env: dict[str, str]) -> None:
    app = ItilApplication(env=store_env)
    committer = GroupCommitter(app)  # not started: queue a whole batch first
    a, b = uuid4(), uuid4()
    futures = [
        committer.submit(log(a, 1)),
        committer.submit(log(b, 2)),
        committer.submit(cmd.CloseIncident(a, actor="n1", at=T0)),  # never resolved: refused
        committer.submit(cmd.AcknowledgeIncident(b, actor="n1", at=T0)),
        committer.submit(log(a, 1)),  # the same log again: the effect of once
    ]
    with pytest.raises(IllegalTransition, match="only a resolved incident can be closed"):
        futures[2].result(timeout=30)
    assert futures[3].result(timeout=30).summary["status"] == "acknowledged"
    assert futures[4].result(timeout=30).summary["version"] == 1
    assert committer.batches == 1
    committer.stop()
    assert app.get_incident(a).version == 1 and app.get_incident(b).version == 2


def test_changes_made_by_another_writer_are_seen_before_the_next_command(store_env: dict[str, str]) -> None:
    app = ItilApplication(env=store_env)
    other = ItilApplication(env=store_env)  # e.g. the intake processor in the worker process
    committer = GroupCommitter(app).start()
    i = uuid4()
    committer.handle(log(i))
    other.handle(cmd.AcknowledgeIncident(i, actor="n1", at=T0 + timedelta(minutes=1)))
    with pytest.raises(IllegalTransition, match="already acknowledged"):
        committer.handle(cmd.AcknowledgeIncident(i, actor="n1", at=T0 + timedelta(minutes=2)))
    outcome = committer.handle(cmd.AssignIncident(i, group="N2 network", actor="n1", at=T0 + timedelta(minutes=3)))
    committer.stop()
    assert outcome.summary["version"] == 3
    assert app.stored_versions([i, uuid4()]) == {i: 3}


class HeldApplication(ItilApplication):
    """Its next write waits to be let go, or fails, so a test can act while a batch is being written."""

    name = "itil"  # the same tables as the other writer's

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env=env)
        self.hold = False
        self.fail_with: Exception | None = None
        self.writing = threading.Event()
        self.let_go = threading.Event()

    def record(self, processing_event):  # type: ignore[no-untyped-def]
        if self.hold:
            self.hold = False
            self.writing.set()
            assert self.let_go.wait(30)
            if self.fail_with is not None:
                raise self.fail_with
        return super().record(processing_event)


def _prepared(committer: GroupCommitter) -> None:
    deadline = time.monotonic() + 10
    while committer._incoming and time.monotonic() < deadline:  # taken by the committer
        time.sleep(0.01)
    time.sleep(0.2)  # and carried out on top of the batch being written


def test_a_batch_built_on_a_batch_that_lost_a_conflict_is_carried_out_again(store_env: dict[str, str]) -> None:
    app = HeldApplication(store_env)
    other = ItilApplication(env=store_env)
    committer = GroupCommitter(app).start()
    i = uuid4()
    committer.handle(log(i))
    app.hold = True
    acknowledged = committer.submit(cmd.AcknowledgeIncident(i, actor="n1", at=T0 + timedelta(minutes=1)))
    assert app.writing.wait(10)
    assigned = committer.submit(cmd.AssignIncident(i, group="N2 network", actor="n1", at=T0 + timedelta(minutes=2)))
    _prepared(committer)
    assert not assigned.done()  # not answered before the batch it was built on has committed
    other.handle(cmd.AcknowledgeIncident(i, actor="n2", at=T0 + timedelta(minutes=1)))  # saved first
    app.let_go.set()
    with pytest.raises(IllegalTransition, match="already acknowledged"):
        acknowledged.result(timeout=30)
    assert assigned.result(timeout=30).summary["version"] == 3
    committer.stop()
    history = ItilApplication(env=store_env).history(i)
    assert [type(e).__name__ for e in history] == ["Logged", "Acknowledged", "Assigned"]
    assert history[1].actor == "n2"  # type: ignore[attr-defined]


def test_a_failed_write_leaves_nothing_half_done_in_memory(store_env: dict[str, str]) -> None:
    app = HeldApplication(store_env)
    committer = GroupCommitter(app).start()
    i = uuid4()
    committer.handle(log(i))
    app.hold, app.fail_with = True, RuntimeError("the disk is full")
    acknowledged = committer.submit(cmd.AcknowledgeIncident(i, actor="n1", at=T0 + timedelta(minutes=1)))
    assert app.writing.wait(10)
    assigned = committer.submit(cmd.AssignIncident(i, group="N2 network", actor="n1", at=T0 + timedelta(minutes=2)))
    _prepared(committer)
    app.let_go.set()
    with pytest.raises(RuntimeError, match="disk is full"):
        acknowledged.result(timeout=30)
    summary = assigned.result(timeout=30).summary  # carried out again on the incident as stored
    assert (summary["version"], summary["status"], summary["acknowledged_at"]) == (2, "assigned", None)
    outcome = committer.handle(cmd.AcknowledgeIncident(i, actor="n1", at=T0 + timedelta(minutes=4)))
    committer.stop()
    assert outcome.summary["version"] == 3
    assert [type(e).__name__ for e in app.history(i)] == ["Logged", "Assigned", "Acknowledged"]


def test_a_command_the_store_could_not_write_fails_alone_and_its_neighbours_are_saved(
    store_env: dict[str, str],
) -> None:
    app = ItilApplication(env=store_env)
    committer = GroupCommitter(app)  # not started: queue a whole batch first
    bad_title, bad_actor, good = uuid4(), uuid4(), uuid4()
    futures = [
        committer.submit(replace(log(bad_title, 1), title="site\x00down")),
        committer.submit(log(good, 2)),
        committer.submit(replace(log(bad_actor, 3), actor="al\udcffice")),  # an X-Actor of bad UTF-8
    ]
    committer.start()
    with pytest.raises(InvalidCommand, match="title must not contain"):
        futures[0].result(timeout=30)
    with pytest.raises(InvalidCommand, match="actor must not contain"):
        futures[2].result(timeout=30)
    assert futures[1].result(timeout=30).summary["status"] == "new"
    committer.stop()
    assert app.get_incident(good).version == 1
