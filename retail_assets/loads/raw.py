"""The raw layer's load: a landed group's files copied into the lake hour it belongs to,
with their manifest; and the raw files of an hour read back as records of string fields."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_assets.storage.landing import FILE_KINDS, LandedGroup, scan_landing
from retail_assets.storage.resource import StorageResource
from retail_assets.transforms.source_records import (
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
        parse_lines(
            join_quoted_lines(lines),
            entry["header"],
            fields,
            ends_with_line_break=entry.get("ends_with_line_break", True),
        ).withColumn("received_on", F.lit(entry["received_on"]).cast("date"))
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
            "ends_with_line_break": copied.ends_with_line_break,
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
