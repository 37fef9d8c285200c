"""The seen-values index on the session's Spark server: it answers "arrived before hour H"
exactly as the source's earlier hours do, at hour and at month grain, and compaction leaves
one partition per closed month."""

import pytest

from retail_assets.storage.seen import SeenIndex
from retail_assets.storage.tables import HourlyTable, drop_table

MAY_30, MAY_31, JUNE_1, JUNE_4 = (
    "2025-05-30-22:00", "2025-05-31-23:00", "2025-06-01-00:00", "2025-06-04-01:00"
)  # fmt: skip
ARRIVALS = {MAY_30: ["a", "b"], MAY_31: ["c"], JUNE_1: ["d", "e"], JUNE_4: ["f"]}


@pytest.fixture
def tables(spark, tmp_path, request):
    source = HourlyTable(f"seen_test.{request.node.name}", str(tmp_path / "source"))
    index = SeenIndex(f"{source.name}_seen", str(tmp_path / "seen"), source, "transaction_id")
    yield source, index
    for name in (source.name, index.name):
        drop_table(spark, name)


def write(spark, source, index, key, ids):
    frame = spark.createDataFrame([(i,) for i in ids], "transaction_id string")
    source.write(spark, frame, key)
    index.add_hour(spark, key)


def seen(spark, index, key, through=False) -> list[str]:
    return sorted(row[0] for row in index.before(spark, key, through=through).collect())


def source_before(spark, source, key) -> list[str]:
    return sorted(row[0] for row in source.hours(spark, key, through=False).collect())


def test_the_index_answers_as_the_source_and_compacts_closed_months(spark, tables):
    source, index = tables
    assert index.before(spark, MAY_30) is None  # no source yet
    for key, ids in ARRIVALS.items():
        write(spark, source, index, key, ids)
    for key in ARRIVALS:
        assert seen(spark, index, key) == source_before(spark, source, key)
    assert seen(spark, index, JUNE_4, through=True) == list("abcdef")
    # June 4 is three days past May: May is one partition; June's hours stay hours.
    assert index.slots(spark) == ["2025-05", "2025-06-01T00", "2025-06-04T01"]


def test_rewriting_an_hour_of_a_compacted_month_recompacts_it(spark, tables):
    source, index = tables
    for key, ids in ARRIVALS.items():
        write(spark, source, index, key, ids)
    write(spark, source, index, MAY_31, ["c", "x"])
    assert seen(spark, index, JUNE_1) == ["a", "b", "c", "x"]
    assert seen(spark, index, MAY_31) == ["a", "b"]
    once = sorted(spark.table(index.name).collect())
    write(spark, source, index, MAY_31, ["c", "x"])
    assert sorted(spark.table(index.name).collect()) == once
    assert index.slots(spark) == ["2025-05", "2025-06-01T00", "2025-06-04T01"]


def test_a_home_without_the_index_builds_it_from_the_source(spark, tables):
    source, index = tables
    for key, ids in ARRIVALS.items():
        source.write(
            spark, spark.createDataFrame([(i,) for i in ids], "transaction_id string"), key
        )
    assert seen(spark, index, JUNE_4) == list("abcde")
    assert index.slots(spark) == ["2025-05", "2025-06-01T00"]
