"""app_events: app-log events from Kafka, landed by Spark Structured Streaming, a pass per run.

Two queries, each with its own checkpoint under lake/streaming/_checkpoints/<topic>: the
events (retail_dwh.app_events, parquet by event_date/event_hour) and their counts per eventType
in 5-minute event-time windows (retail_dwh.app_event_counts). Each run reads what the broker
holds beyond its checkpoint, at most `max_per_partition` records per partition, and stops;
then it compacts the periods that have closed (storage/stream.py).

Exactly once: a micro-batch's offsets are fixed in the checkpoint before it runs, and its
sink replaces the batch's own partitions (…/batch_id=N) by dynamic partition overwrite. A
batch cut short (kill -9) is run again with the same offsets and writes the same files.
"""

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamWriter

from retail_assets.assets.metadata import as_json, markdown_table
from retail_assets.resources import KafkaResource, SparkResource
from retail_assets.storage.checkpoints import Commit, lag, position
from retail_assets.storage.resource import StorageResource
from retail_assets.storage.stream import batch_writer
from retail_assets.streaming.kafka_source import (
    CONFIG_PREFIX,
    KafkaSource,
    behind_checkpoint,
    capped,
    java_client_options,
    topic_offsets,
)
from retail_assets.transforms.events import parse_events, window_counts

EVENTS, COUNTS = "app_events", "app_event_counts"
TRANSFORMS: dict[str, Callable[[DataFrame], DataFrame]] = {
    EVENTS: parse_events,
    COUNTS: lambda records: window_counts(parse_events(records)),
}


IDLE_TIMEOUT_S = 900


class AppEventsConfig(Config):
    max_per_partition: int = 200_000  # records of each partition one run reads at most


def stream_writer(
    spark: SparkSession,
    kafka: KafkaResource,
    storage: StorageResource,
    name: str,
    ending: dict[str, int],
    per_partition: int,
) -> DataStreamWriter:
    """Query `name` up to the offsets `ending`, its tables made ready first."""
    table = storage.stream_table(name)
    stream = TRANSFORMS[name](kafka_records(spark, kafka, ending, per_partition))
    table.ensure(spark, stream.withColumn("batch_id", F.lit("")))
    return (
        stream.writeStream.queryName(name)
        .option("checkpointLocation", storage.checkpoint_uri(kafka.topic, name))
        .foreachBatch(batch_writer(table.batches_name, table.location, table.batch_columns))
    )


def run_query(
    writer: DataStreamWriter, storage: StorageResource, topic: str, name: str, ending: dict
) -> None:
    """One pass of query `name`, up to the offsets `ending`.

    The events query runs availableNow. The window counts run on a processing-time trigger
    until they have caught up and gone idle: Spark emits a window in append mode only in a
    batch after the one whose watermark passed it, and with this source availableNow stops
    after one batch, which would leave the closed windows for the next run.
    """
    if name == EVENTS:
        # availableNow runs one batch with this source; a batch left planned by a killed run
        # is re-run first, so go on until the pass's end is reached (or nothing moves).
        commit = None
        while True:
            query = writer.trigger(availableNow=True).start()
            query.awaitTermination()
            failed(query)
            previous, commit = commit, storage.last_commit(topic, name)
            if reached(commit, ending) or commit == previous:
                return
    query = writer.trigger(processingTime="1 second").start()
    try:
        wait_until_idle(query, storage, topic, name, ending)
    finally:
        query.stop()
    failed(query)


def failed(query) -> None:
    if query.exception() is not None:
        raise RuntimeError(f"streaming query {query.name} failed: {query.exception()}")


def reached(commit: Commit | None, ending: dict[str, int]) -> bool:
    return commit is not None and all(commit.offsets.get(p, 0) >= e for p, e in ending.items())


def kafka_records(
    spark: SparkSession, kafka: KafkaResource, ending: dict[str, int], per_partition: int
) -> DataFrame:
    """The topic as a stream of RAW_SCHEMA rows, through the configured source: this
    project's Python source (default), or Spark's own connector where a cluster has it."""
    if kafka.spark_source == "kafka":
        cap = per_partition * max(len(ending), 1)  # this connector caps a whole batch
        return (
            spark.readStream.format("kafka")
            .options(**java_client_options(kafka.client_config()))
            .option("subscribe", kafka.topic)
            .option("startingOffsets", "earliest")
            .option("failOnDataLoss", "true")
            .option("maxOffsetsPerTrigger", str(cap))
            .load()
            .select(
                F.col("partition").alias("kafka_partition"),
                F.col("offset").alias("kafka_offset"),
                F.col("timestamp").alias("kafka_timestamp"),
                F.col("key").cast("string").alias("key"),
                F.col("value").cast("string").alias("value"),
            )
        )
    return (
        spark.readStream.format(KafkaSource.name())
        .option("topic", kafka.topic)
        .options(**{CONFIG_PREFIX + k: v for k, v in kafka.client_config().items()})
        .option("endingOffsets", json.dumps(ending))
        .load()
    )


