"""Streaming tables whose closed periods are compacted: partitions and files stay bounded however
many micro-batches have landed.

    <name>            a view: the compacted periods ∪ the batches not compacted (users query it)
    <name>_batches    <location>/<periods>=…/batch_id=N/        what each micro-batch writes
    <name>_compacted  <location>_compacted/run=R/<periods>=…/   one partition, one file per period

A micro-batch adds a partition to every period it touches (an event hour, a window date), so a
pass every 30 s would add ~100,000 small partitions a year. Once per period of wall-clock time,
the periods that ended GRACE before now are compacted as run R+1: each period's batches, with
its earlier compacted rows when late events came, are written as one file per period. Then the
view is replaced, in one metastore change, to show

    the compacted rows of runs ≤ R+1, except the versions that run superseded,
    ∪ the batches, except those of periods before the cutoff with batch ids ≤ the last commit.

Only then is what the view no longer shows dropped. A run killed between these steps leaves
partitions the view does not show; the next compaction sweeps them first. The view's state
(run, cutoff, batch, superseded) is a property of the view, so it changes with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from retail_assets.storage.lake import Lake
from retail_assets.storage.tables import (
    add_partitions,
    data_files,
    drop_partitions,
    ensure_table,
    folder_values,
    show_partitions,
)

GRACE = timedelta(hours=2)  # late events of a period this long after its end stay batches
BATCH, RUN = "batch_id", "run"
STATE_PROPERTY = "retail.compaction"
NOTHING_COMPACTED = {"run": 0, "cutoff": "", "batch": -1, "superseded": []}


@dataclass(frozen=True)
class StreamTable:
    """A table a streaming query appends to by micro-batch (`name` is the view)."""

    name: str  # database.table
    location: str  # the batches' folder (the layout before compaction, so old homes keep it)
    periods: tuple[str, ...]  # the partition columns that name a period, coarsest first
    period_format: str  # strftime of a period's values joined by "/", e.g. "%Y-%m-%d/%H"
    sort_by: str  # rows sorted by it inside each compacted file

    @property
    def batches_name(self) -> str:
        return f"{self.name}_batches"

    @property
    def compacted_name(self) -> str:
        return f"{self.name}_compacted"

    @property
    def compacted_location(self) -> str:
        return f"{self.location}_compacted"

    @property
    def batch_columns(self) -> list[str]:
        return [*self.periods, BATCH]

    def ensure(self, spark: SparkSession, frame: DataFrame) -> None:
        """The two tables and the view, before a query writes; `frame` has the batch's columns.
        A home of the layout before compaction has the batches table under the view's name:
        it is renamed (its folder stays), so no landed event is lost."""
        if self._is_view(spark):
            return
        if spark.catalog.tableExists(self.name):
            spark.sql(f"ALTER TABLE {self.name} RENAME TO {self.batches_name}")
        ensure_table(spark, self.batches_name, self.location, frame, self.batch_columns)
        data = frame.select(*[c for c in frame.columns if c not in self.periods], *self.periods)
        compacted = data.withColumn(RUN, F.lit(""))
        ensure_table(spark, self.compacted_name, self.compacted_location, compacted,
                     [RUN, *self.periods])  # fmt: skip
        self._replace_view(spark, NOTHING_COMPACTED)

    def state(self, spark: SparkSession) -> dict:
        shown = spark.sql(f"SHOW TBLPROPERTIES {self.name} ('{STATE_PROPERTY}')").collect()
        value = shown[0]["value"] if shown else ""
        return json.loads(value) if value.startswith("{") else dict(NOTHING_COMPACTED)

    def compact(self, spark: SparkSession, last_batch: int | None, now: datetime) -> list[str]:
        """Compact the periods that ended GRACE before `now`, once per period of `now`, with
        the batches up to `last_batch` (the query's last commit); the periods compacted."""
        if last_batch is None or not self._is_view(spark):  # nothing written in this layout yet
            return []
        state = self.state(spark)
        cutoff = (now - GRACE).strftime(self.period_format)
        if cutoff <= state["cutoff"]:
            return []
        self._sweep(spark, state)
        due = sorted({self._key(p) for p in show_partitions(spark, self.batches_name)
                      if self._key(p) < cutoff and int(p[BATCH]) <= last_batch})  # fmt: skip
        run = state["run"] + 1
        if due:
            self._write_run(spark, run, due, last_batch)
        new = {"run": run, "cutoff": cutoff, "batch": last_batch,
               "superseded": self._shown_runs(spark, due, below=run)}  # fmt: skip
        self._replace_view(spark, new)
        self._sweep(spark, new)
        return due

    # ------------------------------------------------------------------ internals

    def _is_view(self, spark: SparkSession) -> bool:
        exists = spark.catalog.tableExists(self.name)
        return exists and spark.catalog.getTable(self.name).tableType == "VIEW"

    def _key(self, partition: dict[str, str]) -> str:
        return "/".join(partition[c] for c in self.periods)

    def _period_key(self) -> Column:
        return F.concat_ws("/", *self.periods)

    def _write_run(self, spark: SparkSession, run: int, due: list[str], last_batch: int) -> None:
        """The due periods as the view shows them (batches up to `last_batch`), one file each."""
        firsts = sorted({key.split("/")[0] for key in due})  # a filter the metastore serves
        rows = spark.table(self.name).where(
            F.col(self.periods[0]).isin(firsts)
            & self._period_key().isin(due)
            & (F.col(BATCH).cast("int") <= last_batch)
        )
        layout = rows.repartition(*self.periods).sortWithinPartitions(self.sort_by)
        layout.write.mode("overwrite").partitionBy(*self.periods).parquet(self._run_uri(run))
        add_partitions(spark, self.compacted_name, self.compacted_location,
                       self._run_partitions(spark, run))  # fmt: skip

    def _run_uri(self, run: int | str) -> str:
        return f"{self.compacted_location}/{RUN}={run}"

    def _run_partitions(self, spark: SparkSession, run: int | str) -> list[dict[str, str]]:
        """The partitions run `run` wrote, from its files, in partition-column order."""
        folders = {f.split(f"/{RUN}={run}/", 1)[1].rsplit("/", 1)[0]
                   for f in data_files(spark, self._run_uri(run))}  # fmt: skip
        return [{RUN: str(run), **folder_values(folder)} for folder in sorted(folders)]

    def _shown_runs(self, spark: SparkSession, due: list[str], below: int) -> list[list[str]]:
        """[period values…, run] of the compacted versions of `due` periods before run `below`."""
        first, older = self.periods[0], []
        for value in sorted({key.split("/")[0] for key in due}):
            for p in show_partitions(spark, self.compacted_name, f"{first}='{value}'"):
                if self._key(p) in due and int(p[RUN]) < below:
                    older.append([*(p[c] for c in self.periods), p[RUN]])
        return older

    def _sweep(self, spark: SparkSession, state: dict) -> None:
        """Drop what the view of `state` does not show: runs after its run (a compaction cut
        short), the versions it superseded, and the batches it compacted."""
        lake = Lake(self.compacted_location)
        unfinished = [
            name.split("=", 1)[1]
            for name in lake.list_names()
            if name.startswith(f"{RUN}=") and int(name.split("=", 1)[1]) > state["run"]
        ]
        stale = [  # [period values…, run] → {run, periods…}: the folders' order
            {RUN: values[-1], **dict(zip(self.periods, values[:-1], strict=True))}
            for values in state["superseded"]
        ]
        stale += [p for run in unfinished for p in self._run_partitions(spark, run)]
        drop_partitions(spark, self.compacted_name, lake, stale)
        for run in unfinished:
            lake.fs.delete_dir(lake.path(f"{RUN}={run}"))
        compacted = [
            p
            for p in show_partitions(spark, self.batches_name)
            if self._key(p) < state["cutoff"] and int(p[BATCH]) <= state["batch"]
        ]
        drop_partitions(spark, self.batches_name, Lake(self.location), compacted)

    def _replace_view(self, spark: SparkSession, state: dict) -> None:
        data = [c for c in spark.table(self.batches_name).columns if c not in self.batch_columns]
        columns = ", ".join(f"`{c}`" for c in [*data, *self.batch_columns])
        superseded = " OR ".join(
            "(" + " AND ".join(f"{c} = '{v}'" for c, v in zip([*self.periods, RUN], values,
                                                                strict=True)) + ")"
            for values in state["superseded"]
        )  # fmt: skip
        spark.sql(
            f"CREATE OR REPLACE VIEW {self.name} "
            f"TBLPROPERTIES ('{STATE_PROPERTY}' = '{json.dumps(state, sort_keys=True)}') AS "
            f"SELECT {columns} FROM {self.compacted_name} "
            f"WHERE CAST({RUN} AS INT) <= {state['run']} AND NOT ({superseded or 'false'}) "
            f"UNION ALL SELECT {columns} FROM {self.batches_name} "
            f"WHERE NOT (concat_ws('/', {', '.join(self.periods)}) < '{state['cutoff']}' "
            f"AND CAST({BATCH} AS INT) <= {state['batch']})"
        )


def batch_writer(table: str, location: str, columns: list[str]):
    """foreachBatch sink: replace this batch's partitions, then register the folders written.

    The folders come from an observation on the write itself: no cached copy of the batch and
    no second job over it (that would read Kafka again). Spark's Python worker unpickles this
    function at each query start, importing this module: it must not import Dagster."""

    def write(frame: DataFrame, batch_id: int) -> None:
        folders = Observation()
        rows = frame.withColumn(BATCH, F.lit(str(batch_id))).observe(
            folders, folder_list(columns).alias("folders")
        )
        (rows.write.mode("overwrite").option("partitionOverwriteMode", "dynamic")
         .partitionBy(*columns).parquet(location))  # fmt: skip
        add_partitions(frame.sparkSession, table, location, parse_folders(folders.get["folders"]))

    return write


def folder_list(columns: list[str]):
    """The distinct partition folders (c=v/…) of a frame, as one string: Spark Connect's
    observed metrics carry no arrays."""
    folder = F.concat_ws("/", *[F.concat(F.lit(f"{c}="), F.col(c)) for c in columns])
    return F.array_join(F.array_sort(F.collect_set(folder)), ",")


def parse_folders(listed: str | None) -> list[dict[str, str]]:
    return [folder_values(folder) for folder in (listed or "").split(",") if folder]
