"""The dimension assets in retail_dwh: four SCD2 dimensions and dim_date.

Each SCD2 dimension writes the hour's change records (retail_dwh.<dim>_changes, one partition
per hour) and keeps the view retail_dwh.<dim> with the SCD2 versions; dim_date adds the dates
not seen before. Each depends on its own previous hour: the rows it builds on. The five are one
step (`dimensions`, each materializable alone). A dimension's check figures are read on a
thread as soon as it is written, beside the next dimension's load: no check waits for another
dimension, and the step waits only for the last one's.
"""

from concurrent.futures import ThreadPoolExecutor

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
)

from retail_assets.assets.catalog import DWH_DB, OWNERS, table_metadata, tags, written
from retail_assets.assets.metadata import markdown_table, one_row, selected_checks
from retail_assets.assets.partitions import hourly_multi_asset, hourly_partitions, own_previous_hour
from retail_assets.assets.warehouse.checks import (
    DATES,
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


def dimension_spec(
    name: str, deps: list[str], domain: str, description: str, section: str | None = None
) -> AssetSpec:
    """A dimension's asset: `section` names its columns' heading in tables.md (by default its
    table's full name)."""
    return AssetSpec(
        name,
        partitions_def=hourly_partitions,
        deps=["new_transactions", *deps, own_previous_hour(name)],
        group_name="warehouse",
        kinds={"spark", "hive"},
        owners=OWNERS,
        tags=tags("warehouse", domain),
        metadata=table_metadata(DWH_DB, name, section),
        description=description,
    )


@hourly_multi_asset(
    specs=[
        *[
            dimension_spec(
                dimension.name,
                ["raw_files"] if dimension in READS_RAW_FILES else [],
                dimension.name.removeprefix("dim_"),
                f"SCD2 dimension on {dimension.natural_key} "
                f"({', '.join(dimension.attributes)}); view retail_dwh.{dimension.name}, "
                f"change records in {dimension.name}_changes.",
                section=dimension.name,
            )
            for dimension in SCD_DIMENSIONS
        ],
        dimension_spec(
            DATES,
            [],
            "calendar",
            "Every transaction date (year, quarter, month, week, weekday, names, is_weekend); "
            "each hour adds the dates not seen before.",
        ),
    ],
    check_specs=[
        *[
            AssetCheckSpec(check, asset=dimension.name)
            for dimension in SCD_DIMENSIONS
            for check in (UNIQUE_KEYS, ONE_CURRENT)
        ],
        AssetCheckSpec(UNIQUE_DATE_KEYS, asset=DATES),
    ],
    can_subset=True,  # one dimension can be materialized (or backfilled) alone
)
def dimensions(context: AssetExecutionContext, spark: SparkResource, storage: StorageResource):
    """The selected dimensions, hours applied in order, each on the rows before it; each one's
    checks read beside the next one's load."""
    session, keys = spark.spark_session, context.partition_keys
    selected = context.selected_asset_keys
    scd = [d for d in SCD_DIMENSIONS if AssetKey(d.name) in selected]
    dates = AssetKey(DATES) in selected
    with ThreadPoolExecutor(len(SCD_DIMENSIONS) + 1) as checks:
        reading = {}  # name -> the future of its one-row aggregate
        for dimension in scd:
            built_on = [write_changes(session, storage, dimension, key) for key in keys][0]
            stats = dimension_stats(session, storage, dimension, keys, built_on)
            reading[dimension.name] = checks.submit(one_row, stats)
        if dates:
            for key in keys:
                write_dates(session, storage, key)
            reading[DATES] = checks.submit(one_row, date_stats(session, storage, keys))
    figures = {name: future.result()[name].asDict() for name, future in reading.items()}
    for dimension in scd:
        stats = figures[dimension.name]
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
    if dates:
        stats = figures[DATES]
        yield MaterializeResult(
            asset_key=DATES,
            metadata=written(
                storage.warehouse_table(DATES).name,
                rows=stats["rows"],
                partition_rows=stats["added"],
            ),
            check_results=selected_checks(context, [date_check(stats)]),
        )
