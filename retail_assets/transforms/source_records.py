"""Source CSV files → CSV records → one string column per source field (docs/rules.md §1).

How the source's files are read, before any business rule: which header names mean which
field, numbering the lines, joining a quoted field's line breaks back into one record (RFC
4180), and splitting a record into its fields by the file's own header. Pure functions on
DataFrames; the cleaning rules (transforms/transactions.py) start from their output.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

OFFER_COLUMNS = [f"offer_{k}" for k in range(1, 6)]

# Silver name -> header names the source may use. The source misspells two headers; a fixed
# spelling is accepted too, so a source-side correction does not break ingestion.
SOURCE_FIELDS: dict[str, tuple[str, ...]] = {
    "transaction_date": ("transaction_date",),
    "transaction_id": ("transaction_id",),
    "customer_id": ("customer_id",),
    "customer_fname": ("customer_fname",),
    "customer_lname": ("cusomter_lname", "customer_lname"),
    "customer_email": ("cusomter_email", "customer_email"),
    "sales_agent_id": ("sales_agent_id",),
    "branch_id": ("branch_id",),
    "product_id": ("product_id",),
    "product_name": ("product_name",),
    "product_category": ("product_category",),
    **{offer: (offer,) for offer in OFFER_COLUMNS},
    "units": ("units",),
    "unit_price": ("unit_price",),
    "is_online": ("is_online",),
    "payment_method": ("payment_method",),
    "shipping_address": ("shipping_address",),
}

BRANCH_FIELDS = {name: (name,) for name in ("branch_id", "location", "establish_date", "class")}
AGENT_FIELDS = {name: (name,) for name in ("sales_person_id", "name", "hire_date")}

FIELDS_BY_KIND = {
    "sales_transactions": SOURCE_FIELDS,
    "branches": BRANCH_FIELDS,
    "sales_agents": AGENT_FIELDS,
}
MAX_RECORD_LINES = 100  # a longer "record" is a stray quote, not a quoted field


def with_computed_once(df: DataFrame, **columns: Column) -> DataFrame:
    """Add columns evaluated once per row, however often later expressions use them.

    Spark's optimizer inlines a column's expression into every later use, and uses inside
    CASE branches escape common-subexpression elimination; an expensive expression (a CSV
    parse, a chain of regexes) then runs many times per row. A Generate node of one row out
    per row in, inline(array(struct)), is a boundary the optimizer does not inline across.
    """
    fields = [expression.alias(name) for name, expression in columns.items()]
    return df.select("*", F.inline(F.array(F.struct(*fields))))


@dataclass(frozen=True)
class HeaderLayout:
    """Where each silver field sits in one file, matched by header name, not position."""

    positions: dict[str, int]
    width: int
    unknown: tuple[str, ...]
    missing: tuple[str, ...]


def header_layout(header: str, fields: dict[str, tuple[str, ...]] = SOURCE_FIELDS) -> HeaderLayout:
    names = [name.strip().lower() for name in next(csv.reader([header]), [])]
    positions, known = {}, set()
    for field, aliases in fields.items():
        for alias in aliases:
            if alias in names:
                positions[field] = names.index(alias)
                known.add(alias)
                break
    unknown = tuple(name for name in names if name not in known)
    missing = tuple(field for field in fields if field not in positions)
    return HeaderLayout(positions, len(names), unknown, missing)


def file_problems(kind: str, entry: dict) -> list[tuple[bool, str]]:
    """What is wrong with one landed file (its manifest entry), as (is_error, words).

    Every file kind is judged alike. An unrecognized header is an error: no row of the file can
    be used. An empty file, bytes that are not UTF-8 or a last record without its line break
    are warnings: the rows that can be read are, and the rest are set aside (quarantined, for
    transactions).
    """
    if entry["empty"]:
        return [(False, "is empty: no header, nothing read")]
    problems = []
    missing = header_layout(entry["header"], FIELDS_BY_KIND[kind]).missing
    if missing:
        header = entry["header"][:80]
        problems.append(
            (True, f"header not recognized (lacks {', '.join(missing)}; header {header!r})")
        )
    if not entry.get("valid_utf8", True):
        problems.append((False, "holds bytes that are not UTF-8: rows with them are not used"))
    if not entry.get("ends_with_line_break", True):  # manifests before it was recorded: True
        problems.append((False, "does not end with a line break: its last record may be cut "
                                "off and is not used"))  # fmt: skip
    return problems


def number_lines(lines: DataFrame) -> DataFrame:
    """`spark.read.text` output → (source_file, source_line, raw_line), lines numbered from 1.

    Invalid UTF-8 becomes U+FFFD in raw_line (the lake keeps the original bytes).

    A file may be read as several splits; rows of one split are consecutive in
    monotonically_increasing_id, so a line's number is the lines of earlier splits plus its
    position in its own split. This costs one small aggregate, not a sort of the file.
    """
    rows = lines.select(
        # Spark keeps undecodable bytes as they are; U+FFFD marks them for the quarantine.
        F.make_valid_utf8("value").alias("raw_line"),
        F.col("_metadata.file_path").alias("source_file"),
        F.col("_metadata.file_block_start").alias("block_start"),
        F.monotonically_increasing_id().alias("row_id"),
    )
    earlier = Window.partitionBy("source_file").orderBy("block_start")
    splits = (
        rows.groupBy("source_file", "block_start")
        .agg(F.min("row_id").alias("first_id"), F.count("*").alias("lines"))
        .withColumn(
            "lines_before",
            F.coalesce(
                F.sum("lines").over(earlier.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0)
            ),
        )
    )
    return rows.join(F.broadcast(splits), ["source_file", "block_start"]).select(
        "source_file",
        (F.col("lines_before") + F.col("row_id") - F.col("first_id") + 1).alias("source_line"),
        "raw_line",
    )


def join_quoted_lines(numbered: DataFrame) -> DataFrame:
    """Numbered lines → CSV records (RFC 4180): a quoted field may hold line breaks.

    Every `"` toggles "inside quotes", so a record's lines start with a line holding an odd
    number of quotes and end with the next such line; the lines are joined back with `\n`
    and keep the first line's number. Such lines are rare: they and their records are joined
    on their own, the other lines pass through without a shuffle. A record that never closes,
    or runs over MAX_RECORD_LINES lines, is flagged `unbalanced_quotes` (its raw_line keeps
    the first MAX_RECORD_LINES lines; the lake copy keeps every byte). The copy step counts
    records by the same rule (storage.lake), so raw rows still reconcile.
    """
    quotes = F.length("raw_line") - F.length(F.regexp_replace("raw_line", '"', ""))
    in_file = Window.partitionBy("source_file").orderBy("source_line")
    toggles = (
        numbered.where(quotes % 2 == 1)
        .select("source_file", "source_line")
        .withColumn("pair", F.floor((F.row_number().over(in_file) - 1) / 2))
    )
    spans = toggles.groupBy("source_file", "pair").agg(
        F.min("source_line").alias("record_line"),
        F.when(F.count("*") == 2, F.max("source_line")).alias("last_line"),
    )
    closed = spans.where(F.col("last_line").isNotNull()).select(
        "source_file",
        "record_line",
        F.explode(F.sequence("record_line", "last_line")).alias("source_line"),
    )
    unclosed = spans.where(F.col("last_line").isNull()).select(
        "source_file", F.col("record_line").alias("open_line")
    )  # at most one per file: the last toggle
    opened = F.col("open_line")
    placed = (
        numbered.join(F.broadcast(closed), ["source_file", "source_line"], "left")
        .join(F.broadcast(unclosed), "source_file", "left")
        .withColumn(
            "record_line",
            F.coalesce("record_line", F.when(F.col("source_line") >= opened, opened)),
        )
    )
    single = placed.where(F.col("record_line").isNull()).select(
        "source_file", "source_line", "raw_line", F.lit(False).alias("unbalanced_quotes")
    )
    kept = F.col("source_line") < F.col("record_line") + MAX_RECORD_LINES
    joined = (
        placed.where(F.col("record_line").isNotNull())
        .groupBy("source_file", "record_line")
        .agg(
            F.sort_array(F.collect_list(F.when(kept, F.struct("source_line", "raw_line")))).alias(
                "lines"
            ),
            F.count("*").alias("line_count"),
            F.max(F.col("open_line").isNotNull()).alias("unclosed"),
        )
        .select(
            "source_file",
            F.col("record_line").alias("source_line"),
            F.array_join(F.transform("lines", lambda line: line.raw_line), "\n").alias("raw_line"),
            (F.col("unclosed") | (F.col("line_count") > MAX_RECORD_LINES)).alias(
                "unbalanced_quotes"
            ),
        )
    )
    return single.unionByName(joined)


def parse_lines(
    numbered: DataFrame,
    header: str,
    fields: dict[str, tuple[str, ...]] = SOURCE_FIELDS,
    ends_with_line_break: bool = True,
) -> DataFrame:
    """Records of one file → one string column per source field (header line dropped).

    Offline rows omit the trailing shipping_address field: missing trailing fields become
    null. A field past the header's width lands in `overflow`, so it is never silently lost.
    Two flags say a record is not data: `repeated_header` (the header line again, as where
    files were concatenated) and `truncated_record` (the last record of a file that does not
    end with a line break: its writer may have died mid-record, so no value of it is trusted).
    """
    layout = header_layout(header, fields)
    schema = ", ".join([f"c{i} STRING" for i in range(layout.width)] + ["overflow STRING"])
    record = F.from_csv(F.col("raw_line"), schema, {"escape": '"'})
    records = with_computed_once(numbered.where(F.col("source_line") > 1), record=record).select(
        "source_file", "source_line", "raw_line", "unbalanced_quotes", "record.*"
    )
    truncated = F.lit(False)
    if not ends_with_line_break:  # one small aggregate, only for such a file
        last = records.agg(F.max("source_line").alias("last_record"))
        records = records.crossJoin(F.broadcast(last))
        truncated = F.col("source_line") == F.col("last_record")
    fields = [
        F.col(f"c{layout.positions[field]}").alias(field)
        if field in layout.positions
        else F.lit(None).cast("string").alias(field)
        for field in fields
    ]
    missing = ",".join(layout.missing) or None
    again = F.lit(False)
    if header.strip():
        again = F.lower(F.trim("raw_line")) == header.strip().lower()
    return records.select(
        "source_file",
        "source_line",
        "raw_line",
        "unbalanced_quotes",
        truncated.alias("truncated_record"),
        again.alias("repeated_header"),
        *fields,
        "overflow",
        F.lit(missing).cast("string").alias("missing_columns"),
    )
