"""The Faust worker: consumes `itil.events` and keeps the projections up to date.

Agents stay thin: decode with the envelope schema, hand batches to the projection, send what
cannot be decoded to the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import faust
from kafka import KafkaConsumer, TopicPartition
from marshmallow import ValidationError

from projections.tracking import Delivery, PartitionGap, Projection, TrackedConsumer
from streams.envelope import decode
from streams.faust_internals import FeedApp

log = logging.getLogger(__name__)

PartitionReader = Callable[[str, int], list[Delivery]]


def kafka_partition_reader(bootstrap: str) -> PartitionReader:
    """Reads a whole partition from its beginning, to fill a gap the stream left."""

    def read(topic: str, partition: int) -> list[Delivery]:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="itil-gap-reader")
        try:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            end = consumer.end_offsets([tp])[tp]
            found: list[Delivery] = []
            while consumer.position(tp) < end:
                for records in consumer.poll(timeout_ms=1000).values():
                    for record in records:
                        try:
                            found.append(Delivery(topic, partition, record.offset, decode(record.value)))
                        except (ValueError, ValidationError):
                            continue  # the stream sends it to dead letters
            return found
        finally:
            consumer.close()

    return read


class Applier:
    """Applies batches to a projection or process, filling partition gaps from the broker.

    Each applier has a thread of its own: a consumer never waits for a thread behind the others.
    """

    def __init__(self, projection: TrackedConsumer, read_partition: PartitionReader) -> None:
        self.projection = projection
        self.read_partition = read_partition
        self.stopping = threading.Event()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"apply-{projection.name}")

    def apply(self, deliveries: Sequence[Delivery]) -> int:
        applied = 0
        while not self.stopping.is_set():
            try:
                return applied + self.projection.apply(deliveries)
            except PartitionGap as gap:
                log.warning("%s; reading the partition again", gap)
                applied += self.projection.apply(self.read_partition(gap.topic, gap.partition), skip_gaps=True)
                if self.projection.positions(gap.topic).get(gap.partition, (0, 0))[0] < (
                    gap.envelope["previous_position"] or 0
                ):
                    self.stopping.wait(1.0)  # the relay has not republished the missing events yet
        return applied


def dead_letter(message: Any, reason: str) -> bytes:
    """A dead letter: the original bytes, where they came from, and why they were refused."""
    return json.dumps(
        {
            "reason": reason,
            "source": {"topic": message.topic, "partition": message.partition, "offset": message.offset},
            "key_base64": base64.b64encode(message.key).decode() if message.key else None,
            "value_base64": base64.b64encode(message.value or b"").decode(),
            "dead_lettered_at": datetime.now(timezone.utc).isoformat(),
        },
        sort_keys=True,
    ).encode()


MAX_BATCHES_BEHIND = 8
"""How many batches (of up to 1,000 events) the processes may be behind the views before the views
wait for them: in a storm the processes' commands take longer than the views' rows (32 held the
worker at 409 MB with 100,000 open incidents, for no clear gain)."""


class _EventsFeed:
    """Hands the events topic's messages to the agent as they are, in batches.

    Faust's own way (one `Event` per message through the agent's channel queue and stream, each
    acknowledged by the stream and again by the agent) was most of the worker's event loop in a storm.
    The conductor gives this feed's handler each message of the topic instead (see `FeedConductor`
    in streams.faust_internals); the queue is a Faust flow-control queue, emptied at each rebalance
    like a channel's, and the handler keeps the channel handler's flow control and fetch pressure (Faust's
    `ConductorCompiler.build`). The agent takes batches, drops messages fetched before a rebalance
    as Faust's stream does (they are read again from the committed offsets), and acknowledges each
    message itself (`acknowledge`) once the processes applied it.
    """

    def __init__(self, app: faust.App, maxsize: int) -> None:
        self.app = app
        self.queue = app.FlowControlQueue(maxsize=maxsize, clear_on_resume=True)

    def handler(self, tp: Any) -> Callable[[Any], Awaitable[None]]:
        """The conductor's callback for one partition of the topic."""
        app, queue = self.app, self.queue
        flow_control = app.flow_control
        buffer = app.producer.buffer
        threaded = app.conf.producer_threaded  # read once: each read goes through Faust's settings registry
        on_topic_buffer_full = app.sensors.on_topic_buffer_full
        consumer = app.consumer

        def on_pressure_high() -> None:
            on_topic_buffer_full(tp)
            consumer.on_buffer_full(tp)

        def on_pressure_drop() -> None:
            consumer.on_buffer_drop(tp)

        async def on_message(message: Any) -> None:
            if not flow_control.is_active():
                await flow_control.acquire()
            if threaded or buffer.pending.qsize() > buffer.max_messages:
                await buffer.wait_until_ebb()
            if queue.full():
                on_topic_buffer_full(tp)
                await queue.put(message)
            else:
                queue.put_nowait_enhanced(message, on_pressure_high=on_pressure_high, on_pressure_drop=on_pressure_drop)

        return on_message

    async def take(self, size: int) -> list[Any]:
        """Up to `size` messages: the first one to come, and those queued behind it by then.

        Nothing waits for company: under load messages queue up while a batch is applied, so
        batches grow by themselves, and a lone event goes at once (waiting 50 ms for more put
        50 ms on every command's way to the views: latency p50 52 -> 22 ms, storm unchanged).
        Messages fetched before the latest rebalance are left out, unacknowledged, as Faust's
        stream leaves them: the consumer reads them again from the committed offsets."""
        app, queue = self.app, self.queue
        batch = [await queue.get()]
        while len(batch) < size and not queue.empty():
            batch.append(queue.get_nowait())
        generation = app.consumer_generation_id
        batch = [m for m in batch if m.generation_id == generation] if app.flow_control.is_active() else []
        track = app.consumer.track_message  # unacknowledged until the processes applied it
        for message in batch:
            message.tracked = True
            track(message)
        return batch

    def acknowledge(self, messages: Iterable[Any]) -> None:
        """The messages' offsets may be committed. As `Event.ack` does once the last reference to a
        message is gone; the feed's messages have no other reference."""
        ack = self.app.consumer.ack
        on_message_out = self.app.sensors.on_message_out
        for message in messages:
            if ack(message):
                on_message_out(message.tp, message.offset, message)


