"""What a streaming query's checkpoint says it has committed (read without Spark).

Spark keeps `offsets/<batch>` (planned: a version line, a metadata line, then one line per
source) and `commits/<batch>` (done). The committed position is the end offsets of the newest
batch that has both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from retail_assets.storage.lake import Lake


@dataclass(frozen=True)
class Commit:
    batch: int
    offsets: dict[str, int]  # {"<partition>": next offset to read} of the query's one source


def last_commit(lake: Lake, *checkpoint: str) -> Commit | None:
    """The newest committed batch of the query; None if none has been committed yet."""
    batches = [int(n) for n in lake.list_names(*checkpoint, "commits") if n.isdigit()]
    if not batches:
        return None
    planned = lake.read_bytes(*checkpoint, "offsets", str(max(batches)))
    if planned is None:
        raise ValueError(f"checkpoint {'/'.join(checkpoint)}: batch {max(batches)} has no offsets")
    source = json.loads(planned.decode().splitlines()[2])
    if all(isinstance(v, dict) for v in source.values()):  # Spark's connector: {topic: {…}}
        (source,) = source.values()
    return Commit(max(batches), {p: int(o) for p, o in source.items()})


def position(commit: Commit | None, starts: dict[str, int]) -> dict[str, int]:
    """Where the query reads next: its last commit, or the broker's start if it has none."""
    return commit.offsets if commit is not None else starts


def lag(ends: dict[str, int], at: dict[str, int]) -> dict[str, int]:
    """Records per partition between the position `at` and the end."""
    return {p: max(0, e - at.get(p, 0)) for p, e in ends.items()}
