"""Spark jobs and Connect round trips of one small hour, per step of the hourly job.

On hours of a few hundred rows each Spark job and each round trip costs about the same whatever
its size (a metastore question ~0.1 s, a job ~0.1–0.5 s), so their count is the hour's fixed
cost. Hour 1 runs whole (its tables are created); hour 2 then runs one step at a time
(`asset_selection`), so everything a run does belongs to its one step: the Connect RPCs this
process sends (counted at the gRPC stub; the runs share one session, as the runs of one
process do) and the jobs the server starts (its log's "Got job" lines). Last, hour 2 runs
again whole, twice, for what a small hour costs end to end. The counts are exact and
repeatable; the seconds are not.

RETAIL_BENCH_TRACE=1 also prints every round trip and job, to see what a step asks.

Usage: python -m bench.jobs_per_step
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter

from bench.harness import Bench, headline, main, say

ROWS = 300
RPCS = ("ExecutePlan", "AnalyzePlan", "Config")  # the client waits for each of these
TRACE = bool(os.environ.get("RETAIL_BENCH_TRACE"))


class Counted:
    """The RPCs every Spark Connect client of this process sends, by method."""

    def __init__(self):
        from pyspark.sql.connect.proto import base_pb2_grpc

        self.calls: Counter[str] = Counter()
        stub_class = base_pb2_grpc.SparkConnectServiceStub
        original, counted = stub_class.__init__, self

        def init(stub, channel):
            original(stub, channel)
            for method in [name for name in vars(stub) if name[0].isupper()]:
                setattr(stub, method, counted.wrap(method, getattr(stub, method)))

        stub_class.__init__ = init

    def wrap(self, method: str, call):
        counted = self

        class Wrapped:
            def __call__(self, request, *args, **kwargs):
                counted.calls[method] += 1
                if TRACE and method in RPCS:
                    say(f"      {method}: {' '.join(str(request).split())[:300]}")
                return call(request, *args, **kwargs)

            def __getattr__(self, name):  # .future, .with_call
                return getattr(call, name)

        return Wrapped()

    def round_trips(self) -> int:
        return sum(self.calls[method] for method in RPCS)


class Jobs:
    """Spark jobs the server started since the last mark (its INFO log, one line a job)."""

    def __init__(self, bench: Bench):
        self.bench, self.offset = bench, bench.spark_log_size()

    def since_mark(self) -> int:
        with open(self.bench.spark_server.server.log_file, "rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        self.offset += len(text.encode())
        jobs = re.findall(r"INFO DAGScheduler: Got job \d+ \((.{0,300})", text)
        for plan in jobs if TRACE else []:
            say(f"      job: {' '.join(plan.split())}")
        return len(jobs)


STEPS = {  # step -> its assets, in the job's order
    "raw_files": ["raw_files"],
    "silver_transactions": ["silver_transactions"],
    "new_transactions": ["new_transactions"],
    "dimensions": ["dim_customer", "dim_product", "dim_branch", "dim_sales_agent", "dim_date"],
    "sales_facts": ["fact_branch_sales", "fact_online_sales"],
    "marketing_insights": ["insight_top_products", "insight_top_offers",
                           "insight_offers_per_product", "insight_lowest_online_cities"],
    "b2b_daily_csv": ["b2b_daily_csv"],
}  # fmt: skip


def measure(bench: Bench, quick: bool) -> dict:
    from dagster import AssetKey

    from retail_assets.dev.replay import QUIET

    rpcs = Counted()
    with bench.servers():
        job, instance, key = bench.second_hour("jobs", ROWS)

        jobs = Jobs(bench)
        per_step = {}
        for step, assets in STEPS.items():
            rpcs.calls.clear()
            began = time.monotonic()
            result = job.execute_in_process(
                instance=instance, partition_key=key, run_config=QUIET,
                asset_selection=[AssetKey(a) for a in assets],
            )  # fmt: skip
            assert result.success, step
            per_step[step] = {
                "jobs": jobs.since_mark(),
                "round_trips": rpcs.round_trips(),
                "seconds": round(time.monotonic() - began, 2),
                "rpcs": dict(rpcs.calls),
            }
            counts = per_step[step]
            say(f"  {step:<22} jobs {counts['jobs']:>3}  round trips "
                f"{counts['round_trips']:>4}  {counts['seconds']:5.1f}s")  # fmt: skip
        whole = []
        for _ in range(2):
            began = time.monotonic()
            assert job.execute_in_process(
                instance=instance, partition_key=key, run_config=QUIET
            ).success
            whole.append(round(time.monotonic() - began, 2))
        say(f"  the whole hour as one run: {whole} s")
    total_jobs = sum(s["jobs"] for s in per_step.values())
    total_trips = sum(s["round_trips"] for s in per_step.values())
    return {
        "headlines": [
            headline(f"Spark jobs of one {ROWS}-row hour (all steps)", total_jobs, "", None),
            headline(f"Connect round trips of one {ROWS}-row hour", total_trips, "", None),
            headline(
                f"seconds of one {ROWS}-row hour as one run (best of 2)", min(whole), "", None
            ),
        ],  # fmt: skip
        "rows": ROWS,
        "hour_as_one_run_s": whole,
        "per_step": per_step,
    }


if __name__ == "__main__":
    main("jobs_per_step", measure)
