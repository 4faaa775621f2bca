"""The libraries' private parts the engine relies on are still there, in the same shape, doing the same.

Each library's private parts are used in one adapter module only (application.eventsourcing_internals,
streams.marshmallow_internals, streams.faust_internals); a failure here means the installed version
is not the one pinned in pyproject.toml and those modules must be read again against it.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import textwrap
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import faust
import mode
import pytest
from aiokafka import AIOKafkaConsumer
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import ConnectionPool
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteApplicationRecorder, SQLiteDatastore
from faust.transport import by_url
from faust.transport.conductor import Conductor
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from marshmallow import Schema, fields, post_load, pre_load, validates, validates_schema
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from mode.services import WaitResults

from application.app import ItilApplication
from application.eventsourcing_internals import (
    LibraryChanged,
    PostgresInsertHook,
    SQLiteInsertHook,
    is_postgres_datastore,
    share_writer_lock,
    take_snapshots,
)
from application.pgrecorder import ArrayInsertRecorder
from application.sqliterecorder import ManyInsertRecorder
from domain.monitoring import Alarm
from streams.faust_internals import (
    FETCH_MAX_WAIT_MS,
    FeedApp,
    FeedConductor,
    LowLatencyConsumer,
    LowLatencyConsumerThread,
    LowLatencyTransport,
)
from streams.marshmallow_internals import LOAD_HOOKS, LOAD_METHODS, load_hooks, overridden_load_methods

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)


def shape(function: Callable[..., Any]) -> str:
    """A signature as written, without its annotations: what a call or an override depends on."""
    signature = inspect.signature(function)
    parameters = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty))


def calls(function: Callable[..., Any]) -> list[str]:
    """The methods `function` calls on `self` and `super()`, in the order written."""
    found = []
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(function)))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            on = node.func.value
            if isinstance(on, ast.Name) and on.id == "self":
                found.append((node.lineno, node.col_offset, f"self.{node.func.attr}"))
            elif isinstance(on, ast.Call) and isinstance(on.func, ast.Name) and on.func.id == "super":
                found.append((node.lineno, node.col_offset, f"super().{node.func.attr}"))
    return [name for *_, name in sorted(found)]


def source(function: Callable[..., Any]) -> str:
    """The source of `function` without any white space, to look for a statement however it is wrapped."""
    return "".join(inspect.getsource(function).split())


# -- eventsourcing (application.eventsourcing_internals) ---------------------------------------------------


def test_postgres_recorder_inserts_through_the_private_steps_the_hook_replaces() -> None:
    assert shape(PostgresApplicationRecorder._insert_stored_events) == "(self, curs, stored_events, **kwargs)"
    assert calls(PostgresApplicationRecorder._insert_stored_events) == [
        "self._lock_table",
        "self._notify_channel",
        "super()._insert_stored_events",
    ]
    assert shape(PostgresApplicationRecorder._lock_table) == "(self, curs)"
    assert shape(PostgresApplicationRecorder._notify_channel) == "(self, curs)"
    steps = calls(PostgresApplicationRecorder.insert_events)
    assert steps.index("self._insert_stored_events") < steps.index("self._fetch_ids_after_insert_events")
    assert ArrayInsertRecorder._insert_stored_events is PostgresInsertHook._insert_stored_events


def test_sqlite_recorder_inserts_through_the_private_step_the_hook_replaces() -> None:
    assert shape(SQLiteApplicationRecorder._insert_events) == "(self, c, stored_events, **_)"
    assert SQLiteApplicationRecorder.insert_events is SQLiteAggregateRecorder.insert_events
    assert calls(SQLiteAggregateRecorder.insert_events) == ["self._insert_events"]
    assert ManyInsertRecorder._insert_events is SQLiteInsertHook._insert_events


def test_the_application_saves_then_takes_snapshots_through_its_private_method() -> None:
    assert shape(Application._take_snapshots) == "(self, processing_event)"
    assert calls(Application.save) == ["self._record", "self._take_snapshots", "self._notify", "self.notify"]

    class Tally(Aggregate):
        def __init__(self) -> None:
            self.n = 0

        @event("Added")
        def add(self) -> None:
            self.n += 1

    class Tallies(Application[UUID]):
        snapshotting_intervals = {Tally: 2}

    app = Tallies()
    tally = Tally()
    tally.add()
    processing_event: ProcessingEvent[UUID] = ProcessingEvent()
    processing_event.collect_events(tally)
    app.recorder.insert_events([app.mapper.to_stored_event(e) for e in processing_event.events])
    take_snapshots(app, processing_event)
    assert app.snapshots is not None
    assert [s.originator_version for s in app.snapshots.get(tally.id)] == [2]


def test_the_sqlite_pool_takes_its_private_writer_lock_for_each_write_which_can_be_shared(tmp_path: Path) -> None:
    class Counting:
        def __init__(self) -> None:
            self.lock, self.acquired, self.released = threading.RLock(), 0, 0

        def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
            self.acquired += 1
            return self.lock.acquire(blocking, timeout)

        def release(self) -> None:
            self.released += 1
            self.lock.release()

    app = ItilApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s")})
    pool: Any = app.recorder.datastore.pool  # type: ignore[attr-defined]
    assert isinstance(pool, ConnectionPool)
    assert isinstance(pool._writer_lock, type(threading.Lock()))
    counting = Counting()
    share_writer_lock(app.recorder, counting)
    assert pool._writer_lock is counting
    app.save(Alarm.track(account="acme", dedup_key="k", actor="nagios", at=T0))
    assert counting.acquired == counting.released >= 1

    share_writer_lock(app.recorder, None)  # a PostgreSQL database: nothing to share
    assert pool._writer_lock is counting
    del pool._writer_lock
    with pytest.raises(LibraryChanged, match="_writer_lock"):
        share_writer_lock(app.recorder, counting)
    with pytest.raises(TypeError, match="event store's recorder"):
        share_writer_lock(ItilApplication().recorder, counting)


def test_datastores_are_told_apart_by_the_librarys_classes(tmp_path: Path) -> None:
    assert is_postgres_datastore(PostgresDatastore("itil", "127.0.0.1", 5432, "postgres", "")) is True
    assert is_postgres_datastore(SQLiteDatastore(str(tmp_path / "s"))) is False
    with pytest.raises(TypeError, match="datastore"):
        is_postgres_datastore(object())


def test_aggregates_are_created_through_the_librarys_protected_create() -> None:
    """Documented for subclasses, and used by every aggregate of `domain` (`cls._create(...)`)."""
    assert shape(Aggregate._create) == "(event_class, *, id=None, **kwargs)"


# -- marshmallow (streams.marshmallow_internals) ----------------------------------------------------


def test_load_goes_through_the_schema_methods_the_fast_loader_stands_in_for() -> None:
    assert shape(Schema.load) == "(self, data, *, many=None, partial=None, unknown=None)"
    assert shape(Schema._do_load) == "(self, data, *, many=None, partial=None, unknown=None, postprocess=True)"
    reached, waiting = set(), ["load"]
    while waiting:
        name = waiting.pop()
        if name not in reached:
            reached.add(name)
            method = getattr(Schema, name)
            if inspect.isfunction(method):
                waiting += [called.split(".", 1)[1] for called in calls(method) if called.startswith("self.")]
    # Beyond LOAD_METHODS: validators run only for the hooks a compiled schema cannot have, errors are
    # left to marshmallow, and a compiled schema's dict_class is dict.
    assert reached == {*LOAD_METHODS, "_run_validator", "handle_error", "dict_class"}


def test_a_schema_overriding_a_load_method_is_seen() -> None:
    class Plain(Schema):
        name = fields.String()

    class Overriding(Schema):
        def _invoke_field_validators(self, **kwargs: Any) -> None:
            pass

    assert overridden_load_methods(Plain) == []
    assert overridden_load_methods(Overriding) == ["_invoke_field_validators"]


def test_load_hooks_are_kept_by_kind_in_the_private_hooks_of_the_schema_class() -> None:
    class Hooked(Schema):
        name = fields.String()

        @pre_load
        def before(self, data: Any, **kwargs: Any) -> Any:
            return data

        @post_load
        def after(self, data: Any, **kwargs: Any) -> Any:
            return data

        @validates("name")
        def check(self, value: Any, **kwargs: Any) -> None:
            pass

        @validates_schema
        def check_all(self, data: Any, **kwargs: Any) -> None:
            pass

    assert LOAD_HOOKS == (PRE_LOAD, POST_LOAD, VALIDATES, VALIDATES_SCHEMA)
    assert isinstance(Hooked._hooks, dict)
    assert [name for name, *_ in Hooked._hooks[PRE_LOAD]] == ["before"]
    assert load_hooks(Hooked()) == ["pre_load", "post_load", "validates", "validates_schema"]
    assert load_hooks(Schema.from_dict({"name": fields.String()})()) == []


def test_fields_deserialize_through_the_protected_method_custom_fields_override() -> None:
    """Documented for custom fields, overridden by those of web.accounts, web.sla and web.changes."""
    assert shape(fields.Field._deserialize) == "(self, value, attr, data, **kwargs)"
    assert "self._deserialize" in calls(fields.Field.deserialize)


# -- Faust, mode, aiokafka (streams.faust_internals) ------------------------------------------------


def app() -> FeedApp:
    return FeedApp("internals", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False)


def test_the_app_builds_its_transport_through_the_private_method_overridden() -> None:
    assert shape(faust.App._new_transport) == "(self)"
    assert by_url("kafka://127.0.0.1:1") is faust_aiokafka.Transport  # what LowLatencyTransport stands in for
    built = app()
    assert type(built.transport) is LowLatencyTransport
    assert type(built.topics) is FeedConductor
    assert type(built.consumer) is LowLatencyConsumer


def test_the_consumer_makes_its_thread_and_the_thread_its_aiokafka_consumer_through_private_methods() -> None:
    assert shape(faust_aiokafka.Consumer._new_consumer_thread) == "(self)"
    assert "returnAIOKafkaConsumerThread(self,loop=self.loop,beacon=self.beacon)" in source(
        faust_aiokafka.Consumer._new_consumer_thread
    )
    assert shape(faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer) == "(self, transport)"
    assert "self._create_worker_consumer" in calls(faust_aiokafka.AIOKafkaConsumerThread._create_consumer)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in source(AIOKafkaConsumer.start)

    async def made() -> None:
        built = app()
        thread = built.consumer._new_consumer_thread()
        assert type(thread) is LowLatencyConsumerThread
        consumer = thread._create_worker_consumer(built.transport)
        assert isinstance(consumer, AIOKafkaConsumer)
        assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS
        await consumer.stop()

    asyncio.run(made())


def test_the_fetch_loop_delivers_with_wait_first_which_is_awaited_directly_while_the_flow_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert shape(mode.Service.wait_first) == "(self, *coros, timeout=None)"
    assert WaitResults._fields == ("done", "results", "stopped")
    assert "self.wait_first(callback(message),self.suspend_flow.wait())" in source(FaustConsumer._drain_messages)
    service = mode.Service()
    assert not (service._stopped.is_set() or service._crashed.is_set())

    async def delivered() -> WaitResults:
        consumer = app().consumer
        assert isinstance(consumer.suspend_flow, asyncio.Event)

        async def deliver() -> str:
            return "done"

        coro = deliver()
        return await consumer.wait_first(coro, consumer.suspend_flow.wait())

    def not_directly(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("wait_first did not recognise suspend_flow.wait()")

    monkeypatch.setattr(mode.Service, "wait_first", not_directly)
    results = asyncio.run(delivered())
    assert (results.results, results.stopped) == (["done"], False)


def test_the_conductor_keeps_its_handlers_in_private_attributes_and_builds_them_in_private_methods() -> None:
    assert shape(Conductor._build_handler) == "(self, tp, channels)"
    assert shape(Conductor._compile_message_handler) == "(self)"
    assert "self._compile_message_handler" in calls(Conductor.__init__)
    assert "self._build_handler" in source(Conductor._update_callback_map)
    # The handler holds on to the map itself: Faust only ever changes it in place.
    assigned = [
        function.name
        for function in ast.walk(ast.parse(inspect.getsource(Conductor)))
        if isinstance(function, ast.FunctionDef)
        for node in ast.walk(function)
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Attribute) and target.attr in ("_tp_to_callback", "_tp_to_callback_lock")
    ]
    assert assigned == ["__init__", "__init__"]

    built = app()
    conductor = built.topics
    assert isinstance(conductor._tp_to_callback, dict)
    assert isinstance(conductor._tp_to_callback_lock, asyncio.Lock)
    assert conductor.on_message.__qualname__.startswith("FeedConductor.")

    class Feed:
        def handler(self, tp: Any) -> Callable[[Any], Any]:
            return print

    built.feeds["fed"] = Feed()
    assert conductor._build_handler(faust.types.TP("fed", 0), set()) is print


def test_an_asyncio_lock_says_when_someone_waits_for_it() -> None:
    async def waiters() -> list[bool]:
        lock = asyncio.Lock()
        seen = [bool(lock._waiters)]  # type: ignore[attr-defined]
        await lock.acquire()
        waiting = asyncio.ensure_future(lock.acquire())
        await asyncio.sleep(0)
        seen.append(bool(lock._waiters))  # type: ignore[attr-defined]
        lock.release()
        await waiting
        lock.release()
        seen.append(bool(lock._waiters))  # type: ignore[attr-defined]
        return seen

    assert asyncio.run(waiters()) == [False, True, False]
