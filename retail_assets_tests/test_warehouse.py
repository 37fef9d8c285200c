"""The warehouse over a generated source with a re-delivered group, changed agent and customer
attributes and a late-announced branch and agent (docs/rules.md §3).

Expected counts, versions and keys are computed here from the source files (csv module), in
group order, independently of the transforms; the hourly job runs as Dagster runs it.
"""

import shutil
from datetime import datetime
from pathlib import Path
from uuid import uuid4

import pytest
from pyspark.sql import functions as F

from retail_assets.dev.replay import land
from retail_assets.storage.hours import hour_values, key_of
from retail_assets_tests.helpers import WAREHOUSE_GROUPS as GROUPS
from retail_assets_tests.helpers import WAREHOUSE_START as START
from retail_assets_tests.helpers import (
    file_of,
    first_arrivals,
    last_attributes,
    make_storage,
    read_csv_rows,
    run,
)

TABLES = [
    "dim_customer_changes", "dim_product_changes", "dim_branch_changes",
    "dim_sales_agent_changes", "dim_customer_state", "dim_product_state", "dim_branch_state",
    "dim_sales_agent_state", "dim_date", "dim_date_seen", "fact_branch_sales", "fact_online_sales",
    "insight_top_products", "insight_top_offers", "insight_offers_per_product",
    "insight_lowest_online_cities",
]  # fmt: skip


@pytest.fixture(scope="module")
def source(warehouse_source):
    return warehouse_source


def table(spark, storage, name):
    return spark.table(f"{storage.warehouse_database}.{name}")


def contents(spark, storage, name, drop=()):
    frame = table(spark, storage, name).drop(*drop)
    return sorted((tuple(row) for row in frame.collect()), key=repr)


# ---------------------------------------------------------------- the independent oracle


def expected_versions(announced_per_group, used_per_group):
    """natural key -> number of SCD2 versions, walking the groups in order.

    announced: {id: attributes} per group (an entity's own file); used: ids that only
    transactions mention. An unknown used id becomes an inferred version; an inferred one that
    is announced later is completed (no new version); changed attributes make a new version.
    """
    state, versions = {}, {}
    for announced, used in zip(announced_per_group, used_per_group, strict=True):
        for entity, attributes in announced.items():
            if entity not in state:
                versions[entity] = 1
            elif state[entity] is not None and state[entity] != attributes:
                versions[entity] += 1
            state[entity] = attributes
        for entity in used:
            if entity not in state:
                state[entity], versions[entity] = None, 1
    return versions


def agents_announced(group):
    def hired(text):
        return datetime.strptime(text, "%Y-%m-%d").date()

    return {
        r["sales_person_id"]: (r["name"].strip().title(), hired(r["hire_date"]))
        for r in read_csv_rows(file_of(group, "sales_agents"))
    }


def branches_announced(group):
    return {
        r["branch_id"]: (r["location"].strip(), r["establish_date"], r["class"].strip())
        for r in read_csv_rows(file_of(group, "branches"))
    }


# ---------------------------------------------------------------- facts


def test_facts_hold_each_first_arrival_once(spark, warehouse, source):
    storage, keys = warehouse
    arrivals = first_arrivals(source)
    for fact, online in (("fact_branch_sales", False), ("fact_online_sales", True)):
        rows = table(spark, storage, fact).groupBy("ingest_date", "ingest_hour").count().collect()
        got = {f"{r.ingest_date}-{r.ingest_hour}:00": r["count"] for r in rows}
        expected = {
            k: sum(r["online"] == online for r in new)
            for k, new in zip(keys, arrivals, strict=True)
        }
        assert {k: got.get(k, 0) for k in keys} == expected
    assert len(arrivals[1]) == 0  # the re-delivered group adds nothing


