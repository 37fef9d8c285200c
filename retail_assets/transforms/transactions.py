"""Parsed source transactions → silver rows and quarantined rows (docs/rules.md §2).

Every business rule of the silver layer lives here exactly once, as a pure function from
DataFrame to DataFrame (or Column to Column), so it can be unit-tested on a tiny frame and read
in one place. The pipeline composes them in `clean_transactions`.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from retail_assets.transforms.source_records import OFFER_COLUMNS, with_computed_once

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
QUARANTINE_COLUMNS = ["source_file", "source_line", "reason", "transaction_id", "raw_line"]

MONEY = "decimal(18,2)"
PRICE = "decimal(18,4)"
DATE_PATTERN = "yyyy-M-d"  # the source does not zero-pad; padded dates parse too
FUTURE_GRACE_DAYS = 1
EMAIL_SHAPE = r"^[a-z0-9._%+'-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$"


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
        (F.col("truncated_record"), "truncated_record"),
        (F.col("repeated_header"), "repeated_header"),
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
