"""Small helpers that turn results into Dagster metadata a person can read in the UI."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import MetadataValue


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
