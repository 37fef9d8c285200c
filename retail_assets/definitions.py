"""The Dagster definitions of retail_assets (`dagster dev` loads them via workspace.yaml)."""

from dagster import Definitions, in_process_executor

from retail_assets.assets.automation import outputs_automation
from retail_assets.assets.b2b import b2b_daily_csv
from retail_assets.assets.freshness import with_hourly_freshness
from retail_assets.assets.insights import marketing_insights
from retail_assets.assets.raw import raw_files
from retail_assets.assets.silver import new_transactions, silver_transactions
from retail_assets.assets.streaming import app_events
from retail_assets.assets.warehouse import (
    dim_branch,
    dim_customer,
    dim_date,
    dim_product,
    dim_sales_agent,
    sales_facts,
)
from retail_assets.orchestration.jobs import app_events_job, hourly_pipeline
from retail_assets.orchestration.sensors import kafka_sensor, landing_sensor, orphaned_runs
from retail_assets.resources import kafka_resource, spark_resource
from retail_assets.settings import Settings
from retail_assets.storage.resource import StorageResource, storage_resource

settings = Settings.from_env()

# The hourly batch path (no Kafka needed), then everything.
BATCH_ASSETS = [
    raw_files,
    silver_transactions,
    new_transactions,
    dim_customer,
    dim_product,
    dim_branch,
    dim_sales_agent,
    dim_date,
    sales_facts,
    marketing_insights,
    b2b_daily_csv,
]
ASSETS = [*BATCH_ASSETS, app_events]


def batch_definitions(storage: StorageResource, on: Settings = settings) -> Definitions:
    """The hourly path on other tables and folders (benchmarks and tests run it side by side)."""
    return Definitions(
        assets=BATCH_ASSETS,
        jobs=[hourly_pipeline],
        resources={"spark": spark_resource(on), "storage": storage},
        executor=in_process_executor,
    )


defs = Definitions(
    assets=[*with_hourly_freshness(BATCH_ASSETS), app_events],
    jobs=[hourly_pipeline, app_events_job],
    sensors=[landing_sensor, outputs_automation, kafka_sensor, orphaned_runs],
    resources={
        "spark": spark_resource(settings),
        "storage": storage_resource(settings),
        "kafka": kafka_resource(settings),
    },
    # Spark does the heavy lifting on its server; steps in one process share one client
    # session instead of paying a process start and a Connect handshake each.
    executor=in_process_executor,
)