def wait_until_idle(
    query, storage: StorageResource, topic: str, name: str, ending: dict[str, int]
) -> None:
    """Until the query has committed `ending` and has nothing left to run (no data, no
    watermark batch pending)."""
    deadline = time.monotonic() + IDLE_TIMEOUT_S
    while query.isActive:
        commit = storage.last_commit(topic, name)
        status = query.status
        if reached(commit, ending) and not (status["isDataAvailable"] or status["isTriggerActive"]):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"streaming query {name} did not catch up within {IDLE_TIMEOUT_S}s")
        time.sleep(0.5)


def pass_summary(
    before: Commit | None, after: Commit | None, start: dict[str, int], seconds: float
) -> dict:
    """What one pass read: from `start` (where `before` left off) to the commit `after`."""
    if after is None:
        return {"batches": 0, "input_rows": 0, "rows_per_second": 0.0}
    rows = sum(o - start.get(p, 0) for p, o in after.offsets.items())
    return {
        "batches": after.batch - (before.batch if before else -1),
        "input_rows": rows,
        "rows_per_second": round(rows / seconds, 1) if seconds else 0.0,
    }


@asset(group_name="streaming", kinds={"spark", "kafka"})
def app_events(
    context: AssetExecutionContext,
    config: AppEventsConfig,
    spark: SparkResource,
    storage: StorageResource,
    kafka: KafkaResource,
) -> MaterializeResult:
    """retail_dwh.app_events (known fields typed, unknown ones in extra_fields) and
    retail_dwh.app_event_counts (per eventType, 5-minute windows, watermark 10 minutes)."""
    session = spark.spark_session
    session.dataSource.register(KafkaSource)
    starts, ends = topic_offsets(kafka.client_config(), kafka.topic)  # both queries' end

    passes, compacted = {}, {}
    for name in (EVENTS, COUNTS):
        before = storage.last_commit(kafka.topic, name)
        start = position(before, starts)
        behind_checkpoint(start, ends)
        ending = capped(start, ends, config.max_per_partition)
        began = time.monotonic()
        if any(e > start.get(p, 0) for p, e in ending.items()):
            writer = stream_writer(session, kafka, storage, name, ending, config.max_per_partition)
            run_query(writer, storage, kafka.topic, name, ending)
        after = storage.last_commit(kafka.topic, name)
        passes[name] = (before, start, after, time.monotonic() - began)
        table = storage.stream_table(name)
        compacted[name] = table.compact(session, after.batch if after else None, datetime.now(UTC))
    now = topic_offsets(kafka.client_config(), kafka.topic).ends
    summary = {}
    for name, (before, start, after, seconds) in passes.items():
        reached = position(after, starts)
        summary[name] = {
            **pass_summary(before, after, start, seconds),
            "start_offsets": start,
            "end_offsets": reached,
            "remaining_lag": lag(now, reached),
        }
        context.log.info(f"{name}: {summary[name]['input_rows']} records in "
                         f"{summary[name]['batches']} batches")  # fmt: skip
    events, table = summary[EVENTS], storage.stream_table(EVENTS).name
    latest = []
    if session.catalog.tableExists(table):
        recent = F.col("event_date") >= f"{datetime.now(UTC) - timedelta(days=1):%Y-%m-%d}"
        preview = session.table(table).where(recent).drop("raw_value")  # not a year's scan
        preview = preview.orderBy(F.desc("kafka_timestamp"))
        latest = [r.asDict() for r in preview.limit(5).collect()]
    return MaterializeResult(
        metadata={
            "batches": events["batches"],
            "input_rows": events["input_rows"],
            "rows_per_second": events["rows_per_second"],
            "start_offsets": as_json(events["start_offsets"]),
            "end_offsets": as_json(events["end_offsets"]),
            "remaining_lag": as_json(events["remaining_lag"]),
            "window_counts": as_json(summary[COUNTS]),
            "compacted_periods": as_json(compacted),
            "table": MetadataValue.text(table),
            "latest_events": markdown_table(latest, limit=5),
        }
    )
