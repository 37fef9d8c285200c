"""Runs whose worker died without a word (SIGKILL, out of memory, a reboot) are marked failed,
so the UI shows them failed and offers "re-execute from failure".

The code server already does this for the runs it launches (the UI's, the sensors'). Nobody
watches the runs that `retail replay` and `retail stream` execute in their own process: a
killed one would stay STARTED for ever. So every run records its worker (host, pid and the
process's start time, so that a reused pid is not taken for it), and any STARTED run whose
worker is gone is failed by the next batch run once it holds the writer lock, and by the
`orphaned_runs` sensor every minute.
"""

from __future__ import annotations

import socket
from pathlib import Path

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

WORKER_TAG = "retail/worker"


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def worker(pid: int) -> str:
    """The process `pid` of this host, told apart from a later process given the same pid."""
    return f"{socket.gethostname()}:{pid}:{_started(pid)}"


def worker_gone(found: str) -> bool:
    """True when `found` (a `worker`) ran on this host and has ended."""
    host, pid, started = found.rsplit(":", 2)
    return host == socket.gethostname() and _started(int(pid)) != started


def fail_orphaned_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed every STARTED run whose worker on this host has ended; their ids."""
    failed = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        run = record.dagster_run
        found = run.tags.get(WORKER_TAG)
        if found and worker_gone(found):
            pid = found.rsplit(":", 2)[1]
            instance.report_run_failed(
                run,
                f"The run's worker (pid {pid}) ended without ending the run: it was killed or "
                "crashed. Nothing it left half-written is visible; re-execute the run (from "
                "failure in the UI) or run the same command again.",
            )
            failed.append(run.run_id)
    return failed


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING)
def orphaned_runs(context: SensorEvaluationContext) -> SkipReason:
    """Marks failed the runs a killed `retail replay` or `retail stream` left STARTED."""
    failed = fail_orphaned_runs(context.instance)
    return SkipReason(f"marked failed: {', '.join(failed)}" if failed else "no orphaned runs")
