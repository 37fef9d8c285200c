"""Metastore tables whose hourly partitions are written by path and then registered.

Writing an hour replaces exactly that hour — also when the new data is empty, which dynamic
partition overwrite would silently skip — and leaves every other hour untouched, so a
partition re-run is idempotent. Each partition names its folder explicitly, so it stays right
if the lake root moves.

Every write goes to a fresh folder inside the hour's folder, and the partition is then pointed
at it: one metastore change, so a reader sees the old hour or the new one, whole, and a run
killed mid-write leaves only a folder nobody reads (the next write of the hour sweeps it). A
fresh folder is also never in Spark's file-listing cache, which would otherwise still list
the files a killed run's re-run replaced (FAILED_READ_FILE … REFRESH TABLE).
"""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass
from functools import reduce

from pyarrow import fs
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_assets.storage.failpoints import failpoint
from retail_assets.storage.hours import hour_path, hour_values, month_range
from retail_assets.storage.lake import Lake

HOUR_COLUMNS = ("ingest_date", "ingest_hour")

# The tables a session has seen to exist (with their type, once asked): each question to the
# metastore is a round trip of ~0.1 s, and an hour's writes and reads would ask it dozens of
# times. The pipeline never drops a table; `drop_table` (tests, benchmarks) forgets the one it
# drops. Weakly keyed: a session's entry goes with the session, and nothing here keeps one
# alive. (Asked with tableExists first: getTable on a missing table logs an error.)
_SEEN: weakref.WeakKeyDictionary[SparkSession, dict[str, str | None]] = weakref.WeakKeyDictionary()


def _seen(spark: SparkSession) -> dict[str, str | None]:
    return _SEEN.setdefault(spark, {})


def table_exists(spark: SparkSession, name: str) -> bool:
    seen = _seen(spark)
    if name not in seen:
        if not spark.catalog.tableExists(name):
            return False  # asked again next time
        seen[name] = None
    return True


def table_type(spark: SparkSession, name: str) -> str | None:
    """The table's type (MANAGED, EXTERNAL or VIEW); None when it does not exist."""
    if not table_exists(spark, name):
        return None
    seen = _seen(spark)
    if seen[name] is None:
        seen[name] = spark.catalog.getTable(name).tableType
    return seen[name]


def drop_table(spark: SparkSession, name: str) -> None:
    """Drop a table or view (if it exists), and forget it."""
    kind = "VIEW" if table_type(spark, name) == "VIEW" else "TABLE"
    spark.sql(f"DROP {kind} IF EXISTS {name}")
    _seen(spark).pop(name, None)


