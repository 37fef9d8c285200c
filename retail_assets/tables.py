"""Metastore tables whose hourly partitions are written by path and then registered.

Writing one hour's folder with mode("overwrite") replaces exactly that hour — also when the
new data is empty, which dynamic partition overwrite would silently skip — and leaves every
other hour untouched, so a partition re-run is idempotent.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from retail_assets.partitions import hour_path, hour_values

LAKE_DB = "retail_lake"
DWH_DB = "retail_dwh"
HOUR_COLUMNS = ("ingest_date", "ingest_hour")


def ensure_hourly_table(spark: SparkSession, table: str, frame: DataFrame, location: str) -> None:
    """An external parquet table partitioned by ingest_date/ingest_hour at `location`."""
    database = table.split(".")[0]
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
    columns = [f"`{f.name}` {f.dataType.simpleString()}" for f in frame.schema.fields]
    columns += [f"`{name}` string" for name in HOUR_COLUMNS]
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)}) USING parquet "
        f"PARTITIONED BY ({', '.join(HOUR_COLUMNS)}) LOCATION '{location}'"
    )


def overwrite_hour(
    spark: SparkSession, table: str, frame: DataFrame, location: str, key: str
) -> str:
    """Replace hour `key` of `table` with `frame`; returns the hour's folder."""
    ensure_hourly_table(spark, table, frame, location)
    path = f"{location}/{hour_path(key)}"
    frame.write.mode("overwrite").parquet(path)
    spec = ", ".join(f"{name}='{value}'" for name, value in hour_values(key).items())
    # The partition names its folder explicitly, so it stays right if the lake root moves.
    spark.sql(f"ALTER TABLE {table} ADD IF NOT EXISTS PARTITION ({spec}) LOCATION '{path}'")
    spark.sql(f"ALTER TABLE {table} PARTITION ({spec}) SET LOCATION '{path}'")
    return path
