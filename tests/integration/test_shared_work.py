"""Work the worker's agents share: each event decoded once, one queue for the writers of a SQLite file."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

import pytest
from marshmallow import ValidationError

import streams.worker as worker
from domain.monitoring import Alarm
from itil.application import ItilApplication
from projections.db import Database
from streams.envelope import decode, encode, envelope_of
from streams.worker import DecodedOnce, decode_fast

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)


def an_envelope(position: int) -> bytes:
    alarm = Alarm.track(account="acme", dedup_key=f"k-{position}", actor="nagios", at=T0)
    [event] = alarm.collect_events()
    return encode(envelope_of(event, position, position - 1 if position > 1 else None))


def test_an_envelope_is_decoded_once_for_every_agent_and_as_the_contract_says() -> None:
    decoded = DecodedOnce()
    raw = an_envelope(7)
    with mock.patch.object(worker, "decode_fast", wraps=decode_fast) as decoding:
        first = decoded("itil.events", 0, 41, raw)
        again = decoded("itil.events", 0, 41, raw)
    assert decoding.call_count == 1 and again is first
    assert first == decode(raw)


def test_an_offset_that_comes_again_with_other_bytes_is_decoded_again() -> None:
    decoded = DecodedOnce()
    before = decoded("itil.events", 0, 0, an_envelope(1))
    after = decoded("itil.events", 0, 0, an_envelope(2))  # the broker lost its data; the relay republished
    assert (before["position"], after["position"]) == (1, 2)


def test_what_the_contract_refuses_is_refused_the_same_way() -> None:
    decoded = DecodedOnce()
    with pytest.raises(ValueError):
        decoded("itil.events", 0, 1, b"not json")
    with pytest.raises(ValidationError):
        decoded("itil.events", 0, 2, b'{"envelope_version": 1}')


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
