"""Warehouse rules (docs/rules.md §3): first arrival wins, SCD type 2 with inferred members, facts.

Dimensions are kept as change records, each recorded in one ingest hour: a new version (new
surrogate key, valid from that hour) or the completion of an inferred member (same key, real
attributes). `versions_sql` turns change records into the SCD2 table — valid_from_hour,
valid_to_hour, is_current — for the metastore view and for "as of hour H" lookups alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from retail_assets.transforms.transactions import (
    SILVER_COLUMNS,
    parse_date,
    title_case,
    unreadable,
)


@dataclass(frozen=True)
class Dimension:
    name: str
    natural_key: str
    attributes: tuple[str, ...]

    @property
    def change_columns(self) -> list[str]:
        return ["surrogate_key", self.natural_key, *self.attributes, "is_inferred",
                "valid_from_hour", "recorded_hour"]  # fmt: skip

    def versions_sql(self, source: str, through_hour: datetime | None = None) -> str:
        """SCD2 versions from change records: the latest record of each surrogate key, and a
        version ends where the next version of its natural key begins."""
        key, attributes = self.natural_key, ", ".join(self.attributes)
        following = f"OVER (PARTITION BY {key} ORDER BY valid_from_hour, surrogate_key)"
        return f"""
            SELECT surrogate_key, {key}, {attributes}, is_inferred, valid_from_hour,
                   lead(valid_from_hour) {following} AS valid_to_hour,
                   lead(valid_from_hour) {following} IS NULL AS is_current
            FROM (
                SELECT *, row_number() OVER (
                    PARTITION BY surrogate_key ORDER BY recorded_hour DESC) AS latest
                FROM {source}
            ) WHERE latest = 1"""


CUSTOMER = Dimension("dim_customer", "customer_id", ("first_name", "last_name", "email"))
PRODUCT = Dimension("dim_product", "product_id", ("product_name", "product_category"))
BRANCH = Dimension("dim_branch", "branch_id", ("location", "establish_date", "branch_class"))
SALES_AGENT = Dimension("dim_sales_agent", "sales_agent_id", ("name", "hire_date"))


def versions_as_of(dimension: Dimension, changes: DataFrame) -> DataFrame:
    """The dimension's versions given the change records recorded so far."""
    return changes.sparkSession.sql(dimension.versions_sql("{changes}"), changes=changes)


def newest_records(changes: DataFrame) -> DataFrame:
    """The newest change record of each surrogate key: all that `versions_as_of` reads, so
    the versions after an hour follow from the newest records before it plus the hour's
    change records. Its size is the number of versions, not of hours."""
    newest = Window.partitionBy("surrogate_key").orderBy(F.desc("recorded_hour"))
    return changes.withColumn("_n", F.row_number().over(newest)).where("_n = 1").drop("_n")


# ---------------------------------------------------------------- first arrival


def first_arrivals(silver: DataFrame, earlier_ids: DataFrame | None) -> DataFrame:
    """The hour's transactions whose id never arrived before: the first arrival wins.

    Within the hour the first line wins; across hours, a key-only anti-join against the ids
    of earlier hours. The earlier ids are first narrowed to the hour's own by a semi-join with
    the hour's ids broadcast, so history is scanned once and never shuffled.
    """
    first_line = Window.partitionBy("transaction_id").orderBy("source_file", "source_line")
    firsts = silver.withColumn("_n", F.row_number().over(first_line)).where("_n = 1").drop("_n")
    if earlier_ids is None:
        return firsts
    hour_ids = F.broadcast(firsts.select("transaction_id"))
    seen = earlier_ids.select("transaction_id").join(hour_ids, "transaction_id", "left_semi")
    return firsts.join(seen, "transaction_id", "left_anti")


def conflicting_resends(resent: DataFrame, firsts: DataFrame) -> DataFrame:
    """The ids of `resent` rows (re-sent transactions, dropped as duplicates) whose content
    differs from their first arrival in `firsts`: where the file and line differ, a re-send is
    the same transaction; any other column differing means the two versions disagree."""
    content = [c for c in SILVER_COLUMNS if c not in ("source_file", "source_line")]
    first = firsts.select("transaction_id", F.struct(*content).alias("first"))
    again = resent.select("transaction_id", F.struct(*content).alias("again"))
    differs = ~F.col("again").eqNullSafe(F.col("first"))
    return again.join(first, "transaction_id").where(differs).select("transaction_id").distinct()


