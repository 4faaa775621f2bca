"""Alarm storm: N alarms published to itil.intake.alerts, until every incident is in the account view.

An external producer (kafka-python) publishes the storm to a running engine (`itil up`, embedded
broker, SQLite; its intake and relay in processes of their own): 5 sightings per dedup key, so
N/5 incidents. Baselines in the same run:
  transport  a plain kafka-python consumer reading the same N messages from the same broker;
  storage    the store appending N events in large batches with nothing else.
Target: the engine's end-to-end rate at least half of the lower baseline, and >= 5,000 alarms/s;
every alarm is recorded (the alarms' own events) for the auditors.

    .venv/bin/python -m bench.alarm_storm [--alarms 20000] [--quick]
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from application.app import ItilApplication
from bench.common import T0, arguments, lifecycle, report, store_env
from streams.broker import free_port

REPEATS = 5


def storm(alarms: int) -> list[bytes]:
    messages = []
    keys = alarms // REPEATS
    for n in range(alarms):
        key, sighting = n % keys, n // keys
        at = T0 + timedelta(seconds=sighting)
        messages.append(json.dumps({
            "message_id": f"nagios-{n}", "type": "alarm.raised" if sighting == 0 else "alarm.updated",
            "schema_version": 1, "sent_at": at.isoformat(), "source": "nagios-1", "account": f"account-{key % 20}",
            "ci": f"site-{key}", "check": "ping", "severity": "major", "dedup_key": f"site-{key}/ping",
            "at": at.isoformat(), "summary": f"site {key} unreachable",
        }).encode())  # fmt: skip
    return messages


def register(port: int, sites: int) -> None:
    """The accounts and sites the monitoring watches (alarms on unknown ones are dead letters)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(path: str, body: dict) -> None:
        conn.request("POST", path, json.dumps(body), {"X-Actor": "bench", "Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"{path}: {response.status}")

    for account in sorted({f"account-{key % 20}" for key in range(sites)} | {"warm"}):
        post(f"/api/accounts/{account}", {"name": account, "roc": "roc"})
    post("/api/cis/warm", {"ci": "warm", "kind": "site"})
    for key in range(sites):
        post(f"/api/cis/account-{key % 20}", {"ci": f"site-{key}", "kind": "site"})


def transport_baseline(bootstrap: str, topic: str, count: int) -> float:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    began, seen = time.perf_counter(), 0
    while seen < count:
        for records in consumer.poll(timeout_ms=200, max_records=5000).values():
            seen += len(records)
    elapsed = time.perf_counter() - began
    consumer.close()
    return count / elapsed


def storage_baseline(events: int) -> float:
    with store_env("sqlite") as env:
        app = ItilApplication(env=env)
        batch = [lifecycle(n) for n in range(events // 6 + 1)]
        began = time.perf_counter()
        for start in range(0, len(batch), 500):
            app.save(*batch[start : start + 500])
        return len(batch) * 6 / (time.perf_counter() - began)


def main() -> None:
    args = arguments(__doc__ or "", alarms=(int, 20_000, "alarms in the storm"))
    alarms = 2_000 if args.quick else args.alarms
    messages = storm(alarms)
    storage = storage_baseline(alarms)
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        env = {**os.environ, "ITIL_DATA_DIR": directory, "ITIL_HTTP_PORT": str(port)}
        for name in ("KAFKA_BOOTSTRAP_SERVERS", "PERSISTENCE_MODULE"):
            env.pop(name, None)
        log_path = Path(directory) / "engine.log"
        log = open(log_path, "wb")  # noqa: SIM115
        engine = subprocess.Popen([sys.executable, "-m", "itil.cli", "--loglevel", "warn", "up"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while not (found := re.search(r"Kafka: ([0-9.]+:\d+)", log_path.read_text(errors="replace"))):
                if time.monotonic() > deadline or engine.poll() is not None:
                    raise RuntimeError(log_path.read_text(errors="replace")[-3000:])
                time.sleep(0.2)
            bootstrap = found.group(1)
            register(port, alarms // REPEATS)
            database = Path(directory) / "itil.sqlite"
            # warm up: wait until the worker has joined (one alarm of its own becomes an incident)
            producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=512 * 1024)
            warm = json.loads(messages[0])
            warm.update(message_id=f"warm-{uuid.uuid4()}", dedup_key="warm/ping", ci="warm", account="warm")
            producer.send("itil.intake.alerts", key=b"warm/ping", value=json.dumps(warm).encode()).get(60)
            view = sqlite3.connect(database, timeout=60)
            while not view.execute("SELECT COUNT(*) FROM view_incidents WHERE account = 'warm'").fetchone()[0]:
                time.sleep(0.2)
            # and the registrations have been through every consumer (the worker is idle)
            while view.execute("SELECT COUNT(*) FROM view_cis").fetchone()[0] < alarms // REPEATS + 1:
                time.sleep(0.2)
            time.sleep(2)
            incidents = alarms // REPEATS
            keyed = [(json.loads(message)["dedup_key"].encode(), message) for message in messages]
            began = time.perf_counter()
            for key, message in keyed:
                producer.send("itil.intake.alerts", key=key, value=message)
            producer.flush()
            published = time.perf_counter() - began
            while True:
                seen = view.execute("SELECT COUNT(*) FROM view_incidents WHERE account <> 'warm'").fetchone()[0]
                taken = view.execute("SELECT COUNT(*) FROM intake_messages").fetchone()[0]
                if seen >= incidents and taken >= alarms + 1:
                    break
                if time.perf_counter() - began > 3600:
                    raise TimeoutError(f"only {seen} of {incidents} incidents visible")
                time.sleep(0.1)
            elapsed = time.perf_counter() - began
            transport = transport_baseline(bootstrap, "itil.intake.alerts", alarms + 1)
            recorded = view.execute("SELECT COUNT(*) FROM intake_messages").fetchone()[0]
        finally:
            os.killpg(engine.pid, signal.SIGTERM)
            engine.wait(60)
            log.close()
    rate = alarms / elapsed
    floor = min(transport, storage)
    report(
        f"alarm storm ({alarms:,} alarms, {incidents:,} incidents, embedded broker, SQLite)",
        {
            "publishing by the external producer, s": published,
            "baseline: transport (plain consumer), alarms/s": transport,
            "baseline: storage (batched appends), events/s": storage,
            "engine: published -> every incident visible, alarms/s": rate,
            "every alarm recorded (intake messages)": f"{recorded:,}",
            "ratio engine / lower baseline": rate / floor,
            "target: >= half the lower baseline": "met" if rate >= floor / 2 else "NOT met",
            "target: >= 5,000 alarms/s": "met" if rate >= 5000 else "NOT met",
        },
        args.json,
    )


if __name__ == "__main__":
    main()
