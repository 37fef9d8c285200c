"""Streaming tables compacted by closed period, on the session's Spark server: compacting
changes no row and leaves one partition and file per closed period; late events are shown
once and folded in an hour later; a compaction cut short shows nothing twice and is swept; a
table of the layout before keeps its rows. The sink unpickles without Dagster."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from pyspark import cloudpickle
from pyspark.sql import functions as F

from retail_assets.storage.stream import StreamTable, batch_writer
from retail_assets.storage.tables import data_files, drop_table

NOW = datetime(2025, 5, 1, 13, 30, tzinfo=UTC)  # cutoff 11:00: two hours' grace
DAY = "2025-05-01"


@pytest.fixture
def events(spark, tmp_path, request):
    spark.sql("CREATE DATABASE IF NOT EXISTS stream_test")
    table = StreamTable(f"stream_test.{request.node.name}", str(tmp_path / "events"),
                        ("event_date", "event_hour"), "%Y-%m-%d/%H", "event_time")  # fmt: skip
    yield table
    for name in (table.name, table.batches_name, table.compacted_name):
        drop_table(spark, name)


def land(spark, table, batch_id, offsets_by_hour, name=None):
    """What the stream does with batch `batch_id`: the table made ready, then the sink."""
    rows = [(o, datetime(2025, 5, 1, h, o % 60, tzinfo=UTC))
            for h, offsets in offsets_by_hour.items() for o in offsets]  # fmt: skip
    frame = spark.createDataFrame(rows, "kafka_offset bigint, event_time timestamp").selectExpr(
        "*", "date_format(event_time, 'yyyy-MM-dd') AS event_date",
        "date_format(event_time, 'HH') AS event_hour",
    )  # fmt: skip
    if name is None:
        table.ensure(spark, frame.withColumn("batch_id", F.lit("")))
    batch_writer(name or table.batches_name, table.location, table.batch_columns)(frame, batch_id)


def shown(spark, table) -> list[tuple]:
    return sorted(tuple(r) for r in spark.table(table.name).collect())


def partitions(spark, name) -> list[str]:
    return [r[0] for r in spark.sql(f"SHOW PARTITIONS {name}").collect()]


def three_batches(spark, table):
    land(spark, table, 0, {9: [1, 2], 10: [3], 12: [4]})
    land(spark, table, 1, {9: [5], 10: [6, 7], 12: [8]})
    land(spark, table, 2, {13: [9]})


def test_compacting_closed_periods_changes_no_row_and_leaves_one_file_per_period(spark, events):
    assert events.compact(spark, last_batch=None, now=NOW) == []  # nothing landed yet
    assert events.compact(spark, last_batch=2, now=NOW) == []  # a commit, but no table yet
    three_batches(spark, events)
    before = shown(spark, events)
    assert len(before) == 9

    assert events.compact(spark, last_batch=2, now=NOW) == [f"{DAY}/09", f"{DAY}/10"]

    assert shown(spark, events) == before
    assert partitions(spark, events.batches_name) == [
        f"event_date={DAY}/event_hour=12/batch_id=0",
        f"event_date={DAY}/event_hour=12/batch_id=1",
        f"event_date={DAY}/event_hour=13/batch_id=2",
    ]
    assert partitions(spark, events.compacted_name) == [
        f"run=1/event_date={DAY}/event_hour=09",
        f"run=1/event_date={DAY}/event_hour=10",
    ]
    assert len(data_files(spark, f"{events.compacted_location}/run=1")) == 2
    assert events.compact(spark, last_batch=2, now=NOW) == []  # once per period of `now`


def test_late_events_are_shown_once_then_folded_into_their_period(spark, events):
    three_batches(spark, events)
    events.compact(spark, last_batch=2, now=NOW)
    land(spark, events, 3, {9: [10]})  # a late event of a compacted hour
    with_late = shown(spark, events)
    assert [r[0] for r in with_late] == list(range(1, 11))

    assert events.compact(spark, last_batch=3, now=NOW + timedelta(hours=1)) == [f"{DAY}/09"]

    assert shown(spark, events) == with_late
    assert partitions(spark, events.compacted_name) == [
        f"run=1/event_date={DAY}/event_hour=10",
        f"run=2/event_date={DAY}/event_hour=09",  # run 1's version of 09 is gone
    ]
    assert f"event_date={DAY}/event_hour=09/batch_id=3" not in partitions(
        spark, events.batches_name
    )


def test_batches_past_the_last_commit_are_not_compacted(spark, events):
    """A batch written by a run killed before its commit is re-run with the same offsets and
    replaces its own folders; compacting it would hide what the re-run writes."""
    three_batches(spark, events)
    land(spark, events, 3, {9: [10]})
    events.compact(spark, last_batch=2, now=NOW)
    assert f"event_date={DAY}/event_hour=09/batch_id=3" in partitions(spark, events.batches_name)
    land(spark, events, 3, {9: [10, 11]})  # the re-run of batch 3, whole
    assert [r[0] for r in shown(spark, events)] == list(range(1, 12))


def test_a_compaction_cut_short_shows_nothing_twice_and_is_swept(spark, events):
    three_batches(spark, events)
    before = shown(spark, events)
    # killed before the view change, with a period the next compaction does not write again
    events._write_run(spark, 1, [f"{DAY}/09", f"{DAY}/10", f"{DAY}/12"], 2)
    assert shown(spark, events) == before

    events.compact(spark, last_batch=2, now=NOW)

    assert shown(spark, events) == before
    assert partitions(spark, events.compacted_name) == [
        f"run=1/event_date={DAY}/event_hour=09",
        f"run=1/event_date={DAY}/event_hour=10",
    ]
    assert len(data_files(spark, f"{events.compacted_location}/run=1")) == 2


def test_a_table_of_the_layout_before_keeps_its_rows(spark, events):
    from retail_assets.storage.tables import ensure_table

    old = spark.createDataFrame([], "kafka_offset bigint, event_time timestamp").selectExpr(
        "*", "'' AS event_date", "'' AS event_hour", "'' AS batch_id"
    )
    ensure_table(spark, events.name, events.location, old, events.batch_columns)
    land(spark, events, 0, {9: [1, 2]}, name=events.name)  # written before this layout
    assert events.compact(spark, last_batch=0, now=NOW) == []  # a pass with nothing new
    land(spark, events, 1, {10: [3]})  # the first batch after the upgrade

    assert spark.catalog.getTable(events.name).tableType == "VIEW"
    assert [r[0] for r in shown(spark, events)] == [1, 2, 3]


def test_a_compaction_killed_after_its_view_change_shows_nothing_twice(spark, events, monkeypatch):
    three_batches(spark, events)
    events.compact(spark, last_batch=2, now=NOW)
    land(spark, events, 3, {9: [10]})
    with_late = shown(spark, events)
    with monkeypatch.context() as crash:  # killed right after the view change: nothing dropped
        crash.setattr(StreamTable, "_sweep", lambda *_: None)
        events.compact(spark, last_batch=3, now=NOW + timedelta(hours=1))
    assert len(partitions(spark, events.compacted_name)) == 3  # run 1's 09 is still there…
    assert shown(spark, events) == with_late  # …and not shown

    events.compact(spark, last_batch=3, now=NOW + timedelta(hours=2))  # the next hour sweeps
    assert partitions(spark, events.compacted_name) == [
        f"run=1/event_date={DAY}/event_hour=10",
        f"run=2/event_date={DAY}/event_hour=09",
        f"run=3/event_date={DAY}/event_hour=12",
    ]
    assert shown(spark, events) == with_late


def test_the_sink_unpickles_without_dagster():
    """Spark's Python worker unpickles the foreachBatch sink at every query start; importing
    Dagster there costs each start most of a second."""
    pickled = cloudpickle.dumps(batch_writer("db.t", "/tmp/t", ["event_date", "batch_id"]))
    check = "import pickle, sys; pickle.load(sys.stdin.buffer); print('dagster' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", check], input=pickled, capture_output=True,
                            check=True)  # fmt: skip
    assert loaded.stdout.decode().strip() == "False"
