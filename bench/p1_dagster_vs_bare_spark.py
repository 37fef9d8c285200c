"""p1: what Dagster costs. One hourly partition, raw → B2B CSV, through the hourly job vs a
bare PySpark script on the same Connect server and files: the same loads (retail_assets.loads,
the Spark work without Dagster), then the same guarantees checked the way a user would write
them by hand: SQL over the tables just written, one aggregate query per table. No Dagster, no
materialization metadata. Runs alternate (Dagster first, then bare first) on the same hour;
each re-run replaces the hour (idempotent), and the bare run's CSV must equal Dagster's byte
for byte, so both did the same work. The script's checks must pass (a check that fails on good
data is a wrong check).

Headlines: Dagster / bare (the bare script with its checks), and what the checks cost the
bare script: its hour with them over the same hour without them, the median over pairs that
take turns to go first (the dimensions' checks run on a thread beside the next dimension's
load, as the job's do, so the loads' own seconds are not the hour without checks). Beside
them, Dagster's own part: the same graph with steps that do no work (`floor_definitions`),
run on the same instance once per round, over the bare hour.

Usage: python -m bench.p1_dagster_vs_bare_spark [--quick]
"""

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from bench.harness import START, Bench, headline, main, say

GOAL, CHECKS_GOAL = 1.2, 0.15

# The source's header names a user's script expects per file kind (docs/tables.md).
HEADERS = {
    "sales_transactions": {"transaction_id", "transaction_date", "units", "unit_price"},
    "branches": {"branch_id", "location"},
    "sales_agents": {"sales_person_id", "name"},
}
PRICE = "round(units * unit_price * (100 - discount_perc) / 100, 2)"
FACT_KEYS = {
    "fact_branch_sales": (
        "customer_key",
        "product_key",
        "branch_key",
        "sales_agent_key",
        "date_key",
    ),
    "fact_online_sales": ("customer_key", "product_key", "date_key"),
}
# Each snapshot's measures, the groups ranked within, and the documented ranking (rank 1 first).
INSIGHT_RULES = {
    "insight_top_products": (("units_sold", "revenue"), "1",
                             "units_sold DESC, revenue DESC, product_id"),
    "insight_top_offers": (("redemptions",), "1", "redemptions DESC, offer"),
    "insight_offers_per_product": (("redemptions",), "product_id", "redemptions DESC, offer"),
    "insight_lowest_online_cities": (("online_revenue", "online_transactions"), "1",
                                     "online_revenue, online_transactions, coalesce(city, ''), "
                                     "coalesce(state, '')"),
}  # fmt: skip
# Every measure a snapshot sums, each once: what the facts check adds up for the insights'.
INSIGHT_MEASURES = list(
    dict.fromkeys(m for measures, _, _ in INSIGHT_RULES.values() for m in measures)
)


