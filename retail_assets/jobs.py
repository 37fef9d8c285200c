"""The hourly pipeline: every batch asset of one arrival hour, in dependency order."""

from dagster import AssetSelection, define_asset_job

from retail_assets.partitions import hourly_partitions

BATCH_GROUPS = ("lake", "warehouse", "outputs")

hourly_pipeline = define_asset_job(
    "hourly_pipeline",
    selection=AssetSelection.groups(*BATCH_GROUPS),
    partitions_def=hourly_partitions,
    tags={"retail/lane": "hourly"},
)
