"""Latency: command accepted -> visible in the account view, at a sustained rate, embedded broker.

Runs `itil up` (embedded broker, SQLite) in a subprocess, sends incident commands over HTTP at a
steady rate (100 commands/s by default: lifecycles of log, acknowledge, assign, restore,
resolve, close) and watches the account view's table until each command's version shows.
Baseline in the same run: the HTTP round trip of GET /api/health (the floor of any answer).
Target: p99 under 250 ms.

Then, in the same engine, the monitoring path: alarms published one at a time to
`itil.intake.alerts` (10 per second, each on a CI of its own) until each one's incident is in
the account view. Baseline in the same run: a plain kafka-python consumer's produce -> receive
time on the same broker with the intake's fetch wait. No target is set for it; it shows what the
intake's fetch wait costs (the embedded broker looks for new data at 0, 1/2, 3/4… of a fetch's
wait, so a message waits up to half of it).

    .venv/bin/python -m bench.latency [--rate 100] [--seconds 60] [--quick]
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.common import arguments, report
from domain.monitoring import alarm_id, episode_incident_id
from streams.broker import free_port
from streams.contracts import ALERTS_TOPIC
from streams.intake import INTAKE_FETCH_WAIT_MS

ALARMS_PER_SECOND = 10

STEPS = [
    ("acknowledge", {}), ("assign", {"group": "N2 network", "assignee": "eve"}), ("restore", {}),
    ("resolve", {"code": "fixed"}), ("close", {}),
]  # fmt: skip


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path: str, body: dict) -> dict:
        self.conn.request("POST", path, json.dumps(body), {"X-Actor": "bench", "Content-Type": "application/json"})
        response = self.conn.getresponse()
        data = json.loads(response.read())
        if response.status >= 300:
            raise RuntimeError(f"{path}: {response.status} {data}")
        return data

    def health(self) -> float:
        began = time.perf_counter()
        self.conn.request("GET", "/api/health")
        self.conn.getresponse().read()
        return time.perf_counter() - began


def main() -> None:
    args = arguments(__doc__ or "", rate=(int, 100, "commands per second"), seconds=(int, 60, "how long"))
    seconds = 5 if args.quick else args.seconds
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        env = {**os.environ, "ITIL_DATA_DIR": directory, "ITIL_HTTP_PORT": str(port), "ITIL_LOG_LEVEL": "warn"}
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        env.pop("PERSISTENCE_MODULE", None)
        log = open(Path(directory) / "engine.log", "wb")  # noqa: SIM115
        engine = subprocess.Popen([sys.executable, "-m", "itil.cli", "--loglevel", "warn", "up"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            run(port, Path(directory) / "itil.sqlite", args.rate, seconds, args.json)
            found = re.search(r"Kafka: ([0-9.]+:\d+)", (Path(directory) / "engine.log").read_text(errors="replace"))
            if found is None:
                raise RuntimeError("the engine did not say where its broker is")
            alarms(port, found.group(1), Path(directory) / "itil.sqlite", max(seconds // 2, 3), args.json)
        finally:
            os.killpg(engine.pid, signal.SIGTERM)
            engine.wait(30)
            log.close()


def run(port: int, database: Path, rate: int, seconds: int, as_json: bool) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            Client(port).health()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # warm up: the worker joins its group; wait until a first incident is visible
    client = Client(port)
    first = client.post("/api/incidents", {"account": "bench", "ci": "warm", "title": "warm-up", "impact": 3,
                                           "urgency": 3, "channel": "monitoring"})["id"]  # fmt: skip
    view = sqlite3.connect(database, timeout=30)
    while not view.execute("SELECT 1 FROM view_incidents WHERE incident_id = ?", (first,)).fetchone():
        time.sleep(0.05)

    accepted: dict[tuple[str, int], float] = {}
    seen: dict[tuple[str, int], float] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def watch() -> None:
        db = sqlite3.connect(database, timeout=30)
        while not stop.is_set() or len(seen) < len(accepted):
            with lock:
                pending = {k for k in accepted if k not in seen}
            if pending:
                ids = list({i for i, _ in pending})
                rows = db.execute(
                    "SELECT incident_id, version FROM view_incidents"
                    f" WHERE incident_id IN ({','.join('?' * len(ids))})",
                    ids,
                ).fetchall()
                now = time.perf_counter()
                versions = dict(rows)
                for incident, version in pending:
                    if versions.get(incident, 0) >= version:
                        seen[(incident, version)] = now
            time.sleep(0.002)
            if stop.is_set() and time.perf_counter() - stopped_at[0] > 30:
                return

    stopped_at = [0.0]
    watcher = threading.Thread(target=watch)
    watcher.start()
    health = [client.health() for _ in range(200)]
    interval = 1.0 / rate
    started = time.perf_counter()
    open_incidents: list[tuple[str, int]] = []
    sent = 0
    while time.perf_counter() - started < seconds:
        due = started + sent * interval
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        if open_incidents and (sent % 6 != 0):
            incident, step = open_incidents.pop(0)
            command, body = STEPS[step]
            reply = client.post(f"/api/incidents/{incident}/{command}", body)
            if step + 1 < len(STEPS):
                open_incidents.append((incident, step + 1))
        else:
            reply = client.post("/api/incidents", {"account": "bench", "ci": f"ci-{sent}", "title": "bench",
                                                   "impact": 2, "urgency": 2, "channel": "monitoring"})  # fmt: skip
            open_incidents.append((reply["id"], 0))
        with lock:
            accepted[(reply["id"], reply["version"])] = time.perf_counter()
        sent += 1
    stopped_at[0] = time.perf_counter()
    stop.set()
    watcher.join()
    latencies = [(seen[k] - t) * 1000 for k, t in accepted.items() if k in seen]
    report(
        f"latency ({rate} commands/s for {seconds} s, embedded broker, SQLite)",
        {
            "commands sent": sent,
            "achieved rate, commands/s": sent / (stopped_at[0] - started),
            "seen in the view": len(latencies),
            "baseline: HTTP round trip p50, ms": statistics.median(health) * 1000,
            "accepted -> visible p50, ms": percentile(latencies, 50),
            "accepted -> visible p99, ms": percentile(latencies, 99),
            "accepted -> visible max, ms": max(latencies),
            "target: p99 < 250 ms": "met" if percentile(latencies, 99) < 250 else "NOT met",
        },
        as_json,
    )


def alarms(port: int, bootstrap: str, database: Path, seconds: int, as_json: bool) -> None:
    """Alarm published -> its incident visible in the account view, one alarm at a time."""
    count = ALARMS_PER_SECOND * seconds
    client = Client(port)
    client.post("/api/accounts/bench-alarms", {"name": "bench-alarms", "roc": "roc"})
    for n in range(count):
        client.post("/api/cis/bench-alarms", {"ci": f"alarm-site-{n}", "kind": "site"})
    view = sqlite3.connect(database, timeout=30)
    while view.execute("SELECT COUNT(*) FROM view_cis WHERE account = 'bench-alarms'").fetchone()[0] < count:
        time.sleep(0.1)  # the intake knows the sites once the worker has registered them
    time.sleep(1)
    transport = transport_latencies(bootstrap, count // 2)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    published: dict[str, float] = {}
    seen: dict[str, float] = {}
    lock = threading.Lock()
    done = threading.Event()

    def watch() -> None:  # looks every 2 ms, whatever the publisher is doing
        db = sqlite3.connect(database, timeout=30)
        deadline = None
        while not (done.is_set() and len(seen) >= len(published)):
            if done.is_set():
                deadline = deadline or time.perf_counter() + 60
                if time.perf_counter() > deadline:
                    return
            with lock:
                pending = [i for i in published if i not in seen]
            if pending:
                rows = db.execute(
                    f"SELECT incident_id FROM view_incidents WHERE incident_id IN ({','.join('?' * len(pending))})",
                    pending,
                ).fetchall()
                now = time.perf_counter()
                with lock:
                    seen.update((incident, now) for (incident,) in rows)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    pace = random.Random(11)
    for n in range(count):
        time.sleep(pace.uniform(0.5, 1.5) / ALARMS_PER_SECOND)  # not in step with the intake's fetches
        key, at = f"alarm-site-{n}/ping", time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        message = {
            "message_id": f"bench-latency-{n}", "type": "alarm.raised", "schema_version": 1, "sent_at": at,
            "source": "nagios-1", "account": "bench-alarms", "ci": f"alarm-site-{n}", "check": "ping",
            "severity": "major", "dedup_key": key, "at": at, "summary": "unreachable",
        }  # fmt: skip
        incident = str(episode_incident_id(alarm_id("bench-alarms", key), 1))
        with lock:
            published[incident] = time.perf_counter()
        producer.send(ALERTS_TOPIC, key=key.encode(), value=json.dumps(message).encode()).get(30)
    done.set()
    watcher.join()
    producer.close()
    latencies = [(seen[i] - t) * 1000 for i, t in published.items() if i in seen]
    report(
        f"alarm latency ({ALARMS_PER_SECOND} alarms/s for {seconds} s, embedded broker, SQLite)",
        {
            "alarms published": len(published),
            "incidents seen in the view": len(latencies),
            f"baseline: produce -> plain consumer ({INTAKE_FETCH_WAIT_MS} ms fetch wait) p50, ms":
                percentile(transport, 50),
            "baseline: produce -> plain consumer p99, ms": percentile(transport, 99),
            "published -> incident visible p50, ms": percentile(latencies, 50),
            "published -> incident visible p99, ms": percentile(latencies, 99),
            "published -> incident visible max, ms": max(latencies),
        },
        as_json,
    )  # fmt: skip


def transport_latencies(bootstrap: str, count: int) -> list[float]:
    """Produce -> received by a plain consumer polling all along (as the intake does), on a topic of its
    own, a message every 100 ms or so (ms)."""
    topic = f"bench-latency-{os.getpid()}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    producer.send(topic, b"warm", partition=0).get(30)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             fetch_max_wait_ms=INTAKE_FETCH_WAIT_MS)  # fmt: skip
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    while not consumer.poll(timeout_ms=1000):
        pass  # the warm-up message: the consumer has its position
    sent: dict[bytes, float] = {}
    received: dict[bytes, float] = {}

    def receive() -> None:
        while len(received) < count:
            for records in consumer.poll(timeout_ms=200).values():
                now = time.perf_counter()
                received.update((r.value, now) for r in records)

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    pace = random.Random(7)
    for n in range(count):
        time.sleep(pace.uniform(0.5, 1.5) / ALARMS_PER_SECOND)  # not in step with the consumer's fetches
        value = f"{n}".encode()
        sent[value] = time.perf_counter()
        producer.send(topic, value, partition=0).get(30)
    receiver.join(30)
    consumer.close()
    producer.close()
    return [(received[v] - t) * 1000 for v, t in sent.items() if v in received] or [float("nan")]


if __name__ == "__main__":
    main()
