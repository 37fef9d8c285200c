"""What an hourly write costs as a Delta commit against today's parquet publish (issue 36).

The same 1,500-row hour frame, on the same Connect server: written WRITES times by
`storage/tables.publish_partition` (a fresh folder, then one partition switch: today's
write), then as a Delta commit (`replaceWhere` on the hour) under each candidate layout and
setting, each on a table of its own. The first write of each kind warms up and is left out.
Then what a day's maintenance costs on the Delta table: `OPTIMIZE` of the day, `VACUUM`.

Headline: Delta write / parquet publish with the session's settings, by day. No goal: this
decides the layout and settings; p1, p2, p4 and p6 measure what the pipeline pays.

Usage: python -m bench.delta_write_cost [--quick]
"""

from __future__ import annotations

import statistics
import time
import uuid

from bench.harness import Bench, headline, main, say

ROWS = 1_500
DAY = "2025-08-01"
CANDIDATES = {  # name: (partition columns, session settings changed for it)
    "delta by day, Delta's default snapshotPartitions": (
        "ingest_date",
        {"spark.databricks.delta.snapshotPartitions": "50"},
    ),
    "delta by day (the session's settings)": ("ingest_date", {}),
    "delta by day and hour": ("ingest_date, ingest_hour", {}),
}


def seconds(action) -> float:
    began = time.monotonic()
    action()
    return time.monotonic() - began


def measure(bench: Bench, quick: bool) -> dict:
    from retail_assets.resources import spark_session
    from retail_assets.storage.tables import HourlyTable

    writes = 4 if quick else 8
    lake = bench.settings.lake_root
    figures: dict[str, float] = {}
    with bench.servers():
        spark = spark_session(bench.settings)
        spark.sql("CREATE DATABASE IF NOT EXISTS bench_delta")

        def hour(n: int):
            return spark.range(ROWS).selectExpr(
                "id", "cast(id AS string) AS v", f"'{DAY}' AS ingest_date",
                f"'{n % 4:02d}' AS ingest_hour",
            )  # fmt: skip

        parquet = HourlyTable("bench_delta.parquet_hours", f"{lake}/parquet_hours")
        writers = {
            "parquet publish": lambda n: parquet.write(spark, hour(n), f"{DAY}-{n % 4:02d}:00")
        }
        tables = {}
        for label, (partitions, settings) in CANDIDATES.items():
            name = tables[label] = f"bench_delta.t_{uuid.uuid4().hex[:8]}"
            spark.sql(
                f"CREATE TABLE {name} (id bigint, v string, ingest_date string, ingest_hour "
                f"string) USING delta PARTITIONED BY ({partitions}) LOCATION '{lake}/{name}'"
            )
            writers[label] = lambda n, name=name, settings=settings: commit(name, n, settings)

        def commit(name: str, n: int, settings: dict[str, str]) -> None:
            before = {key: spark.conf.get(key) for key in settings}
            for key, value in settings.items():
                spark.conf.set(key, value)
            where = f"ingest_date = '{DAY}' AND ingest_hour = '{n % 4:02d}'"
            (hour(n).write.format("delta").mode("overwrite")
             .option("replaceWhere", where).saveAsTable(name))  # fmt: skip
            for key, value in before.items():
                spark.conf.set(key, value)

        # Round by round, every writer once a round: none gains from a server warmed by another.
        times: dict[str, list[float]] = {label: [] for label in writers}
        for n in range(writes):
            for label, write in writers.items():
                times[label].append(seconds(lambda write=write, n=n: write(n)))
        for label, taken in times.items():
            figures[label] = statistics.median(taken[1:])
            say(f"  {label}: {figures[label]:.2f}s")
        day_table = tables["delta by day (the session's settings)"]
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        figures["optimize a day"] = seconds(
            lambda: spark.sql(f"OPTIMIZE {day_table} WHERE ingest_date = '{DAY}'").collect()
        )
        figures["vacuum"] = seconds(
            lambda: spark.sql(f"VACUUM {day_table} RETAIN 0 HOURS").collect()
        )
        say(f"  optimize {figures['optimize a day']:.2f}s, vacuum {figures['vacuum']:.2f}s")
    ratio = figures["delta by day (the session's settings)"] / figures["parquet publish"]
    return {
        "headlines": [
            headline(
                "delta write / parquet publish, 1,500 rows, by day", round(ratio, 2), "", None
            ),  # fmt: skip
        ],
        "seconds": {label: round(value, 3) for label, value in figures.items()},
        "rows": ROWS,
        "writes": writes,
    }


if __name__ == "__main__":
    main("delta_write_cost", measure)
