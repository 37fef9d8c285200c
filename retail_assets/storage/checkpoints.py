"""Where a streaming query stands before it starts: its checkpoint's newest committed batch.

Spark 4.0's Python Data Source API has no admission control (`latestOffset(start, limit)`),
so a query cannot cap its own batch; the asset caps a run from the committed position, which
only the checkpoint holds before the query starts. (What a pass then did comes from the
query's own progress reports, and from the checkpoint again only when another query on the
same checkpoint did the work.) A checkpoint keeps `offsets/<batch>` (planned) and
`commits/<batch>` (done); an offsets entry is Spark's OffsetSeqLog format "v1": a version
line, the batch's metadata as one JSON line, then one JSON line per source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from retail_assets.storage.lake import Lake

OFFSET_LOG_VERSION = "v1"


@dataclass(frozen=True)
class Commit:
    batch: int | None  # the newest committed batch; None before the first
    offsets: dict[str, int]  # {"<partition>": next offset to read} of the query's one source


def last_commit(lake: Lake, *checkpoint: str) -> Commit | None:
    """The newest committed batch of the query; None if none has been committed yet."""
    batches = [int(n) for n in lake.list_names(*checkpoint, "commits") if n.isdigit()]
    if not batches:
        return None
    where = "/".join((*checkpoint, "offsets", str(max(batches))))
    planned = lake.read_bytes(*checkpoint, "offsets", str(max(batches)))
    if planned is None:
        raise ValueError(f"checkpoint {where}: the committed batch has no offsets entry")
    return Commit(max(batches), source_offsets(planned.decode(), where))


def source_offsets(entry: str, where: str) -> dict[str, int]:
    """The one source's offsets in an offsets-log entry; a clear error for any other shape."""
    version, _metadata, *sources = entry.splitlines()
    if version != OFFSET_LOG_VERSION:
        raise ValueError(
            f"checkpoint {where}: offsets log {version!r}, this project reads "
            f"{OFFSET_LOG_VERSION!r} (Spark 2.1 to 4.0); a newer Spark changed the format"
        )
    if len(sources) != 1:
        raise ValueError(f"checkpoint {where}: {len(sources)} sources, the query has one")
    return {p: int(o) for p, o in json.loads(sources[0]).items()}


def position(commit: Commit | None, starts: dict[str, int]) -> Commit:
    """Where the query reads next: after its last commit, or at the broker's start."""
    return commit if commit is not None else Commit(None, starts)


def lag(ends: dict[str, int], at: dict[str, int]) -> dict[str, int]:
    """Records per partition between the position `at` and the end."""
    return {p: max(0, e - at.get(p, 0)) for p, e in ends.items()}
