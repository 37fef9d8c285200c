"""The hourly table layer on the session's Spark server: an hour's write replaces that hour
whole, and the hour filters select exactly their hours."""

from datetime import date
from pathlib import Path

import pytest

from retail_assets.storage.tables import HourlyTable

H22, H23, NEXT = "2025-06-01-22:00", "2025-06-01-23:00", "2025-06-02-00:00"


@pytest.fixture
def facts(spark, tmp_path, request):
    table = HourlyTable(f"tables_test.{request.node.name}", str(tmp_path))
    yield table
    spark.sql(f"DROP TABLE IF EXISTS {table.name}")


def sales(spark, *rows):
    return spark.createDataFrame(rows, "transaction_id string, transaction_date date")


def ids(frame) -> set[str]:
    return {row["transaction_id"] for row in frame.collect()}


def test_rewriting_an_hour_replaces_all_of_it(spark, facts):
    facts.write(spark, sales(spark, ("a", date(2024, 1, 5)), ("b", date(2024, 3, 7))), H22)
    facts.write(spark, sales(spark, ("c", date(2024, 1, 9))), H22)
    assert ids(facts.hour(spark, H22)) == {"c"}
    hours = spark.sql(f"SHOW PARTITIONS {facts.name}").collect()
    assert [row[0] for row in hours] == ["ingest_date=2025-06-01/ingest_hour=22"]


def test_rewriting_an_hour_with_nothing_empties_it(spark, facts):
    facts.write(spark, sales(spark, ("a", date(2024, 1, 5))), H22)
    facts.write(spark, sales(spark).limit(0), H22)
    assert ids(facts.hour(spark, H22)) == set()


def test_the_newest_hour_of_a_day_and_dropping_a_day(spark, facts):
    for tid, key in (("a", H22), ("b", H23), ("c", NEXT)):
        facts.write(spark, sales(spark, (tid, date(2024, 1, 5))), key)
    assert facts.newest_hour_of_day(spark, H23) == "23"
    assert facts.newest_hour_of_day(spark, H22) == "22"
    assert facts.newest_hour_of_day(spark, "2025-06-02-05:00") == "00"
    assert facts.newest_hour_of_day(spark, "2025-06-03-05:00") is None
    facts.drop_day(spark, "2025-06-01")
    assert ids(spark.table(facts.name)) == {"c"}
    assert not Path(facts.location, "ingest_date=2025-06-01").exists()


def test_hour_filters_select_exactly_their_hours(spark, facts):
    for tid, key in (("a", H22), ("b", H23), ("c", NEXT)):
        facts.write(spark, sales(spark, (tid, date(2024, 1, 5))), key)
    assert ids(facts.hours_of(spark, [H22, NEXT])) == {"a", "c"}
    assert ids(facts.hours(spark, H23, through=False)) == {"a"}
    assert ids(facts.hours(spark, H23, through=True)) == {"a", "b"}
    assert ids(facts.hours(spark, NEXT, through=False)) == {"a", "b"}
