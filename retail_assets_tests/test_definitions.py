"""The code location loads the way `dagster dev` and CI load it."""

import json
import os
import subprocess
import sys
from pathlib import Path

from dagster import build_init_resource_context

from retail_assets.definitions import defs
from retail_assets.resources import kafka_resource, spark_resource
from retail_assets.servers.spark_connect import LocalSparkServer
from retail_assets.settings import Settings


def test_dg_check_defs_passes_and_says_nothing_else():
    """Dagster's current CLI, as CI and the README run it: `dg check defs` loads the code
    location and prints its one line, no warning (a user reads one as something wrong)."""
    dg = Path(sys.executable).with_name("dg")
    result = subprocess.run(
        [str(dg), "check", "defs", "--no-check-yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
        env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (result.stdout + result.stderr).strip() == "All definitions loaded successfully."


# Imports the definitions in a process that records every RETAIL_* variable the package reads
# (not a library copying the whole environment for a subprocess) and every file opened; prints
# them as JSON on its last line.
WATCHED_IMPORT = """
import json, os, sys
read, opened = set(), set()
def reader():
    frame = sys._getframe(2)
    while frame.f_globals.get("__name__") in ("os", "collections.abc", "_collections_abc"):
        frame = frame.f_back
    return frame.f_code.co_filename
class Watched(os._Environ):
    def __getitem__(self, key):
        if key.startswith("RETAIL_") and "/retail_assets/" in reader():
            read.add(key)
        return super().__getitem__(key)
os.environ.__class__ = Watched
sys.addaudithook(lambda event, args: event == "open" and opened.add(str(args[0])))
import retail_assets, retail_assets.definitions
print(json.dumps({"package": retail_assets.__file__, "read": sorted(read),
                  "opened": sorted(opened)}))
"""


def test_the_installed_wheel_imports_reading_nothing_and_printing_nothing(wheel, tmp_path):
    """A deployment's install (a wheel, not editable, used from another folder, no RETAIL_*
    or DAGSTER_HOME set): importing the definitions reads no setting and no file outside the
    installed package and its dependencies (settings are read when the Definitions are
    built), prints no warning (the chosen beta backfill policy stays quiet), and `retail
    --help` works. The session's shared replay is run by this install (conftest `demo`)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "RETAIL_HOME": str(tmp_path)}
    python = wheel / "bin" / "python"
    result = subprocess.run([python, "-W", "default", "-c", WATCHED_IMPORT], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    seen = json.loads(result.stdout.splitlines()[-1])
    assert Path(seen["package"]).is_relative_to(wheel)
    assert seen["read"] == []
    # Opened outside the install, Python, this venv's dependencies and the system's data
    # (e.g. the checkout's docs, the home's files): none.
    allowed = [wheel, sys.base_prefix, sys.prefix, "/usr", "/etc", "/dev", "/proc"]
    outside = [path for path in seen["opened"] if path.startswith("/") and
               not any(Path(path).resolve().is_relative_to(p) for p in allowed)]  # fmt: skip
    assert outside == []
    shown = subprocess.run([wheel / "bin" / "retail", "--help"], capture_output=True, text=True,
                           timeout=60, cwd=tmp_path, env=env)  # fmt: skip
    assert shown.returncode == 0 and shown.stdout.startswith("usage: retail"), shown.stderr
    pom = subprocess.run([python, "-c", "from retail_assets.servers import jars; "
                          "jars.pinned('kafka-broker'); print(jars.POM)"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path, env=env)  # fmt: skip
    assert Path(pom.stdout.strip()).is_relative_to(wheel), pom.stderr[-2000:]  # jvm/ shipped


def test_hourly_job_covers_the_batch_assets_and_the_sensor_launches_it():
    job = defs().resolve_job_def("hourly_pipeline")
    assets = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert {"raw_files", "silver_transactions", "insight_top_products", "b2b_daily_csv"} <= assets
    sensor = defs().resolve_sensor_def("landing_sensor")
    assert sensor.job_name == "hourly_pipeline"


def test_kafka_credentials_are_read_when_a_run_starts_and_never_held(monkeypatch):
    """Under SASL the resource holds the variables' names; their values are read when the
    resource is initialized (a run's start), not when the definitions were built."""
    # A managed Kafka's address: no local broker is the target, so initializing starts none.
    monkeypatch.setenv("RETAIL_KAFKA_BOOTSTRAP", "kafka.example.invalid:9092")
    monkeypatch.setenv("RETAIL_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("RETAIL_KAFKA_TOPIC", "orders_logs")
    resource = kafka_resource(Settings.from_env())
    assert (resource.topic, resource.local_broker) == ("orders_logs", None)
    monkeypatch.setenv("RETAIL_KAFKA_USERNAME", "alice")
    monkeypatch.setenv("RETAIL_KAFKA_PASSWORD", "s3cret-at-run-start")
    assert "s3cret" not in repr(resource)
    config = resource.process_config_and_initialize().client_config()
    assert (config["sasl.username"], config["sasl.password"]) == ("alice", "s3cret-at-run-start")


def test_the_spark_resource_starts_the_server_its_fields_name(monkeypatch, tmp_path):
    """The embedded server is started from the resource's own fields: an environment changed
    after the definitions were built does not redirect it."""
    monkeypatch.setenv("RETAIL_HOME", str(tmp_path / "built"))
    resource = spark_resource(Settings.from_env())
    monkeypatch.setenv("RETAIL_HOME", str(tmp_path / "changed later"))
    started = []
    monkeypatch.setattr(LocalSparkServer, "up", lambda self: started.append(self.home))
    monkeypatch.setattr("retail_assets.resources.spark_session_from_config", lambda conf: conf)
    resource.setup_for_execution(build_init_resource_context())
    assert resource.spark_session == resource.spark_config  # made on first use
    assert started == [str(tmp_path / "built")]
