"""What the UI says about each table (read from docs/tables.md) against what Spark wrote: the
columns an asset declares are its table's columns, in order, with their types."""

import ast
import csv
import io
from pathlib import Path

from retail_assets.definitions import defs
from retail_assets_tests.helpers import declared_columns, written_columns

TABLE_ASSETS = {  # every asset that is a metastore table
    "silver_transactions", "new_transactions", "dim_customer", "dim_product", "dim_branch",
    "dim_sales_agent", "dim_date", "fact_branch_sales", "fact_online_sales",
    "insight_top_products", "insight_top_offers", "insight_offers_per_product",
    "insight_lowest_online_cities", "app_events",
}  # fmt: skip


def test_every_asset_has_an_owner_tags_and_every_table_its_name_and_described_columns():
    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners == ["team:data-platform"], key
        assert {"layer", "domain"} <= set(node.tags), key
        assert "dagster/code_references" in node.metadata, key
        if key.path[0] in TABLE_ASSETS:
            assert node.metadata["dagster/table_name"].endswith(key.path[0]), key
            columns = node.metadata["dagster/column_schema"].columns
            assert columns and all(c.description for c in columns), key


# Where each asset is defined, as a reader of the code finds it: module, function.
DEFINED_IN = {
    "raw_files": ("raw", "raw_files"),
    "silver_transactions": ("silver", "silver_transactions"),
    "new_transactions": ("silver", "new_transactions"),
    **{f"dim_{n}": ("warehouse/dimensions", "dimensions")
       for n in ("customer", "product", "branch", "sales_agent", "date")},
    "fact_branch_sales": ("warehouse/facts", "sales_facts"),
    "fact_online_sales": ("warehouse/facts", "sales_facts"),
    **{name: ("insights", "marketing_insights") for name in (
        "insight_top_products", "insight_top_offers", "insight_offers_per_product",
        "insight_lowest_online_cities")},
    "b2b_daily_csv": ("b2b", "b2b_daily_csv"),
    "app_events": ("streaming", "app_events"),
}  # fmt: skip


def test_each_assets_source_link_opens_its_own_definition():
    """The UI's "Open in editor" names the asset's module, at the first line of its function
    (decorators included), not the retry wrapper all assets run in."""
    graph = defs().resolve_asset_graph()
    assert {key.path[0] for key in graph.get_all_asset_keys()} == set(DEFINED_IN)
    for key in graph.get_all_asset_keys():
        module, function = DEFINED_IN[key.path[0]]
        path = Path(__file__).parents[1] / "retail_assets" / "assets" / f"{module}.py"
        (defined,) = [node for node in ast.walk(ast.parse(path.read_text()))
                      if isinstance(node, ast.FunctionDef) and node.name == function]  # fmt: skip
        first_line = min([defined.lineno, *(d.lineno for d in defined.decorator_list)])
        (link,) = graph.get(key).metadata["dagster/code_references"].code_references
        assert (Path(link.file_path), link.line_number) == (path, first_line), key


def test_declared_columns_are_the_warehouse_tables_columns(spark, warehouse):
    storage, _ = warehouse
    for asset in TABLE_ASSETS - {"app_events"}:
        assert declared_columns(asset) == written_columns(spark, storage, asset), asset


def test_declared_columns_are_the_b2b_files_columns(warehouse):
    storage, _ = warehouse
    (name, *_) = sorted(storage.exports.list_names("b2b"))
    header = next(csv.reader(io.StringIO(storage.exports.read_bytes("b2b", name).decode())))
    assert [column for column, _ in declared_columns("b2b_daily_csv")] == header
