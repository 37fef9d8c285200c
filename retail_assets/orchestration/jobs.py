"""The jobs: the hourly pipeline (every batch asset of one arrival hour, in dependency order;
its partitions are the assets' hourly ones) and one pass of the stream."""

from dagster import AssetSelection, define_asset_job

# The run tags of a single-run backfill over a range of hours.
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

BATCH_GROUPS = ("lake", "warehouse", "outputs")

hourly_pipeline = define_asset_job(
    "hourly_pipeline",
    selection=AssetSelection.groups(*BATCH_GROUPS),
    tags={"retail/lane": "hourly"},
    description=(
        "Every batch asset of one arrival hour (or, as a backfill, a range of hours in one run): "
        "raw files, silver, the warehouse, the insights and the B2B file."
    ),
)

# One pass of the stream: Kafka → app_events (+ window counts); beside the hourly runs.
app_events_job = define_asset_job(
    "app_events_job",
    selection=["app_events"],
    tags={"retail/lane": "streaming"},
    description="One pass of the stream: the app-log events Kafka holds beyond the checkpoint.",
)
