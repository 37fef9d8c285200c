"""raw_files: each arrived group's three files copied into the lake, with a manifest.

The lake copy is the system of record: a partition re-run works from it even when the landing
folder has been cleaned, and a per-group marker makes sure a group is ingested once only.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
)

from retail_assets.assets.catalog import OWNERS, tags, written
from retail_assets.assets.metadata import markdown_table
from retail_assets.assets.partitions import hourly_asset
from retail_assets.loads.raw import ingest_hour
from retail_assets.storage.resource import StorageResource
from retail_assets.transforms.source_records import (
    file_problems,
)

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
