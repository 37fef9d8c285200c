"""Replay source groups as hourly arrivals and materialize each hour through Dagster.

Each group is landed (atomically, its files stamped with the arrival hour) and then the
hourly job of the project's definitions runs for that partition against the persistent
Dagster instance — the same assets, resources and checks the UI runs, recorded in its history.
"""

from __future__ import annotations

import fcntl
import filecmp
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    RunsFilter,
)

from retail_assets.assets.retries import TRANSIENT_RETRY, first_line
from retail_assets.orchestration.jobs import RANGE_END, RANGE_START
from retail_assets.settings import Settings, record_partitions_start
from retail_assets.storage.hours import hour_of, key_of
from retail_assets.storage.landing import landed_group, scan_landing
from retail_assets.storage.resource import storage_resource

FACT_NAMES = ("fact_branch_sales", "fact_online_sales")
B2B = "b2b_daily_csv"

PARTITION_TAG = "dagster/partition"  # the tag Dagster gives a run of one partition

# The run's full event log is in the instance (and the UI); the terminal gets a summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class ReplayError(RuntimeError):
    pass


def open_instance() -> DagsterInstance:
    """The DAGSTER_HOME instance, its SQLite databases created by one process at a time: two
    commands started together on a new home both created them and left two schema versions
    ("alembic_version has more than one head"), and every later open failed."""
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".create.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or its holder dies
        return DagsterInstance.get()


def source_groups(
    source_dir: Path,
    names: list[str] | None,
    skip_incomplete: bool = False,
    say: Callable[[str], None] = print,
) -> list[Path]:
    """The groups to replay, in group-number order (scan_landing's order). An incomplete group
    refuses the replay, or with `skip_incomplete` is left out and named."""
    found = {group.name: group for group in scan_landing(source_dir)}
    if names:
        unknown = [name for name in names if name not in found]
        if unknown:
            raise ReplayError(f"no such group in {source_dir}: {', '.join(unknown)}")
        found = {name: group for name, group in found.items() if name in names}
    incomplete = [f"{g.name} ({'; '.join(g.problems)})" for g in found.values() if not g.complete]
    if incomplete and not skip_incomplete:
        raise ReplayError(
            f"incomplete source groups: {', '.join(incomplete)} "
            "(--skip-incomplete replays the others)"
        )
    if incomplete:
        say(f"skipping incomplete source groups: {', '.join(incomplete)}")
        found = {name: group for name, group in found.items() if group.complete}
    if not found:
        raise ReplayError(f"no group folders in {source_dir}")
    return [group.path for group in found.values()]


def land(group: Path, landing_dir: Path, arrival: datetime) -> Path:
    """Copy a group into landing as arrived at `arrival`; appears whole (rename) or not at all.

    A group already landed with identical files is left as it is (replays are repeatable);
    one with different files under the same name is refused.
    """
    target = landing_dir / group.name
    if target.exists():
        match, mismatch, errors = filecmp.cmpfiles(
            group, target, [p.name for p in group.iterdir()], shallow=False
        )
        if mismatch or errors:
            raise ReplayError(f"{target} already holds different files named {group.name}")
        return target
    landing_dir.mkdir(parents=True, exist_ok=True)
    staging = landing_dir / f".{group.name}.{uuid.uuid4().hex}.tmp"
    shutil.copytree(group, staging)
    stamp = (arrival + timedelta(minutes=5)).timestamp()
    for file in staging.iterdir():
        os.utime(file, (stamp, stamp))
    try:
        staging.rename(target)
    except OSError:
        if not target.exists():
            raise
        shutil.rmtree(staging)  # another replay landed it meanwhile: compare with that
        return land(group, landing_dir, arrival)
    return target


def recent_start(groups: int, now: datetime) -> str:
    """The latest 22:00 UTC from which `groups` hourly arrivals have all happened by `now`:
    a demo that crosses midnight (two ingest days) and ends close to the present, as a live
    pipeline does, so the UI's partitions, freshness and sensors look as they would."""
    start = now.astimezone(UTC).replace(hour=22, minute=0, second=0, microsecond=0)
    while start + timedelta(hours=groups - 1) > now:
        start -= timedelta(days=1)
    return key_of(start)


@dataclass
class HourRun:
    ok: bool
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)
    step_seconds: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, dict] = field(default_factory=dict)  # asset -> its materialization's


