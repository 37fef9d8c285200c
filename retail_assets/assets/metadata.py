"""Small helpers that turn results into Dagster metadata a person can read in the UI, the
few-job Spark aggregates that metadata and checks are computed with, and the check results a
subset of a multi-asset may report."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from functools import reduce
from html import escape

from dagster import AssetCheckKey, AssetCheckResult, AssetExecutionContext, MetadataValue
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


# The chart's geometry, in pixels; labels are cut to LABEL_CHARS characters.
CHART_WIDTH, ROW_HEIGHT, TITLE_HEIGHT, LABEL_CHARS, CHAR_WIDTH = 600, 20, 26, 36, 7.2


def cut(text: str) -> str:
    """`text` in at most LABEL_CHARS characters, an ellipsis marking a cut."""
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str) -> MetadataValue:
    """A horizontal bar chart as an SVG image inside markdown (the UI renders data-URI images).

    Written as text rather than drawn by a plotting library: a chart is a few rectangles, and
    matplotlib cost 0.1–0.2 s a chart (five an hour) plus a second to import in every run.
    """
    if not labels:
        return MetadataValue.md(f"_{title}: nothing to chart_")
    names = [cut(str(label)) for label in labels]
    left = CHAR_WIDTH * max(map(len, names)) + 10
    room = CHART_WIDTH - left - 90  # the longest bar, leaving space for its value
    largest = max((float(v) for v in values), default=0.0) or 1.0
    height = TITLE_HEIGHT + ROW_HEIGHT * len(names) + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{CHART_WIDTH / 2}" y="17" text-anchor="middle" font-size="14">'
        f"{escape(title)}</text>",
    ]
    for row, (name, value) in enumerate(zip(names, values, strict=True)):
        top = TITLE_HEIGHT + ROW_HEIGHT * row
        length = room * max(float(value), 0.0) / largest
        parts += [
            f'<text x="{left - 6}" y="{top + 14}" text-anchor="end">{escape(name)}</text>',
            f'<rect x="{left}" y="{top + 3}" width="{length:.1f}" height="{ROW_HEIGHT - 6}" '
            'fill="#4c72b0"/>',
            f'<text x="{left + length + 4:.1f}" y="{top + 14}">{value:,}</text>',
        ]
    encoded = base64.b64encode("".join([*parts, "</svg>"]).encode()).decode()
    return MetadataValue.md(f"![{title}](data:image/svg+xml;base64,{encoded})")


# Each Spark action is a round trip and a job's start-up, which on a small hour costs more than
# its data: metadata and checks ask for what they need in as few actions as they can.


def count_each(frames: dict[str, DataFrame]) -> dict[str, int]:
    """Row counts of several frames, in one Spark job."""
    tagged = [frame.select(F.lit(name).alias("frame")) for name, frame in frames.items()]
    rows = reduce(DataFrame.unionByName, tagged).groupBy("frame").count().collect()
    counts = {row["frame"]: row["count"] for row in rows}
    return {name: counts.get(name, 0) for name in frames}


def side_by_side(*aggregates: DataFrame) -> DataFrame:
    """Several one-row aggregates (distinct column names) as one row."""
    return reduce(DataFrame.crossJoin, aggregates)


def one_row(*aggregates: DataFrame) -> dict:
    """Several one-row aggregates (distinct column names), computed in one Spark job."""
    return side_by_side(*aggregates).collect()[0].asDict()


def all_rows(frame: DataFrame, name: str) -> DataFrame:
    """A one-row aggregate holding every row of a small `frame` (column `name`: a list of
    Rows), so it is collected in the same one_row job as the counts. In no particular order."""
    return frame.agg(F.collect_list(F.struct(*frame.columns)).alias(name))


def selected_checks(
    context: AssetExecutionContext, results: list[AssetCheckResult]
) -> list[AssetCheckResult]:
    """The `results` of the checks this run selected: a subsettable multi-asset may only
    report those (each asset's checks are computed together anyway)."""
    selected = context.selected_asset_check_keys
    return [r for r in results if AssetCheckKey(r.asset_key, r.check_name) in selected]
