"""Every raw row of an hour accounted for: fact rows + duplicates + quarantined = raw rows
(docs/rules.md); the figures of the facts' blocking reconciliation check, read in the same
Spark job as the facts' own check figures."""

from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_assets.storage.compacted import CompactedTable
from retail_assets.storage.hours import key_at
from retail_assets.storage.resource import StorageResource, raw_rows
from retail_assets.storage.tables import HOUR_COLUMNS
from retail_assets.transforms import reconcile


def counts_per_hour(
    spark: SparkSession,
    storage: StorageResource,
    keys: list[str],
    facts: dict[str, CompactedTable],
    fact_flags: dict[str, dict[str, Column]],
) -> dict[tuple[str, str], dict[str, int]]:
    """Per (table, hour): its rows of the hours `keys` in silver, quarantine, the new
    transactions and each fact, and how many rows of a fact raise each of its `fact_flags`
    (`{fact: {figure: condition}}`); zeros where a table has no rows of an hour. One read of
    each table, one Spark job for all hours."""
    frames = {
        "silver": storage.lake_table("silver", "transactions").hours_of(spark, keys),
        "quarantined": storage.lake_table("quarantine", "transactions").hours_of(spark, keys),
        "new": storage.lake_table("silver", "new_transactions").hours_of(spark, keys),
        **{name: table.hours_of(spark, keys) for name, table in facts.items()},
    }
    figures = sorted({figure for flags in fact_flags.values() for figure in flags})
    tagged = [
        frame.select(
            F.lit(name).alias("table"),
            *HOUR_COLUMNS,
            *[fact_flags.get(name, {}).get(f, F.lit(False)).alias(f) for f in figures],
        )
        for name, frame in frames.items()
    ]
    rows = (
        reduce(DataFrame.unionByName, tagged)
        .groupBy("table", *HOUR_COLUMNS)
        .agg(F.count("*").alias("rows"), *[F.count_if(F.col(f)).alias(f) for f in figures])
        .collect()
    )
    counts = {(name, key): dict.fromkeys(["rows", *figures], 0) for name in frames for key in keys}
    for row in rows:
        counts[row["table"], key_at(row["ingest_date"], row["ingest_hour"])].update(
            {figure: row[figure] for figure in ["rows", *figures]}
        )
    return counts


def reconcile_hour(
    storage: StorageResource, key: str, facts: list[str], counts: dict[tuple[str, str], dict]
) -> dict:
    """Fact rows + duplicates + quarantined rows of hour `key` (from counts_per_hour) against
    its raw rows."""
    rows = {name: counts[name, key]["rows"] for name in ["silver", "quarantined", "new", *facts]}
    raw = raw_rows(storage.raw_files(key, "sales_transactions"))
    duplicates = reconcile.duplicates(rows["silver"], rows["new"])
    fact_rows = [rows[name] for name in facts]
    return {
        "hour": key,
        **{name: rows[name] for name in facts},
        "duplicates": duplicates,
        "quarantined": rows["quarantined"],
        "raw": raw,
        "balanced": reconcile.reconciles(raw, *fact_rows, duplicates, rows["quarantined"]),
    }
