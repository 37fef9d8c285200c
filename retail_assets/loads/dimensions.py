"""The dimensions' loads: an SCD2 dimension's change records, its state after each hour and
its versions view; dim_date's new dates. And the versions as of an hour, which the facts,
insights and B2B file read."""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_assets.loads.inputs import DIMENSION_INPUTS, new_transactions_of
from retail_assets.storage.hours import hour_of, hour_values, key_at, previous_key
from retail_assets.storage.resource import StorageResource
from retail_assets.storage.tables import HOUR_COLUMNS, HourlyTable
from retail_assets.transforms.warehouse import (
    Dimension,
    date_rows,
    newest_records,
    scd2_changes,
    versions_as_of,
)

# Days of dimension state kept: re-running an older hour rebuilds it from the change records.
STATE_DAYS = 3


def change_table(storage: StorageResource, dimension: Dimension) -> HourlyTable:
    return storage.warehouse_table(f"{dimension.name}_changes")


def state_table(storage: StorageResource, dimension: Dimension) -> HourlyTable:
    return storage.warehouse_table(f"{dimension.name}_state")


def records_through(
    spark: SparkSession, storage: StorageResource, dimension: Dimension, key: str
) -> DataFrame | None:
    """The newest change record of every surrogate key as of the end of hour `key`; None
    before the first hour.

    Read from the dimension's state (`<dim>_state`: one partition per hour, the last
    STATE_DAYS days kept): the newest state of `key`'s day up to `key`, when no change records
    are newer. Otherwise (a gap, an hour older than the kept state) rebuilt from every change
    record through `key` — the same rows, at the cost of history.
    """
    changes, state = change_table(storage, dimension), state_table(storage, dimension)
    values = hour_values(key)
    newest_state = state.newest_hour_of_day(spark, key)
    # The state of `key` itself is newer than any change record through `key`: no need to ask.
    if newest_state is not None and (
        newest_state == values["ingest_hour"]
        or newest_state >= (changes.newest_hour_of_day(spark, key) or "")
    ):
        return state.hour(spark, key_at(values["ingest_date"], newest_state))
    return changes.hours(spark, key, through=True)


def versions_through(
    spark: SparkSession, storage: StorageResource, dimension: Dimension, key: str, through: bool
) -> DataFrame | None:
    """The dimension's SCD2 versions as of the end of hour `key` (or of the hour before)."""
    records = records_through(spark, storage, dimension, key if through else previous_key(key))
    return None if records is None else versions_as_of(dimension, records)


def write_changes(
    spark: SparkSession, storage: StorageResource, dimension: Dimension, key: str
) -> DataFrame | None:
    """Write the change records of hour `key`, then the state after it, and keep the versions
    view; the records it built on (the state before `key`; None before the first hour)."""
    incoming = DIMENSION_INPUTS[dimension](spark, storage, key)
    table = change_table(storage, dimension)
    records = records_through(spark, storage, dimension, previous_key(key))
    if records is None:  # the first hour ever: nothing known yet
        before = incoming.limit(0).select(
            F.lit(None).cast("int").alias("surrogate_key"),
            *incoming.columns,
            F.lit(None).cast("timestamp").alias("valid_from_hour"),
            F.lit(True).alias("is_current"),
        )
    else:
        before = versions_as_of(dimension, records)
    table.write(spark, scd2_changes(dimension, before, incoming, hour_of(key)), key)
    state = table.hour(spark, key).drop(*HOUR_COLUMNS)
    if records is not None:
        state = newest_records(records.drop(*HOUR_COLUMNS).unionByName(state))
    state_table(storage, dimension).write(spark, state, key)
    old_day = hour_of(key) - timedelta(days=STATE_DAYS)
    state_table(storage, dimension).drop_day(spark, f"{old_day:%Y-%m-%d}")
    spark.sql(
        f"CREATE OR REPLACE VIEW {storage.warehouse_table(dimension.name).name} AS "
        + dimension.versions_sql(table.name)
    )
    return records


def write_dates(spark: SparkSession, storage: StorageResource, key: str) -> str:
    """The transaction dates of hour `key` not seen before; the folder written."""
    table, seen = storage.warehouse_table("dim_date"), storage.seen_dates()
    dates = new_transactions_of(spark, storage, key).select(F.col("transaction_date").alias("date"))
    known = seen.before(spark, key)
    if known is not None:
        dates = dates.join(known, "date", "left_anti")
    path = table.write(spark, date_rows(dates), key)
    seen.add_hour(spark, key)
    return path
