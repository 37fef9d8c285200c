"""The one hourly partitioning of the batch assets: the UTC hour a group of files arrived."""

from __future__ import annotations

import warnings

from dagster import (
    AssetDep,
    AssetSpec,
    BackfillPolicy,
    BetaWarning,
    HourlyPartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
    multi_asset,
)

from retail_assets.assets.retries import retried

# The assets are declared on hours from here; the Definitions of a home start them where its
# data starts (`starting_at`, with settings.partitions_start), when they are built: importing
# the code reads no setting.
CODE_START = "2020-01-01-00:00"


def hours_from(start: str) -> HourlyPartitionsDefinition:
    """The hourly partitions from `start` (YYYY-MM-DD-HH:MM, UTC). end_offset=1: the current
    hour is a partition already, so a group is ingested on arrival, not when its hour ends."""
    return HourlyPartitionsDefinition(start_date=start, end_offset=1, timezone="UTC")


hourly_partitions = hours_from(CODE_START)


def starting_at(start: str):
    """A spec mapper: an hourly asset's partitions from `start` (a home's first hour)."""
    partitions = hours_from(start)

    def restart(spec: AssetSpec) -> AssetSpec:
        if spec.partitions_def is None:
            return spec
        return spec.replace_attributes(partitions_def=partitions)

    return restart


# Hours apply in order: an asset that carries state (the ids seen, a dimension's versions)
# depends on its own previous hour, so a change to an hour marks the later ones stale.
previous_hour = TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)


def own_previous_hour(name: str) -> AssetDep:
    return AssetDep(name, partition_mapping=previous_hour)


def single_run_backfill(decorator, **kwargs):
    """`decorator(**kwargs)` (@asset, @multi_asset) whose backfill of a range runs as one run,
    and which retries a server's absence only (assets/retries.py).

    Dagster marks `backfill_policy` beta and warns once per asset on every import; the policy is
    chosen deliberately, so exactly that warning is silenced here, where it is raised.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Parameter `backfill_policy`", BetaWarning)
        return retried(decorator, backfill_policy=BackfillPolicy.single_run(), **kwargs)


def hourly_asset(**kwargs):
    """@asset on the hourly partitions, backfilled in one run."""
    return single_run_backfill(asset, partitions_def=hourly_partitions, **kwargs)


def hourly_multi_asset(**kwargs):
    """@multi_asset backfilled in one run (its specs carry the hourly partitions)."""
    return single_run_backfill(multi_asset, **kwargs)
