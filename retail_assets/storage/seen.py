"""The values of one column seen so far in an hourly table, kept as a compacted index.

Questions like "which of this hour's ids arrived before?" read every earlier hour of their
table: a year is 8,760 partitions and files to list and open for one small hour. The index
holds the same values once more, in one string-partitioned table (`slot`):

    slot=2025-06-14T03   one partition per hour of the open months (hours.closed_before)
    slot=2025-05         one partition per closed month, compacted from its hours

so a lookup lists at most ~800 hour partitions plus one per month. Each row keeps the hour it
arrived in (`arrived`, the hour's slot), so "before hour H" is exact at either grain, and
`slot < H's slot` is a plain comparison the metastore filters by ('2025-05' sorts before
every hour of June). Readers only anti-join against the index, so a value present twice for a
moment (a month written, its hours not yet dropped) changes no answer.

The source table stays the truth: a month is compacted from its hours there, and re-writing
an hour of a compacted month re-compacts that month from the source.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_assets.storage.hours import closed_before, hour_of, key_at
from retail_assets.storage.lake import Lake
from retail_assets.storage.tables import (
    HourlyTable,
    add_partitions,
    ensure_table,
    publish_partition,
    table_exists,
)


def hour_slot(key: str) -> str:
    return f"{hour_of(key):%Y-%m-%dT%H}"


@dataclass(frozen=True)
class SeenIndex:
    """Values of `column` in `source`, by the hour they arrived in, hours compacted to months."""

    name: str  # database.table
    location: str
    source: HourlyTable
    column: str

    def before(self, spark: SparkSession, key: str, *, through: bool = False) -> DataFrame | None:
        """The values that arrived before hour `key` (through=True: and in it), one column;
        None if there is no source yet."""
        rows = self._arrived_before(spark, key, through)
        return None if rows is None else rows.select(self.column)

    def arrival_hours(self, spark: SparkSession, key: str, values: DataFrame) -> list[str]:
        """The hours before `key` in which the values of `values` (a frame of `column`)
        arrived: where to find their first arrivals in the source, without reading history."""
        rows = self._arrived_before(spark, key, through=False)
        if rows is None:
            return []
        hours = rows.join(values.distinct(), self.column, "left_semi").select("arrived").distinct()
        return sorted(key_at(*row.arrived.split("T")) for row in hours.collect())

    def _arrived_before(self, spark: SparkSession, key: str, through: bool) -> DataFrame | None:
        if not table_exists(spark, self.name):
            if not table_exists(spark, self.source.name):
                return None
            self.rebuild(spark, key)  # a home from before the index: built once from the source
        slot = hour_slot(key)
        arrived = F.col("arrived") <= slot if through else F.col("arrived") < slot
        return spark.table(self.name).where((F.col("slot") <= slot) & arrived)

    def add_hour(self, spark: SparkSession, key: str) -> None:
        """Index hour `key` as the source now holds it, then compact what is due."""
        slot = hour_slot(key)
        values = self._rows(self.source.hour(spark, key))
        ensure_table(spark, self.name, self.location, values, ["slot"])
        publish_partition(
            spark, self.name, f"slot='{slot}'", f"{self.location}/slot={slot}", values
        )
        self.compact(spark, key)

    def compact(self, spark: SparkSession, key: str) -> list[str]:
        """Compact every month with hour partitions that is closed at hour
        `key`, or that was compacted before (an hour of it was re-written); the months done."""
        slots = self.slots(spark)
        closed = closed_before(key)
        months = sorted({s[:7] for s in slots if "T" in s})
        due = [m for m in months if m < closed or m in slots]
        for month in due:
            self.compact_month(spark, month, [s for s in slots if s.startswith(f"{month}-")])
        return due

    def compact_month(self, spark: SparkSession, month: str, hours: list[str]) -> None:
        """Rewrite `month` from the source into a fresh folder, switch its one partition to it
        (a single metastore change), then drop the month's hour partitions."""
        rows = self._rows(self.source.month(spark, month)).coalesce(1)
        publish_partition(
            spark, self.name, f"slot='{month}'", f"{self.location}/slot={month}", rows
        )
        lake = Lake(self.location)
        if hours:
            drops = ", ".join(f"PARTITION (slot='{s}')" for s in hours)
            spark.sql(f"ALTER TABLE {self.name} DROP IF EXISTS {drops}")
            for slot in hours:
                lake.fs.delete_dir(lake.path(f"slot={slot}"))

    def rebuild(self, spark: SparkSession, key: str) -> None:
        """Build the index from every hour of the source before `key`: hour partitions for
        the recent hours, then the closed months compacted."""
        rows = self.source.hours(spark, key, through=False)  # a filter the metastore serves
        indexed = self._rows(rows).withColumn("slot", F.col("arrived"))
        ensure_table(spark, self.name, self.location, indexed, ["slot"])
        indexed.write.mode("overwrite").partitionBy("slot").parquet(self.location)
        written = [n for n in Lake(self.location).list_names() if n.startswith("slot=")]
        add_partitions(spark, self.name, self.location, [{"slot": n[5:]} for n in written])
        self.compact(spark, key)

    def slots(self, spark: SparkSession) -> list[str]:
        """Every partition of the index (bounded: the open months' hours and one per month)."""
        return [
            row[0].split("=", 1)[1] for row in spark.sql(f"SHOW PARTITIONS {self.name}").collect()
        ]

    def _rows(self, rows: DataFrame) -> DataFrame:
        arrived = F.concat_ws("T", "ingest_date", "ingest_hour").alias("arrived")
        return rows.select(self.column, arrived)
