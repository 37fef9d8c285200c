"""Marketing insights and the daily B2B CSV (docs/rules.md §4) over the shared warehouse replay,
which starts at 22:00 (two ingest days) and re-delivers a group.

Every expected output is computed here from the source files (csv module, Decimal, pandas
for the CSV text), in group order, independently of the Spark transforms.
"""

from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    evaluate_automation_conditions,
    materialize,
)

from retail_assets.definitions import BATCH_ASSETS, defs
from retail_assets.loads.b2b import HEADER
from retail_assets.resources import spark_resource
from retail_assets.storage.hours import hour_of
from retail_assets.transforms.insights import top_offers, top_products
from retail_assets_tests.helpers import first_arrivals, last_attributes, read_csv_rows

INSIGHTS = [
    "insight_top_products", "insight_top_offers", "insight_offers_per_product",
    "insight_lowest_online_cities",
]  # fmt: skip


def snapshot(spark, storage, name, key):
    date, hour = key[:10], key[11:13]
    frame = spark.table(f"{storage.warehouse_database}.{name}").where(
        f"ingest_date = '{date}' AND ingest_hour = '{hour}'"
    )
    rows = frame.drop("ingest_date", "ingest_hour").collect()
    assert {r.as_of_hour for r in rows} <= {hour_of(key).replace(tzinfo=None)}
    return sorted(tuple(r.asDict().values())[:-1] for r in rows)  # without as_of_hour


# ---------------------------------------------------------------- the independent oracle


def expected_insights(source, through):
    """The four snapshots over the first arrivals of groups 0..through, ranked by docs/rules.md §4
    with this project's documented tie-breaks."""
    arrivals = first_arrivals(source)[: through + 1]
    rows = [r for new in arrivals for r in new]
    names = {}
    for new in arrivals:
        names.update(last_attributes(new, "product_id", ("product_name", "category")))

    units, revenue = Counter(), defaultdict(Decimal)
    offers, product_offers = Counter(), Counter()
    city_revenue, city_count = defaultdict(Decimal), Counter()
    for r in rows:
        units[r["product_id"]] += r["units"]
        revenue[r["product_id"]] += r["total"]
        if r["offer"]:
            offers[r["offer"]] += 1
            product_offers[(r["product_id"], r["offer"])] += 1
        if r["online"] and r["city"]:
            city_revenue[(r["city"], r["state"])] += r["total"]
            city_count[(r["city"], r["state"])] += 1

    products = sorted(units, key=lambda p: (-units[p], -revenue[p], p))
    offer_order = sorted(range(1, 6), key=lambda k: (-offers[k], k))
    per_product = []
    for product in {p for p, _ in product_offers}:
        mine = sorted((k for p, k in product_offers if p == product),
                      key=lambda k: (-product_offers[(product, k)], k))  # fmt: skip
        per_product += [(product, names[product][0], k, product_offers[(product, k)], n)
                        for n, k in enumerate(mine, 1)]  # fmt: skip
    cities = sorted(city_revenue, key=lambda c: (city_revenue[c], city_count[c], *c))
    return {
        "insight_top_products": sorted(
            (p, *names[p], units[p], revenue[p], n) for n, p in enumerate(products, 1)
        ),
        "insight_top_offers": sorted(
            (k, 5 * k, offers[k], n) for n, k in enumerate(offer_order, 1)
        ),
        "insight_offers_per_product": sorted(per_product),
        "insight_lowest_online_cities": sorted(
            (*c, city_revenue[c], city_count[c], n) for n, c in enumerate(cities, 1)
        ),
    }


def expected_b2b(source, keys):
    """{ingest day: CSV bytes}: offline first arrivals loaded that day, by agent name (as
    announced by the end of the day) and product name (as of the load hour)."""
    arrivals = first_arrivals(source)
    days = defaultdict(list)
    for index, key in enumerate(keys):
        days[key[:10]].append(index)
    files = {}
    for day, indexes in days.items():
        agents = {}
        for group in source[: indexes[-1] + 1]:
            (path,) = group.glob("sales_agents*.csv")
            agents.update({r["sales_person_id"].strip(): r["name"].strip().title()
                           for r in read_csv_rows(path)})  # fmt: skip
        units = Counter()
        for index in indexes:
            products = {}
            for new in arrivals[: index + 1]:
                products.update(last_attributes(new, "product_id", ("product_name",)))
            for r in arrivals[index]:
                if not r["online"]:
                    name = agents.get(r["sales_agent_id"], "")
                    units[(name, products[r["product_id"]][0])] += r["units"]
        table = pd.DataFrame(sorted((*k, v) for k, v in units.items()), columns=list(HEADER))
        files[day] = table.to_csv(index=False, lineterminator="\n").encode()
    return files


def b2b_files(storage):
    return {p.name: p for p in sorted(Path(storage.exports.path("b2b")).iterdir())}


# ---------------------------------------------------------------- insights


def test_every_hourly_snapshot_matches_the_independent_computation(
    spark, warehouse, warehouse_source
):
    storage, keys = warehouse
    for index, key in enumerate(keys):
        expected = expected_insights(warehouse_source, index)
        for name in INSIGHTS:
            assert snapshot(spark, storage, name, key) == expected[name], (name, key)
    # the re-delivered group (hour 2) changed nothing but the snapshot's hour
    for name in INSIGHTS:
        assert snapshot(spark, storage, name, keys[1]) == snapshot(spark, storage, name, keys[0])


def materialize_outputs(settings, storage, key, selection):
    result = materialize(
        BATCH_ASSETS,
        selection=selection,
        partition_key=key,
        resources={"spark": spark_resource(settings), "storage": storage},
    )
    assert result.success
    return result


