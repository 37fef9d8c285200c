"""silver_transactions: the hour's raw transaction files cleaned by Spark, plus a quarantine."""

from functools import reduce

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pyspark.sql import DataFrame, SparkSession

from retail_assets.assets.raw import raw_file_uris, raw_files
from retail_assets.lake import Lake
from retail_assets.metadata import markdown_table
from retail_assets.partitions import hourly_partitions
from retail_assets.resources import SparkResource, StorageResource
from retail_assets.tables import LAKE_DB, overwrite_hour
from retail_assets.transforms.transactions import (
    clean_transactions,
    header_layout,
    number_lines,
    parse_lines,
    quarantine_rows,
    silver_rows,
)

SILVER_TABLE = f"{LAKE_DB}.silver_transactions"
QUARANTINE_TABLE = f"{LAKE_DB}.quarantine_transactions"
RECONCILE_CHECK = "raw_rows_reconcile"


def read_transactions(spark: SparkSession, files: list[tuple[str, dict]]) -> DataFrame:
    """Every transaction file of an hour, each parsed by its own header, as one cleaned frame."""
    numbered = [(number_lines(spark.read.text(uri)), entry["header"]) for uri, entry in files]
    if not numbered:  # an hour without arrivals still gets (empty) silver and quarantine
        empty = spark.createDataFrame([], "source_file string, source_line long, raw_line string")
        numbered = [(empty, "")]
    parsed = [parse_lines(lines, header) for lines, header in numbered]
    return clean_transactions(reduce(DataFrame.unionByName, parsed))


def silver_hour(spark: SparkSession, lake: Lake, key: str) -> dict:
    """Clean one hour, write silver and quarantine, and reconcile against the raw manifest."""
    files = raw_file_uris(lake, key, "sales_transactions")
    cleaned = read_transactions(spark, files).persist()
    try:
        silver_path = overwrite_hour(
            spark, SILVER_TABLE, silver_rows(cleaned), lake.uri("silver", "transactions"), key
        )
        quarantine_path = overwrite_hour(
            spark,
            QUARANTINE_TABLE,
            quarantine_rows(cleaned),
            lake.uri("quarantine", "transactions"),
            key,
        )
    finally:
        cleaned.unpersist()
    silver = spark.read.parquet(silver_path)
    reasons = spark.read.parquet(quarantine_path).groupBy("reason").count().collect()
    return {
        "hour": key,
        "raw": sum(entry["rows"] for _, entry in files),
        "silver": silver.count(),
        "quarantined": sum(row["count"] for row in reasons),
        "reasons": {row["reason"]: row["count"] for row in reasons},
        "unknown_columns": sorted(
            {c for _, e in files for c in header_layout(e["header"]).unknown}
        ),
        "empty_files": [entry["lake_file"] for _, entry in files if entry["empty"]],
        "silver_path": silver_path,
        "preview": [row.asDict() for row in silver.limit(5).collect()],
    }


@asset(
    partitions_def=hourly_partitions,
    deps=[raw_files],
    backfill_policy=BackfillPolicy.single_run(),
    group_name="lake",
    kinds={"spark", "parquet"},
    check_specs=[
        AssetCheckSpec(
            RECONCILE_CHECK,
            asset="silver_transactions",
            description="raw rows = silver rows + quarantined rows, for every hour",
        )
    ],
)
def silver_transactions(
    context: AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> MaterializeResult:
    """Typed, cleaned transactions (SPEC.md §2) in retail_lake.silver_transactions; unusable
    rows in retail_lake.quarantine_transactions with a reason."""
    session, lake = spark.spark_session, storage.lake
    hours = [silver_hour(session, lake, key) for key in context.partition_keys]
    for hour in hours:
        context.log.info(
            f"{hour['hour']}: raw {hour['raw']}, silver {hour['silver']}, "
            f"quarantined {hour['quarantined']} {hour['reasons']}"
        )
        for name in hour["empty_files"]:
            context.log.warning(f"{hour['hour']}: {name} is empty (no header, no rows)")
    unbalanced = [h["hour"] for h in hours if h["raw"] != h["silver"] + h["quarantined"]]
    totals = {name: sum(h[name] for h in hours) for name in ("raw", "silver", "quarantined")}
    reasons: dict[str, int] = {}
    for hour in hours:
        for reason, count in hour["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    return MaterializeResult(
        metadata={
            "raw_rows": totals["raw"],
            "silver_rows": totals["silver"],
            "quarantined_rows": totals["quarantined"],
            "quarantine_reasons": MetadataValue.json(reasons),
            "unknown_columns": MetadataValue.json(
                sorted({c for h in hours for c in h["unknown_columns"]})
            ),
            "path": MetadataValue.path(hours[0]["silver_path"]),
            "preview": markdown_table(hours[0]["preview"], limit=5),
        },
        check_results=[
            AssetCheckResult(
                check_name=RECONCILE_CHECK,
                passed=not unbalanced,
                metadata={**totals, "unbalanced_hours": MetadataValue.json(unbalanced)},
            )
        ],
    )
