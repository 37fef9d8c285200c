"""Run coordination: one writer per lane at a time, and the runs a killed worker left STARTED
marked failed. Every run of the project's jobs does both when its storage resource starts
(`CoordinatedStorage`); the `orphaned_runs` sensor also fails such runs every minute."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from dagster import DagsterInstance, DagsterRunStatus, InitResourceContext, RunsFilter

from retail_assets.orchestration.workers import WORKER_TAG, pid_of, worker, worker_gone
from retail_assets.orchestration.writer_lock import BATCH_LOCK, STREAM_LOCK, writer_lock
from retail_assets.storage.resource import StorageResource


def fail_orphaned_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed every STARTED run whose worker on this host has ended; their ids."""
    failed = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        run = record.dagster_run
        found = run.tags.get(WORKER_TAG)
        if found and worker_gone(found):
            instance.report_run_failed(
                run,
                f"The run's worker (pid {pid_of(found)}) ended without ending the run: it was "
                "killed or crashed. Nothing it left half-written is visible; re-execute the run "
                "(from failure in the UI) or run the same command again.",
            )
            failed.append(run.run_id)
    return failed


class CoordinatedStorage(StorageResource):
    """The storage of the project's runs: the same layout, and a run holds its lane's writer
    lock (orchestration/writer_lock.py) for the whole run."""

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[CoordinatedStorage]:
        """Once it holds the lock, the run fails the runs a killed worker left STARTED. A
        stream pass writes only the stream's tables: its lock is its own, so it goes beside
        the hourly runs, never beside another pass; every other run (the hourly ones, the
        daily maintenance) takes the batch lock. A sensor (no run) only reads."""
        run, instance = context.dagster_run, context.instance
        if run is None or instance is None:
            yield self
            return
        instance.add_run_tags(run.run_id, {WORKER_TAG: worker(os.getpid())})
        streaming = run.tags.get("retail/lane") == "streaming"
        lock = STREAM_LOCK if streaming else BATCH_LOCK
        holder = f"run {run.run_id[:8]} of {run.job_name}"
        with writer_lock(self.landing_dir_path, holder, say=context.log.info, name=lock):
            for orphan in fail_orphaned_runs(instance):
                context.log.warning(f"run {orphan} was left STARTED by a killed worker: failed")
            yield self


def coordinated(storage: StorageResource) -> CoordinatedStorage:
    """`storage`'s layout, for the project's runs."""
    return CoordinatedStorage(**storage.model_dump())
