"""Every raw row of an hour accounted for: fact rows + duplicates + quarantined = raw rows
(docs/rules.md); the figures of the facts' blocking reconciliation check."""

from pyspark.sql import SparkSession

from retail_assets.assets.metadata import count_each
from retail_assets.loads.inputs import new_transactions_of
from retail_assets.storage.compacted import CompactedTable
from retail_assets.storage.resource import StorageResource, raw_rows
from retail_assets.transforms import reconcile


def reconcile_hour(
    spark: SparkSession, storage: StorageResource, key: str, facts: dict[str, CompactedTable]
) -> dict:
    """Fact rows + duplicates + quarantined rows of an hour against its raw rows."""
    raw = raw_rows(storage.raw_files(key, "sales_transactions"))
    counts = count_each({
        "silver": storage.lake_table("silver", "transactions").hour(spark, key),
        "quarantined": storage.lake_table("quarantine", "transactions").hour(spark, key),
        "new": new_transactions_of(spark, storage, key),
        **{name: table.hour(spark, key) for name, table in facts.items()},
    })  # fmt: skip
    silver, quarantined, new = (counts.pop(n) for n in ("silver", "quarantined", "new"))
    duplicates = reconcile.duplicates(silver, new)
    return {
        "hour": key,
        **counts,
        "duplicates": duplicates,
        "quarantined": quarantined,
        "raw": raw,
        "balanced": reconcile.reconciles(raw, *counts.values(), duplicates, quarantined),
    }
