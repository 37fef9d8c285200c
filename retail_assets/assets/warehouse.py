"""The Kimball warehouse in retail_dwh: four SCD2 dimensions, dim_date, and the two facts.

Each dimension asset writes the hour's change records (retail_dwh.<dim>_changes, one
partition per hour) and keeps the view retail_dwh.<dim> with the SCD2 versions. Each depends
on its own previous hour: the versions it builds on.
"""

from collections.abc import Callable
from datetime import timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
)
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from retail_assets.assets.catalog import DWH_DB, OWNERS, table_metadata, tags, written
from retail_assets.assets.metadata import all_rows, count_each, markdown_table, one_row
from retail_assets.assets.partitions import (
    hourly_asset,
    hourly_multi_asset,
    hourly_partitions,
    own_previous_hour,
)
from retail_assets.assets.raw import raw_files, read_raw
from retail_assets.assets.silver import new_transactions, silver_transactions
from retail_assets.resources import SparkResource
from retail_assets.storage.compacted import CompactedTable
from retail_assets.storage.hours import hour_of, hour_values, key_at, previous_key
from retail_assets.storage.resource import StorageResource, raw_rows
from retail_assets.storage.tables import HOUR_COLUMNS, HourlyTable
from retail_assets.transforms import reconcile
from retail_assets.transforms.transactions import AGENT_FIELDS, BRANCH_FIELDS
from retail_assets.transforms.warehouse import (
    BRANCH,
    CUSTOMER,
    PRODUCT,
    SALES_AGENT,
    Dimension,
    agent_attributes,
    branch_attributes,
    customer_attributes,
    date_rows,
    fact_keys,
    fact_rows,
    newest_records,
    product_attributes,
    scd2_changes,
    versions_as_of,
    with_inferred,
    with_keys,
)

UNIQUE_KEYS = "unique_surrogate_keys"
ONE_CURRENT = "one_current_row_per_natural_key"
PREVIEW_ROWS = 10  # change records shown with each materialization
# Days of dimension state kept: re-running an older hour rebuilds it from the change records.
STATE_DAYS = 3


def new_transactions_of(spark: SparkSession, storage: StorageResource, key: str) -> DataFrame:
    return storage.lake_table("silver", "new_transactions").hour(spark, key)


def customer_input(spark: SparkSession, storage: StorageResource, key: str) -> DataFrame:
    attributes = customer_attributes(new_transactions_of(spark, storage, key))
    return attributes.withColumn("is_inferred", F.lit(False))


def product_input(spark: SparkSession, storage: StorageResource, key: str) -> DataFrame:
    attributes = product_attributes(new_transactions_of(spark, storage, key))
    return attributes.withColumn("is_inferred", F.lit(False))


def branch_input(spark: SparkSession, storage: StorageResource, key: str) -> DataFrame:
    files = storage.raw_files(key, "branches")
    announced = branch_attributes(read_raw(spark, files, BRANCH_FIELDS))
    offline = new_transactions_of(spark, storage, key).where(~F.col("is_online"))
    return with_inferred(announced, offline.select("branch_id"), BRANCH)


def agent_input(spark: SparkSession, storage: StorageResource, key: str) -> DataFrame:
    files = storage.raw_files(key, "sales_agents")
    announced = agent_attributes(read_raw(spark, files, AGENT_FIELDS))
    offline = new_transactions_of(spark, storage, key).where(~F.col("is_online"))
    return with_inferred(announced, offline.select("sales_agent_id"), SALES_AGENT)


# The hour's incoming members of each SCD2 dimension.
DIMENSION_INPUTS: dict[Dimension, Callable[[SparkSession, StorageResource, str], DataFrame]] = {
    CUSTOMER: customer_input,
    PRODUCT: product_input,
    BRANCH: branch_input,
    SALES_AGENT: agent_input,
}


def records_through(
    spark: SparkSession, storage: StorageResource, dimension: Dimension, key: str
) -> DataFrame | None:
    """The newest change record of every surrogate key as of the end of hour `key`; None
    before the first hour.

    Read from the dimension's state (`<dim>_state`: one partition per hour, the last
    STATE_DAYS days kept): the newest state of `key`'s day up to `key`, when no change records
    are newer. Otherwise (a gap, an hour older than the kept state) rebuilt from every change
    record through `key` — the same rows, at the cost of history.
    """
    changes, state = change_table(storage, dimension), state_table(storage, dimension)
    values = hour_values(key)
    newest_state = state.newest_hour_of_day(spark, key)
    # The state of `key` itself is newer than any change record through `key`: no need to ask.
    if newest_state is not None and (
        newest_state == values["ingest_hour"]
        or newest_state >= (changes.newest_hour_of_day(spark, key) or "")
    ):
        return state.hour(spark, key_at(values["ingest_date"], newest_state))
    return changes.hours(spark, key, through=True)


