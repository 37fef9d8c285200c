"""`retail bench [--quick] [--json] [--only p1,p3]`: every benchmark, each in its own process
(own home, servers and tables), then one table of the figures; the whole record goes to
bench/results/bench_<mode>_<date>_<machine>.json, and with --json its figures are the last
line printed.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import RESULTS, machine

BENCHMARKS = [
    "p1_dagster_vs_bare_spark",
    "p2_p4_hourly_replay",
    "p3_big_groups",
    "p5_stream_vs_plain_consume",
    "p6_hour_after_history",
    "p7_cluster_vs_embedded",
]
CHECKOUT = Path(__file__).parent.parent


def run_one(name: str, quick: bool, scratch: Path) -> dict:
    """One benchmark in a child process; its record, or its failure."""
    out = scratch / f"{name}.json"
    command = [sys.executable, "-m", f"bench.{name}", "--out", str(out)]
    began = time.monotonic()
    code = subprocess.call(command + (["--quick"] if quick else []), cwd=CHECKOUT)
    seconds = round(time.monotonic() - began, 1)
    if code != 0 or not out.exists():
        return {"benchmark": name, "failed": f"exit {code}", "seconds": seconds}
    return {**json.loads(out.read_text()), "seconds": seconds}


def table(records: list[dict]) -> str:
    lines = [f"{'figure':<56} {'value':>12}  {'goal':<10} verdict"]
    for record in records:
        if "failed" in record:
            failed = f"FAILED ({record['failed']})"
            lines.append(f"{record['benchmark']:<56} {'—':>12}  {'':<10} {failed}")
            continue
        for h in record["headlines"]:
            verdict = {True: "met", False: "MISSED", None: ""}[h["met"]]
            value = f"{h['value']:,}" if isinstance(h["value"], int) else f"{h['value']}"
            lines.append(f"{h['name']:<56} {value:>12}  {h['goal']:<10} {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="retail bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, under ~10 minutes")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    parser.add_argument("--only", help="comma-separated prefixes, e.g. p1,p5")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHMARKS
              if not args.only or any(b.startswith(p) for p in args.only.split(","))]  # fmt: skip
    if not chosen:
        parser.error(f"--only {args.only} names no benchmark; they are: {', '.join(BENCHMARKS)}")
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="retail_bench_") as scratch:
        records = [run_one(name, args.quick, Path(scratch)) for name in chosen]
    mode = "quick" if args.quick else "full"
    summary = {
        "mode": mode,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "seconds": round(time.monotonic() - began, 1),
        "figures": {h["name"]: h["value"] for r in records for h in r.get("headlines", [])},
        "missed": [h["name"] for r in records for h in r.get("headlines", []) if h["met"] is False],
        "failed": [r["benchmark"] for r in records if "failed" in r],
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench_{mode}_{datetime.now(UTC):%Y%m%dT%H%M%S}_{platform.node()}.json"
    out.write_text(json.dumps({**summary, "benchmarks": records}, indent=2, default=str))
    print(table(records))
    print(f"{mode} run: {summary['seconds']:.0f}s; results: {out}")
    if args.json:
        print(json.dumps(summary, default=str))
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
