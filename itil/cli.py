"""The `itil` command: run the engine or one of its processes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from domain.incident import CHANNELS, HOLD_REASONS, RESOLUTION_CODES
from itil.config import ConfigError, Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as e:
        sys.exit(f"itil: {e}")


def _bootstrap_or_exit(settings: Settings, command: str) -> str:
    if not settings.kafka_bootstrap_servers:
        sys.exit(f"itil {command}: set KAFKA_BOOTSTRAP_SERVERS (or run `itil up` for an embedded broker)")
    return settings.kafka_bootstrap_servers


def _port_or_exit(settings: Settings, command: str) -> None:
    """Say in one line, before starting anything, that the API's port is taken."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in settings.http_host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
        try:
            probe.bind((settings.http_host, settings.http_port))
        except OSError as error:
            sys.exit(
                f"itil {command}: cannot listen on {settings.http_host}:{settings.http_port} ({error.strerror});"
                " set ITIL_HTTP_PORT (or ITIL_HTTP_HOST) to a free one"
            )


def cmd_up(args: argparse.Namespace) -> None:
    """The whole engine: embedded broker (unless configured), worker and web here, intake and relay in
    child processes of their own (ITIL_UP_PROCESSES=one keeps them in this process)."""
    import faust
    import mode

    from itil.runtime import ChildProcess, Engine, StopFlag, ThreadService, WebService, tune_interpreter
    from streams.broker import EmbeddedBroker

    tune_interpreter()
    settings = _settings()
    _port_or_exit(settings, "up")
    broker = None
    bootstrap = settings.kafka_bootstrap_servers
    if not bootstrap:
        broker = EmbeddedBroker(log_file=settings.data_dir / "broker.log").start()
        bootstrap = broker.bootstrap
    try:
        engine = Engine(settings)
        several = settings.up_processes == "several"
        fapp, appliers = engine.faust_app(bootstrap)
        from pathlib import Path

        kcat = Path(sys.prefix) / "bin" / "kcat"  # the wrapper `make setup` installs (see README)
        kcat_command = str(kcat) if kcat.exists() else "kcat"
        banner = f"  (Kafka: {bootstrap}; see the events: {kcat_command} -b {bootstrap} -t {settings.events_topic} -C)"
        around: list[mode.Service]
        if several:  # the intake and the relay in processes of their own: each has a core and a GIL
            around = [ChildProcess("intake", bootstrap, args.loglevel), ChildProcess("relay", bootstrap, args.loglevel)]
        else:
            around = [
                ThreadService("relay", engine.relay(bootstrap).run),
                ThreadService("intake", engine.intake_consumer(bootstrap).run),
            ]
        worker = faust.Worker(
            fapp,
            *around,
            WebService(engine.web_app(), settings.http_host, settings.http_port, banner=banner),
            *[StopFlag(a.stopping) for a in appliers],
            loglevel=args.loglevel,
        )
        worker.execute_from_commandline()
    finally:
        if broker is not None:
            broker.stop()


def cmd_worker(args: argparse.Namespace) -> None:
    """The stream processor alone (run several: they share the partitions)."""
    import faust
    import mode

    from itil.runtime import Engine, StopFlag, ThreadService, tune_interpreter

    tune_interpreter()
    settings = _settings()
    engine = Engine(settings)
    bootstrap = _bootstrap_or_exit(settings, "worker")
    fapp, appliers = engine.faust_app(bootstrap)
    services: list[mode.Service] = [StopFlag(a.stopping) for a in appliers]
    if args.with_intake:
        services.append(ThreadService("intake", engine.intake_consumer(bootstrap).run))
    faust.Worker(fapp, *services, loglevel=args.loglevel).execute_from_commandline()