def test_fact_totals_and_ids_match_the_source(spark, warehouse, source):
    storage, _ = warehouse
    new = [r for group in first_arrivals(source) for r in group]
    facts = table(spark, storage, "fact_branch_sales").unionByName(
        table(spark, storage, "fact_online_sales"), allowMissingColumns=True
    )
    rows = {r.transaction_id: r.total_paid_price for r in facts.collect()}
    assert rows == {r["transaction_id"]: r["total"] for r in new}


def test_every_fact_row_points_at_the_version_current_at_its_hour(spark, warehouse):
    storage, _ = warehouse
    db = storage.warehouse_database
    orphans = spark.sql(f"""
        SELECT count(*) FROM {db}.fact_branch_sales f
        LEFT JOIN {db}.dim_sales_agent a ON f.sales_agent_key = a.surrogate_key
            AND a.valid_from_hour <= f.ingest_hour_ts
            AND (a.valid_to_hour IS NULL OR f.ingest_hour_ts < a.valid_to_hour)
        LEFT JOIN {db}.dim_date d ON f.date_key = d.date_key
        WHERE a.surrogate_key IS NULL OR d.date_key IS NULL""").collect()[0][0]
    assert orphans == 0


# ---------------------------------------------------------------- dimensions


def versions_per_key(spark, storage, dimension, key):
    rows = table(spark, storage, dimension).groupBy(key).count().collect()
    return {r[key]: r["count"] for r in rows}


def test_agent_versions_follow_hire_date_changes_and_late_announcement(spark, warehouse, source):
    storage, _ = warehouse
    used = [{r["sales_agent_id"] for r in new if not r["online"]} for new in first_arrivals(source)]
    expected = expected_versions([agents_announced(g) for g in source], used)
    assert max(expected.values()) > 1  # the source does change hire dates
    assert versions_per_key(spark, storage, "dim_sales_agent", "sales_agent_id") == expected


def test_branch_and_customer_and_product_versions(spark, warehouse, source):
    storage, _ = warehouse
    arrivals = first_arrivals(source)
    used = [{r["branch_id"] for r in new if not r["online"]} for new in arrivals]
    branches = expected_versions([branches_announced(g) for g in source], used)
    assert versions_per_key(spark, storage, "dim_branch", "branch_id") == branches
    fields = ("first_name", "last_name", "email")
    customers = expected_versions([last_attributes(n, "customer_id", fields) for n in arrivals],
                                  [set()] * GROUPS)  # fmt: skip
    assert max(customers.values()) > 1  # the source does rename customers
    assert versions_per_key(spark, storage, "dim_customer", "customer_id") == customers
    names = [last_attributes(n, "product_id", ("product_name",)) for n in arrivals]
    products = expected_versions(names, [set()] * GROUPS)
    assert versions_per_key(spark, storage, "dim_product", "product_id") == products


def test_late_branch_is_inferred_then_completed_under_the_same_key(spark, warehouse, source):
    storage, keys = warehouse
    first_used = {r["branch_id"] for r in first_arrivals(source)[0] if not r["online"]}
    (late,) = first_used - set(branches_announced(source[0]))
    changes = table(spark, storage, "dim_branch_changes").where(f"branch_id = '{late}'")
    records = sorted(changes.collect(), key=lambda r: r.recorded_hour)
    assert [(r.is_inferred, r.location is None) for r in records] == [(True, True), (False, False)]
    assert records[0].surrogate_key == records[1].surrogate_key
    (version,) = table(spark, storage, "dim_branch").where(f"branch_id = '{late}'").collect()
    assert not version.is_inferred and version.is_current
    assert version.location == branches_announced(source[-1])[late][0]
    hour1_facts = table(spark, storage, "fact_branch_sales").where(
        f"ingest_hour_ts = TIMESTAMP '{START:%Y-%m-%d %H:%M:%S}' "
        f"AND branch_key = {version.surrogate_key}"
    )
    assert hour1_facts.count() == sum(
        1 for r in first_arrivals(source)[0] if r["branch_id"] == late and not r["online"]
    )