class HandChecks:
    """The hourly job's checks, written as a user's script would: SQL on the stored tables."""

    def __init__(self, spark, storage, key: str):
        from retail_assets.storage.hours import hour_values, previous_key

        self.spark, self.storage, self.key = spark, storage, key
        values = hour_values(key)
        self.day = day = values["ingest_date"]
        hour = values["ingest_hour"]
        self.this_hour = f"ingest_date = '{day}' AND ingest_hour = '{hour}'"
        self.before = f"(ingest_date < '{day}' OR ingest_date = '{day}' AND ingest_hour < '{hour}')"
        self.previous = "ingest_date = '{}' AND ingest_hour = '{}'".format(
            *hour_values(previous_key(key)).values()
        )

    def row(self, sql: str):
        return self.spark.sql(sql).collect()[0]

    def lake(self, name: str) -> str:
        return f"{self.storage.lake_database}.{name}"

    def dwh(self, name: str) -> str:
        return f"{self.storage.warehouse_database}.{name}"

    def raw_rows(self) -> int:
        groups = self.storage.raw_manifest(self.key)["groups"]
        return sum(group["files"]["sales_transactions"]["rows"] for group in groups)

    def raw_files(self) -> bool:
        files = [(kind, file) for group in self.storage.raw_manifest(self.key)["groups"]
                 for kind, file in group["files"].items()]  # fmt: skip
        return all(
            file["valid_utf8"] and HEADERS[kind] <= set(file["header"].split(","))
            for kind, file in files
        )

    def silver(self) -> bool:
        counts = self.row(
            f"SELECT (SELECT count(*) FROM {self.lake('silver_transactions')} "
            f"WHERE {self.this_hour}) AS silver, (SELECT count(*) FROM "
            f"{self.lake('quarantine_transactions')} WHERE {self.this_hour}) AS quarantined"
        )
        self.silver_rows, self.quarantined = counts.silver, counts.quarantined  # for facts()
        raw = self.raw_rows()
        return raw == counts.silver + counts.quarantined and (raw == 0 or counts.silver > 0)

    def dimension(self, name: str, natural_key: str) -> str:
        """One dimension's figures: no surrogate key names two entities, a new version takes
        a key the state before (the previous hour's) did not hold, one latest version per
        natural key. One read of each table: the state of both hours, the hour's changes."""
        state, changes = self.dwh(f"{name}_state"), self.dwh(f"{name}_changes")
        return f"""
            SELECT count(DISTINCT surrogate_key) = count(DISTINCT surrogate_key, entity)
                   AND count_if(part = 'change' AND valid_from_hour = recorded_hour
                                AND known_before) = 0
                   AND count(DISTINCT CASE WHEN part = 'after' THEN entity END)
                       = count_if(part = 'after' AND valid_from_hour = newest) AS {name}_ok
            FROM (SELECT *, max(CASE WHEN part = 'after' THEN valid_from_hour END)
                              OVER (PARTITION BY entity) AS newest,
                            max(part = 'before') OVER (PARTITION BY surrogate_key)
                              AS known_before
                  FROM (SELECT surrogate_key, {natural_key} AS entity, valid_from_hour,
                               NULL AS recorded_hour,
                               CASE WHEN {self.this_hour} THEN 'after' ELSE 'before' END AS part
                        FROM {state} WHERE {self.this_hour} OR {self.previous}
                        UNION ALL
                        SELECT surrogate_key, {natural_key}, valid_from_hour, recorded_hour,
                               'change'
                        FROM {changes} WHERE {self.this_hour}))
            WHERE part <> 'before'"""

    def dates(self) -> str:
        """The hour's dates are distinct and none was added before: one read of the table."""
        return f"""
            SELECT coalesce(sum(added), 0) = count_if(added > 0)
                   AND count_if(added > 0 AND earlier > 0) = 0 AS dim_date_ok
            FROM (SELECT date, count_if(now) AS added, count_if(NOT now) AS earlier
                  FROM (SELECT date, {self.this_hour} AS now FROM {self.dwh("dim_date")}
                        WHERE {self.this_hour} OR {self.before})
                  GROUP BY date)"""

    def one_row(self, parts: dict[str, str]) -> dict:
        """One statement: the one-row aggregates `parts` (alias → SELECT) side by side."""
        joined = " CROSS JOIN ".join(f"({sql}) AS {alias}" for alias, sql in parts.items())
        return self.row(f"SELECT * FROM {joined}").asDict()

    def facts(self) -> bool:
        """Every row has its keys; the price rule; fact rows + duplicates + quarantined = raw
        (silver's counts from silver()). The same read of each fact table sums what the
        insights' check needs, and the day's units the B2B file's check needs."""
        parts = {}
        for name, keys in FACT_KEYS.items():
            missing = " OR ".join(f"{key} IS NULL" for key in keys)
            online = name == "fact_online_sales"
            parts[name] = (
                f"SELECT count_if(now AND ({missing})) AS {name}_missing, "
                f"count_if(now) AS {name}_rows, "
                f"count_if(now AND NOT total_paid_price <=> {PRICE}) AS {name}_off, "
                f"sum(CASE WHEN now THEN units END) AS {name}_units_sold, "
                f"sum(CASE WHEN now THEN total_paid_price END) AS {name}_revenue, "
                f"count(CASE WHEN now THEN offer_number END) AS {name}_redemptions, "
                f"coalesce(sum(units), 0) AS {name}_day_units, "
                + (f"sum(CASE WHEN now AND city IS NOT NULL THEN total_paid_price END) "
                   f"AS {name}_online_revenue, count_if(now AND city IS NOT NULL) "
                   f"AS {name}_online_transactions " if online else
                   f"NULL AS {name}_online_revenue, 0 AS {name}_online_transactions ")
                + f"FROM (SELECT *, {self.this_hour} AS now FROM {self.dwh(name)} "
                + f"WHERE {self.this_hour if online else f'ingest_date = {self.day!r}'})"
            )  # fmt: skip
        parts["new"] = (
            f"SELECT count(*) AS new FROM {self.lake('silver_new_transactions')} "
            f"WHERE {self.this_hour}"
        )
        c = self.one_row(parts)
        self.fact_sums = {
            m: sum(c[f"{name}_{m}"] or 0 for name in FACT_KEYS) for m in INSIGHT_MEASURES
        }
        self.day_units = c["fact_branch_sales_day_units"]  # for b2b()
        facts = sum(c[f"{name}_rows"] for name in FACT_KEYS)
        return (
            not any(c[f"{name}_missing"] or c[f"{name}_off"] for name in FACT_KEYS)
            and self.raw_rows() == facts + (self.silver_rows - c["new"]) + self.quarantined
        )

    def insights(self) -> bool:
        """Each snapshot = the previous hour's + the hour's facts (summed by facts()); ranks
        follow the totals."""
        parts = {}
        for i, (name, (measures, within, order)) in enumerate(INSIGHT_RULES.items()):
            # One read of the snapshot table: this hour's ranks and sums, the previous' sums.
            sums = ", ".join(
                f"coalesce(sum(CASE WHEN now THEN {m} END), 0) AS now_{i}_{m}, "
                f"coalesce(sum(CASE WHEN NOT now THEN {m} END), 0) AS before_{i}_{m}"
                for m in measures
            )
            parts[f"snapshot_{i}"] = (
                f"SELECT {sums}, count_if(now AND rank <> expected) AS misranked_{i} "
                f"FROM (SELECT *, row_number() OVER (PARTITION BY now, {within} ORDER BY "
                f"{order}) AS expected FROM (SELECT *, {self.this_hour} AS now "
                f"FROM {self.dwh(name)} "
                f"WHERE {self.this_hour} OR {self.previous}))"
            )
        c = self.one_row(parts)
        return all(
            c[f"misranked_{i}"] == 0
            and all(c[f"now_{i}_{m}"] == c[f"before_{i}_{m}"] + self.fact_sums[m] for m in measures)
            for i, (measures, _, _) in enumerate(INSIGHT_RULES.values())
        )

    def b2b(self, csv: bytes) -> bool:
        """The file's units are the day's branch sales (summed by facts())."""
        return sum(int(line.rsplit(b",", 1)[1]) for line in csv.splitlines()[1:]) == self.day_units


