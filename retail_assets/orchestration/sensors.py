"""The landing sensor (each complete new group requests the hourly partition of its arrival)
and the Kafka sensor (events the stream has not committed request a pass of the stream)."""

import json
from datetime import UTC, datetime, timedelta

from confluent_kafka import KafkaException
from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    PartitionsDefinition,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    TimeWindow,
    sensor,
)

from retail_assets.assets.streaming import EVENTS
from retail_assets.orchestration.jobs import RANGE_END, RANGE_START, app_events_job, hourly_pipeline
from retail_assets.orchestration.runs import fail_orphaned_runs
from retail_assets.resources import KafkaResource
from retail_assets.storage.checkpoints import lag, position
from retail_assets.storage.hours import hour_of
from retail_assets.storage.landing import scan_landing
from retail_assets.storage.resource import StorageResource
from retail_assets.streaming.kafka_offsets import behind_checkpoint

# A group is requested once none of its files changed for this long: a file still being
# copied in keeps changing. (Landing by renaming a finished folder in needs no wait.)
SETTLE_S = 60


def quiet_hours(hours: PartitionsDefinition, last_hour: str | None, key: str) -> list[str]:
    """The `hours` strictly between the last requested hour and `key` (none before the first)."""
    if last_hour is None or last_hour >= key:
        return []
    window = TimeWindow(hour_of(last_hour) + timedelta(hours=1), hour_of(key))
    return hours.get_partition_keys_in_time_window(window)


@sensor(
    job=hourly_pipeline,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Each complete new group in the landing folder requests the hourly_pipeline run "
    "of its arrival hour; an incomplete or re-dropped group is reported in the tick, not ingested.",
)
def landing_sensor(context: SensorEvaluationContext, storage: StorageResource) -> SensorResult:
    """Cursor: {"pending": {group: fingerprint}, "last_hour": key} — groups requested and not
    yet ingested, and the newest hour requested.

    One run request per arrival hour (several groups of one hour share a run); the run key
    names the groups and their fingerprints, so a request is never repeated. Hours in which
    nothing arrived since the last requested one get one run over their range first, so every
    hour is materialized and a change to an hour marks all later ones stale.
    """
    cursor = json.loads(context.cursor or "{}")
    hours = context.repository_def.get_job(hourly_pipeline.name).partitions_def  # the home's
    pending: dict[str, str] = cursor.get("pending", {})
    last_hour: str | None = cursor.get("last_hour")
    notes, by_hour = [], {}
    groups = scan_landing(storage.landing_dir_path)
    for group in groups:
        if not group.complete:
            notes.append(f"{group.name} not ingested: {'; '.join(group.problems)}")
            continue
        marker = storage.ingested_as(group)
        if marker:
            pending.pop(group.name, None)
            if marker["group"] != group.name:
                notes.append(
                    f"{group.name} holds the files of {marker['group']}, ingested in "
                    f"{marker['partition']} (the folder was renamed): not ingested again"
                )
            elif marker["fingerprint"] != group.fingerprint:
                notes.append(
                    f"{group.name} dropped again after its ingestion in {marker['partition']}; "
                    "a group is ingested once only — deliver new data under a new group name"
                )
            continue
        if pending.get(group.name) == group.fingerprint:
            continue
        still = (datetime.now(UTC) - group.arrived_at).total_seconds()
        if still < SETTLE_S:
            notes.append(
                f"{group.name} changed {still:.0f}s ago: ingested once its files have been "
                f"still for {SETTLE_S}s (a file may still be being written)"
            )
            continue
        unterminated = group.unterminated  # read only for a group that is otherwise due
        if unterminated and still < storage.unterminated_wait_s:
            notes.append(
                f"{group.name}: {', '.join(unterminated)} does not end with a line break (a "
                f"writer may still be writing it); still for {still:.0f}s, ingested once still "
                f"for {storage.unterminated_wait_s}s, its last record then quarantined"
            )
            continue
        if not hours.has_partition_key(group.partition_key):
            notes.append(
                f"{group.name} arrived at {group.arrived_at:%Y-%m-%d %H:%M} UTC, "
                "outside the partitions (check RETAIL_PARTITIONS_START / the clock)"
            )
            continue
        by_hour.setdefault(group.partition_key, []).append(group)
    requests = []
    for key, hour_groups in sorted(by_hour.items()):
        quiet = quiet_hours(hours, last_hour, key)
        if quiet:
            requests.append(
                RunRequest(
                    run_key=f"quiet|{quiet[0]}|{quiet[-1]}",
                    tags={RANGE_START: quiet[0], RANGE_END: quiet[-1], "retail/groups": ""},
                )
            )
        last_hour = max(key, last_hour or key)
        requests.append(
            RunRequest(
                partition_key=key,
                run_key=f"{key}|" + ",".join(f"{g.name}:{g.fingerprint}" for g in hour_groups),
                tags={"retail/groups": ",".join(g.name for g in hour_groups)},
            )
        )
        pending.update({g.name: g.fingerprint for g in hour_groups})
    landed = {group.name for group in groups}
    pending = {name: fp for name, fp in pending.items() if name in landed}
    for note in notes:
        context.log.warning(note)
    return SensorResult(
        run_requests=requests,
        cursor=json.dumps({"pending": pending, "last_hour": last_hour}, sort_keys=True),
        skip_reason=None if requests else ("; ".join(notes) or "no new complete group"),
    )


IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


@sensor(
    job=app_events_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Events in Kafka beyond the stream's checkpoint request a pass of app_events_job "
    "when none is queued or running; an unreachable broker is a skip with the reason.",
)
def kafka_sensor(
    context: SensorEvaluationContext, kafka: KafkaResource, storage: StorageResource
) -> RunRequest | SkipReason:
    """A pass of the stream when any partition holds events the stream's checkpoint has not
    committed and no pass is queued or running; the run key is the offsets it will reach."""
    running = context.instance.get_run_records(
        RunsFilter(job_name=app_events_job.name, statuses=IN_FLIGHT), limit=1
    )
    if running:
        return SkipReason(f"run {running[0].dagster_run.run_id} of the stream is in flight")
    try:
        starts, ends = kafka.offsets(timeout=kafka.sensor_timeout_s)
    except KafkaException as error:
        return SkipReason(f"Kafka at {kafka.bootstrap_servers} is not reachable: {error}")
    if not ends:
        return SkipReason(f"topic {kafka.topic} does not exist yet")
    at = position(storage.last_commit(kafka.topic, EVENTS), starts).offsets
    try:
        behind_checkpoint(at, ends)
    except KafkaException as error:
        return SkipReason(str(error))
    pending = lag(ends, at)
    if not any(pending.values()):
        return SkipReason("no events beyond the stream's checkpoint")
    return RunRequest(
        run_key=f"{kafka.topic}:{json.dumps(ends, sort_keys=True)}",
        tags={"retail/lane": "streaming"},
    )


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING)
def orphaned_runs(context: SensorEvaluationContext) -> SkipReason:
    """Marks failed the runs a killed `retail replay` or `retail stream` left STARTED."""
    failed = fail_orphaned_runs(context.instance)
    return SkipReason(f"marked failed: {', '.join(failed)}" if failed else "no orphaned runs")
