"""Marketing insights and the B2B export (docs/rules.md §4).

An insight snapshot is the previous hour's running totals plus the hour's new facts, ranked
again: an hour costs what its facts and the (small) totals cost, not what history costs.
Ranks are row numbers 1..n with explicit tie-breaks, so a snapshot is deterministic.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from retail_assets.transforms.transactions import discount_of

REVENUE = "decimal(38,2)"  # running sums keep one type, hour after hour
OFFERS = (1, 2, 3, 4, 5)


def sales(branch: DataFrame, online: DataFrame, products: DataFrame) -> DataFrame:
    """Both facts as one frame, with the product's natural id: what the insights aggregate.

    `products` are dim_product versions (any version of a product maps to its id).
    """
    measures = ["product_key", "offer_number", "units", "total_paid_price"]
    offline = branch.select(*measures, F.lit(False).alias("is_online"))
    both = offline.unionByName(
        online.select(*measures, F.lit(True).alias("is_online"), "city", "state"),
        allowMissingColumns=True,
    )
    ids = products.select(F.col("surrogate_key").alias("product_key"), "product_id")
    return both.join(F.broadcast(ids), "product_key", "left")


def online_with_city() -> Column:
    """The online sales a city insight can place (an unsplittable address has no city)."""
    return F.col("is_online") & F.col("city").isNotNull()


def fact_totals(sales: DataFrame) -> DataFrame:
    """One row: what the facts add to each insight measure (the checks' side of the sum)."""
    return sales.agg(
        F.sum("units").alias("units_sold"),
        F.sum("total_paid_price").alias("revenue"),
        F.count("offer_number").alias("redemptions"),
        F.sum(F.when(online_with_city(), F.col("total_paid_price"))).alias("online_revenue"),
        F.count(F.when(online_with_city(), 1)).alias("online_transactions"),
    )


def accumulate(previous: DataFrame | None, increment: DataFrame, keys: list[str]) -> DataFrame:
    """Running totals per key: the previous snapshot's measures plus the hour's increment."""
    if previous is None:
        return increment
    measures = [c for c in increment.columns if c not in keys]
    both = previous.select(*increment.columns).unionByName(increment)
    return both.groupBy(*keys).agg(
        *[F.sum(m).cast(increment.schema[m].dataType).alias(m) for m in measures]
    )


def ranked(frame: DataFrame, order: list[Column], within: list[str] | None = None) -> DataFrame:
    """rank = 1..n in `order` (within each group of `within`); totals are small, so one
    ordered partition is fine when there is no group."""
    window = Window.partitionBy(*within or [F.lit(0)]).orderBy(*order)
    return frame.withColumn("rank", F.row_number().over(window))


def current_names(products: DataFrame) -> DataFrame:
    return products.where("is_current").select(
        "product_id", "product_name", F.col("product_category").alias("category")
    )


def redemptions(sales: DataFrame, *keys: str | Column) -> DataFrame:
    offered = sales.where(F.col("offer_number").isNotNull())
    return offered.groupBy(*keys).agg(F.count("*").alias("redemptions"))


def top_products(sales: DataFrame, previous: DataFrame | None, products: DataFrame) -> DataFrame:
    """Products by units sold (then revenue, then id), over all sales so far."""
    increment = sales.groupBy("product_id").agg(
        F.sum("units").cast("bigint").alias("units_sold"),
        F.sum("total_paid_price").cast(REVENUE).alias("revenue"),
    )
    totals = accumulate(previous, increment, ["product_id"])
    named = totals.join(current_names(products), "product_id", "left")
    order = [F.desc("units_sold"), F.desc("revenue"), F.asc("product_id")]
    return ranked(named, order).select(
        "product_id", "product_name", "category", "units_sold", "revenue", "rank"
    )


def top_offers(sales: DataFrame, previous: DataFrame | None, products: DataFrame) -> DataFrame:
    """The five offers by redemptions (then offer number); an unredeemed offer counts 0."""
    increment = redemptions(sales, F.col("offer_number").alias("offer"))
    totals = accumulate(previous, increment, ["offer"])
    offers = sales.sparkSession.createDataFrame([(k,) for k in OFFERS], "offer int")
    every = offers.join(totals, "offer", "left").select(
        "offer",
        discount_of(F.col("offer")).alias("discount_perc"),
        F.coalesce("redemptions", F.lit(0)).cast("bigint").alias("redemptions"),
    )
    return ranked(every, [F.desc("redemptions"), F.asc("offer")])


def offers_per_product(
    sales: DataFrame, previous: DataFrame | None, products: DataFrame
) -> DataFrame:
    """Each product's redeemed offers, ranked within the product by redemptions."""
    increment = redemptions(sales, "product_id", F.col("offer_number").alias("offer"))
    totals = accumulate(previous, increment, ["product_id", "offer"])
    named = totals.join(current_names(products).drop("category"), "product_id", "left")
    order = [F.desc("redemptions"), F.asc("offer")]
    return ranked(named, order, within=["product_id"]).select(
        "product_id", "product_name", "offer", "redemptions", "rank"
    )


def lowest_online_cities(
    sales: DataFrame, previous: DataFrame | None, products: DataFrame
) -> DataFrame:
    """Cities by online revenue, lowest first (then fewer transactions, city, state)."""
    increment = (
        sales.where(online_with_city())
        .groupBy("city", "state")
        .agg(
            F.sum("total_paid_price").cast(REVENUE).alias("online_revenue"),
            F.count("*").alias("online_transactions"),
        )
    )
    totals = accumulate(previous, increment, ["city", "state"])
    order = [F.asc("online_revenue"), F.asc("online_transactions"), F.asc("city"), F.asc("state")]
    return ranked(totals, order)


def as_of(snapshot: DataFrame, hour: datetime) -> DataFrame:
    return snapshot.withColumn("as_of_hour", F.lit(hour))


# name -> (snapshot builder, measures the facts must add up to, the rank's partition)
INSIGHTS = {
    "insight_top_products": (top_products, ("units_sold", "revenue"), ()),
    "insight_top_offers": (top_offers, ("redemptions",), ()),
    "insight_offers_per_product": (offers_per_product, ("redemptions",), ("product_id",)),
    "insight_lowest_online_cities": (
        lowest_online_cities,
        ("online_revenue", "online_transactions"),
        (),
    ),
}


# ---------------------------------------------------------------- B2B


def b2b_units(offline: DataFrame, agents: DataFrame, products: DataFrame) -> DataFrame:
    """sales_agent_name, product_name, total_sold_units: offline units summed by the names of
    the versions the facts reference, sorted by agent then product.

    An agent not yet announced (an inferred member) has no name yet: it counts under "".
    """
    agent_names = agents.select(
        F.col("surrogate_key").alias("sales_agent_key"), F.col("name").alias("sales_agent_name")
    )
    product_names = products.select(F.col("surrogate_key").alias("product_key"), "product_name")
    named = offline.join(F.broadcast(agent_names), "sales_agent_key", "left").join(
        F.broadcast(product_names), "product_key", "left"
    )
    return (
        named.groupBy(
            F.coalesce("sales_agent_name", F.lit("")).alias("sales_agent_name"),
            F.coalesce("product_name", F.lit("")).alias("product_name"),
        )
        .agg(F.sum("units").cast("bigint").alias("total_sold_units"))
        .orderBy("sales_agent_name", "product_name")
    )
