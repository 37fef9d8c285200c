"""The Spark server's garbage collector: the project's choice (`SERVER_GC`) against the JVM's
default (G1), each on a fresh server, as a test session or a new deployment starts one.

A fresh server's first small hours are its slowest (its JIT is still compiling); this runs
three hours of 150 rows on a fresh home and server per trial, the two collectors alternating
(quick: one trial each; full: three each), and compares the sums of the three hours.

Usage: python -m bench.server_gc [--quick]
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench.harness import Bench, headline, main, say

ROWS, HOURS = 150, 3
DEFAULT_GC = "-XX:+UseG1GC"


def hours_on_a_fresh_server() -> list[float]:
    """Seconds of each of HOURS small hours on a fresh home and server."""
    bench = Bench("server_gc_trial")
    try:
        with bench.servers():
            groups = bench.generate("gc", HOURS, ROWS, seed=21)
            return [run.seconds for run in bench.run_hours(bench.storage("gc"), groups)]
    finally:
        shutil.rmtree(bench.home, ignore_errors=True)


# A trial runs in a process of its own, as a session or deployment would: one process's
# Spark sessions outlive their server (their release fails against it) and skew the next.
TRIAL = """
import json, sys
from retail_assets.servers import spark_connect
spark_connect.SERVER_GC = sys.argv[1]
from bench.server_gc import hours_on_a_fresh_server
print(json.dumps(hours_on_a_fresh_server()))
"""


def trial(gc: str) -> list[float]:
    """`hours_on_a_fresh_server` with the server's collector `gc`, in a child process."""
    done = subprocess.run([sys.executable, "-c", TRIAL, gc], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, check=True)  # fmt: skip
    hours = json.loads(done.stdout.strip().splitlines()[-1])
    say("  " + ", ".join(f"{h:.1f}s" for h in hours))
    return hours


def measure(bench: Bench, quick: bool) -> dict:
    from retail_assets.servers.spark_connect import SERVER_GC

    hours: dict[str, list[list[float]]] = {SERVER_GC: [], DEFAULT_GC: []}
    for _ in range(1 if quick else 3):
        for gc in (DEFAULT_GC, SERVER_GC):
            say(f"{gc}:")
            hours[gc].append(trial(gc))
    sums = {gc: statistics.median(sum(t) for t in trials) for gc, trials in hours.items()}
    ratio = round(sums[SERVER_GC] / sums[DEFAULT_GC], 3)
    name = f"{HOURS} hours of {ROWS} rows on a fresh server, {SERVER_GC} / {DEFAULT_GC}"
    return {"headlines": [headline(name, ratio, "< 1", ratio < 1)],
            "hours_s": hours, "median_sum_s": sums}  # fmt: skip


if __name__ == "__main__":
    main("server_gc", measure)
