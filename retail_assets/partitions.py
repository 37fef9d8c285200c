"""The one hourly partitioning of the batch assets: the UTC hour a group of files arrived."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import (
    AssetDep,
    BackfillPolicy,
    HourlyPartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
)

from retail_assets.settings import Settings

KEY_FORMAT = "%Y-%m-%d-%H:%M"
# The run tags of a single-run backfill over a range of hours.
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

# end_offset=1: the current hour is a partition already, so a group is ingested on arrival
# rather than when its hour ends.
hourly_partitions = HourlyPartitionsDefinition(
    start_date=Settings.from_env().partitions_start, end_offset=1, timezone="UTC"
)

# Hours apply in order: an asset that carries state (the ids seen, a dimension's versions)
# depends on its own previous hour, so a change to an hour marks the later ones stale.
previous_hour = TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)


def own_previous_hour(name: str) -> AssetDep:
    return AssetDep(name, partition_mapping=previous_hour)


def hourly_asset(**kwargs):
    """@asset on the hourly partitions; a backfill of a range runs as one run."""
    return asset(
        partitions_def=hourly_partitions, backfill_policy=BackfillPolicy.single_run(), **kwargs
    )


def hour_of(key: str) -> datetime:
    return datetime.strptime(key, KEY_FORMAT).replace(tzinfo=UTC)


def key_of(hour: datetime) -> str:
    return hour.astimezone(UTC).strftime("%Y-%m-%d-%H:00")


def hour_values(key: str) -> dict[str, str]:
    """The lake/table partition values of an hourly key: ingest_date and ingest_hour."""
    hour = hour_of(key)
    return {"ingest_date": hour.strftime("%Y-%m-%d"), "ingest_hour": hour.strftime("%H")}


def hour_path(key: str) -> str:
    """`ingest_date=YYYY-MM-DD/ingest_hour=HH`, the folder of an hour in every lake dataset."""
    return "/".join(f"{name}={value}" for name, value in hour_values(key).items())
