"""Streaming tables: Delta tables that a streaming query appends to through Delta's own sink.

Delta's sink commits each micro-batch as one table version that records the query's id and
the batch's number. A batch a killed run left planned is run again with the same offsets,
and Delta skips it if its commit had landed: each event lands once, with no bookkeeping of
ours. A batch adds a file to each day it touches; the daily maintenance job compacts closed
days (`OPTIMIZE`) and deletes replaced files (`VACUUM`), so files stay bounded by days, not
batches (orchestration/maintenance.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter

from retail_assets.storage.delta import create_table, table_format


class OldLayoutError(RuntimeError):
    """The home holds a table of the layout before Delta Lake: it is not read as if it were."""


@dataclass(frozen=True)
class StreamTable:
    """A Delta table a streaming query appends to, partitioned by day (`day_column`)."""

    name: str  # database.table
    location: str
    day_column: str

    def sink(self, stream: DataFrame, checkpoint: str) -> DataStreamWriter:
        """`stream` appended to this table by Delta's sink, its progress in `checkpoint`; the
        table is made first."""
        create_table(stream.sparkSession, self.name, self.location, stream, [self.day_column])
        return (
            stream.writeStream.format("delta")
            .outputMode("append")
            .option("checkpointLocation", checkpoint)
            .option("path", self.location)
        )

    def refuse_old_layout(self, spark: SparkSession) -> None:
        """A home from before Delta has this name as a view over parquet batches, or (older
        still) a parquet table, and a checkpoint whose offsets those hold: appending to a
        new table from there would lose what they landed. docs/runbook.md moves them aside.
        Asked at the start of every pass, also one with nothing new to land."""
        found = table_format(spark, self.name)
        if found not in (None, "delta"):
            raise OldLayoutError(
                f"{self.name} is of the streaming layout before Delta Lake (a {found}), and its "
                "checkpoint points past the events it holds. Move that layout aside first "
                "(docs/runbook.md, 'A home from before Delta Lake'); nothing is read or "
                "written until then."
            )
