"""silver_transactions: the hour's raw transaction files cleaned by Spark, plus a quarantine."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
)
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from retail_assets.assets.catalog import LAKE_DB, OWNERS, table_metadata, tags, written
from retail_assets.assets.metadata import all_rows, count_each, markdown_table, one_row
from retail_assets.assets.partitions import hourly_asset, own_previous_hour
from retail_assets.assets.raw import raw_files
from retail_assets.loads.silver import resend_conflicts, write_new_transactions, write_silver
from retail_assets.resources import SparkResource
from retail_assets.storage.resource import StorageResource, raw_rows
from retail_assets.storage.tables import HOUR_COLUMNS
from retail_assets.transforms import reconcile
from retail_assets.transforms.source_records import header_layout

ROWS_USABLE = "rows_usable"


def silver_hour(spark: SparkSession, storage: StorageResource, key: str) -> dict:
    """Clean one hour and reconcile it against the raw manifest. The hour is read back through
    the metastore: its schema is known there (a read by path infers it from the files, one
    Spark job per read)."""
    silver_path = write_silver(spark, storage, key)
    files = storage.raw_files(key, "sales_transactions")
    silver = storage.lake_table("silver", "transactions").hour(spark, key).drop(*HOUR_COLUMNS)
    outcome = silver.select(F.lit(None).cast("string").alias("reason")).unionByName(
        storage.lake_table("quarantine", "transactions").hour(spark, key).select("reason")
    )  # a silver row has no reason: one job counts both sides, and takes the preview
    counted = one_row(
        all_rows(outcome.groupBy("reason").count(), "reasons"), all_rows(silver.limit(5), "preview")
    )
    reasons = {row["reason"]: row["count"] for row in counted["reasons"]}
    silver_rows_written = reasons.pop(None, 0)
    return {
        "hour": key,
        "raw": raw_rows(files),
        "silver": silver_rows_written,
        "quarantined": sum(reasons.values()),
        "reasons": reasons,
        "unknown_columns": sorted(
            {c for _, e in files for c in header_layout(e["header"]).unknown}
        ),
        "silver_path": silver_path,
        "preview": [row.asDict() for row in counted["preview"]],
    }


@hourly_asset(
    deps=[raw_files],
    group_name="lake",
    kinds={"spark", "parquet"},
    owners=OWNERS,
    tags=tags("silver", "sales"),
    metadata=table_metadata(LAKE_DB, "silver_transactions"),
    check_specs=[
        AssetCheckSpec(
            reconcile.CHECK,
            asset="silver_transactions",
            description="raw rows = silver rows + quarantined rows, for every hour",
            blocking=True,  # a lost or doubled row stops the warehouse load
        ),
        AssetCheckSpec(
            ROWS_USABLE,
            asset="silver_transactions",
            description="an hour that received rows keeps some: all quarantined is an error",
        ),
    ],
)
def silver_transactions(
    context: AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> MaterializeResult:
    """Typed, cleaned transactions (docs/rules.md §2) in retail_lake.silver_transactions; unusable
    rows in retail_lake.quarantine_transactions with a reason."""
    hours = [silver_hour(spark.spark_session, storage, key) for key in context.partition_keys]
    for hour in hours:
        context.log.info(
            f"{hour['hour']}: raw {hour['raw']}, silver {hour['silver']}, "
            f"quarantined {hour['quarantined']} {hour['reasons']}"
        )
    unusable = {h["hour"]: h["reasons"] for h in hours if h["raw"] and not h["silver"]}
    for hour, why in unusable.items():
        context.log.error(f"{hour}: every one of its rows was quarantined: {why}")
    unbalanced = [h["hour"] for h in hours
                  if not reconcile.reconciles(h["raw"], h["silver"], h["quarantined"])]  # fmt: skip
    totals = {name: sum(h[name] for h in hours) for name in ("raw", "silver", "quarantined")}
    reasons: dict[str, int] = {}
    for hour in hours:
        for reason, count in hour["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    return MaterializeResult(
        metadata={
            **written(
                storage.lake_table("silver", "transactions").name,
                partition_rows=totals["silver"],
                uri=hours[0]["silver_path"],
            ),
            "raw_rows": totals["raw"],
            "quarantined_rows": totals["quarantined"],
            "quarantine_reasons": MetadataValue.json(reasons),
            "unknown_columns": MetadataValue.json(
                sorted({c for h in hours for c in h["unknown_columns"]})
            ),
            "preview": markdown_table(hours[0]["preview"], limit=5),
        },
        check_results=[
            AssetCheckResult(
                check_name=reconcile.CHECK,
                passed=not unbalanced,
                metadata={**totals, "unbalanced_hours": MetadataValue.json(unbalanced)},
            ),
            AssetCheckResult(
                check_name=ROWS_USABLE,
                passed=not unusable,
                severity=AssetCheckSeverity.ERROR,
                description=(
                    f"every row quarantined in {', '.join(unusable)}: {list(unusable.values())}"
                    if unusable
                    else None
                ),
                metadata={"fully_quarantined_hours": MetadataValue.json(unusable)},
            ),
        ],
    )


RESENDS_AGREE = "resent_transactions_agree"


@hourly_asset(
    deps=[silver_transactions, own_previous_hour("new_transactions")],
    group_name="lake",
    kinds={"spark", "parquet"},
    owners=OWNERS,
    tags=tags("silver", "sales"),
    metadata=table_metadata(LAKE_DB, "silver_new_transactions", "retail_lake.silver_transactions"),
    check_specs=[
        AssetCheckSpec(
            RESENDS_AGREE,
            asset="new_transactions",
            description="a re-sent transaction id carries the content of its first arrival "
            "(a warning: the first arrival is kept either way)",
        )
    ],
)
def new_transactions(
    context: AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> MaterializeResult:
    """Silver transactions of the hour whose transaction_id never arrived before (docs/rules.md §2:
    the first arrival wins). Dimensions and facts read only these, so a re-delivered group
    adds nothing to the warehouse; it depends on its previous hour, the ids seen so far.
    Re-sent ids whose content differs from the first arrival are reported apart from exact
    duplicates: somebody should ask the source which version is right."""
    session = spark.spark_session
    counts, conflicting = [], []
    for key in context.partition_keys:
        write_new_transactions(session, storage, key)
        counted = count_each({
            "new": storage.lake_table("silver", "new_transactions").hour(session, key),
            "silver": storage.lake_table("silver", "transactions").hour(session, key),
        })  # fmt: skip
        new, total = counted["new"], counted["silver"]
        duplicates = reconcile.duplicates(total, new)
        conflicts, shown = resend_conflicts(session, storage, key) if duplicates else (0, [])
        conflicting += shown
        counts.append({"hour": key, "silver": total, "new": new, "duplicates": duplicates,
                       "conflicting_ids": conflicts})  # fmt: skip
        context.log.info(f"{key}: {new} new transactions, {duplicates} duplicates")
        if conflicts:
            context.log.warning(
                f"{key}: {conflicts} re-sent transaction id(s) differ from their first "
                f"arrival (kept): {', '.join(shown)}"
            )
    conflicts = sum(c["conflicting_ids"] for c in counts)
    return MaterializeResult(
        metadata={
            **written(
                storage.lake_table("silver", "new_transactions").name,
                partition_rows=sum(c["new"] for c in counts),
            ),
            "duplicate_rows": sum(c["duplicates"] for c in counts),
            "conflicting_resends": conflicts,
            "hours": markdown_table(counts, limit=48),
        },
        check_results=[
            AssetCheckResult(
                check_name=RESENDS_AGREE,
                passed=not conflicts,
                severity=AssetCheckSeverity.WARN,
                description=(
                    f"{conflicts} re-sent transaction id(s) differ from their first arrival, "
                    f"which was kept; e.g. {', '.join(conflicting[:5])}"
                    if conflicts
                    else None
                ),
                metadata={
                    "conflicting_ids": conflicts,
                    "examples": MetadataValue.json(conflicting[:5]),
                },
            )
        ],
    )
