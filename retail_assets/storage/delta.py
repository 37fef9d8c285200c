"""Delta Lake tables in the metastore: made, asked their version, and maintained.

Delta does the transactions (one commit per write, a killed write leaves the previous
version), the history (`DESCRIBE HISTORY`, `VERSION AS OF`, `RESTORE`) and the small files
(`OPTIMIZE`, `VACUUM`). This module only says which statements the pipeline runs.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from retail_assets.storage.tables import ensure_table, table_exists, table_type

# Deletion vectors stay off (docs/design.md §8): with them every read of a table lists its
# files for vectors, one more Spark job, and these tables are rewritten by whole periods,
# never row by row. Set here, not left to a cluster's defaults.
TABLE_PROPERTIES = {"delta.enableDeletionVectors": "false"}


def create_table(
    spark: SparkSession, name: str, location: str, frame: DataFrame, partitions: list[str]
) -> None:
    """A Delta table at `location` with `frame`'s columns (the project's one way to make a
    table, storage/tables.ensure_table); an existing table is left as it is."""
    ensure_table(spark, name, location, frame, partitions, "delta", TABLE_PROPERTIES)


def table_format(spark: SparkSession, name: str) -> str | None:
    """ "delta", "parquet", … or "view"; None when there is no such table."""
    kind = table_type(spark, name)
    if kind in (None, "VIEW"):
        return kind and "view"
    return spark.sql(f"DESCRIBE DETAIL {name}").first()["format"]


def latest_version(spark: SparkSession, name: str) -> int | None:
    """The table's newest version; None when there is no table yet."""
    if not table_exists(spark, name):
        return None
    return spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").first()["version"]


def optimize(spark: SparkSession, name: str, where: str) -> dict:
    """Compact the small files of the partitions `where` selects into as few as Delta's
    target size allows; partitions already one file are left alone. Delta's metrics."""
    done = spark.sql(f"OPTIMIZE {name} WHERE {where}").first()
    metrics = done["metrics"]
    return {"files_added": metrics["numFilesAdded"], "files_removed": metrics["numFilesRemoved"]}


def vacuum(spark: SparkSession, name: str, retain_hours: int) -> None:
    """Delete the files no version of the last `retain_hours` reads: time travel reaches that
    far back, and no further. Delta refuses less than the table's
    `delta.deletedFileRetentionDuration` (7 days unless set)."""
    spark.sql(f"VACUUM {name} RETAIN {retain_hours} HOURS")
