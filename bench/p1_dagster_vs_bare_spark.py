"""p1: what Dagster costs. One hourly partition, raw → B2B CSV, through the hourly job vs a
bare PySpark script calling the same write functions on the same Connect server and files:
no Dagster, no metadata, no checks. Runs alternate (Dagster, bare, …) on the same hour; each
re-run replaces the hour (idempotent), and the bare run's CSV must equal Dagster's byte for
byte, so both did the same work.

Usage: python -m bench.p1_dagster_vs_bare_spark [--quick]
"""

import statistics
import time
from datetime import timedelta

from bench.harness import START, Bench, headline, main, say

GOAL = 1.3


def bare_hour(spark, storage, key: str) -> dict[str, float]:
    """The hour's data work and nothing else, in the job's order; seconds per job step."""
    from retail_assets.assets.b2b import write_export
    from retail_assets.assets.insights import snapshots_written
    from retail_assets.assets.raw import ingest_hour
    from retail_assets.assets.silver import write_new_transactions, write_silver
    from retail_assets.assets.warehouse.inputs import SCD_DIMENSIONS
    from retail_assets.assets.warehouse.loads import write_changes, write_dates, write_facts
    from retail_assets.storage.hours import hour_values
    from retail_assets.transforms.insights import INSIGHTS

    def write_insights(spark, storage, key: str) -> None:
        with snapshots_written(spark, storage, key, list(INSIGHTS)):
            pass

    steps = [
        ("raw_files", lambda: ingest_hour(storage, key)),
        ("silver_transactions", lambda: write_silver(spark, storage, key)),
        ("new_transactions", lambda: write_new_transactions(spark, storage, key)),
        *[(d.name, lambda d=d: write_changes(spark, storage, d, key)) for d in SCD_DIMENSIONS],
        ("dim_date", lambda: write_dates(spark, storage, key)),
        ("sales_facts", lambda: write_facts(spark, storage, key)),
        ("marketing_insights", lambda: write_insights(spark, storage, key)),
        ("b2b_daily_csv", lambda: write_export(spark, storage, hour_values(key)["ingest_date"])),
    ]
    seconds = {}
    for name, step in steps:
        began = time.monotonic()
        step()
        seconds[name] = time.monotonic() - began
    return seconds


def compare(bench: Bench, rows: int, repeats: int = 3) -> dict:
    """Median seconds of each way over `repeats` runs of the second hour each, taking turns
    to go first."""
    from dagster import DagsterInstance

    from retail_assets.definitions import batch_definitions
    from retail_assets.dev.replay import run_hour
    from retail_assets.resources import spark_session
    from retail_assets.storage.hours import hour_values, key_of

    storage = bench.storage(f"p1_{rows}")
    # Both hours through Dagster first: the tables exist and the measured hour has run once,
    # so every timed run is a re-run of a warm hour (an hour's first run pays extra).
    bench.run_hours(storage, bench.generate(f"p1_{rows}", 2, rows, seed=1))
    key = key_of(START + timedelta(hours=1))
    definitions, instance = batch_definitions(storage), DagsterInstance.get()
    spark = spark_session(bench.settings)
    csv_file = storage.b2b_file(hour_values(key)["ingest_date"])
    seconds: dict[str, list[float]] = {"dagster": [], "bare": []}
    outputs = set()

    def dagster() -> None:
        run = run_hour(key, instance, definitions)
        assert run.ok, "\n".join(run.lines)
        seconds["dagster"].append(run.seconds)
        steps["dagster"] = run.step_seconds

    def bare() -> None:
        began = time.monotonic()
        steps["bare"] = bare_hour(spark, storage, key)
        seconds["bare"].append(time.monotonic() - began)

    steps: dict[str, dict] = {}
    for repeat in range(repeats):
        for way in (dagster, bare) if repeat % 2 == 0 else (bare, dagster):
            way()
            outputs.add(storage.exports.read_bytes(*csv_file))
        say(f"  {rows:,} rows: dagster {seconds['dagster'][-1]:.1f}s, "
            f"bare {seconds['bare'][-1]:.1f}s")  # fmt: skip
    assert len(outputs) == 1, "the bare script's CSV differs from Dagster's"
    ratio = statistics.median(seconds["dagster"]) / statistics.median(seconds["bare"])
    return {"rows": rows, **{f"{way}_s": [round(v, 2) for v in values]
                             for way, values in seconds.items()},
            "ratio": round(ratio, 3),
            **{f"{way}_steps_s": {k: round(v, 2) for k, v in values.items()}
               for way, values in steps.items()}}  # fmt: skip


def measure(bench: Bench, quick: bool) -> dict:
    sizes = [1_500] if quick else [1_500, 550_000]
    with bench.servers():
        runs = [compare(bench, rows) for rows in sizes]
    return {
        "headlines": [
            headline(f"p1 dagster / bare, {r['rows']:,} rows", r["ratio"], f"≤ {GOAL}",
                     r["ratio"] <= GOAL)
            for r in runs
        ],
        "runs": runs,
    }  # fmt: skip


if __name__ == "__main__":
    main("p1_dagster_vs_bare_spark", measure)
