"""Group commit: many threads' commands share transactions, each still checked and answered alone."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from domain.errors import IllegalTransition
from itil import application as cmd
from itil.application import ItilApplication
from itil.batching import GroupCommitter

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
