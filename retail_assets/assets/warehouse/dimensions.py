"""The dimension assets: four SCD2 dimensions and dim_date, in retail_dwh.

Each SCD2 dimension writes the hour's change records (retail_dwh.<dim>_changes, one partition
per hour) and keeps the view retail_dwh.<dim> with the SCD2 versions. Each depends on its own
previous hour: the versions it builds on. The four are one step (`scd_dimensions`, each
materializable alone): their checks are one Spark job, not four.
"""

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
)

from retail_assets.assets.catalog import DWH_DB, OWNERS, table_metadata, tags, written
from retail_assets.assets.metadata import markdown_table, one_row, selected_checks
from retail_assets.assets.partitions import (
    hourly_asset,
    hourly_multi_asset,
    hourly_partitions,
    own_previous_hour,
)
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
from retail_assets.loads.inputs import SCD_DIMENSIONS
from retail_assets.resources import SparkResource
from retail_assets.storage.resource import StorageResource
from retail_assets.transforms.warehouse import BRANCH, SALES_AGENT

# What a dimension reads besides the new transactions: branches and agents come in files too.
READS_RAW_FILES = {BRANCH, SALES_AGENT}


@hourly_multi_asset(
    specs=[
        AssetSpec(
            dimension.name,
            partitions_def=hourly_partitions,
            deps=["new_transactions"]
            + (["raw_files"] if dimension in READS_RAW_FILES else [])
            + [own_previous_hour(dimension.name)],
            group_name="warehouse",
            kinds={"spark", "hive"},
            owners=OWNERS,
            tags=tags("warehouse", dimension.name.removeprefix("dim_")),
            metadata=table_metadata(DWH_DB, dimension.name, dimension.name),
            description=(
                f"SCD2 dimension on {dimension.natural_key} "
                f"({', '.join(dimension.attributes)}); view retail_dwh.{dimension.name}, "
                f"change records in {dimension.name}_changes."
            ),
        )
        for dimension in SCD_DIMENSIONS
    ],
    check_specs=[
        AssetCheckSpec(check, asset=dimension.name)
        for dimension in SCD_DIMENSIONS
        for check in (UNIQUE_KEYS, ONE_CURRENT)
    ],
    can_subset=True,  # one dimension can be materialized (or backfilled) alone
)
def scd_dimensions(context: AssetExecutionContext, spark: SparkResource, storage: StorageResource):
    """The selected SCD2 dimensions, hours applied in order, each on the versions before it;
    the checks of all of them in one Spark job."""
    session, keys = spark.spark_session, context.partition_keys
    dimensions = [d for d in SCD_DIMENSIONS if AssetKey(d.name) in context.selected_asset_keys]
    built_on = {d: [write_changes(session, storage, d, key) for key in keys][0] for d in dimensions}
    figures = one_row(
        *[dimension_stats(session, storage, d, keys, built_on[d]) for d in dimensions]
    )
    for dimension in dimensions:
        stats = figures[dimension.name].asDict()
        # What the run changed, newest first (the change records: no window over history).
        newest = sorted((r.asDict() for r in stats["newest_changes"]),
                        key=lambda r: r["surrogate_key"])  # fmt: skip
        newest.sort(key=lambda r: r["recorded_hour"], reverse=True)
        yield MaterializeResult(
            asset_key=dimension.name,
            metadata={
                **{n: stats[n] for n in ("new_versions", "inferred_members", "completed_inferred")},
                **written(storage.warehouse_table(dimension.name).name, rows=stats["versions"]),
                "changes": markdown_table(newest),
            },
            check_results=selected_checks(context, dimension_checks(dimension.name, stats)),
        )


@hourly_asset(
    deps=["new_transactions", own_previous_hour("dim_date")],
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
