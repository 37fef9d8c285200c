"""One writer at a time, across processes: an exclusive lock on a file.

The instance's run queue keeps the UI's and the sensors' runs one at a time per lane, but a
`retail replay`, a `retail stream`, a test or a second instance runs jobs outside that queue.
Every batch run takes the batch lock for its whole run, and every stream pass the stream's,
so two runs of one lane never interleave their writes: the second waits. The kernel
releases the lock when its holder dies, even by SIGKILL, so a killed run never leaves it
held. It holds on one machine (a local landing folder); runs on several machines need the
shared instance's run queue (docs/runbook.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

BATCH_LOCK = ".writer.lock"  # the hourly runs: raw files to the B2B file
STREAM_LOCK = ".stream.lock"  # the stream's passes: its checkpoints and tables


class LockTimeout(RuntimeError):
    pass


@contextlib.contextmanager
def writer_lock(
    folder: Path,
    holder: str,
    timeout: float = 3600.0,
    say: Callable[[str], None] = print,
    poll: float = 0.5,
    name: str = BATCH_LOCK,
) -> Iterator[None]:
    """Hold the writer lock `name` of `folder` (created if missing); waits up to `timeout`
    seconds for the current holder, whose description (`holder`, pid) it names meanwhile."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with open(path, "a+") as handle:
        deadline, said = time.monotonic() + timeout, False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    say(f"waiting for the writer lock {path}, held by {_holder(path)}")
                    said = True
                if time.monotonic() > deadline:
                    raise LockTimeout(
                        f"the writer lock {path} is still held by {_holder(path)} after "
                        f"{timeout:.0f}s; wait for that run to end, or stop it"
                    ) from None
                time.sleep(poll)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"holder": holder, "pid": os.getpid()}))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holder(path: Path) -> str:
    try:
        found = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    return f"{found.get('holder', 'another process')} (pid {found.get('pid', '?')})"
