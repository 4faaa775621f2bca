"""The composition root: builds the applications, broker clients, Faust app and web app."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from uuid import UUID

import mode
from aiohttp import web

from application.alarms import AlarmProcess
from application.app import ItilApplication
from application.batching import GroupCommitter
from application.eventsourcing_internals import share_writer_lock
from application.handlers import command_handlers
from itil.config import Settings, ensure_store_directory
from processes.alarms import AlarmEventsConsumer
from processes.changes import ChangeOutcomeProcess
from processes.incidents import MajorIncidentProcess, MassOutageProcess
from processes.problems import ProblemIncidentsProcess
from processes.recurring import RecurringIncidentsProcess
from processes.sla import SlaConsumer, SlaProcess, SlaSchedule
from projections.account_incidents import AccountIncidentsProjection
from projections.alarms import AlarmsProjection
from projections.configuration import CiRegistryProjection
from projections.db import Database
from projections.sla import SlaDashboardProjection
from streams.automation import kafka_automation_publisher
from streams.relay import Relay
from web.api import WebApi
from web.routes import all_routes

if TYPE_CHECKING:
    from streams.contracts import IntakeMessage
    from streams.intake import IntakeConsumer

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


SWITCH_INTERVAL = 0.0005
"""Seconds a thread may hold the GIL while another waits for it (CPython's default: 0.005).

The engine's threads (a dozen consumers, the intake, the relay) mostly run short SQLite and
Kafka calls that release the GIL; each one then waited up to the whole interval to get it back
from a thread busy in Python, which made a storm's intake ten times slower than alone."""


def exit_with_parent() -> None:
    """In a child process of `itil up`: stop (as on SIGTERM) once `itil up` is gone, even killed
    outright, so no intake or relay outlives the engine it belongs to."""
    parent = os.environ.get("ITIL_PARENT_PID")
    if not parent or not parent.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def tune_interpreter() -> None:
    """For a process that runs the engine's threads (itil up, itil worker)."""
    sys.setswitchinterval(SWITCH_INTERVAL)


class Engine:
    """Everything the engine's processes share, built from the settings; connects nothing yet."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        ensure_store_directory(settings.store_env)
        self.app = ItilApplication(env=settings.store_env, handlers=command_handlers())
        self.db = Database.from_store_env(settings.store_env)
        share_writer_lock(self.app.recorder, self.db.writer_lock)
        self.projection = AccountIncidentsProjection(self.db)
        self.sla_dashboard = SlaDashboardProjection(self.db)
        self.sla_schedule = SlaSchedule(self.db)
        self.sla_process = SlaProcess(self.app, self.sla_schedule, clock)
        self.sla_consumer = SlaConsumer(self.db, self.sla_process)
        self.ci_registry = CiRegistryProjection(self.db)
        self.committer = GroupCommitter(self.app)
        self.processes = [
            RecurringIncidentsProcess(self.db, self.app),
            ProblemIncidentsProcess(self.db, self.app),
            ChangeOutcomeProcess(self.db, self.app),
            MassOutageProcess(self.db, self.app),
            MajorIncidentProcess(self.db, self.app),
        ]
        self.alarm_process = AlarmProcess(self.app, self.db, self.ci_registry, clock=clock)
        self.alarms_view = AlarmsProjection(self.db)
        self.alarm_consumer = AlarmEventsConsumer(self.db, self.alarm_process)
        for process in self.processes:
            process.create_tables()
        self.alarm_process.create_tables()
        self.alarms_view.create_tables()
        self.alarm_consumer.create_tables()
        for owner in (self.projection, self.sla_dashboard, self.sla_schedule, self.sla_consumer, self.ci_registry):
            owner.create_tables()

    def relay(self, bootstrap: str, poll_interval: float = 0.05) -> Relay:
        return Relay(
            self.app, self.db, bootstrap, self.settings.events_topic, self.settings.events_partitions,
            poll_interval=poll_interval,
        )  # fmt: skip

    def intake_checks(self) -> dict[str, Any]:
        """Messages naming an unregistered account or CI go to the dead letters (ITIL_INTAKE_UNKNOWN=refuse)."""
        if self.settings.intake_unknown == "accept":
            return {}
        from application.configuration import ci_id
        from domain.account import account_id
        from domain.configuration import ConfigurationItem

        known: set[tuple[str, str]] = set()  # registered CIs stay registered (retired ones too)
        accounts: set[str] = set()  # so do accounts: a yes is remembered, a no asked again

        def known_account(account: str) -> bool:
            if account in accounts:
                return True
            if self.app.find_account(account) is None:
                return False
            accounts.add(account)
            return True

        def known_ci(account: str, ci: str) -> bool:
            if (account, ci) in known:
                return True
            if self.app.find(ci_id(account, ci), ConfigurationItem) is None:
                return False
            known.add((account, ci))
            return True

        def learn(messages: Sequence[IntakeMessage]) -> None:
            """Look up the accounts and CIs a batch names and the checks have not met yet, in one query."""
            names: dict[UUID, tuple[str, str] | str] = {}
            for m in messages:
                account, ci = m.account, m.data.get("ci")
                if not isinstance(account, str):
                    continue
                if account not in accounts:
                    names[account_id(account)] = account
                if isinstance(ci, str) and (account, ci) not in known:
                    names[ci_id(account, ci)] = (account, ci)
            if names:
                for found in self.app.stored_versions(list(names)):
                    name = names[found]
                    accounts.add(name) if isinstance(name, str) else known.add(name)

        return {"known_account": known_account, "known_ci": known_ci, "learn": learn}

    def tick(self) -> None:
        """What the worker's timer runs: SLA thresholds and breaches, alarm holds that expired."""
        self.sla_process.tick()
        self.alarm_process.tick(self.clock())

    def web_app(self) -> web.Application:
        return WebApi(
            self.app, self.projection, self.clock, sla=self.sla_dashboard, committer=self.committer,
            routes=all_routes(),
        ).build()  # fmt: skip

    def faust_app(self, bootstrap: str) -> tuple[Any, Any]:
        """The worker: every projection and process on the events topic (the intake is apart:
        `intake_consumer`)."""
        from streams.deadletters import DeadLetterReplays
        from streams.worker import Applier, build_faust_app, kafka_partition_reader

        self._ensure_topics(bootstrap)
        DeadLetterReplays(self.db).create_tables()
        reader = kafka_partition_reader(bootstrap)
        consumers = (
            self.projection, self.sla_dashboard, self.ci_registry, self.alarms_view,
            self.sla_consumer, self.alarm_consumer, *self.processes,
        )  # fmt: skip
        self.alarm_process.publisher = kafka_automation_publisher(bootstrap)
        appliers = [Applier(c, reader) for c in consumers]
        fapp = build_faust_app(
            bootstrap=bootstrap,
            group=self.settings.worker_group,
            events_topic=self.settings.events_topic,
            deadletter_topic=self.settings.deadletter_topic,
            partitions=self.settings.events_partitions,
            appliers=appliers,
            tick=self.tick,
        )
        return fapp, appliers

    def intake_consumer(self, bootstrap: str) -> IntakeConsumer:
        """The intake: monitoring, extranet and fleet messages into commands (`itil intake`, or a
        thread of the worker's process with `itil worker --with-intake`).

        In a process of its own, a storm's intake has a core (and a GIL) to itself instead of
        sharing them with a dozen consumers of the events topic.
        """
        from streams.alarm_intake import AlarmIntake
        from streams.intake import IntakeConsumer, IntakeProcessor
        from streams.request_intake import HANDLERS

        self._ensure_topics(bootstrap)
        self.alarm_process.publisher = kafka_automation_publisher(bootstrap)
        alarm_intake = AlarmIntake(self.alarm_process)
        processor = IntakeProcessor(
            self.app, self.db, handlers={**HANDLERS, **alarm_intake.handlers()},
            batch_handlers=alarm_intake.batch_handlers(), **self.intake_checks(),
        )  # fmt: skip
        processor.create_tables()
        return IntakeConsumer(bootstrap, self.settings.intake_group, processor, self.settings.deadletter_topic)

    def _ensure_topics(self, bootstrap: str) -> None:
        from streams.contracts import AUTOMATION_REQUESTS_TOPIC, INTAKE_TOPICS
        from streams.relay import ensure_topic

        for topic in (*INTAKE_TOPICS, AUTOMATION_REQUESTS_TOPIC, self.settings.deadletter_topic):
            ensure_topic(bootstrap, topic, self.settings.events_partitions)


class ChildProcess(mode.Service):
    """Runs an `itil` command (intake, relay) as a child process for the life of `itil up`,
    starting it again if it dies."""

    def __init__(self, command: str, bootstrap: str, loglevel: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.command = command
        self.bootstrap = bootstrap
        self.loglevel = loglevel
        self.child: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> None:
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "ITIL_PARENT_PID": str(os.getpid())}
        argv = [sys.executable, "-m", "itil.cli", "--loglevel", self.loglevel, self.command]
        self.child = subprocess.Popen(argv, env=env)

    async def on_start(self) -> None:
        self._spawn()

    @mode.Service.task
    async def _watch(self) -> None:
        delay = 1.0
        while not self.should_stop:
            await self.sleep(1.0)
            if self.child is not None and self.child.poll() is not None and not self.should_stop:
                code = self.child.returncode
                log.error("itil %s exited with %s; starting it again in %.0f s", self.command, code, delay)
                await self.sleep(delay)
                delay = min(delay * 2, 30.0)
                self._spawn()

    async def on_stop(self) -> None:
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            await asyncio.to_thread(child.wait, 30)
        except subprocess.TimeoutExpired:
            child.kill()


class ThreadService(mode.Service):
    """Runs a blocking `run(stop_event)` loop in a thread for the life of the service."""

    def __init__(self, name: str, run: Callable[[threading.Event], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._name = name
        self._run = run
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    async def on_start(self) -> None:
        self._thread = threading.Thread(target=self._run, args=(self._stop_event,), name=self._name, daemon=True)
        self._thread.start()

    async def on_stop(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 15)


class WebService(mode.Service):
    """Serves the JSON API."""

    def __init__(self, webapp: web.Application, host: str, port: int, banner: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webapp = webapp
        self.host = host
        self.port = port
        self.banner = banner
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        self._runner = web.AppRunner(self.webapp, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        print(f"ITIL engine: http://{self.host}:{self.port}/{self.banner}", file=sys.stdout, flush=True)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class StopFlag(mode.Service):
    """Sets a flag when the worker stops, so blocking loops in threads can end."""

    def __init__(self, flag: threading.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flag = flag

    async def on_stop(self) -> None:
        self.flag.set()
