"""Publishing automation requests to the automation platform (`itil.automation.requests`)."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from application.alarms import Publisher
from streams.contracts import AUTOMATION_REQUESTS_TOPIC

log = logging.getLogger(__name__)

# -- publishing automation requests ---------------------------------------------------------------------


def kafka_automation_publisher(
    bootstrap: str, topic: str = AUTOMATION_REQUESTS_TOPIC, timeout: float = 30.0
) -> Publisher:
    """A publisher of automation requests through kafka-python, keyed by incident id; waits for the broker."""
    from kafka import KafkaProducer

    producer: list[KafkaProducer] = []
    lock = threading.Lock()

    def publish(message: dict[str, Any]) -> None:
        with lock:
            if not producer:
                producer.append(
                    KafkaProducer(
                        bootstrap_servers=bootstrap,
                        client_id="itil-automation-requests",
                        acks="all",
                        retries=5,
                        max_block_ms=10000,
                        request_timeout_ms=10000,
                    )  # fmt: skip
                )
        key = str(message["incident_id"]).encode()
        producer[0].send(topic, key=key, value=json.dumps(message, sort_keys=True).encode()).get(timeout=timeout)

    return publish
