"""What the broker holds of a topic, asked with confluent-kafka: where each partition starts
and ends. The sensor decides from it whether a pass is due, and the streaming asset checks a
checkpoint against it before Spark's Kafka source reads (a clear refusal, not a failed query).
"""

from __future__ import annotations

from typing import NamedTuple

from confluent_kafka import Consumer, KafkaException, TopicPartition

TIMEOUT_S = 30


class Offsets(NamedTuple):
    starts: dict[str, int]  # {"<partition>": earliest offset the broker still holds}
    ends: dict[str, int]  # {"<partition>": the offset the next record will get}


def topic_offsets(config: dict[str, str], topic: str, timeout: float = TIMEOUT_S) -> Offsets:
    """Where each partition of the topic starts and ends; empty if the topic does not exist."""
    client = Consumer({**config, "group.id": "retail-assets-offsets", "enable.auto.commit": False})
    try:  # the group is required by librdkafka; it is never joined or committed
        metadata = client.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            return Offsets({}, {})
        starts, ends = {}, {}
        for partition in sorted(metadata.partitions):
            where = TopicPartition(topic, partition)
            low, high = client.get_watermark_offsets(where, timeout=timeout)
            starts[str(partition)], ends[str(partition)] = low, high
        return Offsets(starts, ends)
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
