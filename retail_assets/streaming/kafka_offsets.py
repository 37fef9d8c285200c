"""What the broker holds of a topic, asked with confluent-kafka: where each partition starts
and ends. The sensor decides from it whether a pass is due, and the streaming asset checks a
checkpoint against it before Spark's Kafka source reads (a clear refusal, not a failed query).
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

TIMEOUT_S = 30


class Reasons(logging.Handler):
    """What librdkafka itself reports while a client connects (a TLS handshake refused, SASL
    authentication failed, a connection closed at once): a call that failed says only "Broker
    transport failure". Its reports go here instead of stderr."""

    def __init__(self):
        super().__init__()
        self.reported: list[KafkaError] = []
        self.failures: list[str] = []
        self.logger = logging.Logger(f"librdkafka-{id(self)}")  # no handler but this one
        self.logger.addHandler(self)

    def settings(self, config: dict) -> dict:
        """`config` with its reports sent here."""
        return {**config, "error_cb": self.report, "logger": self.logger}

    def report(self, error: KafkaError) -> None:
        if error.code() != KafkaError._ALL_BROKERS_DOWN:  # says nothing of the cause
            self.reported.append(error)

    def emit(self, record: logging.LogRecord) -> None:
        if "FAIL" in record.getMessage():
            self.failures.append(record.getMessage().rsplit("]: ", 1)[-1])

    def refused(self) -> bool:
        """Whether the broker turned the client away (password, certificate, or a TLS port
        spoken to in plain text): waiting longer cannot help, unlike a broker still starting."""
        return any(e.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL)
                   for e in self.reported) or any(
                       "APIVERSION_QUERY" in failure for failure in self.failures)  # fmt: skip

    def list_topics(self, client, timeout: float, topic: str | None = None):
        """`client.list_topics`, given up as soon as the broker refused the client rather
        than at the timeout: a wrong password is told in a second, not after 30."""
        deadline = time.monotonic() + timeout
        while True:
            step = min(0.5, max(0.01, deadline - time.monotonic()))
            try:
                return client.list_topics(topic, timeout=step)
            except KafkaException:
                client.poll(0)  # serves the client's reports to error_cb and the logger
                if self.refused() or time.monotonic() >= deadline:
                    raise

    def explain(self, client, error: KafkaException) -> KafkaException:
        """The most telling cause of `error`: the client's last report, else its last failed
        connection (one closed at its first request: a TLS port read as PLAINTEXT)."""
        client.poll(0.1)  # serves the reports still queued
        if self.reported:
            return KafkaException(self.reported[-1])
        if not self.failures:
            return error
        hint = ""
        if "APIVERSION_QUERY" in self.failures[-1]:
            hint = ("; a broker that closes the connection at the first request usually takes "
                    "only TLS clients: check security.protocol")  # fmt: skip
        cause = error.args[0].str() if isinstance(error.args[0], KafkaError) else str(error)
        return KafkaException(f"{cause}: {self.failures[-1]}{hint}")


class Offsets(NamedTuple):
    starts: dict[str, int]  # {"<partition>": earliest offset the broker still holds}
    ends: dict[str, int]  # {"<partition>": the offset the next record will get}


def topic_offsets(config: dict[str, str], topic: str, timeout: float = TIMEOUT_S) -> Offsets:
    """Where each partition of the topic starts and ends; empty if the topic does not exist."""
    reasons = Reasons()
    client = Consumer(reasons.settings({**config, "group.id": "retail-assets-offsets",
                                        "enable.auto.commit": False}))  # fmt: skip
    try:  # the group is required by librdkafka; it is never joined or committed
        metadata = reasons.list_topics(client, timeout, topic).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            return Offsets({}, {})
        starts, ends = {}, {}
        for partition in sorted(metadata.partitions):
            where = TopicPartition(topic, partition)
            low, high = client.get_watermark_offsets(where, timeout=timeout)
            starts[str(partition)], ends[str(partition)] = low, high
        return Offsets(starts, ends)
    except KafkaException as error:
        raise reasons.explain(client, error) from None
    finally:
        client.close()


def behind_checkpoint(start: dict[str, int], end: dict[str, int]) -> None:
    """Refuse offsets that went backwards (topic re-created, or a broker that lost its log):
    reading on would silently skip the new records."""
    behind = {p: (start[p], e) for p, e in end.items() if e < start.get(p, 0)}
    if behind:
        raise KafkaException(
            f"the broker's end offsets are behind the checkpoint {behind} (partition: "
            "(checkpoint, broker)): the topic was re-created or lost data. Nothing was read; "
            "docs/runbook.md (a lost Kafka log) says how to start over."
        )
