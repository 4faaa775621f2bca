"""The embedded broker lives as long as the process that started it, however that process ends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker, broker_answers
from tests.conftest import ROOT, children_of, running, wait_for

pytestmark = pytest.mark.integration

STARTED_FROM_A_THREAD = """
import sys, threading, time
from streams.broker import EmbeddedBroker

def start():
    print(EmbeddedBroker().start().bootstrap, flush=True)

starter = threading.Thread(target=start)
starter.start()
starter.join()
time.sleep(600)
"""


def test_a_broker_started_from_a_thread_outlives_the_thread_but_not_a_killed_process() -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", STARTED_FROM_A_THREAD], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert owner.stdout is not None
        bootstrap = owner.stdout.readline().strip()
        children = children_of(owner.pid)
        [broker] = [pid for pid, args in children.items() if f"tcp://{bootstrap}" in args]
        [watchdog] = [pid for pid, args in children.items() if "broker_watchdog" in args]
        time.sleep(0.5)
        assert running(broker) and broker_answers(bootstrap)  # the thread that started it has ended

        owner.kill()  # SIGKILL: nothing in it runs again
        owner.wait(10)
        wait_for(lambda: not running(broker), 5, interval=0.05, what="the broker gone")
        wait_for(lambda: not running(watchdog), 5, interval=0.05, what="the watchdog gone")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(owner.pid, signal.SIGKILL)  # whatever is left, should this test fail


def test_a_stopped_broker_stops_at_once_and_leaves_no_process_behind() -> None:
    broker = EmbeddedBroker().start()
    children = children_of(os.getpid())
    [pid] = [pid for pid, args in children.items() if f"tcp://{broker.bootstrap}" in args]
    [watchdog] = [pid for pid, args in children.items() if "broker_watchdog" in args]
    started = time.monotonic()
    broker.stop()
    assert time.monotonic() - started < 2.0
    assert not Path(f"/proc/{pid}").exists() and not Path(f"/proc/{watchdog}").exists()  # waited for: no zombie
