"""p6: the hour after N hours of history (N = 1,000 quick; 1,000 and 8,760 — a year — full)
over hour 2 of a fresh home, in the same run.

History is built cheaply and faithfully, not by running N hours: one real hour is run through
Dagster, then every table it wrote is cloned under the N following hour values in one Spark
job per table, and the clones' partitions are registered. Transactions and customers grow
with history, so each cloned hour gets its own transaction and customer ids (and customer
surrogate keys); products, branches and agents are a small fixed set, so their dimensions and
dim_date get the N hours' partitions but no new rows, as in a real year. Then the next real
group lands in hour N + 1 and that ordinary hour is timed. Every state the hour reads then
holds N hours of data and metastore partitions. The dimensions' state (the newest record
per key, kept for a few days) is built for the last history hour from every change record,
and the indexes of ids and dates seen are built from the cloned hours.

Figures: the ratio (each side the faster of two runs of its hour), per-asset step times,
metastore partitions and data files per table, and the Spark server's peak memory.

Usage: python -m bench.p6_hour_after_history [--quick]
"""

from __future__ import annotations

import resource
import time
from datetime import timedelta

from bench.harness import START, Bench, headline, main, say

GOAL = 1.2
ROWS = 1_500
GROWING_IDS = ("transaction_id", "customer_id")  # distinct per cloned hour
KEY_STRIDE = 100_000  # cloned hour i's customer keys: the template's + i * stride
CUSTOMER_KEYS = {"dim_customer_changes": "surrogate_key",
                 "fact_branch_sales_hours": "customer_key",
                 "fact_online_sales_hours": "customer_key"}  # fmt: skip
SHIFTED_HOURS = ("valid_from_hour", "recorded_hour", "ingest_hour_ts", "as_of_hour")
# Dimensions of a small fixed set of entities: no change records in the cloned hours.
FIXED = ("dim_product_changes", "dim_branch_changes", "dim_sales_agent_changes", "dim_date")


def tables(storage) -> list:
    """Every hourly table one hour of the pipeline writes."""
    from retail_assets.assets.insights import INSIGHTS
    from retail_assets.loads.facts import FACTS
    from retail_assets.loads.inputs import SCD_DIMENSIONS

    lake = [storage.lake_table(layer, name) for layer, name in
            (("silver", "transactions"), ("quarantine", "transactions"),
             ("silver", "new_transactions"))]  # fmt: skip
    warehouse = [storage.warehouse_table(f"{d.name}_changes") for d in SCD_DIMENSIONS]
    warehouse += [storage.warehouse_table("dim_date")]
    warehouse += [storage.fact_table(name).recent for name in FACTS]  # compacted after cloning
    return lake + warehouse + [storage.warehouse_table(name) for name in INSIGHTS]


def seed_states(spark, storage, key: str) -> None:
    """Each dimension's state at hour `key`, from every change record through it (what the
    hour after `key` reads; older states are not kept)."""
    from retail_assets.loads.dimensions import change_table, state_table
    from retail_assets.loads.inputs import SCD_DIMENSIONS
    from retail_assets.storage.tables import HOUR_COLUMNS
    from retail_assets.transforms.warehouse import newest_records

    for dimension in SCD_DIMENSIONS:
        changes = change_table(storage, dimension).hours(spark, key, through=True)
        state = newest_records(changes.drop(*HOUR_COLUMNS))
        state_table(storage, dimension).write(spark, state, key)


def seed_indexes(spark, storage, key: str) -> None:
    """The seen-ids and seen-dates indexes of every hour before `key`, built anew from their
    tables (the template hour's index knows nothing of the clones)."""
    from retail_assets.storage.lake import Lake
    from retail_assets.storage.tables import drop_table

    for index in (storage.seen_transaction_ids(), storage.seen_dates()):
        drop_table(spark, index.name)
        lake = Lake(index.location)
        lake.fs.delete_dir_contents(lake.path(), missing_dir_ok=True)
        index.rebuild(spark, key)


def clone(spark, table, template_key: str, hours: int) -> None:
    """Table `table`'s hour `template_key` again in each of the `hours` hours after it."""
    from pyspark.sql import functions as F

    from retail_assets.storage.hours import hour_of, hour_values, key_of
    from retail_assets.storage.lake import Lake
    from retail_assets.storage.tables import HOUR_COLUMNS, add_partitions

    start = hour_of(template_key)
    values = [hour_values(key_of(start + timedelta(hours=i))) for i in range(1, hours + 1)]
    short = table.name.split(".", 1)[1]
    if short in FIXED:  # partitions only, each an empty folder
        lake = Lake(table.location)
        for value in values:
            lake.fs.create_dir(lake.path(*(f"{c}={v}" for c, v in value.items())))
        for batch in range(0, len(values), 1000):
            add_partitions(spark, table.name, table.location, values[batch : batch + 1000])
        return
    offsets = spark.createDataFrame(
        [(i, *value.values()) for i, value in enumerate(values, start=1)],
        "_i int, ingest_date string, ingest_hour string",
    )
    rows = table.hour(spark, template_key).drop(*HOUR_COLUMNS).crossJoin(F.broadcast(offsets))
    for column in GROWING_IDS:
        if column in rows.columns:
            rows = rows.withColumn(column, F.concat(column, F.lit("_h"), F.col("_i")))
    if short in CUSTOMER_KEYS:
        key = CUSTOMER_KEYS[short]
        rows = rows.withColumn(key, (F.col(key) + F.col("_i") * KEY_STRIDE).cast("int"))
    for column in SHIFTED_HOURS:
        if column in rows.columns:
            seconds = F.unix_timestamp(column) + F.col("_i") * 3600
            rows = rows.withColumn(column, F.timestamp_seconds(seconds))
    (rows.drop("_i").repartition(*HOUR_COLUMNS).write.mode("append")
     .partitionBy(*HOUR_COLUMNS).parquet(table.location))  # fmt: skip
    spark.sql(f"MSCK REPAIR TABLE {table.name}")


