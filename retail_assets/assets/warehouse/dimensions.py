"""The dimension assets: four SCD2 dimensions and dim_date, in retail_dwh.

Each SCD2 dimension asset writes the hour's change records (retail_dwh.<dim>_changes, one
partition per hour) and keeps the view retail_dwh.<dim> with the SCD2 versions. Each depends
on its own previous hour: the versions it builds on.
"""

from dagster import AssetCheckSpec, AssetExecutionContext, MaterializeResult

from retail_assets.assets.catalog import DWH_DB, OWNERS, table_metadata, tags, written
from retail_assets.assets.metadata import markdown_table
from retail_assets.assets.partitions import hourly_asset, own_previous_hour
from retail_assets.assets.raw import raw_files
from retail_assets.assets.silver import new_transactions
from retail_assets.assets.warehouse.checks import (
    ONE_CURRENT,
    UNIQUE_DATE_KEYS,
    UNIQUE_KEYS,
    date_check,
    date_stats,
    dimension_checks,
    dimension_stats,
)
from retail_assets.loads.dimensions import write_changes, write_dates
from retail_assets.resources import SparkResource
from retail_assets.storage.resource import StorageResource
from retail_assets.transforms.warehouse import BRANCH, CUSTOMER, PRODUCT, SALES_AGENT, Dimension


def dimension_asset(dimension: Dimension, upstream: list):
    """An SCD2 dimension asset: hours applied in order, each on the versions before it."""

    @hourly_asset(
        name=dimension.name,
        deps=[*upstream, own_previous_hour(dimension.name)],
        group_name="warehouse",
        kinds={"spark", "hive"},
        owners=OWNERS,
        tags=tags("warehouse", dimension.name.removeprefix("dim_")),
        metadata=table_metadata(DWH_DB, dimension.name, dimension.name),
        check_specs=[
            AssetCheckSpec(UNIQUE_KEYS, asset=dimension.name),
            AssetCheckSpec(ONE_CURRENT, asset=dimension.name),
        ],
        description=(
            f"SCD2 dimension on {dimension.natural_key} ({', '.join(dimension.attributes)}); "
            f"view retail_dwh.{dimension.name}, change records in {dimension.name}_changes."
        ),
    )
    def _dimension(
        context: AssetExecutionContext, spark: SparkResource, storage: StorageResource
    ) -> MaterializeResult:
        session, keys = spark.spark_session, context.partition_keys
        built_on = [write_changes(session, storage, dimension, key) for key in keys]
        stats = dimension_stats(session, storage, dimension, keys, before=built_on[0])
        # What the run changed, newest first (the change records: no window over history).
        newest = sorted((r.asDict() for r in stats["newest_changes"]),
                        key=lambda r: r["surrogate_key"])  # fmt: skip
        newest.sort(key=lambda r: r["recorded_hour"], reverse=True)
        return MaterializeResult(
            metadata={
                **{n: stats[n] for n in ("new_versions", "inferred_members", "completed_inferred")},
                **written(storage.warehouse_table(dimension.name).name, rows=stats["versions"]),
                "changes": markdown_table(newest),
            },
            check_results=dimension_checks(stats),
        )

    return _dimension


dim_customer = dimension_asset(CUSTOMER, [new_transactions])


dim_product = dimension_asset(PRODUCT, [new_transactions])


dim_branch = dimension_asset(BRANCH, [new_transactions, raw_files])


dim_sales_agent = dimension_asset(SALES_AGENT, [new_transactions, raw_files])


@hourly_asset(
    deps=[new_transactions, own_previous_hour("dim_date")],
    group_name="warehouse",
    kinds={"spark", "hive"},
    owners=OWNERS,
    tags=tags("warehouse", "calendar"),
    metadata=table_metadata(DWH_DB, "dim_date"),
    check_specs=[AssetCheckSpec(UNIQUE_DATE_KEYS, asset="dim_date")],
)
def dim_date(
    context: AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> MaterializeResult:
    """retail_dwh.dim_date: every transaction date (year, quarter, month, week, weekday, names,
    is_weekend); each hour adds the dates not seen before."""
    session, keys = spark.spark_session, context.partition_keys
    for key in keys:
        write_dates(session, storage, key)
    stats = date_stats(session, storage, keys)
    return MaterializeResult(
        metadata=written(
            storage.warehouse_table("dim_date").name,
            rows=stats["rows"],
            partition_rows=stats["added"],
        ),
        check_results=[date_check(stats)],
    )
