"""How the outputs follow new facts by themselves under `dagster dev`.

Runs of `hourly_pipeline` already include the outputs (their facts' updates are ignored by
`any_deps_updated`, since the same run updates the outputs). A run that updates only facts
or dimensions — a UI materialization, a backfill of the warehouse — is followed by a run of
the outputs for the same hours.
"""

from dagster import (
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
)

OUTPUTS = AssetSelection.groups("outputs")


def follows_new_facts() -> AutomationCondition:
    """An hour's output is requested once its facts or dimensions updated and nothing upstream
    is still running. An output's own previous hour is not a trigger: a finished hour must not
    start the next hour before that hour's facts exist."""
    return (
        AutomationCondition.any_deps_updated().ignore(OUTPUTS).since_last_handled()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("follows_new_facts")


outputs_automation = AutomationConditionSensorDefinition(
    "outputs_follow_facts",
    target=OUTPUTS,
    run_tags={"retail/lane": "hourly"},  # queued behind the hourly runs (dagster.yaml)
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Requests the outputs of the hours whose facts or dimensions were updated "
    "without them (a UI materialization, a warehouse backfill).",
)