def table_sizes(spark, storage) -> dict:
    """Metastore partitions and data files of every hourly table."""
    from retail_assets.loads.dimensions import state_table
    from retail_assets.loads.facts import FACTS
    from retail_assets.loads.inputs import SCD_DIMENSIONS

    named = [table.name for table in tables(storage)]
    named += [state_table(storage, d).name for d in SCD_DIMENSIONS]
    named += [storage.seen_transaction_ids().name, storage.seen_dates().name]
    named += [storage.fact_table(name).months_name for name in FACTS]
    sizes = {}
    for name in named:
        partitions = spark.sql(f"SHOW PARTITIONS {name}").count()
        files = len(spark.table(name).inputFiles())
        sizes[name.split(".", 1)[1]] = {"partitions": partitions, "files": files}
    return sizes


def timed_hour(bench: Bench, storage, key: str) -> tuple[float, dict, dict]:
    """The faster of two runs of hour `key` (the second is a re-run), with its step times and
    what the Spark server logged of trouble during the two."""
    from dagster import DagsterInstance

    from retail_assets.definitions import batch_definitions
    from retail_assets.dev.replay import run_hour

    definitions, instance = batch_definitions(storage), DagsterInstance.get()
    marks = bench.log_marks()
    runs = [run_hour(key, instance, definitions) for _ in range(2)]
    failed = [run for run in runs if not run.ok]
    if failed:
        raise RuntimeError("\n".join(failed[0].lines))
    best = min(runs, key=lambda run: run.seconds)
    return best.seconds, best.step_seconds, bench.log_problems(marks)


def hour_after(bench: Bench, history: int, groups) -> dict:
    """The ordinary hour after `history` hours (one real, the rest cloned); its figures."""
    from retail_assets.dev.replay import land
    from retail_assets.loads.facts import FACTS
    from retail_assets.resources import spark_session
    from retail_assets.storage.hours import key_of

    storage = bench.storage(f"p6_{history}")
    bench.run_hours(storage, groups[:1])  # the real template hour, at START
    spark = spark_session(bench.settings)
    began = time.monotonic()
    for table in tables(storage):
        clone(spark, table, key_of(START), history - 1)
    seed_states(spark, storage, key_of(START + timedelta(hours=history - 1)))
    seed_indexes(spark, storage, key_of(START + timedelta(hours=history)))
    for name in FACTS:  # the closed months, as the hours would have compacted them
        storage.fact_table(name).compact(spark, key_of(START + timedelta(hours=history)))
    seeded = time.monotonic() - began
    say(f"  seeded {history} hours in {seeded:.0f}s")
    arrival = START + timedelta(hours=history)
    land(groups[1], storage.landing_dir_path, arrival)
    seconds, steps, problems = timed_hour(bench, storage, key_of(arrival))
    say(f"  hour after {history} hours: {seconds:.1f}s")
    return {"seconds": seconds, "steps": steps, "seed_s": round(seeded, 1), "log": problems,
            "tables": table_sizes(spark, storage)}  # fmt: skip


def measure(bench: Bench, quick: bool) -> dict:
    histories = [1_000] if quick else [1_000, 8_760]
    groups = bench.generate("p6", 2, ROWS, seed=6)
    with bench.servers():
        fresh = bench.storage("p6_fresh")
        bench.run_hours(fresh, groups[:1])
        from retail_assets.dev.replay import land
        from retail_assets.storage.hours import key_of

        second = START + timedelta(hours=1)
        land(groups[1], fresh.landing_dir_path, second)
        base_seconds, base_steps, _ = timed_hour(bench, fresh, key_of(second))
        say(f"p6 hour 2 of a fresh home: {base_seconds:.1f}s")
        after = {}
        for history in histories:
            say(f"p6 {history} hours of history")
            after[history] = hour_after(bench, history, groups)
        peak = bench.spark_peak_rss_mb()
    client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return {
        "headlines": [
            headline(f"p6 hour after {n:,} hours / hour 2", round(r["seconds"] / base_seconds, 3),
                     f"≤ {GOAL}", r["seconds"] / base_seconds <= GOAL)
            for n, r in after.items()
        ],
        "hour2_s": round(base_seconds, 2),
        "hour2_steps_s": {k: round(v, 2) for k, v in base_steps.items()},
        "after": {
            n: {"seconds": round(r["seconds"], 2), "seed_s": r["seed_s"], "tables": r["tables"],
                "spark_server_log": r["log"],
                "steps_s": {k: round(v, 2) for k, v in r["steps"].items()},
                "step_ratio": {k: round(v / base_steps[k], 2) for k, v in r["steps"].items()
                               if base_steps.get(k)}}
            for n, r in after.items()
        },
        "spark_server_peak_rss_mb": peak,  # the Connect server is the Spark driver
        "client_peak_rss_mb": client_peak,  # this process: Dagster runs in process, clients
    }  # fmt: skip


if __name__ == "__main__":
    main("p6_hour_after_history", measure)