def versions_through(
    spark: SparkSession, storage: StorageResource, dimension: Dimension, key: str, through: bool
) -> DataFrame | None:
    """The dimension's SCD2 versions as of the end of hour `key` (or of the hour before)."""
    records = records_through(spark, storage, dimension, key if through else previous_key(key))
    return None if records is None else versions_as_of(dimension, records)


def change_table(storage: StorageResource, dimension: Dimension) -> HourlyTable:
    return storage.warehouse_table(f"{dimension.name}_changes")


def state_table(storage: StorageResource, dimension: Dimension) -> HourlyTable:
    return storage.warehouse_table(f"{dimension.name}_state")


def write_changes(
    spark: SparkSession, storage: StorageResource, dimension: Dimension, key: str
) -> DataFrame | None:
    """Write the change records of hour `key`, then the state after it, and keep the versions
    view; the records it built on (the state before `key`; None before the first hour)."""
    incoming = DIMENSION_INPUTS[dimension](spark, storage, key)
    table = change_table(storage, dimension)
    records = records_through(spark, storage, dimension, previous_key(key))
    if records is None:  # the first hour ever: nothing known yet
        before = incoming.limit(0).select(
            F.lit(None).cast("int").alias("surrogate_key"),
            *incoming.columns,
            F.lit(None).cast("timestamp").alias("valid_from_hour"),
            F.lit(True).alias("is_current"),
        )
    else:
        before = versions_as_of(dimension, records)
    table.write(spark, scd2_changes(dimension, before, incoming, hour_of(key)), key)
    state = table.hour(spark, key).drop(*HOUR_COLUMNS)
    if records is not None:
        state = newest_records(records.drop(*HOUR_COLUMNS).unionByName(state))
    state_table(storage, dimension).write(spark, state, key)
    old_day = hour_of(key) - timedelta(days=STATE_DAYS)
    state_table(storage, dimension).drop_day(spark, f"{old_day:%Y-%m-%d}")
    spark.sql(
        f"CREATE OR REPLACE VIEW {storage.warehouse_table(dimension.name).name} AS "
        + dimension.versions_sql(table.name)
    )
    return records


def dimension_stats(
    spark: SparkSession,
    storage: StorageResource,
    dimension: Dimension,
    keys: list[str],
    before: DataFrame | None,
) -> dict:
    """What the hours `keys` changed (counts, and the newest change records), and the counts
    behind the checks, in one Spark job.

    The checks read the change records and the state, not the versions SQL the view uses:
    through it (a row per surrogate key, current = no later version) both would hold by
    construction. Their cost is the state's size plus the run's changes, not history's.
    """
    key = dimension.natural_key
    after = state_table(storage, dimension).hour(spark, keys[-1])  # newest record per key
    before = before if before is not None else after.limit(0)
    changes = change_table(storage, dimension).hours_of(spark, keys)
    first_version = F.col("valid_from_hour") == F.col("recorded_hour")  # else: a completion
    newest = changes.orderBy(F.desc("recorded_hour"), "surrogate_key").limit(PREVIEW_ROWS)
    known = before.select("surrogate_key", key).unionByName(changes.select("surrogate_key", key))
    reused = changes.where(first_version).join(before, "surrogate_key", "left_semi")
    latest = after.withColumn("_latest", F.max("valid_from_hour").over(Window.partitionBy(key)))
    latest = latest.where(F.col("valid_from_hour") == F.col("_latest"))
    return one_row(
        all_rows(newest, "newest_changes"),
        changes.agg(
            F.count(F.when(first_version & ~F.col("is_inferred"), 1)).alias("new_versions"),
            F.count(F.when(first_version & F.col("is_inferred"), 1)).alias("inferred_members"),
            F.count(F.when(~first_version, 1)).alias("completed_inferred"),
        ),
        after.agg(F.count("*").alias("versions"), F.countDistinct(key).alias("entities")),
        known.agg(
            F.countDistinct("surrogate_key").alias("keys"),
            F.countDistinct("surrogate_key", key).alias("key_entity_pairs"),
        ),
        reused.agg(F.count("*").alias("reused_keys")),
        latest.agg(F.count("*").alias("current")),
    )


def dimension_checks(stats: dict) -> list[AssetCheckResult]:
    return [
        AssetCheckResult(
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
            check_name=ONE_CURRENT,
            passed=stats["current"] == stats["entities"],
            description="each natural key has one version starting at its latest valid_from_hour",
            metadata={"natural_keys": stats["entities"], "latest_versions": stats["current"]},
        ),
    ]


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
SCD_DIMENSIONS = list(DIMENSION_INPUTS)


