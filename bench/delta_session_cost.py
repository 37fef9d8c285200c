"""What Delta Lake on a session costs the statements the pipeline runs many times (issue 36).

One fresh clone's suite took 1,390 s with Delta's jars, extension and catalog on every session
(tables still parquet) against 1,140 s without on another day, while an hour's writes cost the
same (docs/design.md §8). This starts the Connect server once per variant, from the session's
settings without Delta up to all of them (round by round, so none gains from a warmer
machine), and times each statement kind on it: the same parquet tables, the same calls.

Headline: the slowest statement kind's ratio, the session's Delta settings / none. No goal:
this finds what the move to Delta has to pay for.

Usage: python -m bench.delta_session_cost [--quick]
"""

from __future__ import annotations

import statistics
import time

from bench.harness import Bench, headline, main, say

EXTENSION, CATALOG = "spark.sql.extensions", "spark.sql.catalog.spark_catalog"
VARIANTS = {  # name: (Delta's jars on the session, which of the session's Delta settings kept)
    "without delta": (False, ()),
    "delta jars": (True, ()),
    "delta jars + extension": (True, (EXTENSION,)),
    "delta jars + extension + catalog": (True, (EXTENSION, CATALOG)),
}
KEYS = [f"2025-08-01-{hour:02d}:00" for hour in range(4)]


def server(bench: Bench, delta_jars: bool, kept: tuple[str, ...]):
    """The bench's server with the variant's jars and Delta settings (the session's own)."""
    from retail_assets.servers import jars
    from retail_assets.servers.spark_connect import DELTA_SESSION_CONF, LocalSparkServer

    class Variant(LocalSparkServer):
        def session_conf(self) -> dict[str, str]:
            conf = super().session_conf()
            for key in set(DELTA_SESSION_CONF) - set(kept):
                del conf[key]
            if not delta_jars:
                delta = str(jars.jars_dir(self.home) / "delta")
                others = [jar for jar in conf["spark.jars"].split(",") if not jar.startswith(delta)]
                conf["spark.jars"] = ",".join(others)
            return conf

    base = LocalSparkServer.of(bench.settings)
    return Variant(**{field: getattr(base, field) for field in type(base).model_fields})


def statements(spark, lake: str) -> dict:
    """Each statement kind as a call of its n-th repetition, on tables made here."""
    from pyspark.sql import functions as F

    from retail_assets.storage.tables import HourlyTable, hours_in

    spark.sql("CREATE DATABASE IF NOT EXISTS bench_session")
    hourly = HourlyTable("bench_session.hours", f"{lake}/hours")

    def frame(n: int):
        return spark.range(300).selectExpr("id", f"cast(id * {n} AS string) AS v")

    for key in KEYS:
        hourly.write(spark, frame(1), key)
    view = "CREATE OR REPLACE VIEW bench_session.hours_view AS SELECT * FROM bench_session.hours"
    spark.sql(view)
    return {
        "SELECT 1": lambda n: spark.sql("SELECT 1").collect(),
        "tableExists": lambda n: spark.catalog.tableExists("bench_session.hours"),
        "read an hour (count)": lambda n: hourly.hour(spark, KEYS[n % 4]).count(),
        "read a view (count)": lambda n: spark.table("bench_session.hours_view").count(),
        "group by (collect)": lambda n: (
            hourly.hours_of(spark, KEYS)
            .groupBy(F.col("ingest_hour"))
            .agg(F.count("*"), F.sum("id"))
            .collect()
        ),
        "SHOW PARTITIONS": lambda n: spark.sql("SHOW PARTITIONS bench_session.hours").collect(),
        "write an hour (publish)": lambda n: hourly.write(spark, frame(n), KEYS[n % 4]),
        "schema of a table": lambda n: spark.table("bench_session.hours").schema,
        "filter in hours_in": lambda n: (
            spark.table("bench_session.hours").where(hours_in(KEYS[: 1 + n % 4])).collect()
        ),
    }


def measure(bench: Bench, quick: bool) -> dict:
    from retail_assets.resources import spark_session

    repeats, rounds = (6, 1) if quick else (15, 2)
    times: dict[str, dict[str, list[float]]] = {variant: {} for variant in VARIANTS}
    for round_ in range(rounds):
        for variant, (delta_jars, kept) in VARIANTS.items():
            local = server(bench, delta_jars, kept)
            local.up()
            try:
                spark = spark_session(bench.settings)
                for kind, call in statements(spark, f"{bench.home}/lake{round_}").items():
                    call(0)  # warms up
                    for n in range(1, repeats + 1):
                        began = time.monotonic()
                        call(n)
                        times[variant].setdefault(kind, []).append(time.monotonic() - began)
                spark.sql("DROP DATABASE bench_session CASCADE")
                spark.stop()
            finally:
                local.down()
            say(f"  round {round_ + 1}, {variant}: done")
    medians = {
        variant: {kind: round(statistics.median(taken), 4) for kind, taken in kinds.items()}
        for variant, kinds in times.items()
    }
    for kind in medians["without delta"]:
        row = "  ".join(f"{medians[variant][kind] * 1000:7.1f}" for variant in VARIANTS)
        say(f"  {kind:28s} {row}  ms")
    delta = "delta jars + extension + catalog"
    base = medians["without delta"]
    ratios = {kind: medians[delta][kind] / base[kind] for kind in base}
    slowest = max(ratios, key=ratios.get)
    return {
        "headlines": [
            headline(
                f"delta session / none, slowest kind ({slowest})",
                round(ratios[slowest], 2),
                "",
                None,
            ),
        ],  # fmt: skip
        "median_seconds": medians,
        "ratios": {kind: round(value, 2) for kind, value in ratios.items()},
        "repeats": repeats,
        "rounds": rounds,
    }


if __name__ == "__main__":
    main("delta_session_cost", measure)
