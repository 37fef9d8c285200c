"""The streaming tables' Delta parts on the session's Spark server: a home of the layout
before Delta is refused by name; the daily maintenance folds a closed day's files into one,
leaves the open day alone, changes no row and deletes what time travel no longer reaches.
(Exactly-once across kill -9 is test_streaming's.)"""

from datetime import UTC, datetime

import pytest
from dagster import build_schedule_context

from retail_assets.orchestration.maintenance import daily_delta_maintenance, delta_maintenance
from retail_assets.resources import spark_resource
from retail_assets.storage.delta import create_table
from retail_assets.storage.stream import OldLayoutError
from retail_assets.storage.tables import drop_table
from retail_assets_tests.helpers import make_storage

DAY, NEXT = "2025-05-01", "2025-05-02"


@pytest.fixture
def storage(request, tmp_path, spark):
    storage = make_storage(tmp_path, request.node.name.removeprefix("test_")[:30])
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {storage.warehouse_database}")
    yield storage
    for name in storage.delta_tables():
        drop_table(spark, name)


@pytest.mark.parametrize("old", ["VIEW", "TABLE"])
def test_a_home_of_the_streaming_layout_before_delta_is_refused_by_name(spark, storage, old):
    table = storage.stream_table("app_events")
    if old == "VIEW":  # the compacted layout: a view over parquet batches
        spark.sql(f"CREATE VIEW {table.name} AS SELECT 1 AS kafka_offset")
    else:  # the first layout: the batches as a parquet table
        spark.sql(f"CREATE TABLE {table.name} (kafka_offset bigint) USING parquet")

    with pytest.raises(OldLayoutError, match=f"{table.name} is of the streaming layout before"):
        table.refuse_old_layout(spark)
    assert spark.table(table.name).columns == ["kafka_offset"]  # left as it was


def day_files(storage, day) -> list[str]:
    """The data files in a day's folder (Delta's log says which of them are live)."""
    names = storage.lake.list_names("streaming", "app_events", f"event_date={day}")
    return [name for name in names if name.endswith(".parquet") and not name.startswith(".")]


def test_maintenance_folds_a_closed_days_files_into_one_and_vacuums_the_rest(
    spark, settings, storage
):
    table = storage.stream_table("app_events")
    batch = spark.range(3).selectExpr("id AS kafka_offset", f"'{DAY}' AS event_date")
    create_table(spark, table.name, table.location, batch, ["event_date"])
    spark.sql(f"ALTER TABLE {table.name} SET TBLPROPERTIES "
              "('delta.deletedFileRetentionDuration' = 'interval 0 hours')")  # fmt: skip
    for offset, day in ((0, DAY), (3, DAY), (6, DAY), (9, NEXT)):  # as the stream appends
        rows = batch.selectExpr(
            f"kafka_offset + {offset} AS kafka_offset", f"'{day}' AS event_date"
        )
        rows.write.format("delta").mode("append").save(table.location)
    assert len(day_files(storage, DAY)) >= 3
    next_day = day_files(storage, NEXT)
    config = {"until": NEXT, "days": 1, "retain_hours": 0}

    result = delta_maintenance.execute_in_process(
        run_config={"ops": {"maintain_delta_tables": {"config": config}}},
        resources={"spark": spark_resource(settings), "storage": storage},
    )

    assert result.success
    assert len(day_files(storage, DAY)) == 1  # compacted, and the three vacuumed
    assert day_files(storage, NEXT) == next_day  # still open: untouched
    offsets = [r.kafka_offset for r in spark.table(table.name).collect()]
    assert sorted(offsets) == list(range(12))
    history = spark.sql(f"DESCRIBE HISTORY {table.name}").select("operation").collect()
    assert [r.operation for r in history][:3] == ["VACUUM END", "VACUUM START", "OPTIMIZE"]


def test_the_daily_tick_compacts_the_days_before_its_own_date():
    tick = datetime(2025, 5, 3, 2, 30, tzinfo=UTC)
    with build_schedule_context(scheduled_execution_time=tick) as context:
        request = daily_delta_maintenance(context)
    config = request.run_config["ops"]["maintain_delta_tables"]["config"]
    assert (request.run_key, config) == ("2025-05-03", {"until": "2025-05-03"})
