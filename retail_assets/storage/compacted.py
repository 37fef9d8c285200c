"""Hourly tables whose closed months are compacted: a bounded metastore after years of hours.

    <name>          a view: the open months' hours ∪ the compacted months (what users query)
    <name>_hours    <location>/hours/ingest_date=…/ingest_hour=…/   one partition and file per hour
    <name>_months   <location>/months/ingest_month=…/version=…/<sub>=…/
                    one partition per closed month and `sub` value (e.g. transaction_month),
                    ingest_date and ingest_hour kept as columns

A year is then ~800 hour partitions plus 12 × (values of `sub`) month partitions, instead of
8,760 × (values of `sub`). A month is compacted once the hours written are a few days past
its end (`hours.closed_before`: re-runs of recent hours stay hour-sized). Every change of
compacted history (compacting a month, or re-writing an hour of a compacted month) writes a
new *version* of the month into fresh folders, then replaces the view, whose text names the
one version of each month: a single metastore change, so a reader sees the old month or the
new one, whole. Only then is what the view no longer shows dropped. A run killed anywhere
leaves at most folders and partitions the view does not show; the next change sweeps them.

The view adds one column, `ingest_month`: filters on it prune the months, and the readers
below add it to every hour filter so a compacted hour reads one month's folders.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_assets.storage.hours import closed_before, hour_values, month_of, month_range
from retail_assets.storage.lake import Lake
from retail_assets.storage.tables import (
    HOUR_COLUMNS,
    HourlyTable,
    add_partitions,
    data_files,
    drop_partitions,
    ensure_table,
    hours_before,
    hours_in,
    show_partitions,
    table_exists,
    table_type,
)

MONTH, VERSION = "ingest_month", "version"
VERSIONS_PROPERTY = "retail.month_versions"  # on the view: {month: version}


@dataclass(frozen=True)
class CompactedTable:
    """An hourly table (`name` is the view) whose closed months are compacted by `sub`."""

    name: str  # database.table
    location: str
    sub: str  # history partition column under each month, e.g. transaction_month
    sort_by: str  # rows sorted by it inside each file, so its filters skip row groups

    @property
    def recent(self) -> HourlyTable:
        return HourlyTable(f"{self.name}_hours", f"{self.location}/hours")

    @property
    def months_name(self) -> str:
        return f"{self.name}_months"

    @property
    def months_location(self) -> str:
        return f"{self.location}/months"

    # ------------------------------------------------------------------ reads

    def hour(self, spark: SparkSession, key: str) -> DataFrame:
        return self.hours_of(spark, [key])

    def hours_of(self, spark: SparkSession, keys: list[str]) -> DataFrame:
        months = sorted({month_of(key) for key in keys})
        return spark.table(self.name).where(F.col(MONTH).isin(months) & hours_in(keys))

    def hours(self, spark: SparkSession, key: str, *, through: bool) -> DataFrame | None:
        """Hours before hour `key` (through=True: and `key`); None if there is no table yet."""
        if not table_exists(spark, self.name):
            return None
        before = (F.col(MONTH) <= month_of(key)) & hours_before(key, through=through)
        return spark.table(self.name).where(before)

    def day(self, spark: SparkSession, day: str) -> DataFrame:
        """Every hour of ingest day `day` (YYYY-MM-DD)."""
        return spark.table(self.name).where(
            (F.col(MONTH) == day[:7]) & (F.col(HOUR_COLUMNS[0]) == day)
        )

    def versions(self, spark: SparkSession) -> dict[str, str]:
        """The compacted months and the version of each the view shows."""
        if not table_exists(spark, self.name):
            return {}
        shown = spark.sql(f"SHOW TBLPROPERTIES {self.name} ('{VERSIONS_PROPERTY}')").collect()
        value = shown[0]["value"] if shown else ""
        return json.loads(value) if value.startswith("{") else {}

    # ------------------------------------------------------------------ writes

    def write(self, spark: SparkSession, frame: DataFrame, key: str) -> None:
        """Replace hour `key` with `frame`, then compact the months that are due."""
        frame = frame.drop(*HOUR_COLUMNS)
        self._ensure(spark, frame)
        versions = self.versions(spark)
        month = month_of(key)
        if versions and month <= max(versions):  # history: a new version of the month
            values = hour_values(key)
            others = ~((F.col(HOUR_COLUMNS[0]) == values["ingest_date"])
                       & (F.col(HOUR_COLUMNS[1]) == values["ingest_hour"]))  # fmt: skip
            kept = self._month_rows(spark, month).where(others)
            hour = frame.select("*", *[F.lit(v).alias(c) for c, v in values.items()])
            versions = self._publish(spark, {month: kept.unionByName(hour)}, versions)
        else:
            recent = frame.repartition(1).sortWithinPartitions(self.sort_by)
            self.recent.write(spark, recent, key)
        self.compact(spark, key, versions)

    def compact(
        self, spark: SparkSession, key: str, versions: dict[str, str] | None = None
    ) -> list[str]:
        """Compact every month of hours closed GRACE_DAYS before hour `key`; the months done.
        Also drops what an interrupted change left that the view does not show. `versions`:
        the months the view shows, when the caller has just read them."""
        versions = self.versions(spark) if versions is None else versions
        hours = show_partitions(spark, self.recent.name)
        closed = closed_before(key)
        due = sorted({p["ingest_date"][:7] for p in hours} - set(versions))
        due = [month for month in due if month < closed]
        if due:
            months = {month: self.recent.month(spark, month) for month in due}
            versions = self._publish(spark, months, versions)
        self._sweep(spark, versions, hours)
        return due

    # ------------------------------------------------------------------ internals

    def _month_rows(self, spark: SparkSession, month: str) -> DataFrame:
        return spark.table(self.name).where(F.col(MONTH) == month).drop(MONTH)

    def _publish(
        self, spark: SparkSession, months: dict[str, DataFrame], versions: dict[str, str]
    ) -> dict[str, str]:
        """Write each month's rows as a new version, then show them (one view change); the
        versions now shown."""
        new = dict(versions)
        for month, rows in months.items():
            new[month] = uuid.uuid4().hex[:12]
            self._write_version(spark, month, new[month], rows)
        self._replace_view(spark, new)
        return new

    def _write_version(self, spark: SparkSession, month: str, version: str, rows: DataFrame):
        path = f"{self.months_location}/{MONTH}={month}/{VERSION}={version}"
        layout = rows.repartition(self.sub).sortWithinPartitions(self.sort_by)
        layout.write.mode("overwrite").partitionBy(self.sub).parquet(path)
        prefix = f"{self.sub}="
        subs = sorted({f.rsplit("/", 2)[-2] for f in data_files(spark, path) if prefix in f})
        add_partitions(spark, self.months_name, self.months_location, [
            {MONTH: month, VERSION: version, self.sub: s[len(prefix):]} for s in subs
        ])  # fmt: skip

    def _sweep(
        self, spark: SparkSession, versions: dict[str, str], hours: list[dict[str, str]]
    ) -> None:
        """Drop month versions the view does not show, and the hours of compacted months."""
        lake = Lake(self.location)
        for month in lake.list_names("months"):
            shown = versions.get(month.removeprefix(f"{MONTH}="))
            for version in lake.list_names("months", month):
                if version != f"{VERSION}={shown}":
                    spec = f"{MONTH}='{month.split('=')[1]}', {VERSION}='{version.split('=')[1]}'"
                    spark.sql(f"ALTER TABLE {self.months_name} DROP IF EXISTS PARTITION ({spec})")
                    lake.fs.delete_dir(lake.path("months", month, version))
        stale = [p for p in hours if p["ingest_date"][:7] in versions]
        drop_partitions(spark, self.recent.name, lake, stale, "hours")

    def _ensure(self, spark: SparkSession, frame: DataFrame) -> None:
        """The two tables and the view, on the first write."""
        kind = table_type(spark, self.name)
        if kind is not None:
            if kind != "VIEW":
                raise RuntimeError(
                    f"{self.name} is a table of the layout before compacted facts. Drop it "
                    f"(DROP TABLE {self.name}) and its folder {self.location}, then re-run the "
                    "hours from raw (docs/runbook.md, backfill a range of hours)."
                )
            return
        self.recent.ensure(spark, frame)
        with_hours = frame.select("*", *[F.lit("").alias(c) for c in HOUR_COLUMNS])
        ensure_table(spark, self.months_name, self.months_location, with_hours,
                     [MONTH, VERSION, self.sub])  # fmt: skip
        self._replace_view(spark, {})

    def _replace_view(self, spark: SparkSession, versions: dict[str, str]) -> None:
        columns = ", ".join(f"`{c}`" for c in spark.table(self.recent.name).columns)
        shown = " OR ".join(
            f"({MONTH} = '{month}' AND {VERSION} = '{version}')"
            for month, version in sorted(versions.items())
        )
        first_open = month_range(max(versions))[1] if versions else "0000-00-00"
        spark.sql(
            f"CREATE OR REPLACE VIEW {self.name} "
            f"TBLPROPERTIES ('{VERSIONS_PROPERTY}' = '{json.dumps(versions, sort_keys=True)}') AS "
            f"SELECT {columns}, substr(ingest_date, 1, 7) AS {MONTH} FROM {self.recent.name} "
            f"WHERE ingest_date >= '{first_open}' "
            f"UNION ALL SELECT {columns}, {MONTH} FROM {self.months_name} WHERE {shown or 'false'}"
        )
