"""The Dagster definitions of retail_assets (`dagster dev` loads them via workspace.yaml).

Nothing is read at import: `defs` is built when Dagster loads the code location (or a run
starts), from the settings of that moment (settings.py), so the same installed package serves
any home, and importing it has no side effects.
"""

from dagster import AssetsDefinition, Definitions, definitions, in_process_executor

from retail_assets.assets.automation import outputs_automation
from retail_assets.assets.b2b import b2b_daily_csv
from retail_assets.assets.catalog import in_databases_of
from retail_assets.assets.freshness import with_hourly_freshness
from retail_assets.assets.insights import marketing_insights
from retail_assets.assets.partitions import starting_at
from retail_assets.assets.raw import raw_files
from retail_assets.assets.silver import new_transactions, silver_transactions
from retail_assets.assets.streaming import app_events
from retail_assets.assets.warehouse.dimensions import dimensions
from retail_assets.assets.warehouse.facts import sales_facts
from retail_assets.orchestration.jobs import app_events_job, hourly_pipeline
from retail_assets.orchestration.maintenance import daily_delta_maintenance, delta_maintenance
from retail_assets.orchestration.runs import coordinated
from retail_assets.orchestration.sensors import kafka_sensor, landing_sensor, orphaned_runs
from retail_assets.resources import kafka_resource, spark_resource
from retail_assets.settings import Settings
from retail_assets.storage.resource import StorageResource, storage_resource

# The hourly batch path (no Kafka needed).
BATCH_ASSETS = [
    raw_files,
    silver_transactions,
    new_transactions,
    dimensions,
    sales_facts,
    marketing_insights,
    b2b_daily_csv,
]


def for_home(assets: list, settings: Settings, storage: StorageResource) -> list[AssetsDefinition]:
    """`assets` as a home runs them: its hours (from its partitions start) and its databases."""
    start, tables = starting_at(settings.partitions_start), in_databases_of(storage)
    return [asset.map_asset_specs(lambda spec: tables(start(spec))) for asset in assets]


def batch_definitions(storage: StorageResource, settings: Settings | None = None) -> Definitions:
    """The hourly path on other tables and folders (benchmarks and tests run it side by side)."""
    settings = settings or Settings.from_env()
    return Definitions(
        assets=for_home(BATCH_ASSETS, settings, storage),
        jobs=[hourly_pipeline],
        resources={"spark": spark_resource(settings), "storage": coordinated(storage)},
        executor=in_process_executor,
    )


@definitions
def defs() -> Definitions:
    """The code location: every asset, job and sensor on this process's settings."""
    settings = Settings.from_env()
    storage = storage_resource(settings)
    return Definitions(
        assets=for_home([*with_hourly_freshness(BATCH_ASSETS), app_events], settings, storage),
        jobs=[hourly_pipeline, app_events_job, delta_maintenance],
        schedules=[daily_delta_maintenance],
        sensors=[landing_sensor, outputs_automation, kafka_sensor, orphaned_runs],
        resources={
            "spark": spark_resource(settings),
            "storage": coordinated(storage),
            "kafka": kafka_resource(settings),
        },
        # Spark does the heavy lifting on its server; steps in one process share one client
        # session instead of paying a process start and a Connect handshake each.
        executor=in_process_executor,
    )
