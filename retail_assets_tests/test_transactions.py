"""Unit tests of the silver rules (docs/rules.md §2), one per rule and per quarantine reason."""

import csv
import random
from datetime import date
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from retail_assets.transforms import source_records as R
from retail_assets.transforms import transactions as T
from retail_assets_tests.helpers import HEADERS

HEADER = HEADERS["sales_transactions"]
RECEIVED_ON = date(2023, 5, 20)  # the day the file reached the lake
OFFLINE = (
    "2023-5-20,{tid},c1,john,WICK,john.wick@gmail.com#4r,a1,b1,p1,Phone,Electronics,"
    "{offers},{units},{price},no,Cash"
)
ONLINE = (
    "2023-5-20,{tid},c1,john,wick,john.wick@gmail.com,,,p1,Phone,Electronics,"
    ",,,,,1,5.00,yes,PayPal,{address}"
)


def offline(tid="1", offers=",,,,", units="2", price="10.00", date=None):
    line = OFFLINE.format(tid=tid, offers=offers, units=units, price=price)
    return line.replace("2023-5-20", date, 1) if date is not None else line


def clean(spark, *lines, header=HEADER, ends_with_line_break=True):
    rows = [("f.csv", 1, header)] + [("f.csv", i, line) for i, line in enumerate(lines, 2)]
    numbered = spark.createDataFrame(rows, "source_file string, source_line long, raw_line string")
    parsed = R.parse_lines(
        R.join_quoted_lines(numbered), header, ends_with_line_break=ends_with_line_break
    )
    return T.clean_transactions(parsed.withColumn("received_on", F.lit(RECEIVED_ON)))


def one(spark, line, column):
    return clean(spark, line).select(column).collect()[0][0]


def values(spark, column, *raw):
    frame = spark.createDataFrame([(v,) for v in raw], "raw string")
    return [r[0] for r in frame.select(column).collect()]


# ---------------------------------------------------------------- rules


def test_email_cut_after_domain_comm_fixed_lowercased(spark):
    raw = [
        "A.B@gmail.com#4r",
        'a.b@yahoo.com"',
        "a.b@hotmail.com ",
        " a.b@outlook.comm",
        "a.b@gmail.com}4",
        "a.b@gmail.com)x",
        "a.b@gmail.com\\",
        "a.b@gmail.com.",
    ]
    got = values(spark, T.clean_email(F.col("raw")), *raw)
    assert got == [
        "a.b@gmail.com",
        "a.b@yahoo.com",
        "a.b@hotmail.com",
        "a.b@outlook.com",
        "a.b@gmail.com",
        "a.b@gmail.com",
        "a.b@gmail.com",
        "a.b@gmail.com",
    ]


def test_unrepairable_email_is_null_with_flag_and_the_sale_kept(spark):
    line = offline().replace("john.wick@gmail.com#4r", "no-at-sign")
    row = clean(spark, line).select("customer_email", "email_quality", "reason").collect()[0]
    assert (row.customer_email, row.email_quality, row.reason) == (None, "invalid", None)
    assert values(
        spark,
        T.email_quality(F.col("raw"), T.clean_email(F.col("raw"))),
        "a@b.com",
        "a@b.com#",
        None,
    ) == ["ok", "repaired", "missing"]


def test_names_trimmed_and_title_cased(spark):
    got = values(spark, T.title_case(F.col("raw")), "  john wick ", "MARY-JANE", "o'neil", "", None)
    assert got == ["John Wick", "Mary-Jane", "O'Neil", None, None]


def test_discount_is_five_times_the_offer_number(spark):
    for k in range(1, 6):
        offers = ",".join("True" if i == k else "" for i in range(1, 6))
        row = clean(spark, offline(offers=offers)).collect()[0]
        assert (row.offer_number, row.discount_perc) == (k, 5 * k)
    assert one(spark, offline(), "discount_perc") == 0