def run_hour(
    key: str, instance: DagsterInstance, definitions: Definitions, last: str = ""
) -> HourRun:
    """Materialize every batch asset of `definitions` for hour `key` (through `last`: the range
    in one run, a single-run backfill); success, printable lines, step times."""
    job = definitions.resolve_job_def("hourly_pipeline")
    span = {"partition_key": key} if not last else {"tags": {RANGE_START: key, RANGE_END: last}}
    began = time.monotonic()
    result = job.execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET, **span
    )
    run = HourRun(result.success, seconds=time.monotonic() - began)
    lines, attempts = run.lines, {}
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            values = {k: v.value for k, v in materialization.metadata.items()}
            run.metadata[materialization.asset_key.to_user_string()] = values
            counts = {k: v for k, v in values.items() if isinstance(v, int)}
            summary = " ".join(f"{k}={v}" for k, v in counts.items())
            lines.append(f"    {materialization.asset_key.to_user_string():<28} {summary}")
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            warning = evaluation.severity == AssetCheckSeverity.WARN
            run.ok = run.ok and (evaluation.passed or warning)
            verdict = "passed" if evaluation.passed else "WARNING" if warning else "FAILED"
            asset = evaluation.asset_key.to_user_string()
            lines.append(f"      check {asset}.{evaluation.check_name}: {verdict}")
            if not evaluation.passed and evaluation.description:
                lines.append(f"        {evaluation.description}")
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            seconds = event.event_specific_data.duration_ms / 1000
            run.step_seconds[event.step_key] = seconds
            lines.append(f"      step {event.step_key} took {seconds:.1f}s")
        elif event.event_type == DagsterEventType.STEP_UP_FOR_RETRY:
            retry = event.event_specific_data
            attempts[event.step_key] = attempts.get(event.step_key, 1) + 1
            wait = retry.seconds_to_wait
            lines.append(
                f"    {event.step_key}: {retried_error(retry.error)}; retrying the step "
                f"{f'in {wait:.0f}s' if wait else 'now'} (attempt {attempts[event.step_key]} "
                f"of {TRANSIENT_RETRY.max_retries + 1})"
            )
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.event_specific_data.error
            lines.append(f"    {event.step_key} FAILED: {error.message.strip()}")
    return run


def retried_error(error) -> str:
    """The error a step was retried for, in one line without its class path (a retry request
    wraps the step's own error as its cause)."""
    error = error.cause or error
    line = first_line(error.message)
    path, _, words = line.partition(": ")
    return words if words and path.endswith(error.cls_name) else line


def finished_run(instance: DagsterInstance, key: str) -> str | None:
    """The id of hour `key`'s last hourly run when it succeeded with no failed ERROR check
    (what the replay reports as ok), else None."""
    runs = instance.get_runs(
        RunsFilter(job_name="hourly_pipeline", tags={PARTITION_TAG: key}), limit=1
    )
    if not runs or runs[0].status != DagsterRunStatus.SUCCESS:
        return None
    checks = instance.all_logs(runs[0].run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    for record in checks:
        evaluation = record.dagster_event.event_specific_data
        if not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR:
            return None
    return runs[0].run_id


def replay(
    source_dir: Path,
    start_key: str,
    group_names: list[str] | None = None,
    say: Callable[[str], None] = print,
    skip_incomplete: bool = False,
    rerun: bool = False,
) -> bool:
    """Land groups as arrivals of consecutive hours from `start_key`, running each hour. An
    hour whose group is in and whose last run ended well is skipped unless `rerun`: the same
    command after a crash finishes what was interrupted. A group landed before keeps the hour
    it landed in (`retail demo` run again on a later day computes a later start)."""
    from retail_assets.definitions import defs  # loads Dagster's assets: only when replaying

    groups = source_groups(source_dir, group_names, skip_incomplete, say)
    settings = Settings.from_env()
    try:  # before the definitions load: their partitions start there
        record_partitions_start(settings, start_key)
    except ValueError as error:
        raise ReplayError(str(error)) from None
    instance = open_instance()
    storage = storage_resource(settings)
    definitions = defs()  # built on the start just recorded
    start, runs = hour_of(start_key), []
    for index, group in enumerate(groups):
        arrival = start + timedelta(hours=index)
        landed = landed_group(settings.landing_dir, land(group, settings.landing_dir, arrival).name)
        marker = storage.group_marker(landed.name)
        key = marker["partition"] if marker else landed.partition_key
        done = finished_run(instance, key) if marker and not rerun else None
        if done:
            say(f"[{index + 1}/{len(groups)}] {key}  {landed.name}: done by run {done[:8]}, "
                "skipped (--rerun runs it again)")  # fmt: skip
            continue
        if key != key_of(arrival):
            say(f"{landed.name} landed before, in {key}; running that hour")
        began = datetime.now()
        say(f"[{index + 1}/{len(groups)}] {key}  {landed.name}")
        run = run_hour(key, instance, definitions)
        for line in run.lines:
            say(line)
        seconds = (datetime.now() - began).total_seconds()
        say(f"    {'ok' if run.ok else 'FAILED'} in {seconds:.1f}s")
        if not run.ok:
            return False
        runs.append(run)
    for line in summary(runs):
        say(line)
    return True


def summary(runs: list[HourRun]) -> list[str]:
    """What the hours run made, in a few lines: the rows that came in and where they went."""
    if not runs:
        return []

    def total(asset: str, name: str) -> int:
        return sum(run.metadata.get(asset, {}).get(name) or 0 for run in runs)

    facts = {n: total(n, "dagster/partition_row_count") for n in FACT_NAMES}
    exports = sorted({p for run in runs if (p := run.metadata.get(B2B, {}).get("dagster/uri"))})
    return [
        f"{len(runs)} hour(s) run: {total('raw_files', 'transaction_rows'):,} transaction rows in, "
        f"{total('silver_transactions', 'quarantined_rows'):,} quarantined, "
        f"{total('new_transactions', 'duplicate_rows'):,} duplicates dropped, "
        f"{sum(facts.values()):,} into the facts "
        f"({', '.join(f'{name} {rows:,}' for name, rows in facts.items())})",
        *(f"B2B file: {path}" for path in exports),
    ]
