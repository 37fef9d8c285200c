"""The insights' load: each hour's snapshot built on the previous hour's (or rebuilt from
every fact through the hour when that one is missing)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import DataFrame, SparkSession

from retail_assets.loads.dimensions import versions_through
from retail_assets.loads.facts import fact_tables
from retail_assets.storage.hours import hour_of, previous_key
from retail_assets.storage.resource import StorageResource
from retail_assets.transforms.insights import INSIGHTS, as_of, sales
from retail_assets.transforms.warehouse import PRODUCT


def hour_sales(
    spark: SparkSession, storage: StorageResource, key: str, rebuild: bool
) -> tuple[DataFrame, DataFrame]:
    """The sales of hour `key` (rebuild: of every hour through it) and the product versions."""
    frames = [
        table.hours(spark, key, through=True) if rebuild else table.hour(spark, key)
        for table in fact_tables(storage).values()
    ]
    products = versions_through(spark, storage, PRODUCT, key, through=True)
    return sales(*frames, products), products


def continues(spark: SparkSession, storage: StorageResource, key: str, names: list[str]) -> bool:
    """Whether every snapshot of the previous hour exists to build on."""
    return all(storage.warehouse_table(n).has_hour(spark, previous_key(key)) for n in names)


@contextmanager
def snapshots_written(
    spark: SparkSession, storage: StorageResource, key: str, names: list[str]
) -> Iterator[tuple[bool, DataFrame]]:
    """Write the snapshots of hour `key` for the insights `names`; yields whether they built on
    the previous hour's (False: rebuilt from all facts through `key`) and the sales they were
    built from, cached until the block ends, so the checks read the facts no second time."""
    builds_on_previous = continues(spark, storage, key, names)
    frame, products = hour_sales(spark, storage, key, rebuild=not builds_on_previous)
    frame = frame.persist()
    try:
        for name in names:
            table = storage.warehouse_table(name)
            previous = table.hour(spark, previous_key(key)) if builds_on_previous else None
            snapshot = INSIGHTS[name][0](frame, previous, products)
            table.write(spark, as_of(snapshot, hour_of(key)), key)
        yield builds_on_previous, frame
    finally:
        frame.unpersist()