def test_some_dimensions_materialize_alone_and_report_only_their_checks(spark, settings, warehouse):
    """The five dimensions are one step (`dimensions`), each still materializable alone, as
    from the UI: a run of dim_product's and dim_date's hour writes those only, reports their
    checks only, and gives the same rows again."""
    from dagster import materialize

    from retail_assets.assets.warehouse.checks import ONE_CURRENT, UNIQUE_DATE_KEYS, UNIQUE_KEYS
    from retail_assets.definitions import BATCH_ASSETS
    from retail_assets.resources import spark_resource

    storage, keys = warehouse
    tables = ["dim_product", "dim_product_changes", "dim_customer_changes", "dim_date"]
    before = {name: contents(spark, storage, name) for name in tables}
    result = materialize(
        BATCH_ASSETS,
        selection=["dim_product", "dim_date"],
        partition_key=keys[-1],
        resources={"spark": spark_resource(settings), "storage": storage},
    )
    assert result.success
    materialized = {e.asset_key.path[0] for e in result.get_asset_materialization_events()}
    assert materialized == {"dim_product", "dim_date"}
    evaluations = {
        (e.asset_key.path[0], e.check_name, e.passed) for e in result.get_asset_check_evaluations()
    }
    assert evaluations == {
        ("dim_product", UNIQUE_KEYS, True),
        ("dim_product", ONE_CURRENT, True),
        ("dim_date", UNIQUE_DATE_KEYS, True),
    }
    assert {name: contents(spark, storage, name) for name in tables} == before


def test_the_facts_check_figures_count_each_table_of_each_hour(spark, warehouse):
    """The facts' reconciliation and check figures come from one grouped read of five tables
    over all hours of a run: each (table, hour) gets its own rows and flagged rows."""
    from retail_assets.assets.warehouse.reconciliation import counts_per_hour
    from retail_assets.loads.facts import fact_tables

    storage, keys = warehouse
    lake, dwh = storage.lake_database, storage.warehouse_database
    redeemed = {"fact_branch_sales": {"redeemed": F.col("offer_number").isNotNull()}}
    counts = counts_per_hour(spark, storage, keys, fact_tables(storage), redeemed)
    offers = 0
    for key in keys:
        day, hour = hour_values(key).values()
        this_hour = f"ingest_date = '{day}' AND ingest_hour = '{hour}'"
        expected = (
            spark.sql(f"""SELECT
            (SELECT count(*) FROM {lake}.silver_transactions WHERE {this_hour}) AS silver,
            (SELECT count(*) FROM {lake}.quarantine_transactions WHERE {this_hour}) AS quarantined,
            (SELECT count(*) FROM {lake}.silver_new_transactions WHERE {this_hour}) AS new,
            (SELECT count(*) FROM {dwh}.fact_branch_sales WHERE {this_hour}) AS fact_branch_sales,
            (SELECT count(*) FROM {dwh}.fact_online_sales WHERE {this_hour}) AS fact_online_sales,
            (SELECT count(offer_number) FROM {dwh}.fact_branch_sales WHERE {this_hour}) AS redeemed
        """)
            .collect()[0]
            .asDict()
        )
        redeemed_rows = expected.pop("redeemed")
        assert {name: counts[name, key]["rows"] for name in expected} == expected, key
        flagged = [counts[f"fact_{kind}_sales", key]["redeemed"] for kind in ("branch", "online")]
        assert flagged == [redeemed_rows, 0], key
        offers += redeemed_rows
    assert offers  # the flag was raised


def test_surrogate_keys_are_numbered_in_id_order_from_the_first_hour(spark, warehouse, source):
    storage, _ = warehouse
    first_products = sorted({r["product_id"] for r in first_arrivals(source)[0]})
    rows = table(spark, storage, "dim_product_changes").where("surrogate_key <= 1000").collect()
    got = {
        r.product_id: r.surrogate_key for r in rows if r.recorded_hour == START.replace(tzinfo=None)
    }
    assert got == {pid: n for n, pid in enumerate(first_products, start=1)}


