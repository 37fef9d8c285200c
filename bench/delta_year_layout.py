"""Does an hour on a Delta table cost after a year what it costs on a fresh one? Per layout.

The layout of the hourly tables on Delta is open (docs/design.md §8): by `ingest_date` (an
hour a `replaceWhere` on two columns; the daily maintenance makes a closed day one file, so
a year is ~365 files) or by `ingest_date` and `ingest_hour` (an hour a partition of its own:
8,760 files a year, which no maintenance can merge). What grows with history is the table's
state (its files, in the log's checkpoint), not its commits: so the year is seeded as a
month per commit, laid out as the maintained table would be, and the log checkpointed.

Then, round by round, alternating a fresh table (two hours) and the year's table of the
same layout, on one server: an hour written (`replaceWhere`), an hour counted, a day's newest
hour asked. Medians after a warm-up round; the ratio year / fresh per layout.

Usage: python -m bench.delta_year_layout [--quick]   (quick: 1,000 hours of history)
"""

from __future__ import annotations

import statistics
import time

from bench.harness import Bench, headline, main, say

ROWS = 300  # per hour
FIRST = "2024-08-01"  # history's first hour; the hours timed come after it
LAYOUTS = {"by day": ("ingest_date",), "by day and hour": ("ingest_date", "ingest_hour")}
COLUMNS = "id bigint, v string, ingest_date string, ingest_hour string"


def hours_frame(spark, first_hour: int, hours: int):
    """`hours` hours of ROWS rows from hour `first_hour` after FIRST 00:00."""
    at = f"timestamp'{FIRST} 00:00:00' + make_interval(0, 0, 0, 0, cast(id DIV {ROWS} AS int))"
    return spark.range(first_hour * ROWS, (first_hour + hours) * ROWS).selectExpr(
        "id", "cast(id AS string) AS v", f"date_format({at}, 'yyyy-MM-dd') AS ingest_date",
        f"date_format({at}, 'HH') AS ingest_hour",
    )  # fmt: skip


def seconds(action) -> float:
    began = time.monotonic()
    action()
    return time.monotonic() - began


def measure(bench: Bench, quick: bool) -> dict:
    from retail_assets.resources import spark_session

    history, rounds = (1_000, 5) if quick else (8_760, 7)
    lake = bench.settings.lake_root
    with bench.servers():
        spark = spark_session(bench.settings)
        spark.sql("CREATE DATABASE IF NOT EXISTS bench_layout")

        def table(label: str, kind: str, hours: int) -> str:
            """A table of `hours` hours of history, laid out as maintained; its name."""
            name = f"bench_layout.{kind}_{'_'.join(LAYOUTS[label])}"
            spark.sql(f"CREATE TABLE {name} ({COLUMNS}) USING delta PARTITIONED BY "
                      f"({', '.join(LAYOUTS[label])}) LOCATION '{lake}/{name}'")  # fmt: skip
            began = time.monotonic()
            for start in range(0, hours, 24 * 30):  # a month per commit
                rows = hours_frame(spark, start, min(24 * 30, hours - start))
                laid_out = rows.repartition(*LAYOUTS[label])  # a file per partition, as maintained
                laid_out.write.format("delta").mode("append").saveAsTable(name)
            files = spark.sql(f"DESCRIBE DETAIL {name}").first()["numFiles"]
            say(
                f"  {name}: {hours} hours, {files} files, seeded in {time.monotonic() - began:.0f}s"
            )
            return name

        tables = {
            label: {"fresh": table(label, "fresh", 2), "year": table(label, "year", history)}
            for label in LAYOUTS
        }
        day = hours_frame(spark, history, 1).first()["ingest_date"]  # the open day timed

        def ops(name: str, n: int) -> dict[str, float]:
            hour = f"{n % 24:02d}"
            where = f"ingest_date = '{day}' AND ingest_hour = '{hour}'"
            rows = hours_frame(spark, history, 1).selectExpr(
                "id", "v", "ingest_date", f"'{hour}' AS ingest_hour"
            )
            return {
                "write an hour": seconds(lambda: rows.write.format("delta").mode("overwrite")
                                         .option("replaceWhere", where).saveAsTable(name)),
                "count an hour": seconds(lambda: spark.table(name).where(where).count()),
                "newest hour of a day": seconds(lambda: spark.table(name).where(
                    f"ingest_date = '{day}'").agg({"ingest_hour": "max"}).collect()),
            }  # fmt: skip

        taken: dict[str, dict[str, dict[str, list[float]]]] = {}
        for n in range(rounds + 1):  # round 0 warms up
            for label, pair in tables.items():
                for kind, name in pair.items():
                    for op, value in ops(name, n).items():
                        if n:
                            taken.setdefault(label, {}).setdefault(kind, {}).setdefault(
                                op, []
                            ).append(value)
    figures, headlines = {}, []
    for label, kinds in taken.items():
        medians = {kind: {op: statistics.median(v) for op, v in ops_.items()}
                   for kind, ops_ in kinds.items()}  # fmt: skip
        ratio = sum(medians["year"].values()) / sum(medians["fresh"].values())
        figures[label] = {kind: {op: round(v, 3) for op, v in m.items()}
                          for kind, m in medians.items()}  # fmt: skip
        say(f"  {label}: year / fresh {ratio:.2f} {figures[label]}")
        headlines.append(headline(
            f"hour ops after {history:,} hours / fresh, Delta {label}", round(ratio, 3),
            "≤ 1.2", ratio <= 1.2,
        ))  # fmt: skip
    return {"headlines": headlines, "seconds": figures, "rows_per_hour": ROWS,
            "history_hours": history, "rounds": rounds}  # fmt: skip


if __name__ == "__main__":
    main("delta_year_layout", measure)