@dataclass(frozen=True)
class HourlyTable:
    """A metastore table stored at `location`, written and read one ingest hour at a time."""

    name: str  # database.table
    location: str

    def ensure(self, spark: SparkSession, frame: DataFrame) -> None:
        ensure_table(spark, self.name, self.location, frame, list(HOUR_COLUMNS))

    def write(self, spark: SparkSession, frame: DataFrame, key: str) -> str:
        """Replace hour `key` with `frame`; returns the hour's folder."""
        frame = frame.drop(*HOUR_COLUMNS)  # the partition carries them
        self.ensure(spark, frame)
        return publish_partition(
            spark, self.name, partition_spec(key), f"{self.location}/{hour_path(key)}", frame
        )

    def has_hour(self, spark: SparkSession, key: str) -> bool:
        """Whether hour `key` was written (an empty hour counts: its partition exists)."""
        if not table_exists(spark, self.name):
            return False
        shown = spark.sql(f"SHOW PARTITIONS {self.name} PARTITION ({partition_spec(key)})")
        return bool(shown.take(1))

    def newest_hour_of_day(self, spark: SparkSession, key: str) -> str | None:
        """The newest written hour (as HH) of hour `key`'s day, up to and including `key`'s
        hour; None if there is none. Lists one day's partitions only."""
        if not table_exists(spark, self.name):
            return None
        values = hour_values(key)
        shown = spark.sql(
            f"SHOW PARTITIONS {self.name} PARTITION (ingest_date='{values['ingest_date']}')"
        ).collect()
        hours = [row[0].split("ingest_hour=")[1][:2] for row in shown]
        return max((h for h in hours if h <= values["ingest_hour"]), default=None)

    def drop_day(self, spark: SparkSession, day: str) -> None:
        """Unregister and delete every hour of day `day` (YYYY-MM-DD)."""
        if not table_exists(spark, self.name):
            return
        spark.sql(f"ALTER TABLE {self.name} DROP IF EXISTS PARTITION (ingest_date='{day}')")
        lake, folder = Lake(self.location), f"ingest_date={day}"
        if lake.exists(folder):
            lake.fs.delete_dir(lake.path(folder))

    def hours(self, spark: SparkSession, key: str, *, through: bool) -> DataFrame | None:
        """Partitions before hour `key` (through=True: up to and including it); None if no table."""
        if not table_exists(spark, self.name):
            return None
        return spark.table(self.name).where(hours_before(key, through=through))

    def hour(self, spark: SparkSession, key: str) -> DataFrame:
        return self.hours_of(spark, [key])

    def month(self, spark: SparkSession, month: str) -> DataFrame:
        """Every hour of month `month` (YYYY-MM)."""
        first, after = month_range(month)
        date = F.col(HOUR_COLUMNS[0])
        return spark.table(self.name).where((date >= first) & (date < after))

    def hours_of(self, spark: SparkSession, keys: list[str]) -> DataFrame:
        """The given hours (through the metastore: an empty hour still has the schema)."""
        return spark.table(self.name).where(hours_in(keys))


# Hour filters are plain comparisons of the partition columns, which Spark hands to the
# metastore: it lists only the matching partitions. (A filter on an expression of them, such
# as concat_ws, is not pushed down: every partition of the table would be listed.)


def hours_in(keys: list[str]) -> Column:
    """The partitions of the hours `keys`."""
    by_date: dict[str, list[str]] = {}
    for key in keys:
        values = hour_values(key)
        by_date.setdefault(values["ingest_date"], []).append(values["ingest_hour"])
    date, hour = F.col(HOUR_COLUMNS[0]), F.col(HOUR_COLUMNS[1])
    return reduce(
        Column.__or__, [(date == day) & hour.isin(hours) for day, hours in by_date.items()]
    )


def hours_before(key: str, *, through: bool) -> Column:
    """The partitions before hour `key` (through=True: and `key` itself)."""
    values = hour_values(key)
    date, hour = F.col(HOUR_COLUMNS[0]), F.col(HOUR_COLUMNS[1])
    same_day = hour <= values["ingest_hour"] if through else hour < values["ingest_hour"]
    return (date < values["ingest_date"]) | ((date == values["ingest_date"]) & same_day)


def ensure_table(
    spark: SparkSession,
    name: str,
    location: str,
    frame: DataFrame,
    partitions: list[str],
    using: str = "parquet",
    properties: dict[str, str] | None = None,
) -> None:
    """A table at `location` (`using` parquet or delta) with `frame`'s columns, partitioned by
    string columns, which come last. An existing table costs no metastore call once the
    session has seen it."""
    if table_exists(spark, name):
        return
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {name.split('.')[0]}")
    data = [f for f in frame.schema.fields if f.name not in partitions]
    columns = [f"`{f.name}` {f.dataType.simpleString()}" for f in data]
    columns += [f"`{column}` string" for column in partitions]
    listed = ", ".join(f"'{key}' = '{value}'" for key, value in (properties or {}).items())
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(columns)}) USING {using} "
        f"PARTITIONED BY ({', '.join(partitions)}) LOCATION '{location}'"
        + (f" TBLPROPERTIES ({listed})" if listed else "")
    )