def test_exactly_one_current_row_and_contiguous_validity(spark, warehouse):
    storage, _ = warehouse
    for dimension, key in (("dim_customer", "customer_id"), ("dim_sales_agent", "sales_agent_id")):
        rows = table(spark, storage, dimension).collect()
        by_key = {}
        for row in rows:
            by_key.setdefault(row[key], []).append(row)
        for versions in by_key.values():
            versions.sort(key=lambda r: r.valid_from_hour)
            assert [v.is_current for v in versions] == [False] * (len(versions) - 1) + [True]
            for older, newer in zip(versions, versions[1:], strict=False):
                assert older.valid_to_hour == newer.valid_from_hour


def test_dim_date_covers_every_fact_date_once(spark, warehouse, source):
    storage, _ = warehouse
    dates = {r["date"] for new in first_arrivals(source) for r in new}
    rows = table(spark, storage, "dim_date").collect()
    assert sorted(r.date for r in rows) == sorted(dates)
    sample = next(r for r in rows if r.date == min(dates))
    assert (sample.year, sample.month, sample.is_weekend) == (
        sample.date.year,
        sample.date.month,
        sample.date.weekday() >= 5,
    )


def test_each_hours_dimension_state_gives_the_versions_of_every_change_through_it(spark, warehouse):
    """The hourly path reads a dimension's versions from its state; a rebuild from every
    change record (the path for gaps and old hours) must give the same versions."""
    from retail_assets.loads.dimensions import change_table, state_table
    from retail_assets.loads.inputs import SCD_DIMENSIONS
    from retail_assets.transforms.warehouse import versions_as_of

    storage, keys = warehouse
    for dimension in SCD_DIMENSIONS:
        for key in keys:
            state = state_table(storage, dimension).hour(spark, key)
            changes = change_table(storage, dimension).hours(spark, key, through=True)
            fast, slow = (
                sorted(map(tuple, versions_as_of(dimension, records).collect()), key=repr)
                for records in (state, changes)
            )
            assert fast and fast == slow, (dimension.name, key)


# ---------------------------------------------------------------- idempotence and layout


def test_facts_of_recent_hours_are_one_file_per_hour(spark, warehouse):
    """Months are compacted by transaction month only once closed (test_compacted, and the
    scenario below); until then an hour is one partition and one file."""
    storage, keys = warehouse
    facts = storage.fact_table("fact_branch_sales")
    hours = spark.sql(f"SHOW PARTITIONS {facts.recent.name}").collect()
    assert len(hours) == len(keys)
    for key in keys:
        assert len(facts.hour(spark, key).inputFiles()) == 1, key


def test_compacting_a_closed_month_keeps_every_table_and_reruns_idempotent(
    spark, settings, source, tmp_path
):
    """January's first group, then an hour three days into February: January's facts and
    seen-ids are compacted. That hour re-delivers the January group, so first arrival must
    hold across the compacted index. Then both hours run again, the later one first (a recent
    hour, then a compacted one, two ingest days): every table and B2B file stays the same, each
    file rewritten. (A single-run backfill equal to hour by hour: test_cluster.py.)"""
    storage = make_storage(tmp_path, "compacted")
    january, later = START, datetime(2025, 2, 4, 2, tzinfo=START.tzinfo)
    land(source[0], storage.landing_dir_path, january)
    run(settings, storage, [key_of(january)])
    before = {name: contents(spark, storage, name) for name in TABLES}
    again = shutil.copytree(source[0], tmp_path / "redelivered" / f"group{GROUPS + 1}")
    land(again, storage.landing_dir_path, later)
    run(settings, storage, [key_of(later)])
    facts = storage.fact_table("fact_branch_sales")
    assert list(facts.versions(spark)) == ["2025-01"]
    slots = storage.seen_transaction_ids().slots(spark)
    assert "2025-01" in slots and not [s for s in slots if s.startswith("2025-01-")]
    for name in ("fact_branch_sales", "fact_online_sales"):
        rows = table(spark, storage, name).where("ingest_date < '2025-02-04'")
        assert sorted(map(tuple, rows.collect()), key=repr) == before[name], name
        assert not table(spark, storage, name).where("ingest_date = '2025-02-04'").count()
    once = {name: contents(spark, storage, name) for name in TABLES}
    exports = Path(storage.exports.path("b2b"))
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in exports.iterdir()}
    assert sorted(files) == ["sales_agent_product_units_2025-01-31.csv",
                             "sales_agent_product_units_2025-02-04.csv"]  # fmt: skip
    run(settings, storage, [key_of(later), key_of(january)])
    assert {name: contents(spark, storage, name) for name in TABLES} == once
    assert sorted(p.name for p in exports.iterdir()) == sorted(files)  # no temporary file left
    for name, (body, mtime) in files.items():
        assert (exports / name).stat().st_mtime_ns != mtime, f"{name} was not rewritten"
        assert (exports / name).read_bytes() == body, name


