"""The worker's feed: the events topic's messages reach the agent in batches, pending until acknowledged."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.consumer import ConsumerMessage
from faust.types import TP

from streams.worker import build_faust_app

TOPIC = "itil.events"
PARTITION = TP(TOPIC, 0)


def worker_app() -> Any:
    """The worker's Faust app as a rebalance leaves it: flow resumed, the partition assigned, nothing committed."""
    app = build_faust_app(
        bootstrap="127.0.0.1:9", group="itil-worker", events_topic=TOPIC, deadletter_topic="itil.deadletter",
        partitions=1, appliers=[],
    )  # fmt: skip
    app.flow_control.resume()
    app.topics.acking_topics.add(TOPIC)
    app.consumer._committed_offset[PARTITION] = None
    return app


def message(app: Any, offset: int, generation: int | None = None) -> ConsumerMessage:
    generation = app.consumer_generation_id if generation is None else generation
    return ConsumerMessage(
        TOPIC, 0, offset, 0, 0, [], b"key", b"value", None, 3, 5, PARTITION, generation_id=generation
    )


def test_messages_stay_unacknowledged_until_the_feed_acknowledges_them() -> None:
    async def scenario() -> None:
        app = worker_app()
        feed = app.feeds[TOPIC]
        deliver = feed.handler(PARTITION)
        for offset in range(5):
            await deliver(message(app, offset))

        first = await feed.take(
            3,
        )
        rest = await feed.take(
            1000,
        )
        assert [m.offset for m in first] == [0, 1, 2]
        assert [m.offset for m in rest] == [3, 4]
        assert set(app.consumer.unacked) == set(first + rest)
        assert app.consumer._new_offset(PARTITION) is None  # nothing may be committed yet

        feed.acknowledge(first)
        assert set(app.consumer.unacked) == set(rest)
        assert app.consumer._new_offset(PARTITION) == 3  # the next offset to read: 0-2 are done

    asyncio.run(scenario())


def test_a_batch_is_what_is_queued_and_a_lone_message_goes_at_once() -> None:
    async def scenario() -> None:
        app = worker_app()
        feed = app.feeds[TOPIC]
        deliver = feed.handler(PARTITION)
        await deliver(message(app, 0))
        await deliver(message(app, 1))

        async def later() -> None:
            await asyncio.sleep(0.05)
            await deliver(message(app, 2))

        task = asyncio.ensure_future(later())
        assert [m.offset for m in await feed.take(1000)] == [0, 1]  # not waiting for the third
        assert [m.offset for m in await feed.take(1000)] == [2]  # which comes in a batch of its own
        await task

    asyncio.run(scenario())


def test_messages_fetched_before_a_rebalance_are_left_out_unacknowledged() -> None:
    async def scenario() -> None:
        app = worker_app()
        feed = app.feeds[TOPIC]
        deliver = feed.handler(PARTITION)
        await deliver(message(app, 0, generation=app.consumer_generation_id - 1))
        await deliver(message(app, 1))

        batch = await feed.take(
            1000,
        )
        assert [m.offset for m in batch] == [1]
        assert set(app.consumer.unacked) == set(batch)  # the stale one is read again from the committed offset

    asyncio.run(scenario())


def test_a_rebalance_empties_the_feed() -> None:
    async def scenario() -> None:
        app = worker_app()
        feed = app.feeds[TOPIC]
        await feed.handler(PARTITION)(message(app, 0))
        app.flow_control.suspend()
        app.flow_control.clear()  # as Faust does when partitions are revoked
        assert feed.queue.empty()

    asyncio.run(scenario())
