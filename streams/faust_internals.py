"""The private parts of Faust, mode and aiokafka (and one of asyncio's) that the worker bends, behind one door.

Every private method overridden and every private attribute read for the worker is here, nowhere
else: the short fetch wait (aiokafka's consumer), the direct delivery while the flow runs (mode's
`wait_first`), the feeds and the lock-free handler lookup (Faust's conductor), and the transport
that brings them together (Faust's app). `tests/unit/test_library_internals.py` fails as soon as
one of them moves or changes shape, and pyproject.toml pins the versions they were read from
(faust-streaming 0.15, mode-streaming 0.7, aiokafka 0.14).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import faust
from faust.transport.conductor import Conductor
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults

FETCH_MAX_WAIT_MS = 20
"""How long a fetch may wait for data. Faust fixes 1.5 s; the embedded broker holds a fetch that
long even when another partition has data, which put ~0.5 s on every event's way to the views."""


class PartitionFeed(Protocol):
    """Takes a topic's messages instead of Faust's channels: the conductor's handler for each partition."""

    def handler(self, tp: Any) -> Callable[[Any], Awaitable[None]]: ...


class LowLatencyConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose aiokafka consumer waits at most FETCH_MAX_WAIT_MS per fetch."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
        return consumer


class LowLatencyConsumer(faust_aiokafka.Consumer):
    """Faust's consumer, with LowLatencyConsumerThread and a direct delivery while the flow runs."""

    def _new_consumer_thread(self) -> Any:
        return LowLatencyConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
        """Faust's fetch loop hands every message to the streams with `wait_first(deliver(message),
        suspend_flow.wait())`: four tasks and an `asyncio.wait` per message, which took a quarter of
        the worker's event loop in a storm. While the flow is not suspended, the delivery is awaited
        directly; a rebalance or a stop that comes while it waits cancels the fetch loop anyway."""
        if (
            len(coros) == 2
            and timeout is None
            and inspect.iscoroutine(coros[0])
            and inspect.iscoroutine(coros[1])
            and coros[1].cr_frame is not None  # suspend_flow.wait(), not started: the event is its `self`
            and coros[1].cr_frame.f_locals.get("self") is self.suspend_flow
            and not (self.suspend_flow.is_set() or self._stopped.is_set() or self._crashed.is_set())
        ):
            deliver, flow = coros
            flow.close()  # never started
            return WaitResults([deliver], [await deliver], False)
        return await super().wait_first(*coros, timeout=timeout)


class FeedConductor(Conductor):
    """Faust's conductor, except that a topic with a feed (`FeedApp.feeds`) has its partitions'
    messages handled by the feed, and that each message's handler is looked up without a lock
    while nobody is changing the handlers."""

    def _build_handler(self, tp: Any, channels: Any) -> Any:
        feed = self.app.feeds.get(tp.topic) if isinstance(self.app, FeedApp) else None
        return feed.handler(tp) if feed is not None else super()._build_handler(tp, channels)

    def _compile_message_handler(self) -> Any:
        """Faust's handler takes `_tp_to_callback_lock` for each message; the map changes only under
        that lock, so when it is free and nobody waits for it (asyncio.Lock's own fast path), the
        map is read directly."""
        if self.app.client_only:
            return super()._compile_message_handler()
        callbacks = self._tp_to_callback
        lock = self._tp_to_callback_lock

        async def on_message(message: Any) -> Any:
            if lock.locked() or lock._waiters:  # type: ignore[attr-defined]
                async with lock:
                    callback = callbacks[message.tp]
            else:
                callback = callbacks[message.tp]
            return await callback(message)

        return on_message


class LowLatencyTransport(faust_aiokafka.Transport):
    Consumer = LowLatencyConsumer
    Conductor = FeedConductor


class FeedApp(faust.App):
    """A Faust app on LowLatencyTransport, whose topics named in `feeds` go to their feed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.feeds: dict[str, PartitionFeed] = {}

    def _new_transport(self) -> Any:
        return LowLatencyTransport(self.conf.broker_consumer, self)
