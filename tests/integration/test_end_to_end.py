"""`itil up` on a fresh data directory: open an incident over HTTP, see it in the account view."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from streams.broker import free_port
from tests.conftest import ROOT, EngineProcess, children_of, running, wait_for
from tests.integration.http import call

pytestmark = pytest.mark.integration


def start_engine(spawn: Callable[..., EngineProcess], tmp_path: Path, store_env: dict[str, str]) -> tuple[str, str]:
    port = free_port()
    engine = spawn("up", env={**store_env, "ITIL_DATA_DIR": str(tmp_path / "var"), "ITIL_HTTP_PORT": str(port)})
    engine.wait_output("ITIL engine: http://", timeout=60)
    match = re.search(r"Kafka: ([0-9.]+:\d+)", engine.output())
    assert match, engine.output()
    return f"http://127.0.0.1:{port}", match.group(1)


def test_incident_opened_over_http_reaches_the_account_view_and_kafka(
    spawn: Callable[..., EngineProcess], tmp_path: Path, store_env: dict[str, str]
) -> None:
    base, bootstrap = start_engine(spawn, tmp_path, store_env)
    status, contract = call("POST", f"{base}/api/sla/accounts/resto-chain/contract", {
        "targets": {"P2": {"response": "1h", "restoration": "4h"}, "P4": {"response": "2s", "restoration": "8h"}},
        "calendar": {"preset": "24x7"},
        "escalations": [{"threshold": 90, "notify": "roc"}],
    }, actor="roc-anne")  # fmt: skip
    assert status == 201, contract

    status, created = call("POST", f"{base}/api/incidents", {
        "account": "resto-chain", "ci": "tpe-0042", "title": "Payment terminal offline",
        "impact": 2, "urgency": 1, "channel": "extranet", "reporter": "manager@resto",
    }, actor="hotline-n1")  # fmt: skip
    assert status == 201, created
    incident = created["id"]
    assert created["priority"] == 2 and created["status"] == "new"
    for command, body in [
        ("acknowledge", {}),
        ("assign", {"group": "field technicians", "assignee": "tech-07"}),
        ("hold", {"reason": "awaiting_supplier", "note": "new terminal shipped"}),
        ("resume", {}),
        ("restore", {"note": "terminal swapped"}),
    ]:
        status, body = call("POST", f"{base}/api/incidents/{incident}/{command}", body, actor="tech-07")
        assert status == 200, (command, body)

    # a second incident on the same account, still open
    status, other = call("POST", f"{base}/api/incidents", {
        "account": "resto-chain", "service": "extranet", "title": "Extranet slow",
        "impact": 3, "urgency": 3, "channel": "email",
    }, actor="hotline-n1")  # fmt: skip
    assert status == 201

    def view_has_both() -> dict | None:
        status, view = call("GET", f"{base}/api/accounts/resto-chain/incidents")
        ids = [i["id"] for i in view["incidents"]]
        return view if status == 200 and incident in ids and other["id"] in ids else None

    view = wait_for(view_has_both, 60, what="both incidents in the account view")
    first = next(i for i in view["incidents"] if i["id"] == incident)
    assert (first["status"], first["priority"], first["assignee"]) == ("restored", "P2", "tech-07")
    assert view["incidents"][0]["id"] == incident  # P2 before P4
    assert view["open_by_priority"] == {"P2": 1, "P4": 1}

    detail = wait_for(
        lambda: (d := call("GET", f"{base}/api/accounts/resto-chain/incidents/{incident}")[1])
        and len(d.get("timeline", [])) == 6 and d,
        30, what="whole timeline",
    )  # fmt: skip
    assert [e["event_type"].split(".")[1] for e in detail["timeline"]] == [
        "Logged", "Acknowledged", "Assigned", "PutOnHold", "Resumed", "ServiceRestored",
    ]  # fmt: skip
    assert detail["timeline"][3]["summary"] == "Put on hold: awaiting supplier (new terminal shipped)"
    assert detail["timeline"][2]["actor"] == "tech-07"

    # the SLA clocks run in the worker: restoration stopped in time; the P4's 2 s response breached
    clocks = wait_for(
        lambda: (c := call("GET", f"{base}/api/sla/incidents/{incident}")[1])
        and c.get("metrics", {}).get("restoration", {}).get("state") == "stopped" and c,
        60, what="SLA clocks",
    )  # fmt: skip
    assert clocks["metrics"]["restoration"]["met"] is True
    breaches = wait_for(
        lambda: call("GET", f"{base}/api/sla/accounts/resto-chain/breaches")[1]["breaches"], 60, what="breach"
    )
    assert [(b["incident_id"], b["metric"]) for b in breaches] == [(other["id"], "response")]
    at_risk = wait_for(
        lambda: call("GET", f"{base}/api/sla/accounts/resto-chain/at-risk")[1]["at_risk"], 60, what="at risk"
    )
    assert {r["incident_id"] for r in at_risk} == {other["id"]}
    explained = wait_for(
        lambda: len(e := call("GET", f"{base}/api/sla/incidents/{incident}")[1]["explanation"]) >= 3 and e,
        60, what="explanation",
    )  # fmt: skip
    assert explained[0]["summary"].startswith("Clocks started: P2")

    status, story = call("GET", f"{base}/api/incidents/{incident}")
    assert status == 200 and story["status"] == "restored" and len(story["timeline"]) == 6

    # resolve and close: it leaves the open list
    assert call("POST", f"{base}/api/incidents/{incident}/resolve", {"code": "fixed"})[0] == 200
    assert call("POST", f"{base}/api/incidents/{incident}/close", {})[0] == 200

    def status_of_all() -> dict[str, str]:
        everything = call("GET", f"{base}/api/accounts/resto-chain/incidents?include=all")[1]
        return {i["id"]: i["status"] for i in everything["incidents"]}

    wait_for(lambda: status_of_all()[incident] == "closed", 30, what="incident closed in the view")
    open_ids = [i["id"] for i in call("GET", f"{base}/api/accounts/resto-chain/incidents")[1]["incidents"]]
    assert open_ids == [other["id"]]

    # the events are on Kafka for any client: kcat (librdkafka) and kafka-python
    out = subprocess.run(
        [str(ROOT / ".venv/bin/kcat"), "-b", bootstrap, "-t", "itil.events", "-C", "-e", "-q", "-f", "%k %s\n"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    mine = [json.loads(line.split(" ", 1)[1]) for line in out.stdout.splitlines() if line.startswith(incident)]
    assert [e["aggregate_version"] for e in mine] == list(range(1, 9))


def test_an_alarm_goes_through_the_intake_and_relay_processes_into_the_account_view(
    spawn: Callable[..., EngineProcess], tmp_path: Path, sqlite_env: dict[str, str]
) -> None:
    port = free_port()
    engine = spawn("up", env={**sqlite_env, "ITIL_DATA_DIR": str(tmp_path / "var"), "ITIL_HTTP_PORT": str(port)})
    engine.wait_output("ITIL engine: http://", timeout=60)
    base = f"http://127.0.0.1:{port}"
    bootstrap = re.search(r"Kafka: ([0-9.]+:\d+)", engine.output()).group(1)  # type: ignore[union-attr]
    children = children_of(engine.proc.pid)
    commands = sorted(args.split("itil.cli", 1)[1].split()[-1] for args in children.values() if "itil.cli" in args)
    assert commands == ["intake", "relay"], children

    assert call("POST", f"{base}/api/accounts/resto-chain", {"name": "Resto", "roc": "roc-anne"})[0] in (200, 201)
    assert call("POST", f"{base}/api/cis/resto-chain", {"ci": "router-12", "kind": "router"})[0] in (200, 201)
    alarm = {
        "message_id": "centreon-1", "type": "alarm.raised", "schema_version": 1, "source": "centreon",
        "sent_at": "2026-03-02T09:15:00+01:00", "at": "2026-03-02T09:15:00+01:00", "account": "resto-chain",
        "ci": "router-12", "check": "ping", "severity": "critical", "dedup_key": "router-12/ping",
        "summary": "router-12 unreachable",
    }  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=bootstrap)

    def incident_of_the_alarm() -> dict | None:  # the CI may still be on its way to the intake's checks
        producer.send("itil.intake.alerts", key=b"router-12/ping", value=json.dumps(alarm).encode()).get(30)
        incidents = call("GET", f"{base}/api/accounts/resto-chain/incidents")[1]["incidents"]
        return next((i for i in incidents if i["ci"] == "router-12"), None)

    found = wait_for(incident_of_the_alarm, 120, interval=2.0, what="the alarm's incident in the account view")
    assert found["priority"] == "P1" and found["title"].startswith("ping on router-12"), found
    producer.close()

    engine.proc.send_signal(signal.SIGTERM)  # the engine alone: it stops its children
    engine.proc.wait(60)
    wait_for(lambda: all(not Path(f"/proc/{pid}").exists() for pid in children), 30, what="children stopped")


def test_the_intake_relay_and_broker_do_not_outlive_an_engine_killed_outright(
    spawn: Callable[..., EngineProcess], tmp_path: Path, sqlite_env: dict[str, str]
) -> None:
    port = free_port()
    engine = spawn("up", env={**sqlite_env, "ITIL_DATA_DIR": str(tmp_path / "var"), "ITIL_HTTP_PORT": str(port)})
    engine.wait_output("ITIL engine: http://", timeout=60)
    bootstrap = re.search(r"Kafka: ([0-9.]+:\d+)", engine.output()).group(1)  # type: ignore[union-attr]

    def engine_children() -> dict[int, str]:
        return {
            pid: args for pid, args in children_of(engine.proc.pid).items()
            if "itil.cli" in args or f"tcp://{bootstrap}" in args or "broker_watchdog" in args
        }  # fmt: skip

    children = wait_for(lambda: len(c := engine_children()) == 4 and c, 30, what="intake, relay, broker, watchdog")
    engine.proc.kill()  # SIGKILL: it cannot stop them itself
    engine.proc.wait(30)
    try:
        wait_for(lambda: not any(map(running, children)), 30, what=f"children gone: {children}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(engine.proc.pid, signal.SIGKILL)  # whatever is left, should this test fail


def test_bad_requests_get_clear_json_errors(
    spawn: Callable[..., EngineProcess], tmp_path: Path, sqlite_env: dict[str, str]
) -> None:
    base, bootstrap = start_engine(spawn, tmp_path, sqlite_env)
    good = {
        "account": "acme",
        "ci": "fw-1",
        "title": "VPN down",
        "impact": 1,
        "urgency": 1,
        "channel": "phone",
    }

    status, body = call("POST", f"{base}/api/incidents", raw=b"{not json")
    assert status == 400 and "not valid JSON" in body["error"]
    status, body = call("POST", f"{base}/api/incidents", {**good, "impact": 7, "channel": "fax"})
    assert status == 422 and set(body["fields"]) == {"impact", "channel"}
    status, body = call("POST", f"{base}/api/incidents", {**good, "ci": None, "service": None})
    assert status == 422 and "service or the CI" in body["error"]
    status, body = call("POST", f"{base}/api/incidents", good, actor=None)
    assert status == 422 and "X-Actor" in body["error"]
    status, body = call("GET", f"{base}/api/incidents/not-a-uuid")
    assert status == 404 and "error" in body
    status, body = call("GET", f"{base}/api/incidents/9b2f5f8e-1111-4c5e-9a59-3d5b8c1f0a11")
    assert status == 404 and "no incident" in body["error"]

    status, created = call("POST", f"{base}/api/incidents", good)
    assert status == 201
    incident = created["id"]
    status, body = call("POST", f"{base}/api/incidents/{incident}/close", {})
    assert status == 409 and "only a resolved incident can be closed" in body["error"]
    status, body = call("POST", f"{base}/api/incidents/{incident}/teleport", {})
    assert status == 404 and "unknown command" in body["error"]
    status, body = call("POST", f"{base}/api/incidents/{incident}/hold", {"reason": "lunch"})
    assert status == 422 and "reason" in body["fields"]
    status, body = call("POST", f"{base}/api/incidents/{incident}/acknowledge", {"at": "2099-01-01T00:00:00+00:00"})
    assert status == 422 and "future" in body["error"]
    status, body = call("GET", f"{base}/api/incidents/{incident}")
    assert body["version"] == 1  # nothing refused was stored

    # the same from a terminal: `itil incident …` and `itil account …` speak to the API
    def itil(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "itil.cli", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    done = itil("incident", "log", "--url", base, "--account", "acme", "--title", "from the terminal",
                "--impact", "3", "--urgency", "2", "--channel", "email", "--service", "mail", "--actor", "carol")  # fmt: skip
    assert done.returncode == 0, done.stderr
    from_terminal = json.loads(done.stdout)["id"]
    done = itil("incident", "assign", from_terminal, "--url", base, "--group", "N2 systems", "--actor", "carol")
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "assigned"
    done = itil("incident", "close", from_terminal, "--url", base, "--actor", "carol")
    assert done.returncode == 1 and "only a resolved incident can be closed" in done.stderr
    wait_for(
        lambda: from_terminal in itil("account", "acme", "--url", base).stdout,
        60,
        what="terminal incident in view",
    )

    # the customer extranet opens an incident through its intake topic (the account and the CI are
    # registered); a malformed request and one naming an unknown account are dead-lettered
    assert call("POST", f"{base}/api/accounts/acme", {"name": "Acme", "roc": "roc-anne"})[0] == 201
    assert call("POST", f"{base}/api/cis/acme", {"ci": "tpe-0042", "kind": "payment_terminal"})[0] == 201
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    request = {
        "message_id": "extranet-e2e-1", "type": "incident.open", "schema_version": 1,
        "sent_at": "2026-03-02T09:15:02+01:00", "source": "extranet", "account": "acme",
        "requester": "j.martin@acme.fr", "title": "Terminal from the extranet", "description": "no line",
        "ci": "tpe-0042", "urgency": 2,
    }  # fmt: skip
    stranger = {**request, "message_id": "extranet-e2e-2", "account": "nobody"}
    for payload in (
        b'{"type": "incident.open"', json.dumps(request).encode(), json.dumps(request).encode(),
        json.dumps(stranger).encode(),
    ):  # fmt: skip
        producer.send("itil.intake.requests", key=b"acme", value=payload).get(timeout=10)
    producer.close()
    wait_for(
        lambda: [i for i in call("GET", f"{base}/api/accounts/acme/incidents")[1]["incidents"]
                 if i["title"] == "Terminal from the extranet"],
        90, what="extranet incident in the account view",
    )  # fmt: skip
    titles = [i["title"] for i in call("GET", f"{base}/api/accounts/acme/incidents")[1]["incidents"]]
    assert titles.count("Terminal from the extranet") == 1  # the same message twice: one incident
    status, asyncapi = call("GET", f"{base}/api/contracts/asyncapi.json")
    assert status == 200 and "itil.intake.alerts" in json.dumps(asyncapi)

    # a poison message on itil.events goes to the dead letters; the worker keeps going
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send("itil.events", key=b"junk", value=b"\xff not an envelope", partition=0).get(timeout=10)
    producer.close()
    consumer = KafkaConsumer("itil.deadletter", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=1000)  # fmt: skip
    letters: list = []
    wait_for(
        lambda: letters.extend(json.loads(m.value) for m in consumer)
        or len(letters) >= 3,
        60, what="dead letters",
    )  # fmt: skip
    consumer.close()
    by_topic = {letter["source"]["topic"]: letter for letter in letters}
    assert "not a valid" in by_topic["itil.events"]["reason"]
    requests = [letter["reason"] for letter in letters if letter["source"]["topic"] == "itil.intake.requests"]
    assert any(r.startswith("malformed JSON") for r in requests)
    assert any(r.startswith("unknown account 'nobody'") for r in requests)
    status, created = call("POST", f"{base}/api/incidents", {**good, "title": "after the poison"})
    wait_for(
        lambda: any(i["title"] == "after the poison" for i in call("GET", f"{base}/api/accounts/acme/incidents")[1]["incidents"]),
        60, what="incident after the poison message",
    )  # fmt: skip


@pytest.mark.parametrize("command", ["up", "web"])
def test_a_port_already_in_use_is_one_line_naming_the_setting(command: str, tmp_path: Path) -> None:
    import socket

    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        env = {**os.environ, "ITIL_DATA_DIR": str(tmp_path), "ITIL_HTTP_PORT": str(port)}
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        done = subprocess.run([sys.executable, "-m", "itil.cli", command], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"itil {command}: cannot listen on 127.0.0.1:{port} (Address already in use);"
        " set ITIL_HTTP_PORT (or ITIL_HTTP_HOST) to a free one"
    ]
    assert not (tmp_path / "broker.log").exists()  # nothing was started
