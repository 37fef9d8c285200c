"""p7: the cluster profile (docs/profiles.md) vs the embedded one, on the same input: the
wall time of `retail replay` over the same hours, each profile on a home of its own brought up
by `retail stack up` (so both servers are fresh); and, in full mode, one 5,000,000-row hour on
the cluster profile: rows/s, and the peak resident memory of every process of the stack
(PostgreSQL, master, workers, executors, the Connect server, the broker).

Usage: python -m bench.p7_cluster_vs_embedded [--quick]
"""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from bench.harness import START, Bench, headline, main, say

QUICK_GROUPS, FULL_GROUPS, ROWS = 3, 6, 1500
BIG_ROWS = 5_000_000


def retail(env: dict, *args: str) -> float:
    """Run a `retail` command to the end; its wall time in seconds."""
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "retail_assets.cli", *args], env=env,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"retail {' '.join(args)}:\n{(done.stdout + done.stderr)[-3000:]}")
    return time.monotonic() - began


def profile_env(bench: Bench, profile: str) -> dict:
    from retail_assets.servers.supervisor import free_port

    home = bench.home / profile
    env = {**os.environ, "RETAIL_HOME": str(home), "RETAIL_PROFILE": profile,
           "DAGSTER_HOME": str(home / "dagster"), "RETAIL_SPARK_PORT": str(free_port()),
           "RETAIL_METASTORE_PORT": str(free_port()), "RETAIL_KAFKA_PORT": str(free_port()),
           "RETAIL_PG_PORT": str(free_port())}  # fmt: skip
    env.pop("RETAIL_PG_PASSWORD", None)
    return env


def peak_rss_mb(env: dict) -> dict[str, int]:
    """VmHWM of each process of the stack, a server's children (executors) by its name."""
    from retail_assets.servers import stack
    from retail_assets.servers.supervisor import children
    from retail_assets.settings import Settings

    peaks = {}
    for server in stack.servers(Settings.from_env(env)):
        pid = server.server.pid()
        for index, process in enumerate([pid, *children(pid)] if pid else []):
            status = Path(f"/proc/{process}/status").read_text().splitlines()
            peak = [line for line in status if line.startswith("VmHWM:")]  # none: a zombie
            name = server.name if index == 0 else f"{server.name}/child-{index}"
            if peak:
                peaks[name] = int(peak[0].split()[1]) // 1024
    return peaks


def big_hour(bench: Bench, env: dict, hour, name: str) -> dict:
    """One hour of BIG_ROWS, landed as group `name` (the generator calls every first group
    group1, and that name has landed already)."""
    (generated,) = bench.generate("p7_big", 1, BIG_ROWS, seed=3)
    group = generated.rename(generated.with_name(name))
    run_s = retail(env, "replay", str(group.parent), "--start", f"{hour:%Y-%m-%d-%H:00}")
    say(f"p7: a {BIG_ROWS:,}-row hour on the cluster profile: {run_s:.1f}s")
    return {"rows": BIG_ROWS, "run_s": round(run_s, 1), "rows_per_s": round(BIG_ROWS / run_s),
            "peak_rss_mb": peak_rss_mb(env)}  # fmt: skip


def measure(bench: Bench, quick: bool) -> dict:
    bench.home.chmod(0o755)  # as root, PostgreSQL runs as `postgres` and must reach its home
    groups = bench.generate("p7", QUICK_GROUPS if quick else FULL_GROUPS, ROWS, seed=7)
    start = f"{START:%Y-%m-%d-%H:00}"
    seconds, big = {}, {}
    for profile in ("embedded", "cluster"):
        env = profile_env(bench, profile)
        try:
            retail(env, "stack", "up", "--profile", profile)
            seconds[profile] = retail(env, "replay", str(groups[0].parent), "--start", start)
            say(f"p7: {len(groups)} hours on the {profile} profile: {seconds[profile]:.1f}s")
            if profile == "cluster" and not quick:
                hour = START + timedelta(hours=len(groups))
                big = big_hour(bench, env, hour, f"group{len(groups) + 1}")
        finally:
            subprocess.run([sys.executable, "-m", "retail_assets.cli", "stack", "down"],
                           env=env, capture_output=True)  # fmt: skip
    ratio = round(seconds["cluster"] / seconds["embedded"], 2)
    headlines = [headline(f"p7 {len(groups)} hours, cluster / embedded wall time", ratio, "", None)]
    if big:
        headlines.append(headline(f"p7 {BIG_ROWS:,}-row hour on the cluster, rows/s",
                                  big["rows_per_s"], "completes", True))  # fmt: skip
    return {"hours": len(groups), "rows_per_hour": ROWS, "seconds": seconds,
            "cluster_over_embedded": ratio, "big_hour": big, "headlines": headlines}  # fmt: skip


if __name__ == "__main__":
    main("p7_cluster_vs_embedded", measure)
