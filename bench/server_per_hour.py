"""What one small hour costs the embedded Spark Connect server, hour after hour on one server.

A small hour is bound by the server, not by Dagster: this measures the server's CPU per hour
(process total and by thread group), the JIT's compilations (a JVM a few hours old is still
warming up, and most test sessions run on such servers), the metastore service's CPU, and
what the metastore keeps. Before it was a service of its own, the metastore ran inside the
Spark server, whose Connect operations each run on a new thread: it opened a store per thread
and DataNucleus kept every PersistenceManager (116 an hour, measured 2026-12-06). The count of
those kept per hour is state that grows with history; its goal is 0.

Hour 1 runs whole (its tables are created), then hour 2 runs again HOURS times on the same
server. Needs the JDK's jstat and jmap (openjdk-17-jdk-headless); jmap forces a full GC.

Usage: python -m bench.server_per_hour [--quick]
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path

from bench.harness import Bench, headline, main, say

ROWS = 300
KEPT = "org.datanucleus.api.jdo.JDOPersistenceManager"


def cpu_seconds(stat: Path) -> float:
    """User + system CPU of a process or thread, from its /proc stat file."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads(pid: int) -> dict[str, tuple[str, float]]:
    """CPU of each live thread: {tid: (group, seconds)}, numbered threads in one group."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            found[task.name] = (re.sub(r"[-_#]?\d+$", "", name), cpu_seconds(task / "stat"))
        except OSError:  # the thread ended meanwhile
            continue
    return found


def compilations(pid: int) -> int:
    """Methods the JIT has compiled so far (jstat -compiler's first column)."""
    out = subprocess.run(["jstat", "-compiler", str(pid)], capture_output=True, text=True)
    return int(out.stdout.splitlines()[1].split()[0])


def kept(pid: int) -> int:
    """Live PersistenceManagers of the metastore (after the full GC jmap -histo:live forces)."""
    out = subprocess.run(["jmap", "-histo:live", str(pid)], capture_output=True, text=True)
    rows = [line.split() for line in out.stdout.splitlines()]
    return next((int(row[1]) for row in rows if len(row) >= 4 and row[3] == KEPT), 0)


def measure(bench: Bench, quick: bool) -> dict:
    from retail_assets.dev.replay import QUIET

    missing = [tool for tool in ("jstat", "jmap") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"needs the JDK's {' and '.join(missing)} (openjdk-17-jdk-headless)")
    hours = 3 if quick else 6
    with bench.servers():
        job, instance, key = bench.second_hour("server", ROWS)
        pid = bench.spark_server.server.pid()
        metastore_pid = bench.spark_server.metastore.server.pid()
        process, metastore = Path(f"/proc/{pid}/stat"), Path(f"/proc/{metastore_pid}/stat")
        rows, kept_before = [], kept(metastore_pid)
        for hour in range(2, hours + 2):
            live, compiled, server = threads(pid), compilations(pid), cpu_seconds(process)
            metastore_cpu = cpu_seconds(metastore)
            began, client = time.monotonic(), time.process_time()
            result = job.execute_in_process(instance=instance, partition_key=key, run_config=QUIET)
            assert result.success, f"hour {hour} failed"
            by_group: Counter[str] = Counter()
            for tid, (group, seconds) in threads(pid).items():
                by_group[group] += seconds - live.get(tid, (group, 0.0))[1]
            row = {
                "hour": hour,
                "seconds": round(time.monotonic() - began, 1),
                "server_cpu_s": round(cpu_seconds(process) - server, 1),
                "metastore_cpu_s": round(cpu_seconds(metastore) - metastore_cpu, 1),
                "dagster_process_cpu_s": round(time.process_time() - client, 1),
                "jit_compilations": compilations(pid) - compiled,
                "server_cpu_by_thread_s": {g: round(s, 1) for g, s in by_group.most_common(8)},
            }
            rows.append(row)
            say(f"  hour {hour}: {row['seconds']} s, server CPU {row['server_cpu_s']} s, "
                f"metastore CPU {row['metastore_cpu_s']} s, "
                f"Dagster process CPU {row['dagster_process_cpu_s']} s, "
                f"JIT compilations {row['jit_compilations']}")  # fmt: skip
        kept_per_hour = (kept(metastore_pid) - kept_before) / hours
    warm = rows[1:]
    say(f"  metastore PersistenceManagers kept per hour: {kept_per_hour:.0f}")
    return {
        "headlines": [
            headline(
                f"seconds of a warm {ROWS}-row hour (median)",
                statistics.median(r["seconds"] for r in warm),
                "",
                None,
            ),
            headline(
                "server CPU seconds of that hour (median)",
                statistics.median(r["server_cpu_s"] for r in warm),
                "",
                None,
            ),
            headline(
                "JIT compilations of that hour (median)",
                statistics.median(r["jit_compilations"] for r in warm),
                "",
                None,
            ),
            headline(
                "metastore PersistenceManagers kept per hour",
                round(kept_per_hour),
                "0",
                kept_per_hour == 0,
            ),
        ],  # fmt: skip
        "rows": ROWS,
        "hours": rows,
    }


if __name__ == "__main__":
    main("server_per_hour", measure)
