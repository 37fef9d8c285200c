"""Runs whose worker died without a word (SIGKILL, out of memory, a reboot) are marked failed,
so the UI shows them failed and offers "re-execute from failure".

The code server already does this for the runs it launches (the UI's, the sensors'). Nobody
watches the runs that `retail replay` and `retail stream` execute in their own process: a
killed one would stay STARTED for ever. So every run records its worker (host, pid and the
process's start time, so that a reused pid is not taken for it), and any STARTED run whose
worker is gone is failed (`runs.fail_orphaned_runs`) by the next batch run
once it holds the writer lock, and by the `orphaned_runs` sensor every minute.
"""

from __future__ import annotations

import socket
from pathlib import Path

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


def pid_of(found: str) -> int:
    """The pid of `found` (a `worker`)."""
    return int(found.rsplit(":", 2)[1])


def worker_gone(found: str) -> bool:
    """True when `found` (a `worker`) ran on this host and has ended."""
    host, _, started = found.rsplit(":", 2)
    return host == socket.gethostname() and _started(pid_of(found)) != started
