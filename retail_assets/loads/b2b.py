"""The B2B file's load: an ingest day's offline units per sales agent and product, written
atomically with names as of the end of that day."""

from __future__ import annotations

import csv
import io

from pyspark.sql import DataFrame, SparkSession

from retail_assets.loads.dimensions import versions_through
from retail_assets.storage.hours import key_at
from retail_assets.storage.resource import StorageResource
from retail_assets.transforms.insights import b2b_units
from retail_assets.transforms.warehouse import PRODUCT, SALES_AGENT

HEADER = ("sales_agent_name", "product_name", "total_sold_units")


def csv_bytes(rows: list[tuple]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def offline_facts_of_day(spark: SparkSession, storage: StorageResource, day: str) -> DataFrame:
    return storage.fact_table("fact_branch_sales").day(spark, day)


def write_export(spark: SparkSession, storage: StorageResource, day: str) -> str:
    """Write the file of ingest day `day` atomically; its URI."""
    last_hour = key_at(day, "23")  # names as known at the end of the day (inferred ones completed)
    agents = versions_through(spark, storage, SALES_AGENT, last_hour, through=True)
    products = versions_through(spark, storage, PRODUCT, last_hour, through=True)
    offline = offline_facts_of_day(spark, storage, day)
    rows = [tuple(row) for row in b2b_units(offline, agents, products).collect()]
    return storage.exports.write_bytes(csv_bytes(rows), *storage.b2b_file(day))
