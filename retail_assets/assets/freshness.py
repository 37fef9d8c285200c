"""Freshness: an hourly asset not materialized for two hours is flagged in the UI.

Groups arrive hourly and each is ingested in its arrival hour, so an asset whose newest
materialization is older than two hours means the source stopped sending or the pipeline
stopped running. Dagster's freshness policy says so on the asset (warn after one hour, fail
after two), evaluated by the daemon's freshness loop: no sensor, no runs.
"""

from datetime import timedelta

from dagster import FreshnessPolicy, map_asset_specs

HOURLY_FRESHNESS = FreshnessPolicy.time_window(
    fail_window=timedelta(hours=2), warn_window=timedelta(hours=1)
)


def with_hourly_freshness(assets: list) -> list:
    """`assets` with the hourly freshness policy on every asset they define."""
    return map_asset_specs(
        lambda spec: spec.replace_attributes(freshness_policy=HOURLY_FRESHNESS), assets
    )
