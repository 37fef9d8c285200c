"""What the UI says about each table (read from docs/tables.md) against what Spark wrote: the
columns an asset declares are its table's columns, in order, with their types."""

import csv
import io

from retail_assets.definitions import defs
from retail_assets_tests.helpers import declared_columns, written_columns

TABLE_ASSETS = {  # every asset that is a metastore table
    "silver_transactions", "new_transactions", "dim_customer", "dim_product", "dim_branch",
    "dim_sales_agent", "dim_date", "fact_branch_sales", "fact_online_sales",
    "insight_top_products", "insight_top_offers", "insight_offers_per_product",
    "insight_lowest_online_cities", "app_events",
}  # fmt: skip


def test_every_asset_has_an_owner_tags_and_every_table_its_name_and_described_columns():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners == ["team:data-platform"], key
        assert {"layer", "domain"} <= set(node.tags), key
        assert "dagster/code_references" in node.metadata, key
        if key.path[0] in TABLE_ASSETS:
            assert node.metadata["dagster/table_name"].endswith(key.path[0]), key
            columns = node.metadata["dagster/column_schema"].columns
            assert columns and all(c.description for c in columns), key


def test_declared_columns_are_the_warehouse_tables_columns(spark, warehouse):
    storage, _ = warehouse
    for asset in TABLE_ASSETS - {"app_events"}:
        assert declared_columns(asset) == written_columns(spark, storage, asset), asset


def test_declared_columns_are_the_b2b_files_columns(warehouse):
    storage, _ = warehouse
    (name, *_) = sorted(storage.exports.list_names("b2b"))
    header = next(csv.reader(io.StringIO(storage.exports.read_bytes("b2b", name).decode())))
    assert [column for column, _ in declared_columns("b2b_daily_csv")] == header
