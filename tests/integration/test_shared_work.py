"""What the worker shares: an exact fast decode of each event, one queue for the writers of a SQLite file."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

import pytest
from marshmallow import ValidationError

from application.app import ItilApplication
from application.eventsourcing_internals import share_writer_lock
from domain.monitoring import Alarm
from projections.db import Database, WriterLock, WriterLockTimeout, sqlite_writer_lock
from projections.records import envelope_of
from streams.envelope import ENVELOPE_SCHEMA, decode, encode
from tests.conftest import ROOT, wait_for

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
    share_writer_lock(app.recorder, views.writer_lock)
    assert app.recorder.datastore.pool._writer_lock is views.writer_lock is other.writer_lock  # type: ignore[attr-defined]
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


def another_process_holds(lock: WriterLock) -> int:
    """An open file description of the lock file of its own, holding the lock as another process would."""
    fd = os.open(lock.path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def free_for_another_process(lock: WriterLock) -> bool:
    fd = os.open(lock.path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_a_writer_gives_up_on_a_lock_another_process_keeps_and_says_which_and_how_long(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "itil.sqlite"), timeout=0.3)
    holder = another_process_holds(lock)
    started = time.monotonic()
    with pytest.raises(WriterLockTimeout, match=r"itil\.sqlite\.writer-lock after 0\.3 s"):
        lock.acquire()
    assert 0.3 <= time.monotonic() - started < 2.0

    got = threading.Event()
    taker = threading.Thread(target=lambda: lock.acquire() and got.set())
    taker.start()  # another thread of this process: the one that gave up left the thread lock free
    time.sleep(0.1)
    os.close(holder)
    assert got.wait(5)  # within its 0.3 s, through the place in the queue the first writer left
    taker.join(5)


def test_a_writer_waits_no_longer_than_it_asks_as_the_event_stores_pool_does(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "itil.sqlite"), timeout=30)
    holder = another_process_holds(lock)
    started = time.monotonic()
    with pytest.raises(WriterLockTimeout, match="after 0.2 s"):
        lock.acquire(timeout=0.2)
    assert time.monotonic() - started < 2.0
    assert lock.acquire(blocking=False) is False
    os.close(holder)


def test_the_event_stores_writer_gives_up_after_its_pool_timeout_on_a_lock_another_process_keeps(
    tmp_path: Path,
) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "itil.sqlite")}
    app = ItilApplication(env=env)
    views = Database.from_store_env(env)
    share_writer_lock(app.recorder, views.writer_lock)
    app.recorder.datastore.pool.pool_timeout = 0.3  # type: ignore[attr-defined]
    holder = another_process_holds(sqlite_writer_lock(env["SQLITE_DBNAME"]))
    with pytest.raises(WriterLockTimeout, match="after 0.3 s"):
        app.save(Alarm.track(account="acme", dedup_key="k", actor="nagios", at=T0))
    os.close(holder)
    app.save(Alarm.track(account="acme", dedup_key="k", actor="nagios", at=T0))


def test_a_lock_that_comes_after_the_writer_gave_up_is_let_go_at_once(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "itil.sqlite"), timeout=0.2)
    holder = another_process_holds(lock)
    with pytest.raises(WriterLockTimeout):
        lock.acquire()
    os.close(holder)  # the writer's place in the queue gets the lock now, with nobody waiting for it
    wait_for(lambda: free_for_another_process(lock), 5, interval=0.02, what="the lock let go")


def test_a_writer_queued_behind_another_process_gets_the_lock_once_it_is_free(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "itil.sqlite"), timeout=30)
    holder = another_process_holds(lock)
    threading.Timer(0.3, os.close, [holder]).start()
    started = time.monotonic()
    with lock:
        waited = time.monotonic() - started
        assert not free_for_another_process(lock)
    assert 0.3 <= waited < 2.0
    assert free_for_another_process(lock)  # released through the descriptor that took it


def test_a_views_write_waits_as_long_as_the_stores_sqlite_lock_timeout(tmp_path: Path) -> None:
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "itil.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "1",
    }  # fmt: skip
    db = Database.from_store_env(env)
    holder = another_process_holds(sqlite_writer_lock(env["SQLITE_DBNAME"]))
    with pytest.raises(WriterLockTimeout, match="after 1.0 s"), db.transaction() as tx:
        tx.execute("CREATE TABLE t (n INTEGER)")
    os.close(holder)
    with db.transaction() as tx:
        tx.execute("CREATE TABLE t (n INTEGER)")


def test_writers_of_several_processes_and_threads_never_hold_the_lock_together(tmp_path: Path) -> None:
    path, counter = str(tmp_path / "itil.sqlite"), tmp_path / "count"
    counter.write_text("0")
    writer = (
        "import threading; from pathlib import Path; from projections.db import sqlite_writer_lock\n"
        f"lock, counter = sqlite_writer_lock({path!r}), Path({str(counter)!r})\n"
        "def write():\n"
        "    for _ in range(100):\n"
        "        with lock:\n"
        "            n = int(counter.read_text()); counter.write_text(str(n + 1))\n"
        "threads = [threading.Thread(target=write) for _ in range(3)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", writer], cwd=ROOT) for _ in range(3)]
    assert [w.wait(60) for w in writers] == [0, 0, 0]
    assert counter.read_text() == "900"