# ---------------------------------------------------------------- dimension inputs


def latest_per_key(rows: DataFrame, key: str) -> DataFrame:
    """One row per key: the last one in file order (a later line is the newer statement)."""
    last = Window.partitionBy(key).orderBy(F.desc("source_file"), F.desc("source_line"))
    return rows.withColumn("_n", F.row_number().over(last)).where("_n = 1").drop("_n")


def customer_attributes(transactions: DataFrame) -> DataFrame:
    rows = transactions.select(
        "customer_id", "source_file", "source_line",
        F.col("customer_fname").alias("first_name"),
        F.col("customer_lname").alias("last_name"),
        F.col("customer_email").alias("email"),
    )  # fmt: skip
    return latest_per_key(rows, "customer_id").drop("source_file", "source_line")


def product_attributes(transactions: DataFrame) -> DataFrame:
    rows = transactions.select(
        "product_id", "product_name", "product_category", "source_file", "source_line"
    )
    return latest_per_key(rows, "product_id").drop("source_file", "source_line")


def branch_attributes(branches: DataFrame) -> DataFrame:
    """A branches file (columns by header name) → typed attributes, one row per branch."""
    rows = branches.where(unreadable().isNull()).select(
        F.trim("branch_id").alias("branch_id"),
        F.trim("location").alias("location"),
        parse_date(F.col("establish_date")).alias("establish_date"),
        F.trim("class").alias("branch_class"),
        "source_file", "source_line",
    )  # fmt: skip
    return latest_per_key(rows.where("branch_id <> ''"), "branch_id").drop(
        "source_file", "source_line"
    )


def agent_attributes(agents: DataFrame) -> DataFrame:
    """A sales agents file → typed attributes, one row per agent (hire dates are unpadded)."""
    rows = agents.where(unreadable().isNull()).select(
        F.trim("sales_person_id").alias("sales_agent_id"),
        title_case(F.col("name")).alias("name"),
        parse_date(F.col("hire_date")).alias("hire_date"),
        "source_file", "source_line",
    )  # fmt: skip
    return latest_per_key(rows.where("sales_agent_id <> ''"), "sales_agent_id").drop(
        "source_file", "source_line"
    )


def with_inferred(announced: DataFrame, used_ids: DataFrame, dimension: Dimension) -> DataFrame:
    """Announced entities, plus ids only used by transactions as inferred (attribute-less) rows."""
    key = dimension.natural_key
    unannounced = used_ids.select(key).where(F.col(key).isNotNull()).distinct()
    unannounced = unannounced.join(announced.select(key), key, "left_anti")
    inferred = unannounced.select(
        key,
        *[F.lit(None).cast(announced.schema[a].dataType).alias(a) for a in dimension.attributes],
    )
    return announced.withColumn("is_inferred", F.lit(False)).unionByName(
        inferred.withColumn("is_inferred", F.lit(True))
    )


# ---------------------------------------------------------------- SCD type 2


