"""The landing sensor: each complete new group requests the hourly partition of its arrival."""

import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, sensor

from retail_assets.assets.raw import marker_parts
from retail_assets.jobs import hourly_pipeline
from retail_assets.landing import scan_landing
from retail_assets.partitions import hourly_partitions
from retail_assets.resources import StorageResource


@sensor(
    job=hourly_pipeline, minimum_interval_seconds=30, default_status=DefaultSensorStatus.RUNNING
)
def landing_sensor(context: SensorEvaluationContext, storage: StorageResource) -> SensorResult:
    """Cursor: {"pending": {group: fingerprint}} — groups requested and not yet ingested.

    One run request per arrival hour (several groups of one hour share a run); the run key
    names the groups and their fingerprints, so a request is never repeated.
    """
    pending: dict[str, str] = json.loads(context.cursor or "{}").get("pending", {})
    lake, notes, by_hour = storage.lake, [], {}
    groups = scan_landing(storage.landing_dir_path)
    for group in groups:
        if not group.complete:
            notes.append(f"{group.name} not ingested: {'; '.join(group.problems)}")
            continue
        marker = lake.read_json(*marker_parts(group.name))
        if marker:
            pending.pop(group.name, None)
            if marker["fingerprint"] != group.fingerprint:
                notes.append(
                    f"{group.name} dropped again after its ingestion in {marker['partition']}; "
                    "a group is ingested once only — deliver new data under a new group name"
                )
            continue
        if pending.get(group.name) == group.fingerprint:
            continue
        if not hourly_partitions.has_partition_key(group.partition_key):
            notes.append(
                f"{group.name} arrived at {group.arrived_at:%Y-%m-%d %H:%M} UTC, "
                "outside the partitions (check RETAIL_PARTITIONS_START / the clock)"
            )
            continue
        by_hour.setdefault(group.partition_key, []).append(group)
    requests = []
    for key, hour_groups in sorted(by_hour.items()):
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
        cursor=json.dumps({"pending": pending}, sort_keys=True),
        skip_reason=None if requests else ("; ".join(notes) or "no new complete group"),
    )