def cmd_intake(args: argparse.Namespace) -> None:
    """The intake alone: monitoring, extranet and fleet topics into commands (`itil up` runs it apart)."""
    import mode

    from itil.runtime import Engine, ThreadService, exit_with_parent, tune_interpreter

    tune_interpreter()
    exit_with_parent()
    settings = _settings()
    engine = Engine(settings)
    consumer = engine.intake_consumer(_bootstrap_or_exit(settings, "intake"))
    mode.Worker(ThreadService("intake", consumer.run), loglevel=args.loglevel).execute_from_commandline()


def cmd_web(args: argparse.Namespace) -> None:
    """The HTTP API alone (stateless: run as many as needed)."""
    import mode

    from itil.runtime import Engine, WebService

    settings = _settings()
    _port_or_exit(settings, "web")
    engine = Engine(settings)
    web = WebService(engine.web_app(), settings.http_host, settings.http_port)
    services: list[mode.Service] = [web]
    if args.with_relay:
        from itil.runtime import ThreadService

        services.append(ThreadService("relay", engine.relay(_bootstrap_or_exit(settings, "web")).run))
    mode.Worker(*services, loglevel=args.loglevel).execute_from_commandline()


def cmd_relay(args: argparse.Namespace) -> None:
    """The store-to-Kafka relay (run one or more: one publishes, the others stand by)."""
    import mode

    from itil.runtime import Engine, ThreadService, exit_with_parent, tune_interpreter

    tune_interpreter()
    exit_with_parent()
    settings = _settings()
    engine = Engine(settings)
    relay = engine.relay(_bootstrap_or_exit(settings, "relay"), poll_interval=0.02)  # no command here wakes it
    mode.Worker(ThreadService("relay", relay.run), loglevel=args.loglevel).execute_from_commandline()


def cmd_broker(args: argparse.Namespace) -> None:
    """Only the embedded broker, in the foreground (handy for tests and demos)."""
    import signal
    import threading

    from streams.broker import EmbeddedBroker

    broker = EmbeddedBroker(port=args.port).start()
    print(f"embedded broker: {broker.bootstrap}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        done.wait()
    finally:
        broker.stop()


def cmd_rebuild(args: argparse.Namespace) -> None:
    """Rebuild every projection from the event store (stop the workers first)."""
    from application.app import ItilApplication
    from itil.config import ensure_store_directory
    from itil.rebuild import all_projections, rebuild
    from projections.db import Database

    settings = _settings()
    ensure_store_directory(settings.store_env)
    app = ItilApplication(env=settings.store_env)
    stats = rebuild(app, all_projections(Database.from_store_env(settings.store_env)), upto=args.upto)
    print(f"rebuilt from {stats.events:,} events in {stats.seconds:.1f} s ({stats.rate:,.0f} events/s)")


def _api_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url)
    return f"http://127.0.0.1:{os.environ.get('ITIL_HTTP_PORT') or 8080}"


def _print_or_exit(call: Callable[[], Any]) -> None:
    import json

    from itil.client import ApiError

    try:
        print(json.dumps(call(), indent=2))
    except ApiError as e:
        sys.exit(f"itil: {e}")


def cmd_incident(args: argparse.Namespace) -> None:
    """Log an incident or move one through its life, through the engine's HTTP API."""
    from itil.client import request

    url = _api_url(args)
    if args.action == "show":
        _print_or_exit(lambda: request(url, "GET", f"/api/incidents/{args.id}"))
        return
    fields = ("at", "group", "assignee", "reason", "note", "code", "notes", "account", "title",
              "impact", "urgency", "channel", "ci", "service", "description", "reporter")  # fmt: skip
    body = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    if args.action == "log":
        _print_or_exit(lambda: request(url, "POST", "/api/incidents", body, args.actor))
    else:
        _print_or_exit(lambda: request(url, "POST", f"/api/incidents/{args.id}/{args.action}", body, args.actor))


def cmd_account(args: argparse.Namespace) -> None:
    """Show one account's view of incidents (open ones, or all with --all)."""
    from urllib.parse import quote

    from itil.client import request

    query = "?include=all" if args.all else ""
    _print_or_exit(
        lambda: request(_api_url(args), "GET", f"/api/accounts/{quote(args.account, safe='')}/incidents{query}")
    )


