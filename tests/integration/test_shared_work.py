"""What the worker shares: an exact fast decode of each event, one queue for the writers of a SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

import pytest
from marshmallow import ValidationError

from domain.monitoring import Alarm
from itil.application import ItilApplication
from projections.db import Database, sqlite_writer_lock
from streams.envelope import ENVELOPE_SCHEMA, decode, encode, envelope_of
from tests.conftest import ROOT

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)


def an_envelope(position: int) -> bytes:
    alarm = Alarm.track(account="acme", dedup_key=f"k-{position}", actor="nagios", at=T0)
    [event] = alarm.collect_events()
    return encode(envelope_of(event, position, position - 1 if position > 1 else None))


def test_the_worker_decodes_an_envelope_as_the_contract_says_without_marshmallow() -> None:
    raw = an_envelope(7)
    with mock.patch.object(ENVELOPE_SCHEMA, "load", wraps=ENVELOPE_SCHEMA.load) as marshmallow:
        fast = decode(raw)
    assert marshmallow.call_count == 0
    assert fast == ENVELOPE_SCHEMA.load(json.loads(raw))


def test_the_first_event_of_a_partition_has_no_previous_position_and_decodes_the_same() -> None:
    raw = an_envelope(1)
    assert decode(raw) == ENVELOPE_SCHEMA.load(json.loads(raw)) and decode(raw)["previous_position"] is None


def test_what_the_contract_refuses_is_refused_the_same_way() -> None:
    with pytest.raises(ValueError):
        decode(b"not json")
    with pytest.raises(ValidationError) as fast:
        decode(b'{"envelope_version": 1}')
    with pytest.raises(ValidationError) as slow:
        ENVELOPE_SCHEMA.load({"envelope_version": 1})
    assert fast.value.messages == slow.value.messages


def test_the_views_and_the_event_store_queue_on_one_writer_lock(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "itil.sqlite")}
    app = ItilApplication(env=env)
    views, other = Database.from_store_env(env), Database.from_store_env(env)
    views.share_writer_lock(app.recorder)
    assert app.recorder.datastore.pool._writer_lock is views._writers is other._writers  # type: ignore[attr-defined]
    with views.transaction() as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")

    saved = threading.Event()

    def save() -> None:
        app.save(Alarm.track(account="acme", dedup_key="k", actor="nagios", at=T0))
        saved.set()

    with other.transaction() as tx:  # another writer of the same file holds it
        tx.execute("INSERT INTO t VALUES (1)")
        saver = threading.Thread(target=save)
        saver.start()
        time.sleep(0.2)
        assert not saved.is_set()  # the store's writer waits its turn on the lock, not in SQLite
    saver.join(10)
    assert saved.is_set()


def test_writers_in_other_processes_queue_on_the_same_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "itil.sqlite")
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; from projections.db import sqlite_writer_lock\n"
            f"lock = sqlite_writer_lock({path!r}); lock.acquire()\n"
            "print('held', flush=True); sys.stdin.readline(); lock.release(); print('released', flush=True)\n"
        )],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "held"
    lock, got = sqlite_writer_lock(path), threading.Event()

    def take() -> None:
        with lock:
            got.set()

    taker = threading.Thread(target=take)
    taker.start()
    assert not got.wait(0.5)  # the other process holds it
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"
    assert got.wait(10)
    taker.join(10)
    holder.wait(10)
