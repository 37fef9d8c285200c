"""The code location loads the way `dagster dev` and CI load it."""

import os
import subprocess
import sys
from pathlib import Path

from retail_assets.definitions import defs


def test_dagster_definitions_validate():
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "retail_assets.definitions"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "All code locations passed validation" in result.stdout + result.stderr
    assert "BetaWarning" not in result.stdout + result.stderr


def test_importing_the_definitions_prints_nothing():
    """Users read a warning as something wrong: the chosen beta backfill policy stays quiet."""
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import retail_assets.definitions"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""


def test_hourly_job_covers_the_batch_assets_and_the_sensor_launches_it():
    job = defs.resolve_job_def("hourly_pipeline")
    assets = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert {"raw_files", "silver_transactions", "insight_top_products", "b2b_daily_csv"} <= assets
    sensor = defs.resolve_sensor_def("landing_sensor")
    assert sensor.job_name == "hourly_pipeline"