INCIDENT_ACTIONS = (
    "acknowledge",
    "assign",
    "hold",
    "resume",
    "restore",
    "resolve",
    "reopen",
    "close",
    "cancel",
)


def _add_client(sub: Any) -> None:
    incident = sub.add_parser("incident", help=cmd_incident.__doc__)
    actions = incident.add_subparsers(dest="action", required=True)
    log = actions.add_parser("log", help="log a new incident")
    log.add_argument("--account", required=True)
    log.add_argument("--title", required=True)
    log.add_argument("--impact", type=int, required=True, choices=[1, 2, 3])
    log.add_argument("--urgency", type=int, required=True, choices=[1, 2, 3])
    log.add_argument("--channel", required=True, choices=CHANNELS)
    log.add_argument("--ci")
    log.add_argument("--service")
    log.add_argument("--description")
    log.add_argument("--reporter")
    show = actions.add_parser("show", help="the incident and its timeline")
    show.add_argument("id")
    for name in INCIDENT_ACTIONS:
        action = actions.add_parser(name, help=f"{name} an incident")
        action.add_argument("id")
        if name == "assign":
            action.add_argument("--group", required=True)
            action.add_argument("--assignee")
        if name == "hold":
            action.add_argument("--reason", required=True, choices=HOLD_REASONS)
        if name in ("hold", "restore"):
            action.add_argument("--note")
        if name == "resolve":
            action.add_argument("--code", required=True, choices=RESOLUTION_CODES)
            action.add_argument("--notes")
        if name in ("reopen", "cancel"):
            action.add_argument("--reason", required=True)
    for p in [log, show, *[actions.choices[n] for n in INCIDENT_ACTIONS]]:
        p.add_argument("--url", help="the engine's URL (default http://127.0.0.1:$ITIL_HTTP_PORT)")
        if p is show:
            continue
        p.add_argument("--actor", required=True, help="who does it")
        p.add_argument("--at", help="when it happened (ISO 8601 with offset); default now")
    incident.set_defaults(func=cmd_incident)
    account = sub.add_parser("account", help=cmd_account.__doc__)
    account.add_argument("account")
    account.add_argument("--all", action="store_true", help="include resolved, closed and cancelled")
    account.add_argument("--url", help="the engine's base URL")
    account.set_defaults(func=cmd_account)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="itil", description="Event-sourced ITIL process engine")
    parser.add_argument("--loglevel", default=os.environ.get("ITIL_LOG_LEVEL", "info"),
                        choices=["crit", "error", "warn", "info", "debug"])  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help=cmd_up.__doc__).set_defaults(func=cmd_up)
    worker = sub.add_parser("worker", help=cmd_worker.__doc__)
    worker.add_argument(
        "--with-intake", action="store_true", help="also consume the intake topics (no itil intake runs)"
    )
    worker.set_defaults(func=cmd_worker)
    sub.add_parser("intake", help=cmd_intake.__doc__).set_defaults(func=cmd_intake)
    web = sub.add_parser("web", help=cmd_web.__doc__)
    web.add_argument("--with-relay", action="store_true", help="also run the relay in this process")
    web.set_defaults(func=cmd_web)
    sub.add_parser("relay", help=cmd_relay.__doc__).set_defaults(func=cmd_relay)
    broker = sub.add_parser("broker", help=cmd_broker.__doc__)
    broker.add_argument("--port", type=int, default=None)
    broker.set_defaults(func=cmd_broker)
    rebuild_parser = sub.add_parser("rebuild", help=cmd_rebuild.__doc__)
    rebuild_parser.add_argument("--upto", type=int, default=None, help="stop at this store position (history)")
    rebuild_parser.set_defaults(func=cmd_rebuild)
    _add_client(sub)
    from itil.cli_intake import register_intake_cli

    register_intake_cli(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
