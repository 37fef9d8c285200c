"""The hour's incoming rows of each dimension and fact: shaped from silver and the raw files."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_assets.loads.raw import read_raw
from retail_assets.storage.resource import StorageResource
from retail_assets.transforms.source_records import AGENT_FIELDS, BRANCH_FIELDS
from retail_assets.transforms.warehouse import (
    BRANCH,
    CUSTOMER,
    PRODUCT,
    SALES_AGENT,
    Dimension,
    agent_attributes,
    branch_attributes,
    customer_attributes,
    product_attributes,
    with_inferred,
)


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


SCD_DIMENSIONS = list(DIMENSION_INPUTS)