def test_a_gap_in_the_snapshot_chain_is_rebuilt_from_all_facts(
    spark, settings, warehouse, warehouse_source
):
    storage, keys = warehouse
    date, hour = keys[1][:10], keys[1][11:13]
    for name in INSIGHTS:
        spark.sql(f"ALTER TABLE {storage.warehouse_database}.{name} "
                  f"DROP PARTITION (ingest_date='{date}', ingest_hour='{hour}')")  # fmt: skip
    try:
        result = materialize_outputs(settings, storage, keys[2], [*INSIGHTS, "b2b_daily_csv"])
        expected = expected_insights(warehouse_source, 2)
        for name in INSIGHTS:
            assert snapshot(spark, storage, name, keys[2]) == expected[name], name
    finally:
        materialize_outputs(settings, storage, keys[1], INSIGHTS)  # the shared replay as it was
    shown = {m.asset_key.to_user_string(): m.metadata
             for m in result.asset_materializations_for_node("marketing_insights")
             + result.asset_materializations_for_node("b2b_daily_csv")}  # fmt: skip
    assert {shown[name]["rebuilt_hours"].value for name in INSIGHTS} == {1}
    # what the UI shows for the hour: the answer as a table and a chart, and the file's path
    for name in [*INSIGHTS, "b2b_daily_csv"]:
        assert shown[name]["chart"].value.startswith("![")
        assert "data:image/svg+xml;base64," in shown[name]["chart"].value
        assert shown[name]["top_rows"].value.startswith("| ")
    uri = shown["b2b_daily_csv"]["dagster/uri"].value
    assert uri.endswith("sales_agent_product_units_2025-02-01.csv")


# ---------------------------------------------------------------- B2B


def test_one_b2b_file_per_ingest_day_matches_the_independent_computation(
    warehouse, warehouse_source
):
    storage, keys = warehouse
    expected = expected_b2b(warehouse_source, keys)
    assert sorted(expected) == ["2025-01-31", "2025-02-01"]  # the replay crossed midnight
    files = b2b_files(storage)
    assert list(files) == [f"sales_agent_product_units_{day}.csv" for day in sorted(expected)]
    for day, body in expected.items():
        assert files[f"sales_agent_product_units_{day}.csv"].read_bytes() == body, day


# ---------------------------------------------------------------- transforms on tiny frames


def tiny_sales(spark, rows):
    schema = (
        "product_id string, product_key int, offer_number int, units int, "
        "total_paid_price decimal(18,2), is_online boolean, city string, state string"
    )
    return spark.createDataFrame(rows, schema)


def test_running_totals_keep_their_types_and_ties_rank_by_revenue_then_id(spark):
    products = spark.createDataFrame(
        [(1, "p1", "A", "Cat", True), (2, "p2", "B", "Cat", True)],
        "surrogate_key int, product_id string, product_name string, product_category string, "
        "is_current boolean",
    )
    hour = tiny_sales(spark, [("p1", 1, None, 2, Decimal("3.00"), False, None, None),
                              ("p2", 2, 3, 2, Decimal("5.00"), True, "X", "CA")])  # fmt: skip
    first = top_products(hour, None, products)
    second = top_products(hour, first, products)
    assert second.schema["revenue"].dataType.simpleString() == "decimal(38,2)"
    assert [(r.product_id, r.units_sold, r.revenue, r.rank) for r in second.collect()] == [
        ("p2", 4, Decimal("10.00"), 1),  # same units as p1: more revenue ranks first
        ("p1", 4, Decimal("6.00"), 2),
    ]


def test_every_offer_is_listed_even_when_never_redeemed(spark):
    hour = tiny_sales(spark, [("p1", 1, 4, 1, Decimal("1.00"), False, None, None)])
    rows = top_offers(hour, None, None).orderBy("rank").collect()
    assert [(r.offer, r.discount_perc, r.redemptions) for r in rows] == [
        (4, 20, 1), (1, 5, 0), (2, 10, 0), (3, 15, 0), (5, 25, 0),
    ]  # fmt: skip


# ---------------------------------------------------------------- automation


def test_outputs_follow_facts_updated_outside_the_hourly_job():
    key = "2025-03-01-10:00"
    later = hour_of(key) + timedelta(hours=2)
    outputs = [AssetKey(name) for name in [*INSIGHTS, "b2b_daily_csv"]]
    definitions = defs()
    with DagsterInstance.ephemeral() as instance:
        first = evaluate_automation_conditions(definitions, instance, evaluation_time=later)
        assert first.total_requested == 0  # history is not re-run when automation starts

        for fact in ("fact_branch_sales", "fact_online_sales"):
            instance.report_runless_asset_event(AssetMaterialization(fact, partition=key))
        followed = evaluate_automation_conditions(
            definitions, instance, evaluation_time=later, cursor=first.cursor
        )
        assert {k: followed.get_requested_partitions(k) for k in outputs} == {
            k: {key} for k in outputs
        }

        # the outputs' own hour finishing does not start the next hour before its facts exist
        for output in outputs:
            instance.report_runless_asset_event(AssetMaterialization(output, partition=key))
        quiet = evaluate_automation_conditions(
            definitions, instance, evaluation_time=later, cursor=followed.cursor
        )
        assert quiet.total_requested == 0


def test_one_insight_materializes_alone(spark, settings, warehouse, warehouse_source):
    storage, keys = warehouse
    result = materialize_outputs(settings, storage, keys[-1], ["insight_top_offers"])
    assert [m.asset_key.to_user_string() for m in result.get_asset_materialization_events()] == [
        "insight_top_offers"
    ]
    expected = expected_insights(warehouse_source, len(keys) - 1)["insight_top_offers"]
    assert snapshot(spark, storage, "insight_top_offers", keys[-1]) == expected
