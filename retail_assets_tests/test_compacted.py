"""Compacted hourly tables on the session's Spark server: compacting closed months changes no
row, bounds the partitions, keeps transaction-month pruning, and hours stay re-writable."""

from datetime import date

import pytest

from retail_assets.storage.compacted import CompactedTable
from retail_assets.storage.tables import drop_table

MAY_30, MAY_31, JUNE_1, JUNE_4 = (
    "2025-05-30-22:00", "2025-05-31-23:00", "2025-06-01-00:00", "2025-06-04-01:00"
)  # fmt: skip
SALES = {
    MAY_30: [("a", date(2024, 1, 5)), ("b", date(2024, 3, 7))],
    MAY_31: [("c", date(2024, 1, 9))],
    JUNE_1: [("d", date(2024, 3, 1))],
    JUNE_4: [("e", date(2024, 1, 2))],
}


@pytest.fixture
def facts(spark, tmp_path, request):
    table = CompactedTable(
        f"compacted_test.{request.node.name}", str(tmp_path), "transaction_month", "sold_on"
    )
    yield table
    for name in (table.name, table.recent.name, table.months_name):
        drop_table(spark, name)


def sales(spark, rows):
    return spark.createDataFrame(rows, "transaction_id string, sold_on date").selectExpr(
        "*", "date_format(sold_on, 'yyyy-MM') AS transaction_month"
    )


def rows(spark, table) -> list[tuple]:
    """Every row as users see it, without the view's own ingest_month."""
    return sorted(tuple(r) for r in spark.table(table.name).drop("ingest_month").collect())


def ids(frame) -> set[str]:
    return {row["transaction_id"] for row in frame.collect()}


def test_compacting_a_closed_month_changes_no_row_and_bounds_partitions(spark, facts):
    for key in (MAY_30, MAY_31, JUNE_1):
        facts.write(spark, sales(spark, SALES[key]), key)
    before = rows(spark, facts)
    assert list(facts.versions(spark)) == []  # June 1 is not three days past May
    facts.write(spark, sales(spark, SALES[JUNE_4]), JUNE_4)
    assert list(facts.versions(spark)) == ["2025-05"]
    assert [r for r in rows(spark, facts) if r[0] != "e"] == before
    hours = [r[0] for r in spark.sql(f"SHOW PARTITIONS {facts.recent.name}").collect()]
    assert hours == [
        "ingest_date=2025-06-01/ingest_hour=00",
        "ingest_date=2025-06-04/ingest_hour=01",
    ]
    months = [r[0].split("/") for r in spark.sql(f"SHOW PARTITIONS {facts.months_name}").collect()]
    assert [(m[0], m[2]) for m in months] == [
        ("ingest_month=2025-05", "transaction_month=2024-01"),
        ("ingest_month=2025-05", "transaction_month=2024-03"),
    ]
    assert ids(facts.hour(spark, MAY_30)) == {"a", "b"}
    assert ids(facts.day(spark, "2025-05-31")) == {"c"}
    assert ids(facts.hours(spark, JUNE_1, through=False)) == {"a", "b", "c"}


def test_a_month_filter_reads_only_that_months_folders_after_compaction(spark, facts):
    for key in SALES:
        facts.write(spark, sales(spark, SALES[key]), key)
    month = spark.table(facts.name).where(
        "transaction_month = '2024-03' AND ingest_month = '2025-05'"
    )
    assert ids(month) == {"b"}
    files = month.inputFiles()
    assert files and all("/transaction_month=2024-03/" in f for f in files)


def test_rewriting_a_compacted_hour_and_a_recent_hour(spark, facts):
    for key in SALES:
        facts.write(spark, sales(spark, SALES[key]), key)
    once = rows(spark, facts)
    for key in (MAY_31, JUNE_4):  # same input again: the same table
        facts.write(spark, sales(spark, SALES[key]), key)
        assert rows(spark, facts) == once
    facts.write(spark, sales(spark, [("x", date(2024, 2, 2))]), MAY_31)  # changed input
    assert ids(facts.hour(spark, MAY_31)) == {"x"}
    assert ids(spark.table(facts.name)) == {"a", "b", "x", "d", "e"}
    versions = [
        r[0].split("/")[1] for r in spark.sql(f"SHOW PARTITIONS {facts.months_name}").collect()
    ]
    assert versions == [f"version={facts.versions(spark)['2025-05']}"] * 3  # old ones dropped


def test_a_fact_table_of_the_old_layout_is_refused_with_what_to_do(spark, facts):
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {facts.name.split('.')[0]}")
    spark.sql(f"CREATE TABLE {facts.name} (transaction_id string) USING parquet")
    try:
        with pytest.raises(RuntimeError, match="layout before compacted facts"):
            facts.write(spark, sales(spark, SALES[MAY_30]), MAY_30)
    finally:
        drop_table(spark, facts.name)