def test_total_paid_price_rounds_the_exact_decimal(spark):
    # 3 × 19.99 × 0.90 = 53.973 → 53.97 ; 1 × 10.10 × 0.95 = 9.595 → 9.60 (half up, exact)
    assert one(
        spark, offline(units="3", price="19.99", offers=",True,,,"), "total_paid_price"
    ) == Decimal("53.97")
    assert one(
        spark, offline(units="1", price="10.10", offers="True,,,,"), "total_paid_price"
    ) == Decimal("9.60")


def test_address_split_from_the_right_keeps_leading_zeros(spark):
    line = ONLINE.format(tid="9", address="421 1/2 6th Street Southeast/Somerville/MA/02143")
    row = clean(spark, line).collect()[0]
    assert (row.street, row.city, row.state, row.postal_code) == (
        "421 1/2 6th Street Southeast",
        "Somerville",
        "MA",
        "02143",
    )
    assert row.is_online is True and row.reason is None


def test_ragged_offline_row_and_unpadded_date(spark):
    row = clean(spark, offline()).collect()[0]
    assert str(row.transaction_date) == "2023-05-20"
    assert row.is_online is False and row.street is None and row.reason is None


def test_columns_matched_by_header_name_not_position(spark):
    names = HEADER.split(",")
    names[0], names[1] = names[1], names[0]
    fields = offline(tid="77").split(",")
    fields[0], fields[1] = fields[1], fields[0]
    row = clean(spark, ",".join(fields), header=",".join(names)).collect()[0]
    assert (row.transaction_id, str(row.transaction_date)) == ("77", "2023-05-20")


def test_unknown_extra_column_is_ignored(spark):
    row = clean(spark, offline() + ",,gold", header=HEADER + ",loyalty_tier").collect()[0]
    assert row.reason is None
    assert R.header_layout(HEADER + ",loyalty_tier").unknown == ("loyalty_tier",)


def test_number_lines_across_splits(spark, tmp_path):
    """Line numbers must be file line numbers even when Spark splits a file."""
    path = tmp_path / "lines.csv"
    path.write_text("\n".join(f"line{i}" for i in range(1, 2001)) + "\n")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "1000")
    try:
        lines = spark.read.text(str(path))
        assert lines.select(F.spark_partition_id()).distinct().count() > 1  # really split
        pairs = {(r.source_line, r.raw_line) for r in R.number_lines(lines).collect()}
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert pairs == {(i, f"line{i}") for i in range(1, 2001)}


def read_records(spark, path):
    numbered = R.number_lines(spark.read.text(str(path)))
    return R.join_quoted_lines(numbered).orderBy("source_line").collect()


def test_quoted_comma_quote_and_line_break_stay_in_one_record(spark, tmp_path):
    """RFC 4180 read of a real file across Spark splits, checked against Python's csv reader."""
    rng = random.Random(3)
    rows = [["h1", "h2", "h3"]] + [
        [f"r{i}", rng.choice(["plain", 'a "quote"', "x,y", "line\nbreak", "two\r\nlines\n"]), "z"]
        for i in range(400)
    ]
    path = tmp_path / "quoted.csv"
    with open(path, "w", newline="") as out:
        csv.writer(out, lineterminator="\r\n").writerows(rows)
    spark.conf.set("spark.sql.files.maxPartitionBytes", "2000")
    try:
        records = read_records(spark, path)
        parsed = R.parse_lines(
            R.join_quoted_lines(R.number_lines(spark.read.text(str(path)))),
            "h1,h2,h3",
            {"h1": ("h1",), "h2": ("h2",), "h3": ("h3",)},
        )
        fields = [(r.h1, r.h2, r.h3) for r in parsed.orderBy("source_line").collect()]
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    # Spark's text reader ends lines at \r\n too, so a quoted \r\n comes back as \n
    expected = [tuple(v.replace("\r\n", "\n") for v in row) for row in rows[1:]]
    assert fields == expected
    assert len(records) == len(rows) and not any(r.unbalanced_quotes for r in records)
    firsts = [1]
    for row in rows[:-1]:
        firsts.append(firsts[-1] + sum(v.count("\n") for v in row) + 1)
    assert [r.source_line for r in records] == firsts  # a record keeps its first line's number


