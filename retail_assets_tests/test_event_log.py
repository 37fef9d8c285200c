"""The embedded profile's Dagster instance: its event log keeps an engine per SQLite file,
other processes read what a run wrote, and `retail` writes the instance's dagster.yaml
without touching one the user wrote. No Spark: the runs here are Dagster's alone."""

import os
import subprocess
import sys
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    DagsterInstance,
    Definitions,
    HourlyPartitionsDefinition,
    MaterializeResult,
    asset,
    define_asset_job,
    in_process_executor,
)
from sqlalchemy import event
from sqlalchemy.engine import Engine

from retail_assets.orchestration.event_log import OPEN_FILES
from retail_assets.settings import PACKAGE_DIR, Settings, prepare_dagster_home

HOURS = HourlyPartitionsDefinition(start_date="2025-01-01-00:00")


@asset(partitions_def=HOURS, check_specs=[AssetCheckSpec("counted", asset="upstream")])
def upstream() -> MaterializeResult:
    return MaterializeResult(check_results=[AssetCheckResult(passed=True)])


@asset(partitions_def=HOURS, deps=[upstream])
def downstream() -> None:
    pass


JOB = Definitions(
    assets=[upstream, downstream], jobs=[define_asset_job("tiny")], executor=in_process_executor
).resolve_job_def("tiny")


def run_hours(instance: DagsterInstance, count: int) -> list[str]:
    runs = [JOB.execute_in_process(instance=instance, partition_key=f"2025-01-01-{h:02}:00")
            for h in range(count)]  # fmt: skip
    assert all(run.success for run in runs)
    return [run.run_id for run in runs]


READ_IN_A_NEW_PROCESS = """
import sys
from dagster import AssetKey, DagsterInstance
instance = DagsterInstance.get()
latest = instance.get_latest_materialization_event(AssetKey("downstream"))
print(len(instance.all_logs(sys.argv[1])), latest.run_id)
"""


def event_log_folder() -> Path:
    return Path(os.environ["DAGSTER_HOME"]) / "history" / "runs"


def test_a_run_opens_few_sqlite_connections_and_another_process_reads_its_events():
    """Dagster's own SQLite event log opened a connection (and an engine) for every event
    and query: ~50 for this two-step run of ~20 events; kept engines open the run's file and
    the index a few times. What the run wrote is committed: a new process reads all of its
    events, and the index names it as the latest materialization."""
    opened = []

    def count(connection, _record):
        path = connection.execute("PRAGMA database_list").fetchall()[0][2]
        opened.extend([path] if Path(path).parent == event_log_folder() else [])

    with DagsterInstance.get() as instance:
        run_hours(instance, 1)  # the index file's engine exists from here on
        event.listen(Engine, "connect", count)
        try:
            (run_id,) = run_hours(instance, 1)
        finally:
            event.remove(Engine, "connect", count)
        events = len(instance.all_logs(run_id))
    assert events >= 20 and len(opened) <= 8, (events, opened)

    read = subprocess.run(
        [sys.executable, "-c", READ_IN_A_NEW_PROCESS, run_id],
        capture_output=True, text=True, timeout=120, env=os.environ,
    )  # fmt: skip
    assert read.returncode == 0, read.stderr[-2000:]
    assert read.stdout.split() == [str(events), run_id]


def test_the_event_log_keeps_a_bounded_number_of_files_open():
    """Each run writes its own file: only the newest stay open, whatever the number of runs."""
    with DagsterInstance.get() as instance:
        run_hours(instance, OPEN_FILES + 3)
        targets = {os.readlink(fd) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink()}
        open_files = {Path(t.removesuffix("-wal").removesuffix("-shm")) for t in targets}
        open_files = {f for f in open_files if f.parent == event_log_folder()}
    assert 2 <= len(open_files) <= OPEN_FILES, open_files


def test_the_instance_config_is_written_for_the_profile_and_a_users_own_is_kept(
    tmp_path, monkeypatch
):
    """A home of an earlier version (the config a link to the repo's) gets the written file
    with the kept-engine storage, in that folder even when the process that opens it has
    another DAGSTER_HOME (as a test or a script opening the UI's instance does); a
    dagster.yaml the user wrote stays as it was."""
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").symlink_to(PACKAGE_DIR / "dagster.yaml")
    monkeypatch.setenv("RETAIL_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    prepare_dagster_home(Settings.from_env())
    config = dagster_home / "dagster.yaml"
    assert not config.is_symlink()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "another"))
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert type(instance.event_log_storage).__name__ == "KeptEngineEventLogStorage"
        (run_id,) = run_hours(instance, 1)
    assert (dagster_home / "history" / "runs" / f"{run_id}.db").exists()

    config.write_text("telemetry:\n  enabled: false\n")
    prepare_dagster_home(Settings.from_env())
    assert config.read_text() == "telemetry:\n  enabled: false\n"
