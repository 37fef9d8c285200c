"""raw_files: each arrived group's three files copied into the lake, with a manifest.

The lake copy is the system of record: a partition re-run works from it even when the landing
folder has been cleaned, and a per-group marker makes sure a group is ingested once only.
"""

from datetime import UTC, datetime
from functools import reduce

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_assets.assets.catalog import OWNERS, tags, written
from retail_assets.assets.metadata import markdown_table
from retail_assets.assets.partitions import hourly_asset
from retail_assets.storage.landing import FILE_KINDS, LandedGroup, scan_landing
from retail_assets.storage.resource import StorageResource
from retail_assets.transforms.source_records import (
    file_problems,
    join_quoted_lines,
    number_lines,
    parse_lines,
)


def read_raw(
    spark: SparkSession, files: list[tuple[str, dict]], fields: dict[str, tuple[str, ...]]
) -> DataFrame:
    """Raw files of one kind, each parsed (RFC 4180) by its own header, as one frame of string
    fields."""
    numbered = [(number_lines(spark.read.text(uri)), entry) for uri, entry in files]
    if not numbered:  # an hour without arrivals still yields an (empty) frame of the fields
        empty = spark.createDataFrame([], "source_file string, source_line long, raw_line string")
        numbered = [(empty, {"header": "", "received_on": None})]
    parsed = [
        parse_lines(join_quoted_lines(lines), entry["header"], fields).withColumn(
            "received_on", F.lit(entry["received_on"]).cast("date")
        )
        for lines, entry in numbered
    ]
    return reduce(DataFrame.unionByName, parsed)


def belongs_to(storage: StorageResource, group: LandedGroup, key: str) -> bool:
    """A complete group belongs to the hour its marker names, else to the hour it arrived in;
    a folder renamed after its ingestion belongs nowhere (its files are in already)."""
    if not group.complete:
        return False
    marker = storage.ingested_as(group)
    if marker is None:
        return group.partition_key == key
    return marker["group"] == group.name and marker["partition"] == key


def copy_group(storage: StorageResource, group: LandedGroup, key: str) -> dict:
    """Copy a group's files into hour `key`, renamed with date, hour and group."""
    files = {}
    for kind in FILE_KINDS:
        lake_file, copied = storage.copy_into_raw(group.files[kind], key, kind, group.name)
        files[kind] = {
            "source_name": group.files[kind].name,
            "lake_file": lake_file,
            "size": copied.size,
            "sha256": copied.sha256,
            "rows": max(copied.records - 1, 0),  # data records below the header
            "header": copied.header,
            "empty": copied.size == 0,
            "valid_utf8": copied.valid_utf8,
        }
    return {
        "group": group.name,
        "arrived_at": group.arrived_at.isoformat(),
        "fingerprint": group.fingerprint,
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }


def ingest_hour(storage: StorageResource, key: str) -> tuple[dict, list[str]]:
    """Add the not-yet-ingested groups of hour `key` to its manifest; returns it and them."""
    manifest = storage.raw_manifest(key)
    present = {entry["group"] for entry in manifest["groups"]}
    new = [
        group
        for group in scan_landing(storage.landing_dir_path)
        if group.name not in present and belongs_to(storage, group, key)
    ]
    entries = [copy_group(storage, group, key) for group in new]
    manifest["groups"] += entries
    # Manifest first, marker second: the manifest is the record; a lost marker only means the
    # sensor may ask again, and the re-run finds the group already present.
    storage.write_raw_manifest(manifest)
    for entry in entries:
        storage.write_group_marker(
            {"group": entry["group"], "partition": key, "fingerprint": entry["fingerprint"]}
        )
    return manifest, [group.name for group in new]


FILES_READABLE = "files_readable"


def unreadable_files(manifest: dict) -> dict[str, list[tuple[bool, str]]]:
    """Lake file → its problems (is_error, words), for every file of an hour that has any."""
    return {
        file["lake_file"]: problems
        for entry in manifest["groups"]
        for kind, file in entry["files"].items()
        if (problems := file_problems(kind, file))
    }


@hourly_asset(
    group_name="lake",
    kinds={"csv"},
    owners=OWNERS,
    tags=tags("raw", "sales"),
    check_specs=[
        AssetCheckSpec(
            FILES_READABLE,
            asset="raw_files",
            description="every landed file has a header the pipeline knows, and is UTF-8",
        )
    ],
)
def raw_files(context: AssetExecutionContext, storage: StorageResource) -> MaterializeResult:
    """Source groups landed in this hour, copied as-is into lake/raw/ingest_date=…/ingest_hour=…."""
    rows, new_groups, total_rows, problems = [], [], 0, {}
    for key in context.partition_keys:
        manifest, new = ingest_hour(storage, key)
        new_groups += new
        problems.update(unreadable_files(manifest))
        for entry in manifest["groups"]:
            for kind, file in entry["files"].items():
                total_rows += file["rows"] if kind == "sales_transactions" else 0
                rows.append(
                    {
                        "hour": key,
                        "group": entry["group"],
                        "file": file["lake_file"],
                        "bytes": file["size"],
                        "rows": file["rows"],
                        "sha256": file["sha256"][:12],
                        "empty": file["empty"],
                    }
                )
        context.log.info(
            f"{key}: {len(manifest['groups'])} group(s), newly ingested: {new or 'none'}"
        )
    for file, said in problems.items():
        for is_error, words in said:
            (context.log.error if is_error else context.log.warning)(f"{file} {words}")
    errors = any(is_error for said in problems.values() for is_error, _ in said)
    return MaterializeResult(
        metadata={
            "groups": len({(r["hour"], r["group"]) for r in rows}),
            "newly_ingested": MetadataValue.json(new_groups),
            "transaction_rows": total_rows,
            **written(uri=storage.raw_hour_uri(context.partition_keys[0])),
            "files": markdown_table(rows, limit=30),
        },
        check_results=[
            AssetCheckResult(
                check_name=FILES_READABLE,
                passed=not problems,
                severity=AssetCheckSeverity.ERROR if errors else AssetCheckSeverity.WARN,
                description="; ".join(
                    f"{file} {words}" for file, said in problems.items() for _, words in said
                )[:2000]
                or None,
                metadata={
                    "files": MetadataValue.json(
                        {file: [words for _, words in said] for file, said in problems.items()}
                    )
                },
            )
        ],
    )
