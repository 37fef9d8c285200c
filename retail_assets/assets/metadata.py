"""Small helpers that turn results into Dagster metadata a person can read in the UI, and the
few-job Spark aggregates that metadata and checks are computed with."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from functools import reduce

from dagster import MetadataValue
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def markdown_table(rows: Sequence[dict], limit: int = 10) -> MetadataValue:
    """A markdown table of the first `limit` rows (no extra dependency such as tabulate)."""
    rows = list(rows)[:limit]
    if not rows:
        return MetadataValue.md("_no rows_")
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = ("" if row[c] is None else str(row[c]).replace("|", "\\|") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return MetadataValue.md("\n".join(lines))


def as_json(value) -> MetadataValue:
    """JSON metadata from values that JSON lacks (decimals, dates) written as text."""
    return MetadataValue.json(json.loads(json.dumps(value, default=str)))


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str) -> MetadataValue:
    """A horizontal bar chart as a PNG inside markdown (the UI renders data-URI images).

    Rendered headless (Agg) and kept small: it is stored with every materialization event.
    """
    from matplotlib.figure import Figure  # the Figure API needs no display and no pyplot state

    if not labels:
        return MetadataValue.md(f"_{title}: nothing to chart_")
    figure = Figure(figsize=(6, 0.3 * len(labels) + 0.8), dpi=72)
    axes = figure.subplots()
    positions = range(len(labels))
    axes.barh(positions, [float(v) for v in values], color="#4c72b0")
    axes.set_yticks(positions, [str(label) for label in labels], fontsize=8)
    axes.invert_yaxis()  # first row on top, as in the table
    axes.set_title(title, fontsize=10)
    axes.tick_params(axis="x", labelsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


# Each Spark action is a round trip and a job's start-up, which on a small hour costs more than
# its data: metadata and checks ask for what they need in as few actions as they can.


def count_each(frames: dict[str, DataFrame]) -> dict[str, int]:
    """Row counts of several frames, in one Spark job."""
    tagged = [frame.select(F.lit(name).alias("frame")) for name, frame in frames.items()]
    rows = reduce(DataFrame.unionByName, tagged).groupBy("frame").count().collect()
    counts = {row["frame"]: row["count"] for row in rows}
    return {name: counts.get(name, 0) for name in frames}


def one_row(*aggregates: DataFrame) -> dict:
    """Several one-row aggregates (distinct column names), computed in one Spark job."""
    return reduce(DataFrame.crossJoin, aggregates).collect()[0].asDict()


def all_rows(frame: DataFrame, name: str) -> DataFrame:
    """A one-row aggregate holding every row of a small `frame` (column `name`: a list of
    Rows), so it is collected in the same one_row job as the counts. In no particular order."""
    return frame.agg(F.collect_list(F.struct(*frame.columns)).alias(name))
