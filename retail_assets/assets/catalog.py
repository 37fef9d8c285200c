"""What the UI says about each asset: the table it writes, its columns, its owner and tags.

The columns are read from docs/tables.md, the one place they are described, so the UI and the
docs cannot drift apart (retail_assets_tests/test_catalog.py compares both with the tables
Spark wrote). The package ships that file as `retail_assets/tables.md` (a link to it in the
checkout, a copy in a wheel), so an installed package reads nothing outside itself.
"""

from __future__ import annotations

import inspect
import re
import warnings
from functools import cache

from dagster import (
    AssetsDefinition,
    AssetSpec,
    BetaWarning,
    CodeReferencesMetadataValue,
    LocalFileCodeReference,
    MetadataValue,
    TableColumn,
    TableSchema,
)

from retail_assets.settings import PACKAGE_DIR
from retail_assets.storage.resource import StorageResource

TABLES_DOC = PACKAGE_DIR / "tables.md"
OWNERS = ["team:data-platform"]

LAKE_DB, DWH_DB = "lake_database", "warehouse_database"  # StorageResource's fields

_HEADING = re.compile(r"^#{2,3} `?(?P<title>[^`]+?)`?\s*$")
_ATTRIBUTE = re.compile(r"`(\w+)` \((\w+)(?:, ([^)]*))?\)")


def linked_to_source(assets_def: AssetsDefinition, compute) -> AssetsDefinition:
    """`assets_def` with the UI's link to the file and line where `compute` is defined.

    Dagster's with_source_code_references would name the file of the function the op calls,
    our retry wrapper (assets/retries.py), at the asset's line numbers. The API is beta and
    warns on every use; it is chosen deliberately, so exactly those warnings are silenced here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "Class `(LocalFileCodeReference|CodeReferencesMetadataValue)`", BetaWarning
        )
        home = LocalFileCodeReference(
            file_path=inspect.getsourcefile(compute), line_number=inspect.getsourcelines(compute)[1]
        )
        reference = {"dagster/code_references": CodeReferencesMetadataValue(code_references=[home])}
    return assets_def.map_asset_specs(lambda spec: spec.merge_attributes(metadata=reference))


def tags(layer: str, domain: str) -> dict[str, str]:
    """Where an asset sits in the architecture and what part of the business it describes."""
    return {"layer": layer, "domain": domain}


def table_metadata(database: str, table: str, section: str | None = None) -> dict:
    """Definition metadata of an asset that is a metastore table: its name in the default
    database (`in_databases_of` renames it for a deployment's own) and its columns (documented
    under `section`, by default that name)."""
    name = f"{StorageResource.model_fields[database].default}.{table}"
    return {"dagster/table_name": name, "dagster/column_schema": column_schema(section or name)}


def in_databases_of(storage: StorageResource):
    """A spec mapper: the table an asset names, in the databases `storage` writes to (a
    deployment may rename them; the names are resolved when the Definitions are built)."""
    renamed = {
        StorageResource.model_fields[field].default: getattr(storage, field)
        for field in (LAKE_DB, DWH_DB)
    }

    def rename(spec: AssetSpec) -> AssetSpec:
        name = spec.metadata.get("dagster/table_name")
        if name is None:
            return spec
        database, table = name.split(".", 1)
        return spec.replace_attributes(
            metadata={**spec.metadata, "dagster/table_name": f"{renamed[database]}.{table}"}
        )

    return rename


def column_schema(section: str) -> TableSchema:
    """The columns documented under heading `section` of docs/tables.md (the first table below
    it); a dimension's are the shared view columns with its own key and attributes."""
    if section in _dimensions():
        return TableSchema(columns=_dimension_columns(section))
    rows = _tables().get(section)
    if not rows:
        raise LookupError(f"{TABLES_DOC} has no column table under a heading {section!r}")
    return TableSchema(columns=[TableColumn(n, t, description=m) for n, t, m in _columns(rows)])


def _columns(rows: list[list[str]]) -> list[tuple[str, str, str]]:
    """(name, type, meaning) per column; a row naming two columns (`a`, `b`) gives both."""
    return [(name.strip("`"), kind, meaning)
            for names, kind, meaning in rows for name in names.split(", ")]  # fmt: skip


def _dimensions() -> dict[str, list[str]]:
    rows = _tables()["Natural key and attributes per dimension"]
    return {row[0].strip("`"): row for row in rows}


def _dimension_columns(view: str) -> list[TableColumn]:
    _, natural_key, attributes, source = _dimensions()[view]
    columns = []
    for name, kind, meaning in _columns(_tables()["Columns of every dimension view"]):
        if name == "*natural key*":
            columns.append(TableColumn(natural_key.strip("`"), kind, description="natural key"))
        elif name == "*attributes*":
            columns += [
                TableColumn(attribute, kind, description=note or f"from the {source}")
                for attribute, kind, note in _ATTRIBUTE.findall(attributes)
            ]
        else:
            columns.append(TableColumn(name, kind, description=meaning))
    return columns


@cache
def _tables() -> dict[str, list[list[str]]]:
    """{heading: the cells of each row of the first table below it, header row left out}."""
    tables: dict[str, list[list[str]]] = {}
    heading, rows = None, None
    for line in TABLES_DOC.read_text(encoding="utf-8").splitlines():
        if match := _HEADING.match(line):
            heading, rows = match["title"], None
        elif heading in tables:
            continue  # only the first table below a heading
        elif line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if rows is None:
                rows = []  # the header row
            elif not set("".join(cells)) <= {"-", "|"}:
                rows.append(cells)
        elif rows is not None:
            tables[heading] = rows
    if heading and rows is not None:
        tables.setdefault(heading, rows)
    return tables


def written(
    table: str | None = None,
    *,
    rows: int | None = None,
    partition_rows: int | None = None,
    uri: str | None = None,
) -> dict:
    """Materialization metadata under Dagster's own keys: the table written (as the run's
    storage names it), its rows, the rows of the partitions written, and where it is."""
    entries = {
        "dagster/table_name": table,
        "dagster/row_count": rows,
        "dagster/partition_row_count": partition_rows,
        "dagster/uri": None if uri is None else MetadataValue.path(uri),
    }
    return {key: value for key, value in entries.items() if value is not None}
