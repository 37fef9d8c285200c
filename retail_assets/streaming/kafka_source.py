"""A Kafka source for Spark Structured Streaming on Spark's Python Data Source API.

Spark here has no Kafka connector (docs/design.md §4), so this source reads with confluent-kafka:
offsets are {"<partition>": next offset}, a micro-batch reads [start, end) of each partition,
and the query's checkpoint holds the offsets, so a restart re-reads exactly the batch it had
not committed.

Against the embedded broker only, the end of a partition is found by reading from the listed
high watermark until the fetch says end-of-partition: Tansu lists the last batch's base offset
+ 1 rather than the true end (docs/design.md §3). Any Kafka lists the true end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import NamedTuple

import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition

CONFIG_PREFIX = "kafka."
RAW_SCHEMA = (
    "kafka_partition int, kafka_offset bigint, kafka_timestamp timestamp, key string, value string"
)
TIMEOUT_S = 30
# A partition's records of one batch are read in slices of at most this many, as Spark tasks
# of their own: a few large partitions would otherwise leave cores idle while one reads.
SLICE_RECORDS = 100_000


def consumer(config: dict[str, str]) -> Consumer:
    """A consumer that never joins a group (assign only) and reports end-of-partition."""
    return Consumer({
        **config,
        "group.id": "retail-assets-reader",  # required by librdkafka, never joined or committed
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
    })  # fmt: skip


class Offsets(NamedTuple):
    starts: dict[str, int]  # {"<partition>": earliest offset the broker still holds}
    ends: dict[str, int]  # {"<partition>": true end offset}


def topic_offsets(
    config: dict[str, str], topic: str, timeout: float = TIMEOUT_S, probe_end: bool = False
) -> Offsets:
    """Where each partition of the topic starts and ends; empty if the topic does not exist.

    `probe_end` (the embedded broker): the listed end is not to be trusted, read to the end.
    """
    client = consumer(config)
    try:
        metadata = client.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            return Offsets({}, {})
        starts, listed = {}, {}
        for partition in sorted(metadata.partitions):
            low, high = client.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            starts[str(partition)], listed[str(partition)] = low, high
        if not probe_end:
            return Offsets(starts, listed)
        return Offsets(starts, read_to_end(client, topic, starts, listed, timeout))
    finally:
        client.close()


def read_to_end(
    client: Consumer, topic: str, starts: dict[str, int], listed: dict[str, int], timeout: float
) -> dict[str, int]:
    """The true end of each partition: the offset at which a fetch from the listed end's
    last record reports end-of-partition."""
    client.assign([TopicPartition(topic, int(p), max(listed[p] - 1, starts[p])) for p in starts])
    ends: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while len(ends) < len(starts):
        if time.monotonic() > deadline:
            raise KafkaException(f"no end-of-partition from {topic} within {timeout}s")
        message = client.poll(0.2)
        if message is not None and message.error() is not None:
            if message.error().code() != KafkaError._PARTITION_EOF:
                raise KafkaException(message.error())
            ends[str(message.partition())] = message.offset()
    return {p: ends[p] for p in starts}


def capped(start: dict[str, int], end: dict[str, int], per_partition: int) -> dict[str, int]:
    """The end of a run that reads at most `per_partition` records of each partition."""
    return {p: min(e, start.get(p, 0) + per_partition) for p, e in end.items()}


def behind_checkpoint(start: dict[str, int], end: dict[str, int]) -> None:
    """Refuse offsets that went backwards (topic re-created, or a broker that lost its data):
    reading on would silently skip the new records."""
    behind = {p: (start[p], e) for p, e in end.items() if e < start.get(p, 0)}
    if behind:
        raise KafkaException(
            f"the broker's end offsets are behind the checkpoint {behind} (partition: "
            "(checkpoint, broker)): the topic was re-created or lost data. Nothing was read; "
            "to start over, remove the stream's checkpoint folder."
        )


class KafkaSlice(InputPartition):
    def __init__(self, partition: int, start: int, end: int):
        super().__init__((partition, start, end))
        self.partition, self.start, self.end = partition, start, end


ARROW_SCHEMA = pa.schema([
    ("kafka_partition", pa.int32()),
    ("kafka_offset", pa.int64()),
    ("kafka_timestamp", pa.timestamp("us", tz="UTC")),  # Spark's timestamp: microseconds
    ("key", pa.string()),
    ("value", pa.string()),
])  # fmt: skip


def read_slice(config: dict[str, str], topic: str, piece: KafkaSlice) -> Iterator[pa.RecordBatch]:
    """The records [start, end) of one partition, as Arrow batches of RAW_SCHEMA: Spark takes
    them without converting row by row."""
    client = consumer(config)
    try:
        client.assign([TopicPartition(topic, piece.partition, piece.start)])
        position, deadline = piece.start, time.monotonic() + TIMEOUT_S
        while position < piece.end:
            messages = client.consume(num_messages=min(piece.end - position, 10_000), timeout=1)
            offsets, stamps, keys, values = [], [], [], []
            for message in messages:
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    position = max(position, message.offset())  # a gap (e.g. a marker) at the end
                    continue
                if error is not None:
                    raise KafkaException(error)
                if message.offset() >= piece.end:
                    position = piece.end
                    break
                key = message.key()
                offsets.append(message.offset())
                stamps.append(message.timestamp()[1] * 1000)  # Kafka: milliseconds
                keys.append(key.decode("utf-8", errors="replace") if key is not None else None)
                values.append(message.value().decode("utf-8", errors="replace"))
                position = message.offset() + 1
            if offsets:
                yield pa.RecordBatch.from_arrays(
                    [pa.array([piece.partition] * len(offsets), pa.int32()),
                     pa.array(offsets, pa.int64()), pa.array(stamps, ARROW_SCHEMA[2].type),
                     pa.array(keys, pa.string()), pa.array(values, pa.string())],
                    schema=ARROW_SCHEMA,
                )  # fmt: skip
            if messages:
                deadline = time.monotonic() + TIMEOUT_S
            elif time.monotonic() > deadline:
                raise KafkaException(
                    f"{topic}[{piece.partition}]: offsets {position}..{piece.end} were not "
                    f"readable within {TIMEOUT_S}s"
                )
    finally:
        client.close()


class KafkaStreamReader(DataSourceStreamReader):
    def __init__(self, options: dict[str, str]):
        self.config = {k[len(CONFIG_PREFIX) :]: v for k, v in options.items()
                       if k.startswith(CONFIG_PREFIX)}  # fmt: skip
        self.topic = options["topic"]
        self.probe_end = options.get("probeEnd") == "true"
        # The run's planned end (the asset caps a run); absent: everything available.
        self.planned = json.loads(options.get("endingOffsets") or "{}")

    def offsets(self) -> Offsets:
        return topic_offsets(self.config, self.topic, probe_end=self.probe_end)

    def initialOffset(self) -> dict:
        return self.offsets().starts

    def latestOffset(self) -> dict:
        """The run's planned end (read from the broker by the run just before), else the
        broker's end: asking the broker again would cost each query start a round of requests."""
        return self.planned or self.offsets().ends

    def partitions(self, start: dict, end: dict) -> list[KafkaSlice]:
        behind_checkpoint(start, end)
        return [
            KafkaSlice(int(p), first, min(first + SLICE_RECORDS, e))
            for p, e in end.items()
            for first in range(start.get(p, 0), e, SLICE_RECORDS)
        ]

    def read(self, partition: KafkaSlice) -> Iterator[pa.RecordBatch]:
        return read_slice(self.config, self.topic, partition)

    def commit(self, end: dict) -> None:
        """Nothing to do: the checkpoint is the record of what was read."""


class KafkaSource(DataSource):
    """`spark.readStream.format("retail_kafka").option("topic", …).option("kafka.<setting>", …)`,
    optionally `.option("endingOffsets", json)` and `.option("probeEnd", "true")`."""

    @classmethod
    def name(cls) -> str:
        return "retail_kafka"

    def schema(self) -> str:
        return RAW_SCHEMA

    def streamReader(self, schema) -> KafkaStreamReader:
        return KafkaStreamReader(self.options)
