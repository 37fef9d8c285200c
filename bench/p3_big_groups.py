"""p3: big groups end to end. A 550,000-row group (the largest real one known) and, in full
mode, a 5,000,000-row group, each as one hour on fresh tables: rows/s per asset, and the
Spark server's peak resident memory after each (its high-water mark: the JVM's, from /proc).

Usage: python -m bench.p3_big_groups [--quick]
"""

from bench.harness import Bench, headline, main, say


def measure(bench: Bench, quick: bool) -> dict:
    sizes = [550_000] if quick else [550_000, 5_000_000]
    runs = []
    with bench.servers():
        for rows in sizes:
            group = bench.generate(f"p3_{rows}", 1, rows, seed=3)
            say(f"p3: one group of {rows:,} rows")
            run = bench.run_hours(bench.storage(f"p3_{rows}"), group)[0]
            runs.append({
                "rows": rows, "run_s": round(run.seconds, 1),
                "rows_per_s": round(rows / run.seconds),
                "rows_per_s_per_asset": {k: round(rows / v) for k, v in run.step_seconds.items()},
                "steps_s": {k: round(v, 1) for k, v in run.step_seconds.items()},
                "spark_peak_rss_mb": bench.spark_peak_rss_mb(),
            })  # fmt: skip
    # A run that fails raises: reaching the table means the hour completed.
    headlines = []
    for run in runs:
        big = run["rows"] >= 5_000_000
        headlines += [
            headline(f"p3 {run['rows']:,}-row hour, rows/s end to end", run["rows_per_s"],
                     "completes" if big else "", True if big else None),
            headline(f"p3 {run['rows']:,}-row hour, Spark server peak RSS MB",
                     run["spark_peak_rss_mb"], "", None),
        ]  # fmt: skip
    return {"headlines": headlines, "driver_memory": bench.settings.spark_driver_memory,
            "runs": runs}  # fmt: skip


if __name__ == "__main__":
    main("p3_big_groups", measure)
