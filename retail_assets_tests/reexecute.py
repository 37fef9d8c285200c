"""What the UI's "re-execute from failure" does, as a script: fail the runs a killed worker left
STARTED (the `orphaned_runs` sensor's work), then re-execute the failed run from its failure,
its finished steps skipped. Run by test_faults in the scenario's environment."""

import sys

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    ReexecutionOptions,
    execute_job,
    reconstructable,
)

from retail_assets.orchestration.runs import fail_orphaned_runs


def hourly_pipeline():
    from retail_assets.definitions import defs

    return defs().resolve_job_def("hourly_pipeline")


if __name__ == "__main__":
    with DagsterInstance.get() as instance:
        (failed,) = fail_orphaned_runs(instance)
        assert instance.get_run_by_id(failed).status == DagsterRunStatus.FAILURE
        options = ReexecutionOptions.from_failure(failed, instance)
        tags = instance.get_run_by_id(failed).tags  # its partition, as the UI carries it over
        job = reconstructable(hourly_pipeline)
        result = execute_job(job, instance, tags=tags, reexecution_options=options)
        sys.exit(0 if result.success else 1)
