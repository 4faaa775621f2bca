"""Fixtures shared by every layer: stores on SQLite and PostgreSQL, the engine's processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "itil.sqlite")}


@contextmanager
def pg_database() -> Iterator[dict[str, str]]:
    """A database of its own on the local PostgreSQL (its store settings), dropped afterwards."""
    import psycopg

    name = f"itil_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": name,
            "POSTGRES_HOST": PG["host"],
            "POSTGRES_PORT": str(PG["port"]),
            "POSTGRES_USER": PG["user"],
            "POSTGRES_PASSWORD": "",
        }
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_env() -> Iterator[dict[str, str]]:
    """A database of its own on the local PostgreSQL, dropped afterwards."""
    with pg_database() as env:
        yield env


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_env" if request.param == "sqlite" else "pg_env"
    env: dict[str, str] = request.getfixturevalue(fixture)
    return env


def wait_for(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2, what: str = "") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as e:  # noqa: BLE001 - keep polling; report the last error on timeout
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or check}: last={last!r}")


def children_of(pid: int) -> dict[int, str]:
    """The commands of a process's children, by pid."""
    out = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return {int(p): args for p, args in (line.strip().split(" ", 1) for line in out.splitlines() if line.strip())}


def running(pid: int) -> bool:
    """False once the process has exited: gone, or a zombie its new parent (init) has yet to wait for."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class EngineProcess:
    """One `itil <command>` process, its output kept for assertions and post-mortems."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        full_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("POSTGRES_", "SQLITE_", "ITIL_", "KAFKA_", "PERSISTENCE_"))
        }
        full_env.update(env)
        full_env["PYTHONUNBUFFERED"] = "1"
        self._log = open(log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "itil.cli", "--loglevel", "info", *args],
            cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_output(self, text: str, timeout: float = 60.0) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"itil {' '.join(self.args)} exited:\n{self.output()[-4000:]}")
            return text in self.output()

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if seen():
                return
            time.sleep(0.1)
        raise AssertionError(f"itil {' '.join(self.args)} never printed {text!r}:\n{self.output()[-4000:]}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., EngineProcess]]:
    started: list[EngineProcess] = []
    lock = threading.Lock()

    def start(*args: str, env: dict[str, str], name: str | None = None) -> EngineProcess:
        with lock:
            log_path = tmp_path / f"{name or args[0]}-{len(started)}.log"
            process = EngineProcess(list(args), env, log_path)
            started.append(process)
            return process

    yield start
    for process in reversed(started):
        process.stop()
