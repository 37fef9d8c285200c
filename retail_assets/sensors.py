"""The landing sensor: each complete new group requests the hourly partition of its arrival."""

import json
from datetime import timedelta

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    TimeWindow,
    sensor,
)

from retail_assets.assets.raw import marker_parts
from retail_assets.jobs import hourly_pipeline
from retail_assets.landing import scan_landing
from retail_assets.partitions import hour_of, hourly_partitions
from retail_assets.resources import StorageResource

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def quiet_hours(last_hour: str | None, key: str) -> list[str]:
    """The hours strictly between the last requested hour and `key` (none before the first)."""
    if last_hour is None or last_hour >= key:
        return []
    window = TimeWindow(hour_of(last_hour) + timedelta(hours=1), hour_of(key))
    return hourly_partitions.get_partition_keys_in_time_window(window)


@sensor(
    job=hourly_pipeline, minimum_interval_seconds=30, default_status=DefaultSensorStatus.RUNNING
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
    pending: dict[str, str] = cursor.get("pending", {})
    last_hour: str | None = cursor.get("last_hour")
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
        quiet = quiet_hours(last_hour, key)
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
