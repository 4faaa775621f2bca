"""Decoding alarms: the exact fast path (streams/fastload.py) against marshmallow's `schema.load`.

N distinct alarm messages (raised, updated, cleared) are loaded both ways in the same run, best of
three passes each: the schema alone (`schema.load` vs the compiled loader), then `decode_intake`
whole (JSON parsing and the envelope checks included) with and without the fast path.

    .venv/bin/python -m bench.decode [--messages 20000] [--quick]
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from unittest import mock

from bench.common import T0, arguments, report
from streams import contracts
from streams.contracts import ALERTS_TOPIC, MESSAGE_CONTRACTS, decode_intake
from streams.fastload import compile_loader

TYPES = ("alarm.raised", "alarm.updated", "alarm.cleared")


def alarms(n: int) -> list[tuple[str, bytes]]:
    messages = []
    for i in range(n):
        message_type = TYPES[i % len(TYPES)]
        body = dict(MESSAGE_CONTRACTS[(message_type, 1)].example)
        at = T0 + timedelta(seconds=i)
        body.update(
            message_id=f"centreon-{i}", dedup_key=f"centreon:{i // 5}", ci=f"router-{i % 500:03d}",
            at=at.isoformat(), sent_at=(at + timedelta(milliseconds=250)).isoformat(),
        )  # fmt: skip
        messages.append((message_type, json.dumps(body).encode()))
    return messages


def per_message(fn: Callable[[Any], Any], items: list[Any]) -> float:
    """Best of three passes, in microseconds per message."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - began)
    return best / len(items) * 1e6


def main() -> None:
    args = arguments(__doc__ or "", messages=(int, 20_000, "alarm messages"))
    n = 600 if args.quick else args.messages
    messages = alarms(n)
    bodies = [(contracts.CONTRACTS[(t, 1)], json.loads(raw)) for t, raw in messages]
    loaders = {schema: compile_loader(schema) for schema, _ in bodies}
    assert all(loaders.values()), "every alarm contract compiles"
    assert all(loaders[s](b) == s.load(b) for s, b in bodies[:50])  # type: ignore[misc]

    marshmallow_load = per_message(lambda sb: sb[0].load(sb[1]), bodies)
    fast_load = per_message(lambda sb: loaders[sb[0]](sb[1]), bodies)  # type: ignore[misc]
    raws = [raw for _, raw in messages]
    fast_decode = per_message(lambda raw: decode_intake(ALERTS_TOPIC, raw), raws)
    with mock.patch.object(contracts, "_fast_loader", new=lambda schema: None):
        marshmallow_decode = per_message(lambda raw: decode_intake(ALERTS_TOPIC, raw), raws)

    report(
        "decode",
        {
            "messages": n,
            "schema.load, marshmallow (µs/message)": marshmallow_load,
            "schema.load, fast path (µs/message)": fast_load,
            "schema.load speed-up (×)": marshmallow_load / fast_load,
            "decode_intake, marshmallow (µs/message)": marshmallow_decode,
            "decode_intake, fast path (µs/message)": fast_decode,
            "decode_intake speed-up (×)": marshmallow_decode / fast_decode,
            "decode_intake, fast path (messages/s)": 1e6 / fast_decode,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
