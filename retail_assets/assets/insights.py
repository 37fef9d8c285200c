"""Marketing insights in retail_dwh: one snapshot per hour (`as_of_hour`) over all facts so far.

Each hour adds its new facts to the previous hour's snapshot. If that snapshot is missing (a
gap in the chain), the hour is rebuilt from every fact loaded through it: the same answer.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
)
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from retail_assets.assets.automation import follows_new_facts
from retail_assets.assets.catalog import DWH_DB, OWNERS, table_metadata, tags, written
from retail_assets.assets.metadata import (
    as_json,
    bar_chart,
    markdown_table,
    one_row,
    selected_checks,
)
from retail_assets.assets.partitions import hourly_multi_asset, hourly_partitions, own_previous_hour
from retail_assets.loads.insights import snapshots_written
from retail_assets.resources import SparkResource
from retail_assets.storage.hours import previous_key
from retail_assets.storage.resource import StorageResource
from retail_assets.storage.tables import HOUR_COLUMNS, hours_in
from retail_assets.transforms.insights import INSIGHTS, fact_totals

RANKS = "ranks_follow_the_totals"

# The ranking of docs/rules.md §4.1 once more, on purpose, as a sort of the collected totals:
# a check that re-ran the pipeline's window could not fail. Rank 1 sorts first.
RANK_ORDER = {
    "insight_top_products": lambda r: (-r["units_sold"], -r["revenue"], r["product_id"]),
    "insight_top_offers": lambda r: (-r["redemptions"], r["offer"]),
    "insight_offers_per_product": lambda r: (-r["redemptions"], r["offer"]),
    "insight_lowest_online_cities": lambda r: (
        r["online_revenue"],
        r["online_transactions"],
        r["city"] or "",
        r["state"] or "",
    ),
}
TOTALS = "totals_agree_with_the_facts"


def chart(name: str, rows: list[dict]) -> MetadataValue:
    """The picture of a snapshot a marketer looks for first."""
    if name == "insight_top_products":
        top = rows[:10]
        labels = [f"{r['product_name']} ({r['product_id']})" for r in top]
        return bar_chart(labels, [r["units_sold"] for r in top], "Top products by units sold")
    if name == "insight_top_offers":
        labels = [f"offer {r['offer']} ({r['discount_perc']}% off)" for r in rows]
        return bar_chart(labels, [r["redemptions"] for r in rows], "Redemptions per offer")
    if name == "insight_offers_per_product":
        best = sorted((r for r in rows if r["rank"] == 1), key=lambda r: -r["redemptions"])[:10]
        labels = [f"{r['product_name']} ({r['product_id']}): offer {r['offer']}" for r in best]
        title = "Most redeemed offer per product"
        return bar_chart(labels, [r["redemptions"] for r in best], title)
    lowest = rows[:10]
    labels = [f"{r['city']}, {r['state']}" for r in lowest]
    return bar_chart(labels, [r["online_revenue"] for r in lowest], "Lowest online revenue")


def ranks_follow(rows: list[dict], within: tuple[str, ...], order) -> bool:
    """Whether each group's ranks are 1..n in the documented order of its totals."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[c] for c in within), []).append(row)
    return all(
        [r["rank"] for r in sorted(group, key=order)] == list(range(1, len(group) + 1))
        for group in groups.values()
    )


