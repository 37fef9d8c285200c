"""app_events: app-log events from Kafka, landed by Spark Structured Streaming, a pass per run.

Two queries on Spark's Kafka source, each with its own checkpoint under
lake/streaming/_checkpoints/<topic>: the events (retail_dwh.app_events) and their counts per
eventType in 5-minute event-time windows (retail_dwh.app_event_counts), both Delta tables
by day. Each run reads what the broker holds beyond its checkpoint when the query starts
(Trigger.AvailableNow), in batches of at most `max_per_batch` records, and stops.

Exactly once: a micro-batch's offsets are fixed in the checkpoint before it runs, and Delta's
sink commits it as one table version that names the query and the batch. A batch cut short
(kill -9) is run again with the same offsets; if its version had been committed, Delta skips
it (storage/stream.py).
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dagster import AssetExecutionContext, Config, MaterializeResult, asset
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamWriter

from retail_assets.assets.catalog import DWH_DB, OWNERS, table_metadata, tags, written
from retail_assets.assets.metadata import as_json, markdown_table
from retail_assets.assets.retries import retried
from retail_assets.resources import KafkaResource, SparkResource
from retail_assets.storage.checkpoints import Commit, kafka_offsets, lag, position
from retail_assets.storage.delta import latest_version
from retail_assets.storage.resource import StorageResource
from retail_assets.streaming.kafka_offsets import behind_checkpoint
from retail_assets.transforms.events import parse_events, window_counts

EVENTS, COUNTS = "app_events", "app_event_counts"
TRANSFORMS: dict[str, Callable[[DataFrame], DataFrame]] = {
    EVENTS: parse_events,
    COUNTS: lambda records: window_counts(parse_events(records)),
}


# The Kafka consumer of a Spark task takes up to this many records per poll (500 by default):
# a warm server's events query over 500,000 events, 8.1 s -> 6.7 s (docs/design.md §4).
FETCH = {"kafka.max.poll.records": "20000", "kafka.max.partition.fetch.bytes": str(16 << 20)}


class AppEventsConfig(Config):
    # Records one micro-batch reads at most (all partitions together): a backlog after an
    # outage is landed in batches of this size, so a batch's memory stays bounded.
    max_per_batch: int = 600_000


def stream_writer(
    spark: SparkSession,
    kafka: KafkaResource,
    storage: StorageResource,
    name: str,
    max_per_batch: int,
) -> DataStreamWriter:
    """Query `name`, its tables made ready first."""
    stream = TRANSFORMS[name](kafka_records(spark, kafka, max_per_batch))
    sink = storage.stream_table(name).sink(stream, storage.checkpoint_uri(kafka.topic, name))
    return sink.queryName(name)


def kafka_records(spark: SparkSession, kafka: KafkaResource, max_per_batch: int) -> DataFrame:
    """The topic as a stream of (kafka_partition, kafka_offset, kafka_timestamp, key, value)
    rows, from Spark's Kafka source. A first pass starts at the earliest offsets; failOnDataLoss
    (the default) fails a query whose offsets the broker no longer holds."""
    records = (
        spark.readStream.format("kafka")
        .option("subscribe", kafka.topic)
        .options(**kafka.spark_options())
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", str(max_per_batch))
        .options(**FETCH)
        .load()
    )
    return records.select(
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("key").cast("string").alias("key"),
        F.col("value").cast("string").alias("value"),
    )


def run_query(writer: DataStreamWriter) -> list:
    """One pass of a query: its progress reports, one per batch.

    Trigger.AvailableNow fixes the pass's end when the query starts (the broker's end
    offsets then), runs the batches up to it, a batch left planned by a killed run first
    (with its own offsets), then the no-data batch in which the window counts emit the
    windows their watermark closed, and stops the query.
    """
    query = writer.trigger(availableNow=True).start()
    try:
        query.awaitTermination()
        return query.recentProgress
    finally:
        query.stop()


def pass_summary(progress: list, before: Commit, seconds: float) -> dict:
    """What one pass read from where `before` left off, from the query's progress reports
    (in order; a trigger without "addBatch" ran no batch)."""
    ran = [p for p in progress if "addBatch" in p.durationMs]
    rows = sum(p.numInputRows for p in ran)
    return {
        "batches": len(ran),
        "last_batch": max([p.batchId for p in ran], default=before.batch),
        "input_rows": rows,
        "rows_per_second": round(rows / seconds, 1) if seconds else 0.0,
        "start_offsets": before.offsets,
        "end_offsets": kafka_offsets(ran[-1].sources[0].endOffset) if ran else before.offsets,
    }


def reached_short(reached: dict[str, int], ending: dict[str, int]) -> dict:
    """{partition: (reached, end)} of the partitions `reached` falls short of `ending` on."""
    return {p: (reached.get(p, 0), e) for p, e in ending.items() if reached.get(p, 0) < e}


def stream_pass(
    session: SparkSession,
    kafka: KafkaResource,
    storage: StorageResource,
    name: str,
    before: Commit,
    ending: dict[str, int],
    max_per_batch: int,
) -> dict:
    """Query `name` from its checkpoint (`before`) to at least `ending` (the broker's ends read
    before); an error if it stops short."""
    began, progress = time.monotonic(), []
    if any(e > before.offsets.get(p, 0) for p, e in ending.items()):
        writer = stream_writer(session, kafka, storage, name, max_per_batch)
        progress = run_query(writer)
    summary = pass_summary(progress, before, time.monotonic() - began)
    if reached_short(summary["end_offsets"], ending):
        # A query a killed run left on the server, on this checkpoint, may have committed the
        # batches this one then found done (starting this query stopped it): the checkpoint
        # says how far the query really is.
        after = storage.last_commit(kafka.topic, name)
        if after is not None:
            summary.update(last_batch=after.batch, end_offsets=after.offsets)
    short = reached_short(summary["end_offsets"], ending)
    if short:
        raise RuntimeError(
            f"streaming query {name} stopped short of the pass's end (partition: (reached, "
            f"end)) {short}; the next run goes on from its checkpoint"
        )
    return summary


@retried(
    asset,
    group_name="streaming",
    kinds={"spark", "kafka"},
    owners=OWNERS,
    tags=tags("streaming", "app_usage"),
    metadata=table_metadata(DWH_DB, EVENTS),
)
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
    for name in (EVENTS, COUNTS):
        storage.stream_table(name).refuse_old_layout(session)
    starts, ends = kafka.offsets()  # both queries read at least this far

    summary = {}
    for name in (EVENTS, COUNTS):
        before = position(storage.last_commit(kafka.topic, name), starts)
        behind_checkpoint(before.offsets, ends)
        summary[name] = stream_pass(
            session, kafka, storage, name, before, ends, config.max_per_batch
        )
        summary[name]["table_version"] = latest_version(session, storage.stream_table(name).name)
    now = kafka.offsets().ends
    for name, report in summary.items():
        report["remaining_lag"] = lag(now, report["end_offsets"])
        context.log.info(f"{name}: {report['input_rows']} records in {report['batches']} batches")
    events, table = summary[EVENTS], storage.stream_table(EVENTS).name
    latest = []
    if session.catalog.tableExists(table):
        recent = F.col("event_date") >= f"{datetime.now(UTC) - timedelta(days=1):%Y-%m-%d}"
        preview = session.table(table).where(recent).drop("raw_value")  # not a year's scan
        preview = preview.orderBy(F.desc("kafka_timestamp"))
        latest = [r.asDict() for r in preview.limit(5).collect()]
    return MaterializeResult(
        metadata={
            **written(table),
            "batches": events["batches"],
            "input_rows": events["input_rows"],
            "rows_per_second": events["rows_per_second"],
            "start_offsets": as_json(events["start_offsets"]),
            "end_offsets": as_json(events["end_offsets"]),
            "remaining_lag": as_json(events["remaining_lag"]),
            "window_counts": as_json(summary[COUNTS]),
            "table_version": events["table_version"],
            "latest_events": markdown_table(latest, limit=5),
        }
    )