def floor_definitions(definitions):
    """The hourly job's graph (its assets, checks, partitions and dependencies) with steps
    that do no work and pass every check: what Dagster itself costs an hour on this instance,
    the part of the ratio no asset code can remove."""
    from dagster import (
        AssetCheckResult,
        Definitions,
        MaterializeResult,
        define_asset_job,
        in_process_executor,
        multi_asset,
    )

    def stub(assets_def):
        @multi_asset(
            name=assets_def.node_def.name,
            specs=list(assets_def.specs),
            check_specs=list(assets_def.check_specs),
            can_subset=assets_def.can_subset,
            partitions_def=assets_def.partitions_def,
            backfill_policy=assets_def.backfill_policy,
        )
        def nothing():
            for spec in assets_def.specs:
                yield MaterializeResult(
                    asset_key=spec.key,
                    check_results=[
                        AssetCheckResult(asset_key=spec.key, check_name=check.name, passed=True)
                        for check in assets_def.check_specs
                        if check.asset_key == spec.key
                    ],
                )

        return nothing

    stubs = [stub(assets_def) for assets_def in definitions.assets]
    job = define_asset_job("hourly_pipeline")
    return Definitions(assets=stubs, jobs=[job], executor=in_process_executor)


def bare_hour(spark, storage, key: str, checked: bool = True) -> dict[str, tuple[float, float]]:
    """The hour's loads in the job's order, each step followed by its hand-written checks (which
    must pass), or by none (`checked` false: the hour without checks). Each dimension's check
    starts on a thread once it is written, beside the next dimension's load. Per step, (seconds
    of its loads, seconds then spent on or waiting for its checks)."""
    from retail_assets.loads.b2b import write_export
    from retail_assets.loads.dimensions import write_changes, write_dates
    from retail_assets.loads.facts import write_facts
    from retail_assets.loads.inputs import SCD_DIMENSIONS
    from retail_assets.loads.insights import snapshots_written
    from retail_assets.loads.raw import ingest_hour
    from retail_assets.loads.silver import write_new_transactions, write_silver
    from retail_assets.storage.hours import hour_values
    from retail_assets.transforms.insights import INSIGHTS

    check = HandChecks(spark, storage, key)
    day = hour_values(key)["ingest_date"]
    dimension_checks = []

    def write_insights() -> None:
        with snapshots_written(spark, storage, key, list(INSIGHTS)):
            pass

    def write_dimensions(pool: ThreadPoolExecutor) -> None:
        for dimension in SCD_DIMENSIONS:
            write_changes(spark, storage, dimension, key)
            if checked:
                sql = check.dimension(dimension.name, dimension.natural_key)
                dimension_checks.append(pool.submit(check.row, sql))
        write_dates(spark, storage, key)
        if checked:
            dimension_checks.append(pool.submit(check.row, check.dates()))

    with ThreadPoolExecutor(len(SCD_DIMENSIONS) + 1) as pool:
        steps = [
            ("raw_files", lambda: ingest_hour(storage, key), check.raw_files),
            ("silver_transactions", lambda: write_silver(spark, storage, key), check.silver),
            ("new_transactions", lambda: write_new_transactions(spark, storage, key), None),
            ("dimensions", lambda: write_dimensions(pool),
             lambda: all(all(future.result()) for future in dimension_checks)),
            ("sales_facts", lambda: write_facts(spark, storage, key), check.facts),
            ("marketing_insights", write_insights, check.insights),
            ("b2b_daily_csv", lambda: write_export(spark, storage, day),
             lambda: check.b2b(storage.exports.read_bytes(*storage.b2b_file(day)))),
        ]  # fmt: skip
        seconds = {}
        for name, load, verify in steps:
            began = time.monotonic()
            load()
            loaded = time.monotonic()
            if checked and verify is not None:
                assert verify(), f"the bare script's check of {name} failed"
            seconds[name] = (loaded - began, time.monotonic() - loaded)
    return seconds