def scd2_changes(
    dimension: Dimension, versions: DataFrame, incoming: DataFrame, hour: datetime
) -> DataFrame:
    """Change records of one hour: what `incoming` (one row per natural key, with
    is_inferred) changes in the versions current before the hour.

    - an unknown id gets a first version (a new key), inferred if only a transaction used it;
    - an inferred member whose entity is now announced is completed under its own key;
    - an announced entity whose attributes differ gets a new version (new key, from `hour`);
    - anything else changes nothing. New keys continue after the largest key given so far,
      in id order, so a re-run of the hour gives the same keys.
    """
    key, attributes = dimension.natural_key, dimension.attributes
    current = versions.where("is_current").select(
        key,
        F.col("surrogate_key").alias("current_key"),
        F.col("is_inferred").alias("current_inferred"),
        F.col("valid_from_hour").alias("current_from"),
        *[F.col(a).alias(f"current_{a}") for a in attributes],
    )
    joined = incoming.join(current, key, "left")
    differs = F.lit(False)
    for attribute in attributes:
        differs = differs | ~F.col(attribute).eqNullSafe(F.col(f"current_{attribute}"))
    unknown = F.col("current_key").isNull()
    completes = ~unknown & F.col("current_inferred") & ~F.col("is_inferred")
    new_version = ~unknown & ~F.col("current_inferred") & ~F.col("is_inferred") & differs
    # Keys are numbered over the whole hour in one ordered partition: dimension changes of an
    # hour are few, and one sequence is what makes the keys deterministic.
    by_id = Window.partitionBy(F.lit(0)).orderBy(key)
    last_key = versions.agg(F.coalesce(F.max("surrogate_key"), F.lit(0)).alias("last_key"))
    keyed = (
        joined.where(unknown | new_version)
        .crossJoin(last_key)
        .withColumn("surrogate_key", F.row_number().over(by_id) + F.col("last_key"))
        .withColumn("valid_from_hour", F.lit(hour))
    )
    completed = (
        joined.where(completes)
        .withColumn("surrogate_key", F.col("current_key").cast("int"))
        .withColumn("valid_from_hour", F.col("current_from"))
    )
    columns = dimension.change_columns[:-1]
    return (
        keyed.select(*columns)
        .unionByName(completed.select(*columns))
        .withColumn("surrogate_key", F.col("surrogate_key").cast("int"))
        .withColumn("recorded_hour", F.lit(hour))
    )


# ---------------------------------------------------------------- dim_date


def date_rows(dates: DataFrame) -> DataFrame:
    """dim_date rows for the distinct dates in column `date`."""
    date = F.col("date")
    return (
        dates.select("date")
        .where(date.isNotNull())
        .distinct()
        .select(
            date_key(date).alias("date_key"),
            date,
            F.year(date).alias("year"),
            F.quarter(date).alias("quarter"),
            F.month(date).alias("month"),
            F.date_format(date, "MMMM").alias("month_name"),
            F.weekofyear(date).alias("week_of_year"),
            ((F.dayofweek(date) + 5) % 7 + 1).alias("day_of_week"),  # ISO: Monday = 1
            F.date_format(date, "EEEE").alias("day_name"),
            F.dayofweek(date).isin(1, 7).alias("is_weekend"),
        )
    )


def date_key(date):
    """yyyymmdd as an integer: the date dimension's key, readable in a fact row."""
    return F.date_format(date, "yyyyMMdd").cast("int")


# ---------------------------------------------------------------- facts

FACT_MEASURES = [
    "units", "unit_price", "discount_perc", "offer_number", "total_paid_price", "payment_method",
]  # fmt: skip


def key_column(dimension: Dimension) -> str:
    """A fact's column for the dimension's surrogate key: dim_customer → customer_key."""
    return dimension.name.removeprefix("dim_") + "_key"


def fact_dimensions(online: bool) -> tuple[Dimension, ...]:
    """An online sale has no branch and no agent."""
    return (CUSTOMER, PRODUCT) if online else (CUSTOMER, PRODUCT, BRANCH, SALES_AGENT)


def fact_keys(online: bool) -> list[str]:
    """Every key column of a fact row, in table order."""
    return [*map(key_column, fact_dimensions(online)), "date_key"]


def with_keys(transactions: DataFrame, current: dict[Dimension, DataFrame]) -> DataFrame:
    """Each transaction with the surrogate key of every dimension version current at its hour."""
    for dimension, versions in current.items():
        keys = versions.where("is_current").select(
            dimension.natural_key,
            F.col("surrogate_key").alias(key_column(dimension)),
        )
        transactions = transactions.join(F.broadcast(keys), dimension.natural_key, "left")
    return transactions


def fact_rows(keyed: DataFrame, hour: datetime, online: bool) -> DataFrame:
    """fact_online_sales (online=True) or fact_branch_sales rows from keyed transactions."""
    keys = [key_column(dimension) for dimension in fact_dimensions(online)]
    address = ["street", "city", "state", "postal_code"] if online else []
    return keyed.where(F.col("is_online") == F.lit(online)).select(
        "transaction_id",
        *keys,
        date_key(F.col("transaction_date")).alias("date_key"),
        "transaction_date",
        *FACT_MEASURES,
        *address,
        F.lit(hour).alias("ingest_hour_ts"),
        "source_file",
        "source_line",
        F.date_format("transaction_date", "yyyy-MM").alias("transaction_month"),
    )