def test_multi_line_online_sale_is_one_silver_row(spark):
    first = ONLINE.format(tid="9", address='"12 Elm St, Apt 4')
    cleaned = clean(spark, first, 'Floor 2/Springfield/IL/62701"', offline(tid="10"))
    rows = {r.transaction_id: r for r in cleaned.collect()}
    assert set(rows) == {"9", "10"} and rows["9"].reason is None
    assert (rows["9"].street, rows["9"].city, rows["9"].postal_code) == (
        "12 Elm St, Apt 4\nFloor 2",
        "Springfield",
        "62701",
    )
    assert (rows["9"].source_line, rows["10"].source_line) == (2, 4)


def test_unclosed_quote_is_quarantined_whole_never_loaded_in_part(spark):
    broken = ONLINE.format(tid="9", address='"12 Elm St')
    cleaned = clean(spark, offline(tid="1"), broken, offline(tid="2"), offline(tid="3"))
    rows = [
        (r.source_line, r.transaction_id, r.reason)
        for r in cleaned.orderBy("source_line").collect()
    ]
    assert rows == [(2, "1", None), (3, "9", "unbalanced_quotes")]  # RFC: the rest is inside


@pytest.mark.parametrize(
    "cut",
    [
        ONLINE.format(tid="9", address="12 Elm St/Springfield/CA/92"),  # inside a field
        ONLINE.format(tid="9", address='"12 Elm St, Apt'),  # inside a quoted field
        offline(tid="9").removesuffix("Cash"),  # right after a delimiter
    ],
    ids=["inside_a_field", "inside_a_quoted_field", "after_a_delimiter"],
)
def test_the_last_record_of_a_file_without_a_final_line_break_is_truncated(spark, cut):
    """Each cut still parses as a plausible row (92 is a postal code to Spark), so only the
    missing line break can tell: the record is quarantined, the ones before it are not."""
    cleaned = clean(spark, offline(tid="1"), cut, ends_with_line_break=False)
    rows = [(r.source_line, r.reason) for r in cleaned.orderBy("source_line").collect()]
    assert rows == [(2, None), (3, "truncated_record")]


def test_a_repeated_header_line_has_its_own_reason(spark):
    again = " " + HEADER.upper() + " "  # as a concatenation of two files leaves it
    cleaned = clean(spark, offline(tid="1"), again, offline(tid="2"))
    rows = [(r.source_line, r.reason) for r in cleaned.orderBy("source_line").collect()]
    assert rows == [(2, None), (3, "repeated_header"), (4, None)]


def test_record_longer_than_the_limit_is_unbalanced(spark):
    stray = offline(tid="1").replace("Phone", 'Phone 6"')
    lines = [stray] + [offline(tid=str(i)) for i in range(2, R.MAX_RECORD_LINES + 2)] + [stray]
    cleaned = clean(spark, *lines)
    reasons = {r.reason for r in cleaned.collect()}
    assert cleaned.count() == 1 and reasons == {"unbalanced_quotes"}
    assert clean(spark, *lines[: R.MAX_RECORD_LINES - 1], stray).count() == 1  # joined, within


