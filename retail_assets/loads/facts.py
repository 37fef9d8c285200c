"""The facts' load: both facts of an hour from one keyed frame (new transactions with the
surrogate keys of the dimension versions current at their load hour)."""

from __future__ import annotations

from pyspark.sql import SparkSession

from retail_assets.loads.dimensions import versions_through
from retail_assets.loads.inputs import SCD_DIMENSIONS, new_transactions_of
from retail_assets.storage.compacted import CompactedTable
from retail_assets.storage.hours import hour_of
from retail_assets.storage.resource import StorageResource
from retail_assets.transforms.warehouse import (
    fact_rows,
    with_keys,
)

FACTS = {"fact_branch_sales": False, "fact_online_sales": True}  # name -> online


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
