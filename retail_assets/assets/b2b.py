"""The daily B2B export: offline units per sales agent and product, in the partner's folder.

Every hourly run rewrites its ingest day's file from all offline facts loaded that day, with
names as of the end of that day, so re-running any hour of the day writes the same bytes.
"""

import csv
import io

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
)
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from retail_assets.assets.automation import follows_new_facts
from retail_assets.assets.catalog import OWNERS, column_schema, tags, written
from retail_assets.assets.metadata import as_json, bar_chart, markdown_table
from retail_assets.assets.partitions import hourly_asset
from retail_assets.loads.b2b import offline_facts_of_day, write_export
from retail_assets.resources import SparkResource
from retail_assets.storage.hours import hour_values
from retail_assets.storage.resource import StorageResource

UNITS = "units_equal_offline_units_loaded_that_day"


def export_day(spark: SparkSession, storage: StorageResource, day: str) -> dict:
    """Write the file of ingest day `day`; what it holds and what the facts hold."""
    uri = write_export(spark, storage, day)
    offline = offline_facts_of_day(spark, storage, day)
    text = storage.exports.read_bytes(*storage.b2b_file(day)).decode()  # what the partner gets
    written = list(csv.DictReader(io.StringIO(text)))
    return {
        "day": day,
        "path": uri,
        "rows": written,
        "file_units": sum(int(row["total_sold_units"]) for row in written),
        "loaded_units": offline.agg(F.sum("units")).collect()[0][0] or 0,
    }


def units_per_agent(rows: list[dict]) -> MetadataValue:
    units: dict[str, int] = {}
    for row in rows:
        name = row["sales_agent_name"]
        units[name] = units.get(name, 0) + int(row["total_sold_units"])
    top = sorted(units.items(), key=lambda item: (-item[1], item[0]))[:10]
    return bar_chart([name or "(not yet announced)" for name, _ in top],
                     [value for _, value in top], "Units sold per sales agent")  # fmt: skip


@hourly_asset(
    deps=["fact_branch_sales", "dim_sales_agent", "dim_product"],
    group_name="outputs",
    kinds={"spark", "csv"},
    owners=OWNERS,
    tags=tags("outputs", "partners"),
    metadata={"dagster/column_schema": column_schema("The B2B CSV")},
    automation_condition=follows_new_facts(),
    check_specs=[AssetCheckSpec(UNITS, asset="b2b_daily_csv")],
)
def b2b_daily_csv(
    context: AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> MaterializeResult:
    """exports/b2b/sales_agent_product_units_YYYY-MM-DD.csv for the ingest day of each hour:
    offline units summed by agent and product name, sorted by agent then product."""
    days = sorted({hour_values(key)["ingest_date"] for key in context.partition_keys})
    files = [export_day(spark.spark_session, storage, day) for day in days]
    last = files[-1]
    off = {f["day"]: {"file": f["file_units"], "facts": f["loaded_units"]}
           for f in files if f["file_units"] != f["loaded_units"]}  # fmt: skip
    return MaterializeResult(
        metadata={
            **written(uri=last["path"], partition_rows=len(last["rows"])),
            "day": last["day"],
            "total_sold_units": last["file_units"],
            "days_written": len(files),
            "top_rows": markdown_table(last["rows"], limit=15),
            "chart": units_per_agent(last["rows"]),
        },
        check_results=[
            AssetCheckResult(
                check_name=UNITS,
                passed=not off,
                metadata={
                    "file_units": last["file_units"],
                    "offline_units_loaded": last["loaded_units"],
                    "days_off": as_json(off),
                },
            )
        ],
    )
