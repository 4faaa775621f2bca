"""The `itil` command: run the engine or one of its processes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

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


def cmd_up(args: argparse.Namespace) -> None:
    """Everything in one process: embedded broker (unless configured), relay, worker, web."""
    import faust

    from itil.runtime import Engine, StopFlag, ThreadService, WebService
    from streams.broker import EmbeddedBroker

    settings = _settings()
    broker = None
    bootstrap = settings.kafka_bootstrap_servers
    if not bootstrap:
        broker = EmbeddedBroker(log_file=settings.data_dir / "broker.log").start()
        bootstrap = broker.bootstrap
    try:
        engine = Engine(settings)
        fapp, applier = engine.faust_app(bootstrap)
        relay = engine.relay(bootstrap)
        banner = f"  (Kafka: {bootstrap}; see the events: kcat -b {bootstrap} -t {settings.events_topic} -C)"
        worker = faust.Worker(
            fapp,
            ThreadService("relay", relay.run),
            WebService(engine.web_app(), settings.http_host, settings.http_port, banner=banner),
            StopFlag(applier.stopping),
            loglevel=args.loglevel,
        )
        worker.execute_from_commandline()
    finally:
        if broker is not None:
            broker.stop()


def cmd_worker(args: argparse.Namespace) -> None:
    """The stream processor alone (run several: they share the partitions)."""
    import faust

    from itil.runtime import Engine, StopFlag

    settings = _settings()
    engine = Engine(settings)
    fapp, applier = engine.faust_app(_bootstrap_or_exit(settings, "worker"))
    faust.Worker(fapp, StopFlag(applier.stopping), loglevel=args.loglevel).execute_from_commandline()


def cmd_web(args: argparse.Namespace) -> None:
    """The HTTP API alone (stateless: run as many as needed)."""
    import mode

    from itil.runtime import Engine, WebService

    settings = _settings()
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

    from itil.runtime import Engine, ThreadService

    settings = _settings()
    engine = Engine(settings)
    relay = engine.relay(_bootstrap_or_exit(settings, "relay"))
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="itil", description="Event-sourced ITIL process engine")
    parser.add_argument("--loglevel", default=os.environ.get("ITIL_LOG_LEVEL", "info"),
                        choices=["crit", "error", "warn", "info", "debug"])  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help=cmd_up.__doc__).set_defaults(func=cmd_up)
    sub.add_parser("worker", help=cmd_worker.__doc__).set_defaults(func=cmd_worker)
    web = sub.add_parser("web", help=cmd_web.__doc__)
    web.add_argument("--with-relay", action="store_true", help="also run the relay in this process")
    web.set_defaults(func=cmd_web)
    sub.add_parser("relay", help=cmd_relay.__doc__).set_defaults(func=cmd_relay)
    broker = sub.add_parser("broker", help=cmd_broker.__doc__)
    broker.add_argument("--port", type=int, default=None)
    broker.set_defaults(func=cmd_broker)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