def snapshot_hour(
    spark: SparkSession, storage: StorageResource, key: str, names: list[str]
) -> dict[str, dict]:
    """Write the snapshots of hour `key` for the insights `names`; per insight: its rows and
    check inputs (the snapshot = the previous one + the facts the snapshot was built from)."""
    with snapshots_written(spark, storage, key, names) as (builds_on_previous, frame):
        hours = [previous_key(key), key] if builds_on_previous else [key]
        this_hour = hours_in([key])
        snapshots = []  # one read of each snapshot table: this hour's rows, the previous' sums
        for name in names:
            stored = storage.warehouse_table(name).hours_of(spark, hours)
            columns = [c for c in stored.columns if c not in HOUR_COLUMNS]
            snapshots.append(stored.agg(
                F.collect_list(F.when(this_hour, F.struct(*columns))).alias(f"{name}.rows"),
                *[F.sum(F.when(~this_hour, F.col(m))).alias(f"{name}.{m}")
                  for m in INSIGHTS[name][1]],
            ))  # fmt: skip
        added = one_row(fact_totals(frame), *snapshots)  # one Spark job for all
    results = {}
    for name in names:
        _, measures, within = INSIGHTS[name]
        before = {m: added.get(f"{name}.{m}") or 0 for m in measures}
        rows = sorted((r.asDict() for r in added[f"{name}.rows"]),
                      key=lambda r: (*(r[c] for c in within), r["rank"]))  # fmt: skip
        totals = {
            m: {
                "snapshot": sum(r[m] for r in rows),
                "previous_hour": before[m],
                "facts_of_the_hour": added[m] or 0,
            }
            for m in measures
        }
        results[name] = {
            "rows": rows,
            "rebuilt": not builds_on_previous,
            "ranks_ok": ranks_follow(rows, within, RANK_ORDER[name]),
            "totals": totals,
            "totals_ok": all(
                t["snapshot"] == t["previous_hour"] + t["facts_of_the_hour"]
                for t in totals.values()
            ),
        }
    return results


@hourly_multi_asset(
    specs=[
        AssetSpec(
            name,
            partitions_def=hourly_partitions,
            deps=["fact_branch_sales", "fact_online_sales", "dim_product", own_previous_hour(name)],
            group_name="outputs",
            kinds={"spark", "hive"},
            owners=OWNERS,
            tags=tags("outputs", "marketing"),
            metadata=table_metadata(DWH_DB, name),
            automation_condition=follows_new_facts(),
            description=f"retail_dwh.{name}: one ranked snapshot per hour over all facts so far.",
        )
        for name in INSIGHTS
    ],
    check_specs=[
        AssetCheckSpec(check, asset=name) for name in INSIGHTS for check in (RANKS, TOTALS)
    ],
    # Subsettable: one insight can be materialized alone, and Dagster's automation treats each
    # as its own step (a non-subsettable multi-asset with self-dependencies gets its previous
    # hour requested too).
    can_subset=True,
)
def marketing_insights(
    context: AssetExecutionContext, spark: SparkResource, storage: StorageResource
):
    """The selected insights from one read of each hour's facts, hours in order."""
    session = spark.spark_session
    names = [name for name in INSIGHTS if AssetKey(name) in context.selected_asset_keys]
    hours, rows_of = {}, {}
    for key in context.partition_keys:  # in order: each hour builds on the one before
        hours[key] = snapshot_hour(session, storage, key, names)
        rows_of = {name: result.pop("rows") for name, result in hours[key].items()}
    last = hours[context.partition_keys[-1]]
    for name in names:
        within = INSIGHTS[name][2]
        rows = rows_of[name]
        unranked = [key for key, result in hours.items() if not result[name]["ranks_ok"]]
        off = {key: r[name]["totals"] for key, r in hours.items() if not r[name]["totals_ok"]}
        checks = [
            AssetCheckResult(
                asset_key=AssetKey(name), check_name=RANKS, passed=not unranked,
                metadata={"hours_off_the_order": as_json(unranked),
                          "ranked_within": ", ".join(within) or "all rows"},
            ),
            AssetCheckResult(
                asset_key=AssetKey(name), check_name=TOTALS, passed=not off,
                metadata={"totals": as_json(last[name]["totals"]), "hours_off": as_json(off)},
            ),
        ]  # fmt: skip
        yield MaterializeResult(
            asset_key=name,
            metadata={
                **written(storage.warehouse_table(name).name, partition_rows=len(rows)),
                "as_of_hour": context.partition_keys[-1],
                "rebuilt_hours": sum(r[name]["rebuilt"] for r in hours.values()),
                "top_rows": markdown_table(
                    [{c: r[c] for c in r if c != "as_of_hour"} for r in rows], limit=15
                ),
                "chart": chart(name, rows),
            },
            check_results=selected_checks(context, checks),
        )
