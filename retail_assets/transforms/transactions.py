"""Source sales transactions → silver rows and quarantined rows (docs/rules.md §1–2).

Every business rule of the silver layer lives here exactly once, as a pure function from
DataFrame to DataFrame (or Column to Column), so it can be unit-tested on a tiny frame and read
in one place. The pipeline composes them in `clean_transactions`.
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

SILVER_COLUMNS = [
    "transaction_id",
    "transaction_date",
    "customer_id",
    "customer_fname",
    "customer_lname",
    "customer_email",
    "email_quality",
    "sales_agent_id",
    "branch_id",
    "product_id",
    "product_name",
    "product_category",
    "offer_number",
    "discount_perc",
    "units",
    "unit_price",
    "total_paid_price",
    "is_online",
    "payment_method",
    "street",
    "city",
    "state",
    "postal_code",
    "source_file",
    "source_line",
]
BRANCH_FIELDS = {name: (name,) for name in ("branch_id", "location", "establish_date", "class")}
AGENT_FIELDS = {name: (name,) for name in ("sales_person_id", "name", "hire_date")}
QUARANTINE_COLUMNS = ["source_file", "source_line", "reason", "transaction_id", "raw_line"]

FIELDS_BY_KIND = {
    "sales_transactions": SOURCE_FIELDS,
    "branches": BRANCH_FIELDS,
    "sales_agents": AGENT_FIELDS,
}
MONEY = "decimal(18,2)"
PRICE = "decimal(18,4)"
DATE_PATTERN = "yyyy-M-d"  # the source does not zero-pad; padded dates parse too
FUTURE_GRACE_DAYS = 1
MAX_RECORD_LINES = 100  # a longer "record" is a stray quote, not a quoted field
EMAIL_SHAPE = r"^[a-z0-9._%+'-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$"


# ---------------------------------------------------------------- reading the source lines


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
    be used. An empty file or bytes that are not UTF-8 are warnings: the rows that can be read
    are, and the rest are set aside (quarantined, for transactions).
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
    numbered: DataFrame, header: str, fields: dict[str, tuple[str, ...]] = SOURCE_FIELDS
) -> DataFrame:
    """Records of one file → one string column per source field (header line dropped).

    Offline rows omit the trailing shipping_address field: missing trailing fields become
    null. A field past the header's width lands in `overflow`, so it is never silently lost.
    """
    layout = header_layout(header, fields)
    schema = ", ".join([f"c{i} STRING" for i in range(layout.width)] + ["overflow STRING"])
    record = F.from_csv(F.col("raw_line"), schema, {"escape": '"'})
    records = with_computed_once(numbered.where(F.col("source_line") > 1), record=record).select(
        "source_file", "source_line", "raw_line", "unbalanced_quotes", "record.*"
    )
    fields = [
        F.col(f"c{layout.positions[field]}").alias(field)
        if field in layout.positions
        else F.lit(None).cast("string").alias(field)
        for field in fields
    ]
    missing = ",".join(layout.missing) or None
    return records.select(
        "source_file",
        "source_line",
        "raw_line",
        "unbalanced_quotes",
        *fields,
        "overflow",
        F.lit(missing).cast("string").alias("missing_columns"),
    )


# ---------------------------------------------------------------- column rules


def blank_to_null(value: Column) -> Column:
    trimmed = F.trim(value)
    return F.when(trimmed != "", trimmed)


def clean_email(raw: Column) -> Column:
    """Trim, cut everything after the domain, .comm → .com, lower-case; null if unrepairable."""
    lowered = F.lower(F.trim(raw))
    cut = F.regexp_extract(lowered, r"^([^@\s]+@[a-z0-9.-]+)", 1)
    tidy = F.regexp_replace(F.regexp_replace(cut, r"[.-]+$", ""), r"\.comm$", ".com")
    return F.when(tidy.rlike(EMAIL_SHAPE), tidy)


def email_quality(raw: Column, cleaned: Column) -> Column:
    """ok | repaired | invalid | missing — kept beside the email instead of dropping the sale."""
    return (
        F.when(blank_to_null(raw).isNull(), "missing")
        .when(cleaned.isNull(), "invalid")
        .when(cleaned == F.lower(F.trim(raw)), "ok")
        .otherwise("repaired")
    )


def title_case(raw: Column) -> Column:
    """Trim and Title-Case like Python's str.title(): a letter after a non-letter is upper.

    Spark's initcap starts words only after a space, so a marker and a space go after every
    other non-letter (O'|neil, Mary-|jane), initcap runs, and the markers come out again.
    No per-character lambda: those stop Spark's code generation for the whole row.
    """
    marked = F.regexp_replace(blank_to_null(raw), r"([^\p{L} ])", "$1\u0001 ")
    return F.regexp_replace(F.initcap(marked), "\u0001 ", "")


def parse_date(raw: Column) -> Column:
    return F.try_to_timestamp(F.trim(raw), F.lit(DATE_PATTERN)).cast("date")


# ---------------------------------------------------------------- frame rules


def with_offer(df: DataFrame) -> DataFrame:
    """offer_count, offer_number (the one offer k set) and discount_perc = 5·k, 0 for none."""
    normalized = [F.lower(F.trim(F.col(offer))) for offer in OFFER_COLUMNS]
    is_set = [F.coalesce(value == "true", F.lit(False)) for value in normalized]
    bad_value = F.lit(False)
    for value in normalized:
        bad_value = bad_value | F.coalesce(~value.isin("", "true", "false"), F.lit(False))
    offer_count = sum(flag.cast("int") for flag in is_set)
    offer_number = F.coalesce(*[F.when(flag, F.lit(k)) for k, flag in enumerate(is_set, 1)])
    return (
        df.withColumn("bad_offer_value", bad_value)
        .withColumn("offer_count", offer_count)
        .withColumn("offer_number", F.when(F.col("offer_count") == 1, offer_number))
        .withColumn("discount_perc", F.coalesce(discount_of(F.col("offer_number")), F.lit(0)))
    )


def discount_of(offer: Column) -> Column:
    """Offer k gives 5·k % off."""
    return offer * 5


def with_total_paid_price(df: DataFrame) -> DataFrame:
    """total_paid_price = round(units × unit_price × (1 − discount_perc/100), 2), in decimals."""
    keep = (F.lit(100) - F.col("discount_perc")).cast("decimal(5,0)") / F.lit(100)
    total = F.round(F.col("units") * F.col("unit_price") * keep, 2)
    return df.withColumn("total_paid_price", total.cast(MONEY))


def with_address(df: DataFrame) -> DataFrame:
    """street/city/STATE/postal, split from the right: a street may itself contain '/'."""
    parts = F.split(F.trim(F.col("shipping_address")), "/")
    whole = F.size(parts) >= 4
    street = F.array_join(F.slice(parts, 1, F.size(parts) - 3), "/")
    return (
        df.withColumn("street", blank_to_null(F.when(whole, street)))
        .withColumn("city", blank_to_null(F.when(whole, F.element_at(parts, -3))))
        .withColumn("state", blank_to_null(F.when(whole, F.element_at(parts, -2))))
        .withColumn("postal_code", blank_to_null(F.when(whole, F.element_at(parts, -1))))
    )


def with_customer(df: DataFrame) -> DataFrame:
    """Names trimmed and Title-Cased; email repaired with a quality flag."""
    return (
        with_computed_once(df, clean_email=clean_email(F.col("customer_email")))
        .withColumn("customer_fname", title_case(F.col("customer_fname")))
        .withColumn("customer_lname", title_case(F.col("customer_lname")))
        .withColumn("email_quality", email_quality(F.col("customer_email"), F.col("clean_email")))
        .withColumn("customer_email", F.col("clean_email"))
        .drop("clean_email")
    )


def with_types(df: DataFrame) -> DataFrame:
    """Typed columns; a value that cannot be typed becomes null and is caught by the reasons."""
    units = F.trim(F.col("units")).try_cast(PRICE)
    online = F.lower(F.trim(F.col("is_online")))
    for column in (
        "transaction_id",
        "customer_id",
        "sales_agent_id",
        "branch_id",
        "product_id",
        "product_name",
        "product_category",
        "payment_method",
    ):
        df = df.withColumn(column, blank_to_null(F.col(column)))
    return (
        df.withColumn("transaction_date", parse_date(F.col("transaction_date")))
        .withColumn("units", F.when(units == F.floor(units), units.try_cast("int")))
        .withColumn("unit_price", F.trim(F.col("unit_price")).try_cast(PRICE))
        .withColumn("is_online", F.when(online == "yes", True).when(online == "no", False))
    )


def unreadable() -> Column:
    """Why a parsed record of any file kind cannot be read, or null: the same rules for
    transactions, branches and sales agents files (a record that fails is never used)."""
    failures = [
        (F.col("raw_line").contains("\ufffd"), "invalid_encoding"),
        (F.col("unbalanced_quotes"), "unbalanced_quotes"),
        (F.trim(F.col("raw_line")) == "", "blank_line"),
        (F.col("missing_columns").isNotNull(), "missing_columns"),
        (F.col("overflow").isNotNull(), "too_many_fields"),
    ]
    return F.coalesce(*[F.when(test, F.lit(name)) for test, name in failures])


def with_quarantine_reason(df: DataFrame) -> DataFrame:
    """The first rule a row breaks, or null for a row fit for silver.

    A sale cannot be dated after its file reached the lake (`received_on`, the day of its first
    copy, fixed in the manifest so a re-run decides the same); a day of grace covers a source
    clock ahead of UTC. Arrival hours are not the bound: a replay lands old sales in any hour.
    """
    offline = F.col("is_online") == F.lit(False)
    latest = F.date_add(F.col("received_on"), FUTURE_GRACE_DAYS)
    checks = [
        (F.col("transaction_id").isNull(), "missing_transaction_id"),
        (F.col("transaction_date").isNull(), "bad_transaction_date"),
        (F.col("transaction_date") > latest, "future_transaction_date"),
        (F.col("units").isNull(), "bad_units"),
        (F.col("units") <= 0, "non_positive_units"),
        (F.col("unit_price").isNull(), "bad_unit_price"),
        (F.col("unit_price") < 0, "negative_unit_price"),
        (F.col("is_online").isNull(), "bad_is_online"),
        (F.col("bad_offer_value"), "bad_offer_value"),
        (F.col("offer_count") >= 2, "multiple_offers"),
        (F.col("customer_id").isNull(), "missing_customer_id"),
        (F.col("product_id").isNull(), "missing_product_id"),
        (offline & F.col("branch_id").isNull(), "missing_branch_id"),
        (offline & F.col("sales_agent_id").isNull(), "missing_sales_agent_id"),
    ]
    return df.withColumn(
        "reason", F.coalesce(unreadable(), *[F.when(test, F.lit(name)) for test, name in checks])
    )


def clean_transactions(parsed: DataFrame) -> DataFrame:
    """Parsed source rows → every silver column plus `reason` (null = fit for silver)."""
    return (
        parsed.transform(with_types)
        .transform(with_offer)
        .transform(with_total_paid_price)
        .transform(with_customer)
        .transform(with_address)
        .transform(with_quarantine_reason)
    )


def silver_rows(cleaned: DataFrame) -> DataFrame:
    return cleaned.where(F.col("reason").isNull()).select(*SILVER_COLUMNS)


def quarantine_rows(cleaned: DataFrame) -> DataFrame:
    return cleaned.where(F.col("reason").isNotNull()).select(*QUARANTINE_COLUMNS)