# ---------------------------------------------------------------- quarantine reasons


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (offline(offers="True,,True,,"), "multiple_offers"),
        (offline(units="0"), "non_positive_units"),
        (offline(units="-2"), "non_positive_units"),
        (offline(units="two"), "bad_units"),
        (offline(units="1.5"), "bad_units"),
        (offline(price="abc"), "bad_unit_price"),
        (offline(price="-1.00"), "negative_unit_price"),
        (offline(date="2023-13-45"), "bad_transaction_date"),
        (offline(date="2023-2-30"), "bad_transaction_date"),
        (offline(date="2099-1-1"), "future_transaction_date"),
        (offline(date="2023-5-22"), "future_transaction_date"),  # two days after receipt
        (offline(tid=""), "missing_transaction_id"),
        (offline(offers="True,,,,maybe"), "bad_offer_value"),
        (offline().replace(",no,", ",perhaps,"), "bad_is_online"),
        (offline().replace(",c1,", ",,"), "missing_customer_id"),
        (offline().replace(",p1,", ",,"), "missing_product_id"),
        (offline().replace(",b1,", ",,"), "missing_branch_id"),
        (offline().replace(",a1,", ",,"), "missing_sales_agent_id"),
        (offline() + ",addr/c/s/1,extra", "too_many_fields"),
        (offline() + ",x" * 10_000, "too_many_fields"),
        ("", "blank_line"),
        (offline().replace("john", "jo\ufffdn"), "invalid_encoding"),
    ],
)
def test_quarantine_reason(spark, line, reason):
    assert one(spark, line, "reason") == reason


def test_a_day_after_arrival_is_still_a_sale(spark):
    """A day of grace: a source clock ahead of UTC dates a sale tomorrow."""
    assert one(spark, offline(date="2023-5-21"), "reason") is None


def test_missing_required_column_quarantines_every_row(spark):
    header = HEADER.replace("units,", "")
    line = offline().replace(",2,10.00,", ",10.00,")
    rows = clean(spark, line, header=header).select("reason").collect()
    assert [r.reason for r in rows] == ["missing_columns"]
    assert R.header_layout(header).missing == ("units",)


def test_silver_and_quarantine_split_every_row_once(spark):
    cleaned = clean(spark, offline(tid="1"), offline(tid="2", units="0"), "", offline(tid="3"))
    silver = [r.transaction_id for r in T.silver_rows(cleaned).collect()]
    quarantined = [(r.source_line, r.reason) for r in T.quarantine_rows(cleaned).collect()]
    assert sorted(silver) == ["1", "3"]
    assert sorted(quarantined) == [(3, "non_positive_units"), (4, "blank_line")]


def test_title_case_agrees_with_python_title(spark):
    names = ["mcdonald", "o'neil-smith", "JEAN  luc", "ann\tlee", "3rd", "a--b", "éLODIE", "x"]
    assert values(spark, T.title_case(F.col("raw")), *names) == [n.strip().title() for n in names]


def test_short_address_leaves_the_parts_empty(spark):
    line = ONLINE.format(tid="9", address="Somerville/MA/02143")
    row = clean(spark, line).collect()[0]
    assert (row.street, row.city, row.state, row.postal_code, row.reason) == (
        None,
        None,
        None,
        None,
        None,
    )


def test_branch_and_agent_rows_that_cannot_be_read_announce_nothing(spark):
    """Every file kind is read by the same rules: a row with bytes that are not UTF-8, or an
    unclosed quote, is not used (a transaction using that id makes it an inferred member)."""
    from retail_assets.transforms.warehouse import agent_attributes

    header = HEADERS["sales_agents"]
    lines = [header, "a1,Ana Diaz,2020-1-2", "a2,Jos\ufffd Ruiz,2020-1-2", 'a3,"Lee,2020-1-2']
    rows = [("f.csv", i, line) for i, line in enumerate(lines, 1)]
    numbered = spark.createDataFrame(rows, "source_file string, source_line long, raw_line string")
    parsed = R.parse_lines(R.join_quoted_lines(numbered), header, R.AGENT_FIELDS)
    assert [r.sales_agent_id for r in agent_attributes(parsed).collect()] == ["a1"]
    numbered = numbered.where("source_line <= 2")  # "a1,Ana Diaz,2020-1-2" without its line end
    parsed = R.parse_lines(R.join_quoted_lines(numbered), header, R.AGENT_FIELDS, False)
    assert agent_attributes(parsed).count() == 0
