"""The jobs: the hourly pipeline (every batch asset of one arrival hour, in dependency order;
its partitions are the assets' hourly ones) and one pass of the stream."""

from dagster import AssetSelection, define_asset_job

BATCH_GROUPS = ("lake", "warehouse", "outputs")

hourly_pipeline = define_asset_job(
    "hourly_pipeline",
    selection=AssetSelection.groups(*BATCH_GROUPS),
    tags={"retail/lane": "hourly"},
)

# One pass of the stream: Kafka → app_events (+ window counts); beside the hourly runs.
app_events_job = define_asset_job(
    "app_events_job", selection=["app_events"], tags={"retail/lane": "streaming"}
)
