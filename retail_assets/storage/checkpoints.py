"""Where a streaming query stands before it starts: its checkpoint's newest committed batch.

The sensor and the asset compare it with the broker's offsets before any query starts (is a
pass due? did the broker lose its log?); what a pass then did comes from the query's own
progress reports. A checkpoint keeps `offsets/<batch>` (planned) and `commits/<batch>`
(done); an offsets entry is Spark's OffsetSeqLog format "v1": a version line, the batch's
metadata as one JSON line, then one JSON line per source: Spark's Kafka source writes
{"<topic>": {"<partition>": next offset, …}}.
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
    return kafka_offsets(sources[0], where)


def kafka_offsets(source: str, where: str = "the query's progress") -> dict[str, int]:
    """{"<partition>": offset} of a Kafka source's offsets JSON (one topic)."""
    topics = json.loads(source)
    if len(topics) != 1 or not isinstance(next(iter(topics.values())), dict):
        raise ValueError(
            f"checkpoint {where}: offsets {source[:200]} are not Spark's Kafka source's of one "
            "topic; a checkpoint of another source (this project's Python source before "
            "Spark's own) cannot be read on: see docs/runbook.md (a lost Kafka log)"
        )
    return {p: int(o) for p, o in next(iter(topics.values())).items()}


def position(commit: Commit | None, starts: dict[str, int]) -> Commit:
    """Where the query reads next: after its last commit, or at the broker's start."""
    return commit if commit is not None else Commit(None, starts)


def lag(ends: dict[str, int], at: dict[str, int]) -> dict[str, int]:
    """Records per partition between the position `at` and the end."""
    return {p: max(0, e - at.get(p, 0)) for p, e in ends.items()}
