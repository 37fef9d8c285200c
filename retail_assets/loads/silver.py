"""The silver layer's loads: an hour's transactions cleaned into silver and the quarantine,
and the first arrivals among them (docs/rules.md §2)."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from retail_assets.loads.raw import read_raw
from retail_assets.storage.resource import StorageResource
from retail_assets.transforms.source_records import SOURCE_FIELDS
from retail_assets.transforms.transactions import clean_transactions, quarantine_rows, silver_rows
from retail_assets.transforms.warehouse import conflicting_resends, first_arrivals


def write_silver(spark: SparkSession, storage: StorageResource, key: str) -> str:
    """Clean hour `key` into silver and quarantine; silver's folder written."""
    files = storage.raw_files(key, "sales_transactions")
    cleaned = clean_transactions(read_raw(spark, files, SOURCE_FIELDS)).persist()
    try:
        silver_path = storage.lake_table("silver", "transactions").write(
            spark, silver_rows(cleaned), key
        )
        storage.lake_table("quarantine", "transactions").write(spark, quarantine_rows(cleaned), key)
    finally:
        cleaned.unpersist()
    return silver_path


def write_new_transactions(spark: SparkSession, storage: StorageResource, key: str) -> str:
    """The first arrivals among hour `key`'s silver rows; the folder written."""
    table, seen = storage.lake_table("silver", "new_transactions"), storage.seen_transaction_ids()
    rows = storage.lake_table("silver", "transactions").hour(spark, key)
    path = table.write(spark, first_arrivals(rows, seen.before(spark, key)), key)
    seen.add_hour(spark, key)
    return path


def resend_conflicts(
    spark: SparkSession, storage: StorageResource, key: str, shown: int = 5
) -> tuple[int, list[str]]:
    """How many re-sent transaction ids of hour `key` disagree with their first arrival, and
    the first `shown` of them. Reads the hour, and of history only the hours the seen-ids
    index names as the re-sent ids' first arrivals."""
    place = ["source_file", "source_line"]
    new = storage.lake_table("silver", "new_transactions")
    resent = (
        storage.lake_table("silver", "transactions")
        .hour(spark, key)
        .join(new.hour(spark, key).select(*place), place, "left_anti")
    )
    ids = resent.select("transaction_id")
    origins = storage.seen_transaction_ids().arrival_hours(spark, key, ids)
    firsts = new.hours_of(spark, [*origins, key]).join(
        ids.distinct(), "transaction_id", "left_semi"
    )
    figures = conflicting_resends(resent, firsts).agg(
        F.count("*").alias("ids"),
        F.slice(F.sort_array(F.collect_list("transaction_id")), 1, shown).alias("shown"),
    )
    row = figures.collect()[0]
    return row.ids, list(row.shown)
