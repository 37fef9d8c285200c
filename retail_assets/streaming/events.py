"""App-log events (docs/rules.md §5): what the app sends to topic `app_logs`, and how it is
produced.

The schema is dynamic: producers may add fields at any time (`extra` below does so).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from retail_assets.servers.supervisor import ServiceError
from retail_assets.streaming.kafka_offsets import Reasons

EVENT_TYPES = ("productView", "addToCart", "purchase", "recommendationClick")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
PAYMENT_METHODS = ("Credit Card", "PayPal", "Stripe")
ALGORITHMS = ("collaborative_filtering", "content_based", "trending")
CATEGORIES = ("Electronics", "Home", "Clothing", "Sports")
SOURCES = ("search", "homepage", "recommendation", "email")


def event(rng: random.Random, at: datetime, extra: dict[str, str] | None = None) -> dict:
    """One event of a random type at time `at`, with that type's own fields."""
    kind = rng.choice(EVENT_TYPES)
    body = {
        "eventType": kind,
        "customerId": str(rng.randint(1, 500)),
        "productId": str(rng.randint(1, 30)),
        "timestamp": at.strftime(TIME_FORMAT),
        "metadata": {},
    }
    if kind == "productView" and rng.random() < 0.5:
        body["metadata"] = {"category": rng.choice(CATEGORIES), "source": rng.choice(SOURCES)}
    if kind in ("addToCart", "purchase"):
        body["quantity"] = rng.randint(1, 5)
    if kind == "purchase":
        body["totalAmount"] = round(body["quantity"] * rng.uniform(5, 500), 2)
        body["paymentMethod"] = rng.choice(PAYMENT_METHODS)
    if kind == "recommendationClick":
        body["recommendedProductId"] = str(rng.randint(1, 30))
        body["algorithm"] = rng.choice(ALGORITHMS)
    return {**body, **(extra or {})}


def events(
    count: int | None,
    seed: int,
    start: datetime | None = None,
    spacing: timedelta = timedelta(seconds=1),
    extra: dict[str, str] | None = None,
) -> Iterator[dict]:
    """`count` events (None: endless); timestamps from `start` `spacing` apart, or now."""
    rng = random.Random(seed)
    produced = 0
    while count is None or produced < count:
        at = start + produced * spacing if start else datetime.now(UTC)
        yield event(rng, at, extra)
        produced += 1


def ensure_topic(config: dict[str, str], topic: str, partitions: int, timeout: float) -> None:
    """Create the topic if it does not exist; a clear error when the broker does not answer
    within `timeout` seconds."""
    reasons = Reasons()
    admin = AdminClient(reasons.settings(config))
    try:
        if topic in reasons.list_topics(admin, timeout).topics:
            return
        future = admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic]
        future.result(timeout=30)
    except KafkaException as error:
        if "TOPIC_ALREADY_EXISTS" in str(error):
            return
        raise ServiceError(
            f"Kafka at {config['bootstrap.servers']} is unreachable or refused the client: "
            f"{reasons.explain(admin, error)}"
        ) from error


def produce(
    config: dict[str, str],
    topic: str,
    stream: Iterator[dict],
    rate: float | None = None,
    partitions: int = 3,
    timeout: float = 10,
) -> dict:
    """Send the events (keyed by customer, so one customer's events keep their order),
    `rate` per second at most; waits for every delivery report before returning. A broker
    that does not answer within `timeout` seconds is an error."""
    ensure_topic(config, topic, partitions, timeout)
    producer = Producer({**config, "linger.ms": 20, "enable.idempotence": True})
    report = {"delivered": 0, "failed": 0, "first_error": None}

    def delivered(error, _message):
        if error is None:
            report["delivered"] += 1
        else:
            report["failed"] += 1
            report["first_error"] = report["first_error"] or str(error)

    began = time.monotonic()
    try:
        for sent, body in enumerate(stream):
            if rate:
                time.sleep(max(0.0, began + sent / rate - time.monotonic()))
            while True:
                try:
                    producer.produce(topic, json.dumps(body), key=body["customerId"],
                                     on_delivery=delivered)  # fmt: skip
                    break
                except BufferError:  # local queue full: let deliveries drain
                    producer.poll(0.5)
            producer.poll(0)
    finally:
        remaining = producer.flush(60)
    report["failed"] += remaining
    report["seconds"] = round(time.monotonic() - began, 2)
    return report