def write_dates(spark: SparkSession, storage: StorageResource, key: str) -> str:
    """The transaction dates of hour `key` not seen before; the folder written."""
    table, seen = storage.warehouse_table("dim_date"), storage.seen_dates()
    dates = new_transactions_of(spark, storage, key).select(F.col("transaction_date").alias("date"))
    known = seen.before(spark, key)
    if known is not None:
        dates = dates.join(known, "date", "left_anti")
    path = table.write(spark, date_rows(dates), key)
    seen.add_hour(spark, key)
    return path


@hourly_asset(
    deps=[new_transactions, own_previous_hour("dim_date")],
    group_name="warehouse",
    kinds={"spark", "hive"},
    owners=OWNERS,
    tags=tags("warehouse", "calendar"),
    metadata=table_metadata(DWH_DB, "dim_date"),
    check_specs=[AssetCheckSpec("unique_date_keys", asset="dim_date")],
)
def dim_date(
    context: AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> MaterializeResult:
    """retail_dwh.dim_date: every transaction date (year, quarter, month, week, weekday, names,
    is_weekend); each hour adds the dates not seen before."""
    session, keys = spark.spark_session, context.partition_keys
    table = storage.warehouse_table("dim_date")
    for key in keys:
        write_dates(session, storage, key)
    # The check reads the rows written, against the index as it was before them: the index
    # alone is distinct by construction. Dates are few: no history is listed.
    added, seen = table.hours_of(session, keys), storage.seen_dates()
    earlier = seen.before(session, keys[0])
    repeated = added.join(earlier, "date", "left_semi") if earlier is not None else added.limit(0)
    stats = one_row(
        added.agg(F.count("*").alias("added"), F.countDistinct("date").alias("added_keys")),
        repeated.agg(F.count("*").alias("repeated")),
        seen.before(session, keys[-1], through=True).agg(F.count("*").alias("rows")),
    )
    return MaterializeResult(
        metadata=written(table.name, rows=stats["rows"], partition_rows=stats["added"]),
        check_results=[
            AssetCheckResult(
                check_name="unique_date_keys",
                passed=stats["added"] == stats["added_keys"] and stats["repeated"] == 0,
                description="the run's dates are distinct and none was in dim_date before",
                metadata={
                    "dates_added": stats["added"],
                    "distinct_dates_added": stats["added_keys"],
                    "added_before": stats["repeated"],
                },
            )
        ],
    )


# ---------------------------------------------------------------- facts

FACTS = {"fact_branch_sales": False, "fact_online_sales": True}  # name -> online
KEYS_PRESENT = "every_row_has_its_keys"
PRICE_RULE = "total_paid_price_follows_the_rule"


# The price rule (docs/rules.md §2.4) once more, on purpose: in SQL and in another order of
# exact decimal operations. A check that called the pipeline's own function could not fail.
PRICE_RULE_SQL = "round(units * unit_price * (100 - discount_perc) / 100, 2)"


def fact_check_counts(name: str, rows: DataFrame) -> DataFrame:
    """One row: `name`'s rows missing a key, and rows off the price rule."""
    missing_key = F.lit(False)
    for column in fact_keys(FACTS[name]):
        missing_key = missing_key | F.col(column).isNull()
    off_rule = ~F.col("total_paid_price").eqNullSafe(F.expr(PRICE_RULE_SQL))
    return rows.agg(
        F.sum(missing_key.cast("int")).alias(f"{name}.missing"),
        F.sum(off_rule.cast("int")).alias(f"{name}.off"),
    )


def fact_checks(name: str, stats: dict) -> list[AssetCheckResult]:
    missing, off = stats[f"{name}.missing"] or 0, stats[f"{name}.off"] or 0
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


def fact_tables(storage: StorageResource) -> dict[str, CompactedTable]:
    return {name: storage.fact_table(name) for name in FACTS}


def write_facts(spark: SparkSession, storage: StorageResource, key: str) -> None:
    """Both facts of hour `key` from one keyed frame."""
    current = {
        dimension: versions_through(spark, storage, dimension, key, through=True)
        for dimension in SCD_DIMENSIONS
    }
    keyed = with_keys(new_transactions_of(spark, storage, key), current).persist()
    try:
        for name, table in fact_tables(storage).items():
            table.write(spark, fact_rows(keyed, hour_of(key), FACTS[name]), key)
    finally:
        keyed.unpersist()


@hourly_multi_asset(
    specs=[
        AssetSpec(
            name,
            partitions_def=hourly_partitions,
            deps=[new_transactions, silver_transactions, dim_date, dim_customer, dim_product]
            + ([] if online else [dim_branch, dim_sales_agent]),
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
    hours = []
    for key in keys:
        write_facts(session, storage, key)
        hours.append(reconcile_hour(session, storage, key, tables))
    unbalanced = [h["hour"] for h in hours if not h["balanced"]]
    stats = one_row(*[fact_check_counts(n, t.hours_of(session, keys)) for n, t in tables.items()])
    for name, table in tables.items():
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
            check_results=fact_checks(name, stats)
            + (reconciled if name == "fact_branch_sales" else []),
        )


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