# A dimension's stored rows, made by hand: (surrogate key, customer, valid from, recorded at).
H1, H2 = datetime(2025, 8, 1, 1), datetime(2025, 8, 1, 2)
GOOD_BEFORE = [(1, "c1", H1, H1)]
GOOD_CHANGES = [(2, "c2", H2, H2)]
GOOD_AFTER = [(1, "c1", H1, H1), (2, "c2", H2, H2)]


@pytest.mark.parametrize(
    ("before", "changes", "after", "failing"),
    [
        (GOOD_BEFORE, GOOD_CHANGES, GOOD_AFTER, set()),
        # c2's first version takes key 1, which names c1: one key, two entities (and reused).
        (GOOD_BEFORE, [(1, "c2", H2, H2)], [(1, "c1", H1, H1), (1, "c2", H2, H2)],
         {"unique_surrogate_keys"}),
        # a new version of c1 on c1's earlier key: a key reused, though for the same entity
        (GOOD_BEFORE, [(1, "c1", H2, H2)], [(1, "c1", H2, H2)], {"unique_surrogate_keys"}),
        # two versions of c2 start at its newest hour: two current rows
        (GOOD_BEFORE, [(2, "c2", H2, H2), (3, "c2", H2, H2)], [*GOOD_AFTER, (3, "c2", H2, H2)],
         {"one_current_row_per_natural_key"}),
    ],
    ids=["good", "a_key_names_two_entities", "a_new_version_reuses_a_key", "two_current_rows"],
)  # fmt: skip
def test_the_dimension_checks_fail_on_the_rows_they_guard_against(
    spark, tmp_path, before, changes, after, failing
):
    """The checks' figures from stored rows made by hand: each broken rule fails its check
    and only its check."""
    from retail_assets.assets.metadata import one_row
    from retail_assets.assets.warehouse.checks import dimension_checks, dimension_stats
    from retail_assets.loads.dimensions import change_table, state_table
    from retail_assets.transforms.warehouse import CUSTOMER

    storage, key = make_storage(tmp_path, f"checks_{uuid4().hex[:8]}"), key_of(H2)
    schema = (
        "surrogate_key int, customer_id string, valid_from_hour timestamp, recorded_hour timestamp"
    )

    def frame(rows):
        return spark.createDataFrame(rows, schema).withColumn("is_inferred", F.lit(False))

    change_table(storage, CUSTOMER).write(spark, frame(changes), key)
    state_table(storage, CUSTOMER).write(spark, frame(after), key)
    figures = one_row(dimension_stats(spark, storage, CUSTOMER, [key], before=frame(before)))
    stats = figures[CUSTOMER.name].asDict()
    assert {c.check_name for c in dimension_checks(CUSTOMER.name, stats) if not c.passed} == failing
    assert sorted(r.surrogate_key for r in stats["newest_changes"]) == [r[0] for r in changes]
