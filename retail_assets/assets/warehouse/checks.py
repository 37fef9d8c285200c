"""The warehouse's checks: each table's check figures in one aggregate read of what was
stored, and the verdicts. The checks read the stored rows, never the pipeline's own functions
(a check that called them could not fail)."""

from functools import reduce

from dagster import AssetCheckResult, AssetKey
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from retail_assets.assets.metadata import side_by_side
from retail_assets.loads.dimensions import change_table, state_table
from retail_assets.loads.facts import FACTS
from retail_assets.storage.resource import StorageResource
from retail_assets.transforms.warehouse import Dimension, fact_keys

UNIQUE_KEYS = "unique_surrogate_keys"
ONE_CURRENT = "one_current_row_per_natural_key"
PREVIEW_ROWS = 10  # change records shown with each materialization


def dimension_stats(
    spark: SparkSession,
    storage: StorageResource,
    dimension: Dimension,
    keys: list[str],
    before: DataFrame | None,
) -> DataFrame:
    """What the hours `keys` changed (counts, and the newest change records), and the counts
    behind the checks: a one-row aggregate (one struct column named after the dimension) over
    one read of the state before, the change records and the state after.

    The checks read the change records and the state, not the versions SQL the view uses:
    through it (a row per surrogate key, current = no later version) both would hold by
    construction. Their cost is the state's size plus the run's changes, not history's.
    """
    key = dimension.natural_key
    columns = ["surrogate_key", key, "valid_from_hour", "recorded_hour", "is_inferred"]
    after = state_table(storage, dimension).hour(spark, keys[-1])  # newest record per key
    changes = change_table(storage, dimension).hours_of(spark, keys)
    reads = [
        after.select(F.lit("after").alias("_part"), *columns),
        changes.select(F.lit("change").alias("_part"), *columns,
                       F.struct(*changes.columns).alias("_record")),
    ]  # fmt: skip
    if before is not None:
        reads.append(before.select(F.lit("before").alias("_part"), "surrogate_key", key))
    rows = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), reads)
    part = F.col("_part")
    is_change, is_after, is_known = part == "change", part == "after", part != "after"
    # A change record that starts its version (else it completes an inferred member).
    first_version = is_change & (F.col("valid_from_hour") == F.col("recorded_hour"))
    latest = F.max(F.when(is_after, F.col("valid_from_hour"))).over(Window.partitionBy(key))
    newest = Window.partitionBy("_part").orderBy(F.desc("recorded_hour"), "surrogate_key")
    rows = rows.select(
        "*",
        latest.alias("_latest"),
        F.max(part == "before").over(Window.partitionBy("surrogate_key")).alias("_was_known"),
        F.row_number().over(newest).alias("_newest"),
    )
    sk, entity = F.col("surrogate_key"), F.col(key)
    figures = {
        "newest_changes": F.collect_list(
            F.when(is_change & (F.col("_newest") <= PREVIEW_ROWS), F.col("_record"))
        ),
        "new_versions": F.count(F.when(first_version & ~F.col("is_inferred"), 1)),
        "inferred_members": F.count(F.when(first_version & F.col("is_inferred"), 1)),
        "completed_inferred": F.count(F.when(is_change & ~first_version, 1)),
        "versions": F.count(F.when(is_after, 1)),
        "entities": F.countDistinct(F.when(is_after, entity)),
        "keys": F.countDistinct(F.when(is_known, sk)),
        "key_entity_pairs": F.countDistinct(F.when(is_known, sk), F.when(is_known, entity)),
        "reused_keys": F.count(F.when(first_version & F.col("_was_known"), 1)),
        "current": F.count(F.when(is_after & (F.col("valid_from_hour") == F.col("_latest")), 1)),
    }
    return rows.agg(F.struct(*[v.alias(n) for n, v in figures.items()]).alias(dimension.name))


def dimension_checks(name: str, stats: dict) -> list[AssetCheckResult]:
    return [
        AssetCheckResult(
            asset_key=AssetKey(name),
            check_name=UNIQUE_KEYS,
            passed=stats["keys"] == stats["key_entity_pairs"] and stats["reused_keys"] == 0,
            description="no surrogate key names two entities; a new version takes a new key",
            metadata={
                "surrogate_keys": stats["keys"],
                "key_entity_pairs": stats["key_entity_pairs"],
                "new_versions_on_an_earlier_key": stats["reused_keys"],
            },
        ),
        AssetCheckResult(
            asset_key=AssetKey(name),
            check_name=ONE_CURRENT,
            passed=stats["current"] == stats["entities"],
            description="each natural key has one version starting at its latest valid_from_hour",
            metadata={"natural_keys": stats["entities"], "latest_versions": stats["current"]},
        ),
    ]


DATES, UNIQUE_DATE_KEYS = "dim_date", "unique_date_keys"


def date_stats(spark: SparkSession, storage: StorageResource, keys: list[str]) -> DataFrame:
    """dim_date's figures: the rows the hours `keys` added, read against the index as it was
    before them (the index alone is distinct by construction), and its size. A one-row
    aggregate (one struct column, dim_date), like a dimension's. Dates are few: no history is
    listed."""
    added = storage.warehouse_table(DATES).hours_of(spark, keys)
    seen = storage.seen_dates()
    earlier = seen.before(spark, keys[0])
    repeated = added.join(earlier, "date", "left_semi") if earlier is not None else added.limit(0)
    figures = side_by_side(
        added.agg(F.count("*").alias("added"), F.countDistinct("date").alias("added_keys")),
        repeated.agg(F.count("*").alias("repeated")),
        seen.before(spark, keys[-1], through=True).agg(F.count("*").alias("rows")),
    )
    return figures.select(F.struct("*").alias(DATES))


def date_check(stats: dict) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=AssetKey(DATES),
        check_name=UNIQUE_DATE_KEYS,
        passed=stats["added"] == stats["added_keys"] and stats["repeated"] == 0,
        description="the run's dates are distinct and none was in dim_date before",
        metadata={
            "dates_added": stats["added"],
            "distinct_dates_added": stats["added_keys"],
            "added_before": stats["repeated"],
        },
    )


KEYS_PRESENT = "every_row_has_its_keys"
PRICE_RULE = "total_paid_price_follows_the_rule"


# The price rule (docs/rules.md §2.4) once more, on purpose: in SQL and in another order of
# exact decimal operations. A check that called the pipeline's own function could not fail.
PRICE_RULE_SQL = "round(units * unit_price * (100 - discount_perc) / 100, 2)"


def fact_flags(name: str) -> dict[str, Column]:
    """The conditions `name`'s checks count rows by: a key missing, off the price rule."""
    missing_key = F.lit(False)
    for column in fact_keys(FACTS[name]):
        missing_key = missing_key | F.col(column).isNull()
    return {
        "missing": missing_key,
        "off": ~F.col("total_paid_price").eqNullSafe(F.expr(PRICE_RULE_SQL)),
    }


def fact_checks(name: str, missing: int, off: int) -> list[AssetCheckResult]:
    return [
        AssetCheckResult(
            asset_key=AssetKey(name), check_name=KEYS_PRESENT, passed=not missing,
            metadata={"rows_missing_a_key": missing},
        ),
        AssetCheckResult(
            asset_key=AssetKey(name), check_name=PRICE_RULE, passed=not off,
            metadata={"rows_off_the_rule": off},
        ),
    ]  # fmt: skip
