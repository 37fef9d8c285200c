"""Named points where the fault-injection test strikes, between a write and the step that
makes it visible (retail_assets_tests/test_faults.py). RETAIL_FAILPOINT=<glob> SIGKILLs the
process at the first point whose name matches; with RETAIL_FAILPOINT_PAUSE=<file> it
instead writes that file and waits (once, up to 10 minutes) until the test removes it, so
the test can kill a server under the paused run. Unset, a point costs one lookup."""

from __future__ import annotations

import fnmatch
import os
import signal
import time
from pathlib import Path

ENV = "RETAIL_FAILPOINT"
PAUSE_ENV = "RETAIL_FAILPOINT_PAUSE"
_paused = False


def failpoint(name: str) -> None:
    global _paused
    pattern = os.environ.get(ENV)
    if not pattern or not fnmatch.fnmatchcase(name, pattern):
        return
    pause = os.environ.get(PAUSE_ENV)
    if not pause:
        os.kill(os.getpid(), signal.SIGKILL)
    if _paused:
        return
    _paused = True
    Path(pause).write_text(name)
    deadline = time.monotonic() + 600
    while Path(pause).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
