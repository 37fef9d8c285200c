"""The hourly table layer on the session's Spark server: an hour's write replaces that hour
whole, and the hour filters select exactly their hours."""

from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from retail_assets.storage.tables import HourlyTable, drop_table

H22, H23, NEXT = "2025-06-01-22:00", "2025-06-01-23:00", "2025-06-02-00:00"


@pytest.fixture
def facts(spark, tmp_path, request):
    table = HourlyTable(f"tables_test.{request.node.name}", str(tmp_path))
    yield table
    drop_table(spark, table.name)


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


def test_a_killed_write_is_never_seen_and_the_next_write_sweeps_it(spark, facts):
    """A run killed mid-write leaves files in a folder no partition points at: readers keep the
    old hour, whole; the hour's next write removes the leftover."""
    first = facts.write(spark, sales(spark, ("a", date(2024, 1, 5))), H22)
    hour_folder = Path(first).parent
    leftover = hour_folder / "0f0f0f0f0f0f0f0f"  # what a killed run's write leaves behind
    sales(spark, ("x", date(2024, 1, 6))).write.parquet(str(leftover))
    assert ids(facts.hour(spark, H22)) == {"a"}
    second = facts.write(spark, sales(spark, ("b", date(2024, 1, 7))), H22)
    assert ids(facts.hour(spark, H22)) == {"b"}
    assert sorted(hour_folder.iterdir()) == [Path(second)]  # replaced and leftover are gone


def test_a_reader_sees_a_rewrite_made_by_another_session(spark, settings, facts):
    """Spark caches a table's file listing per session. A rewrite in place by another session
    (a killed run's write still running on the server, or a second user) left this session
    listing deleted files: FAILED_READ_FILE … REFRESH TABLE. Each write has its own folder."""
    facts.write(spark, sales(spark, ("a", date(2024, 1, 5))), H22)
    assert ids(facts.hour(spark, H22)) == {"a"}  # listed and cached in this session
    other = SparkSession.builder.remote(settings.spark_remote).create()
    try:
        facts.write(other, sales(other, ("b", date(2024, 1, 7)), ("c", date(2024, 1, 8))), H22)
    finally:
        other.stop()
    assert ids(facts.hour(spark, H22)) == {"b", "c"}


def test_an_hour_is_registered_or_moved_whatever_its_folder_held(spark, facts, tmp_path):
    """An hour's write registers or moves its partition in one metastore call, guessed from
    its folder; both wrong guesses end right: a killed first run's folder for an hour never
    registered, and a registered hour whose folder is elsewhere (a lake root that moved)."""
    leftover = Path(facts.location, "ingest_date=2025-06-01", "ingest_hour=22", "0f0f0f0f0f0f0f0f")
    sales(spark, ("x", date(2024, 1, 6))).write.parquet(str(leftover))  # a killed first run
    facts.write(spark, sales(spark, ("a", date(2024, 1, 5))), H22)
    assert ids(facts.hour(spark, H22)) == {"a"} and not leftover.exists()
    moved = HourlyTable(facts.name, str(tmp_path / "moved_root"))  # its folders: none yet
    moved.write(spark, sales(spark, ("b", date(2024, 1, 7))), H22)
    assert ids(facts.hour(spark, H22)) == {"b"}  # the partition left the old root
