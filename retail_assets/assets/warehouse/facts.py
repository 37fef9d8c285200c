"""The two facts, fact_branch_sales and fact_online_sales, written from one keyed frame."""

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
)

from retail_assets.assets.catalog import DWH_DB, OWNERS, table_metadata, tags, written
from retail_assets.assets.metadata import markdown_table
from retail_assets.assets.partitions import hourly_multi_asset, hourly_partitions
from retail_assets.assets.silver import new_transactions, silver_transactions
from retail_assets.assets.warehouse.checks import KEYS_PRESENT, PRICE_RULE, fact_checks, fact_flags
from retail_assets.assets.warehouse.reconciliation import counts_per_hour, reconcile_hour
from retail_assets.loads.facts import FACTS, fact_tables, write_facts
from retail_assets.resources import SparkResource
from retail_assets.storage.resource import StorageResource
from retail_assets.transforms import reconcile


@hourly_multi_asset(
    specs=[
        AssetSpec(
            name,
            partitions_def=hourly_partitions,
            deps=[new_transactions, silver_transactions, "dim_date", "dim_customer", "dim_product"]
            + ([] if online else ["dim_branch", "dim_sales_agent"]),
            group_name="warehouse",
            kinds={"spark", "hive"},
            owners=OWNERS,
            tags=tags("warehouse", "sales"),
            metadata=table_metadata(DWH_DB, name),
            description=(
                f"retail_dwh.{name}: {'online' if online else 'offline (branch)'} sales, "
                "by ingest hour; closed months compacted by transaction_month."
            ),
        )
        for name, online in FACTS.items()
    ],
    check_specs=[
        AssetCheckSpec(check, asset=name, blocking=check == KEYS_PRESENT)
        for name in FACTS
        for check in (KEYS_PRESENT, PRICE_RULE)
    ]
    + [
        AssetCheckSpec(
            reconcile.CHECK,
            asset="fact_branch_sales",
            description="both facts + duplicates + quarantined = raw rows, every hour",
            blocking=True,  # the outputs are not built from facts that lost or doubled rows
        )
    ],
)
def sales_facts(context: AssetExecutionContext, spark: SparkResource, storage: StorageResource):
    """Both facts from one keyed frame: each new transaction with the surrogate keys of the
    dimension versions current at its load hour."""
    session, keys = spark.spark_session, context.partition_keys
    tables = fact_tables(storage)
    for key in keys:
        write_facts(session, storage, key)
    flags = {name: fact_flags(name) for name in tables}
    counts = counts_per_hour(session, storage, keys, tables, flags)
    hours = [reconcile_hour(storage, key, list(tables), counts) for key in keys]
    unbalanced = [h["hour"] for h in hours if not h["balanced"]]
    for name, table in tables.items():
        flagged = {f: sum(counts[name, key][f] for key in keys) for f in flags[name]}
        reconciled = [
            AssetCheckResult(
                asset_key=AssetKey(name),
                check_name=reconcile.CHECK,
                passed=not unbalanced,
                metadata={"unbalanced_hours": MetadataValue.json(unbalanced)},
            )
        ]
        yield MaterializeResult(
            asset_key=name,
            metadata={
                **written(table.name, partition_rows=sum(h[name] for h in hours)),
                "hours": markdown_table(hours, limit=48),
            },
            check_results=fact_checks(name, **flagged)
            + (reconciled if name == "fact_branch_sales" else []),
        )