def add_partitions(
    spark: SparkSession, name: str, location: str, partitions: list[dict[str, str]]
) -> None:
    """Register partitions ({column: value}, in partition-column order) at their folders
    under `location` (column=value/…), the layout Spark's partitioned writes produce."""
    if not partitions:
        return
    specs = " ".join(
        "PARTITION (" + ", ".join(f"{c}='{v}'" for c, v in values.items()) + ") LOCATION '"
        + "/".join([location, *(f"{c}={v}" for c, v in values.items())]) + "'"
        for values in partitions
    )  # fmt: skip
    spark.sql(f"ALTER TABLE {name} ADD IF NOT EXISTS {specs}")


def folder_values(folder: str) -> dict[str, str]:
    """A partition folder's values: "a=1/b=2" → {"a": "1", "b": "2"} (SHOW PARTITIONS prints
    partitions the same way)."""
    return dict(part.split("=", 1) for part in folder.split("/"))


def show_partitions(spark: SparkSession, name: str, spec: str = "") -> list[dict[str, str]]:
    """The table's partitions, or those matching `spec` ("c='v'"), as {column: value}."""
    shown = spark.sql(f"SHOW PARTITIONS {name}" + (f" PARTITION ({spec})" if spec else ""))
    return [folder_values(row[0]) for row in shown.collect()]


def drop_partitions(
    spark: SparkSession, name: str, lake: Lake, partitions: list[dict[str, str]], *under: str
) -> None:
    """Unregister the partitions ({column: value}), then delete their folders, which lie
    under `lake`/`under` as column=value/… in the dict's order."""
    if not partitions:
        return
    specs = ", ".join(
        "PARTITION (" + ", ".join(f"{c}='{v}'" for c, v in p.items()) + ")" for p in partitions
    )
    spark.sql(f"ALTER TABLE {name} DROP IF EXISTS {specs}")
    for p in partitions:
        folder = [*under, *(f"{c}={v}" for c, v in p.items())]
        if lake.exists(*folder):
            lake.fs.delete_dir(lake.path(*folder))


def publish_partition(
    spark: SparkSession, name: str, spec: str, folder: str, frame: DataFrame
) -> str:
    """Write `frame` to a fresh folder under `folder`, point partition `spec` of table `name`
    at it (the one change a reader can see), then delete whatever else `folder` held: the
    version replaced and any a killed run left. Returns the folder written."""
    token = uuid.uuid4().hex[:16]
    path = f"{folder}/{token}"
    lake = Lake(folder)
    earlier = lake.fs.get_file_info(fs.FileSelector(lake.base, allow_not_found=True))
    frame.write.mode("error").parquet(path)
    failpoint(f"publish:{name}")
    point_partition(spark, name, spec, path, rewritten=bool(earlier))
    for info in earlier:
        delete = lake.fs.delete_dir if info.type == fs.FileType.Directory else lake.fs.delete_file
        delete(info.path)
    return path


def point_partition(spark: SparkSession, name: str, spec: str, path: str, rewritten: bool) -> None:
    """Register partition `spec` at `path`, or move it there: one metastore call (each costs
    ~0.2 s), chosen by whether the hour's folder held an earlier version; the other statement
    only when that guess was wrong (a killed run's folder for an hour never registered)."""
    add = f"ALTER TABLE {name} ADD PARTITION ({spec}) LOCATION '{path}'"
    move = f"ALTER TABLE {name} PARTITION ({spec}) SET LOCATION '{path}'"
    first, second = (move, add) if rewritten else (add, move)
    wrong = "PARTITIONS_NOT_FOUND" if rewritten else "PARTITIONS_ALREADY_EXIST"
    try:
        spark.sql(first)
    except AnalysisException as error:
        if error.getCondition() != wrong:
            raise
        spark.sql(second)


def partition_spec(key: str) -> str:
    return ", ".join(f"{name}='{value}'" for name, value in hour_values(key).items())


def data_files(spark: SparkSession, path: str) -> list[str]:
    """The parquet files under `path` (none when an empty frame was written there)."""
    try:
        return spark.read.parquet(path).inputFiles()
    except AnalysisException:  # "Unable to infer schema": the folder holds no data file
        return []
