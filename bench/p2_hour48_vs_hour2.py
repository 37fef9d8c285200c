"""p2: does an hour's load cost what that hour's data costs? A 48-hour replay, per-hour wall
time of every step, and the ratio hour 48 / hour 2 (hour 1 pays one-time table creation).

Runs on its own RETAIL_HOME and Spark server (a free port), stopped at the end by PID.
Usage: python -m bench.p2_hour48_vs_hour2 [--hours 48] [--rows 1500]
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
STEPS = ["new_transactions", "dim_customer", "dim_product", "dim_branch", "dim_sales_agent",
         "dim_date", "sales_facts"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--rows", type=int, default=1500)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="retail_bench_p2_"))
    from retail_assets.services import free_port

    os.environ.update(RETAIL_HOME=str(home), RETAIL_SPARK_PORT=str(free_port()),
                      DAGSTER_HOME=str(home / "dagster"))  # fmt: skip
    from dagster import DagsterInstance

    from retail_assets import spark_server
    from retail_assets.generator import generate
    from retail_assets.partitions import key_of
    from retail_assets.replay import land, run_hour
    from retail_assets.settings import Settings, prepare_dagster_home

    settings = Settings.from_env()
    prepare_dagster_home(settings)
    start = datetime(2025, 8, 1, 0, tzinfo=UTC)
    per_hour = []
    try:
        spark_server.up(settings)
        groups = generate(home / "source", args.hours, args.rows, seed=48)
        instance = DagsterInstance.get()
        for index, group in enumerate(groups):
            arrival = start + timedelta(hours=index)
            land(group, settings.landing_dir, arrival)
            run = run_hour(key_of(arrival), instance)
            assert run.ok, "\n".join(run.lines)
            warehouse = sum(run.step_seconds.get(step, 0) for step in STEPS)
            per_hour.append({"hour": index + 1, "warehouse_s": round(warehouse, 2),
                             **{k: round(v, 2) for k, v in run.step_seconds.items()}})  # fmt: skip
            print(f"hour {index + 1:>2}: dims + facts {warehouse:6.1f}s", flush=True)
    finally:
        spark_server.down(settings)
    # Medians of neighbouring hours damp one noisy hour on a shared 2-core machine.
    early = statistics.median(h["warehouse_s"] for h in per_hour[1:4])
    late = statistics.median(h["warehouse_s"] for h in per_hour[-3:])
    result = {
        "benchmark": "p2_hour48_vs_hour2",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"node": platform.node(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "hours": args.hours, "rows_per_group": args.rows,
        "hour2_s": per_hour[1]["warehouse_s"], "hour48_s": per_hour[-1]["warehouse_s"],
        "ratio_last_over_2": round(per_hour[-1]["warehouse_s"] / per_hour[1]["warehouse_s"], 3),
        "ratio_median_last3_over_hours2to4": round(late / early, 3),
        "per_hour": per_hour,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"p2_{datetime.now(UTC):%Y%m%dT%H%M%S}_{platform.node()}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "per_hour"}))


if __name__ == "__main__":
    main()