def compare(bench: Bench, rows: int, repeats: int = 3, check_pairs: int = 0) -> dict:
    """Median seconds of each way over `repeats` runs of the second hour each, taking turns
    to go first; then, for the checks' cost, `check_pairs` pairs of the bare hour with and
    without its checks, taking turns too (a difference of two walls of a ~12 s hour needs more
    rounds than a ratio of them: one round of each way spread 0.02–0.21 in a bench of 12)."""
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
    floor_job = floor_definitions(definitions)
    spark = spark_session(bench.settings)
    csv_file = storage.b2b_file(hour_values(key)["ingest_date"])
    seconds: dict[str, list[float]] = {
        "dagster": [],
        "bare": [],
        "bare_loads": [],
        "checks": [],
        "floor": [],
        "checked": [],
        "unchecked": [],
    }
    outputs = set()

    def dagster() -> None:
        run = run_hour(key, instance, definitions)
        assert run.ok, "\n".join(run.lines)
        seconds["dagster"].append(run.seconds)
        steps["dagster"] = run.step_seconds

    def floor() -> None:
        run = run_hour(key, instance, floor_job)
        assert run.ok, "\n".join(run.lines)
        seconds["floor"].append(run.seconds)

    def bare() -> None:
        began = time.monotonic()
        steps["bare"] = bare_hour(spark, storage, key)
        seconds["bare"].append(time.monotonic() - began)
        seconds["bare_loads"].append(sum(load for load, _ in steps["bare"].values()))
        seconds["checks"].append(sum(checks for _, checks in steps["bare"].values()))

    def timed(checked: bool) -> None:
        began = time.monotonic()
        bare_hour(spark, storage, key, checked=checked)
        seconds["checked" if checked else "unchecked"].append(time.monotonic() - began)

    steps: dict[str, dict] = {}
    # The bare script once untimed, as Dagster's two hours above were: its queries' first
    # planning and code generation are not what an hour costs.
    bare_hour(spark, storage, key)
    run_hour(key, instance, floor_job)  # its first run too
    outputs.add(storage.exports.read_bytes(*csv_file))
    for repeat in range(repeats):
        for way in (dagster, bare) if repeat % 2 == 0 else (bare, dagster):
            way()
            outputs.add(storage.exports.read_bytes(*csv_file))
        floor()
        say(f"  {rows:,} rows: dagster {seconds['dagster'][-1]:.1f}s, bare "
            f"{seconds['bare'][-1]:.1f}s (checks {seconds['checks'][-1]:.1f}s)")  # fmt: skip
    assert len(outputs) == 1, "the bare script's CSV differs from Dagster's"
    for pair in range(check_pairs):
        for checked in (True, False) if pair % 2 == 0 else (False, True):
            timed(checked)
        say(f"  {rows:,} rows: bare {seconds['checked'][-1]:.1f}s, without its checks "
            f"{seconds['unchecked'][-1]:.1f}s")  # fmt: skip
    median = {way: statistics.median(values) for way, values in seconds.items() if values}
    # Each pair's own ratio, then their median: a slow minute of the machine falls on both
    # walls of a pair, not on one way's median.
    pairs = [c / u - 1 for c, u in zip(seconds["checked"], seconds["unchecked"], strict=True)]
    return {"rows": rows, **{f"{way}_s": [round(v, 2) for v in values]
                             for way, values in seconds.items() if values},
            "ratio": round(median["dagster"] / median["bare"], 3),
            **({"checks_ratio": round(statistics.median(pairs), 3),
                "checks_ratio_of_medians": round(median["checked"] / median["unchecked"] - 1, 3)}
               if pairs else {}),
            # The checks' seconds after their step's loads: less than they cost, since the
            # dimensions' checks also slow the loads they run beside.
            "checks_after_loads_ratio": round(median["checks"] / median["bare_loads"], 3),
            "floor_ratio": round(median["floor"] / median["bare"], 3),
            "dagster_steps_s": {k: round(v, 2) for k, v in steps["dagster"].items()},
            "bare_steps_s": {k: [round(v, 2) for v in both]
                             for k, both in steps["bare"].items()}}  # fmt: skip


def measure(bench: Bench, quick: bool) -> dict:
    sizes = [1_500] if quick else [1_500, 550_000]
    with bench.servers():
        runs = [compare(bench, rows, check_pairs=12 if rows == sizes[0] else 0) for rows in sizes]
    small = runs[0]
    return {
        "headlines": [
            *[headline(f"p1 dagster / bare, {r['rows']:,} rows", r["ratio"], f"≤ {GOAL}",
                       r["ratio"] <= GOAL) for r in runs],
            headline(f"p1 checks / hour without checks, {small['rows']:,} rows",
                     small["checks_ratio"], f"≤ {CHECKS_GOAL}",
                     small["checks_ratio"] <= CHECKS_GOAL),
            # Dagster's part of the first ratio: the same graph's run with no work in it.
            headline(f"p1 no-op run of the hourly graph / bare, {small['rows']:,} rows",
                     small["floor_ratio"], "", None),
        ],
        "runs": runs,
    }  # fmt: skip


if __name__ == "__main__":
    main("p1_dagster_vs_bare_spark", measure)