class ItilFaustApp(FeedApp):
    """Faust with short fetch waits and feeds (`_EventsFeed`; see streams.faust_internals), without its monitor."""

    def on_init_dependencies(self) -> Iterable[Any]:
        """As Faust's, less its monitor sensor: it gathers statistics for Faust's web pages, which
        the engine does not serve, at a cost of some 10 % of the worker's event loop per event."""
        dependencies = list(super().on_init_dependencies())
        self.sensors.remove(self.monitor)
        self.sensors.add(faust.Sensor())  # does nothing; Faust warns at each rebalance with no sensor at all
        return dependencies


def build_faust_app(
    *,
    bootstrap: str,
    group: str,
    events_topic: str,
    deadletter_topic: str,
    partitions: int,
    appliers: Sequence[Applier],
    tick: Callable[[], Any] | None = None,
    tick_interval: float = 1.0,
) -> faust.App:
    """The worker's Faust app, tuned for quick group joins on a single small broker."""
    app = ItilFaustApp(
        group,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=partitions,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=10.0,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        stream_buffer_maxsize=16384,  # fetched ahead while a batch is applied (Faust: 4,096 events)
        consumer_max_fetch_size=4 * 1024**2,  # per partition and fetch (Faust: 1 MB, some 1,500 events)
        producer_acks=-1,
    )
    events = app.topic(events_topic, partitions=partitions)
    feed = app.feeds[events_topic] = _EventsFeed(app, maxsize=app.conf.stream_buffer_maxsize)
    dead_letters = app.topic(deadletter_topic, key_serializer="raw", value_serializer="raw")

    views = [a for a in appliers if isinstance(a.projection, Projection)]
    processes = [a for a in appliers if not isinstance(a.projection, Projection)]

    def apply_all(members: Sequence[Applier], deliveries: list[Delivery]) -> Awaitable[list[int]]:
        loop = asyncio.get_running_loop()
        return asyncio.gather(*(loop.run_in_executor(a.executor, a.apply, deliveries) for a in members))

    async def processes_after(
        previous: asyncio.Future[None] | None, deliveries: list[Delivery], batch: list[Any]
    ) -> None:
        """The processes apply a batch after the one before it; then its messages may be committed."""
        if previous is not None:
            await previous
        if deliveries:
            await apply_all(processes, deliveries)
        feed.acknowledge(batch)

    async def consume(stream: Any) -> None:
        """Each batch decoded once; the views apply it (each in its own thread) while the processes
        still apply the batches before it, so the views never wait for a process's commands.

        One agent, not one per consumer or per group, and its messages from a feed rather than its
        stream: Faust routes, wraps, queues and acknowledges every event of a stream, which kept the
        event loop busy through a storm. A message is acknowledged (its offset may be committed) only
        once the processes have applied it too.
        """
        aiter(stream.channel)  # subscribes to the topic, as iterating the stream would
        behind: collections.deque[asyncio.Future[None]] = collections.deque()
        try:
            while True:
                batch = await feed.take(1000)
                deliveries = []
                for message in batch:
                    try:
                        envelope = decode(message.value)
                    except (ValueError, ValidationError) as error:
                        reason = f"not a valid itil.events envelope: {error}"
                        log.warning(
                            "%s[%s]@%s dead-lettered: %s", message.topic, message.partition, message.offset, reason
                        )
                        await dead_letters.send(key=message.key, value=dead_letter(message, reason))
                        continue
                    deliveries.append(Delivery(message.topic, message.partition, message.offset, envelope))
                behind.append(asyncio.ensure_future(processes_after(behind[-1] if behind else None, deliveries, batch)))
                if deliveries and views:
                    await apply_all(views, deliveries)
                while behind and (behind[0].done() or len(behind) > MAX_BATCHES_BEHIND):
                    await behind.popleft()  # raises what a process raised: the agent stops, nothing acknowledged
        finally:
            for pending in behind:
                pending.cancel()  # not acknowledged: read (and applied, idempotently) again

    if appliers:
        app.agent(events, name="itil-consumers")(consume)

    if tick is not None:

        @app.timer(interval=tick_interval)
        async def ticker() -> None:
            await asyncio.to_thread(tick)

    @app.task
    async def announce() -> None:
        log.info("worker %s consuming %s", group, events_topic)

    return app
