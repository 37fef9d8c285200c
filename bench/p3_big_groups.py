"""p3: big groups end to end. A 550,000-row group (the largest real one known) and, in full
mode, a 5,000,000-row group and a 17,000,000-row group (a 2 GiB transactions file), each as
one hour on fresh tables: rows/s per asset, the file's size, and the peak resident memory of
the Spark server and of the run's own Python process (the copy into the lake streams the
file in chunks, so the run's memory must not grow with it).

Usage: python -m bench.p3_big_groups [--quick]
"""

from pathlib import Path

from bench.harness import Bench, headline, main, say

QUICK_ROWS = [550_000]
FULL_ROWS = [550_000, 5_000_000, 17_000_000]


def reset_peak_rss() -> None:
    """Start this process's peak-RSS count again (Linux: clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1]) // 1024


def measure_rows(bench: Bench, sizes: list[int]) -> list[dict]:
    runs = []
    with bench.servers():
        for rows in sizes:
            group = bench.generate(f"p3_{rows}", 1, rows, seed=3)
            size = (group[0] / "sales_transactions_SS_raw_1.csv").stat().st_size
            say(f"p3: one group of {rows:,} rows ({size / 2**30:.2f} GiB of transactions)")
            reset_peak_rss()  # the generator's memory is not the run's
            run = bench.run_hours(bench.storage(f"p3_{rows}"), group)[0]
            runs.append({
                "rows": rows, "transactions_file_bytes": size, "run_s": round(run.seconds, 1),
                "rows_per_s": round(rows / run.seconds),
                "rows_per_s_per_asset": {k: round(rows / v) for k, v in run.step_seconds.items()},
                "steps_s": {k: round(v, 1) for k, v in run.step_seconds.items()},
                "spark_peak_rss_mb": bench.spark_peak_rss_mb(),
                "run_process_peak_rss_mb": peak_rss_mb(),
            })  # fmt: skip
    return runs


def measure(bench: Bench, quick: bool) -> dict:
    runs = measure_rows(bench, QUICK_ROWS if quick else FULL_ROWS)
    # A run that fails raises: reaching the table means the hour completed.
    headlines = []
    for run in runs:
        big = run["rows"] >= 5_000_000
        headlines += [
            headline(f"p3 {run['rows']:,}-row hour, rows/s end to end", run["rows_per_s"],
                     "completes" if big else "", True if big else None),
            headline(f"p3 {run['rows']:,}-row hour, Spark server peak RSS MB",
                     run["spark_peak_rss_mb"], "", None),
            headline(f"p3 {run['rows']:,}-row hour, run process peak RSS MB",
                     run["run_process_peak_rss_mb"], "", None),
        ]  # fmt: skip
    return {"headlines": headlines, "driver_memory": bench.settings.spark_driver_memory,
            "runs": runs}  # fmt: skip


if __name__ == "__main__":
    main("p3_big_groups", measure)
