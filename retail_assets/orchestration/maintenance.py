"""The daily maintenance of the Delta tables: what keeps a year of writes as cheap as a day's.

Each write adds files (a stream pass adds one to every day it touches), and each replaced
file stays on disk for time travel. Once a day, for every Delta table the storage resource
lists, `OPTIMIZE` compacts the days that have closed into as few files as Delta's target
size allows, and `VACUUM` deletes the files no version of the retention window reads. Delta
writes a checkpoint of its log every 10 commits, so a reader's replay of the log is bounded
too. OPTIMIZE commits beside the stream's appends without conflict (it only rewrites files
that were already committed).
"""

from datetime import UTC, date, datetime, timedelta

from dagster import (
    Config,
    DefaultScheduleStatus,
    OpExecutionContext,
    RunRequest,
    ScheduleEvaluationContext,
    job,
    op,
    schedule,
)

from retail_assets.assets.metadata import as_json
from retail_assets.resources import SparkResource
from retail_assets.storage.delta import optimize, vacuum
from retail_assets.storage.resource import StorageResource
from retail_assets.storage.tables import table_exists


class MaintenanceConfig(Config):
    # The closed days compacted: the `days` before `until` (YYYY-MM-DD, default today, UTC).
    # A day already one file costs nothing to re-run; a late event adds a file that the next
    # run folds in, as long as its day is within the window.
    days: int = 7
    until: str = ""
    # How long replaced files stay, i.e. how far back time travel reaches (Delta's default).
    retain_hours: int = 7 * 24


def closed_days(config: MaintenanceConfig) -> tuple[str, str]:
    """The first day compacted and the day after the last, as YYYY-MM-DD."""
    until = date.fromisoformat(config.until) if config.until else datetime.now(UTC).date()
    return (until - timedelta(days=config.days)).isoformat(), until.isoformat()


@op(tags={"kind": "delta"})
def maintain_delta_tables(
    context: OpExecutionContext,
    config: MaintenanceConfig,
    spark: SparkResource,
    storage: StorageResource,
) -> None:
    """OPTIMIZE the closed days and VACUUM each Delta table; the files each one compacted."""
    session, (first, until) = spark.spark_session, closed_days(config)
    compacted = {}
    for name, day in storage.delta_tables().items():
        if not table_exists(session, name):
            continue
        compacted[name] = optimize(session, name, f"{day} >= '{first}' AND {day} < '{until}'")
        vacuum(session, name, config.retain_hours)
        context.log.info(f"{name}: days {first} to {until} (exclusive) {compacted[name]}")
    context.add_output_metadata({"days": f"{first} .. {until}", "compacted": as_json(compacted)})


@job(
    tags={"retail/lane": "maintenance"},
    description="OPTIMIZE the closed days of every Delta table, then VACUUM old files.",
)
def delta_maintenance():
    maintain_delta_tables()


@schedule(
    job=delta_maintenance,
    cron_schedule="30 2 * * *",  # a quiet hour, after the day's last late events (UTC)
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
def daily_delta_maintenance(context: ScheduleEvaluationContext) -> RunRequest:
    """The days before the tick's own date: a late or re-run tick compacts the same days."""
    day = context.scheduled_execution_time.date().isoformat()
    config = {"maintain_delta_tables": {"config": {"until": day}}}
    return RunRequest(run_key=day, run_config={"ops": config})
