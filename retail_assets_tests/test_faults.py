"""Faults: a run killed with SIGKILL at any write leaves nothing half-visible, and running the
same command again gives exactly the tables and files of a run never interrupted; two runs
of the same hour launched together are serialized.

Each scenario runs `retail replay` (the user's command) as its own process on the session's
Spark server, with its own folders, databases and Dagster instance. RETAIL_FAILPOINT names
the point where the process kills itself (retail_assets/storage/failpoints.py): after a
write, before the step that makes it visible.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from pyspark.sql import SparkSession

from retail_assets.assets.retries import server_away
from retail_assets.dev.generator import generate
from retail_assets.resources import ClientRetries, SparkResource
from retail_assets.servers.spark_connect import LOG_FILES_KEPT, LocalSparkServer
from retail_assets.servers.supervisor import free_port
from retail_assets.settings import Settings
from retail_assets_tests.helpers import (
    EMPTY,
    FAILPOINT,
    REPLAY_START,
    contents,
    environment,
    exports,
    finish,
    replay,
)

pytestmark = pytest.mark.e2e

HOUR = REPLAY_START

# In pipeline order: each run of the chain gets past the points before its own.
KILL_POINTS = [
    "copy_in:sales_transactions_*",  # raw_files: a landed file copied, not yet renamed
    "publish:*_lake.silver_transactions",  # silver written, its partition not yet switched
    "publish:*_dwh.dim_customer_changes",  # a dimension's change records
    "publish:*_dwh.fact_branch_sales_hours",  # the facts
    "write_bytes:sales_agent_product_units_*",  # the B2B file, between temporary and rename
    "publish:*_dwh.insight_top_products",  # an insight snapshot (its step runs after the B2B's)
]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    (group,) = generate(tmp_path_factory.mktemp("fault_source"), groups=1, rows=200, seed=5)
    return group.parent


@pytest.fixture(scope="module")
def uninterrupted(spark, source, tmp_path_factory):
    """What every scenario must equal: the hour as two `retail replay` of it, launched together
    and never interrupted, leave it (tables, B2B files, environment). The writer lock runs them
    one after the other (the test below), so the second is a re-run of a finished hour; were
    they not serialized, the scenarios' runs would not equal these tables."""
    env = environment(tmp_path_factory.mktemp("uninterrupted"), "f_base")
    first, second = replay(env, source), replay(env, source)
    for code, output in [finish(first), finish(second)]:  # both ended before any assert
        assert code == 0, output[-3000:]
    return contents(spark, env), exports(env), env


def reexecute(env: dict, failpoint: str | None = None) -> tuple[int, str]:
    """reexecute.py (the UI's "re-execute from failure") in the scenario's environment, as its
    own process; RETAIL_FAILPOINT arms a kill in it as in a replay."""
    script = Path(__file__).with_name("reexecute.py")
    env = {**env, FAILPOINT: failpoint} if failpoint else env
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_killed_at_every_write_then_re_executed_equals_an_uninterrupted_run(
    spark, source, uninterrupted, tmp_path
):
    """Killed at each write in turn: `retail replay` at the first, then each killed run
    re-executed from its failure (the UI's way: the killed run is failed as the orphaned_runs
    sensor does, its finished steps are skipped) with the next point armed, so the hour runs
    about once in all. Between a kill and what follows, every table's hour is absent or whole.
    The last re-execution, unarmed, gives the uninterrupted run's tables and files."""
    tables, files, _ = uninterrupted
    assert len(tables) > 15 and len(files) == 1  # the scenario really builds the warehouse
    env = environment(tmp_path, "f_kill")
    for index, point in enumerate(KILL_POINTS):
        code, output = reexecute(env, point) if index else finish(replay(env, source, point))
        assert code == -9, f"{point}: the run was not killed there (rc {code})\n{output[-2000:]}"
        # Between the kill and what follows: every table's hour is absent or whole.
        seen = contents(spark, env)
        partial = {name for name, digest in seen.items() if digest not in (EMPTY, tables[name])}
        assert not partial, f"after a kill at {point}, half-written: {sorted(partial)}"
        visible = {n: data for n, data in exports(env).items() if not Path(n).name.startswith(".")}
        assert all(files.get(name) == data for name, data in visible.items()), point
    code, output = reexecute(env)
    assert code == 0, output[-3000:]
    assert contents(spark, env) == tables
    assert exports(env) == files  # and no temporary file left behind
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    runs = instance.get_runs()  # newest first
    assert [run.status for run in runs] == [DagsterRunStatus.SUCCESS] + [
        DagsterRunStatus.FAILURE
    ] * len(KILL_POINTS)
    started = {
        r.step_key for r in instance.all_logs(runs[0].run_id, of_type=DagsterEventType.STEP_START)
    }
    assert started == {"marketing_insights"}, started  # only the step the last kill cut short


def test_a_killed_replay_run_again_keeps_its_hour_and_equals_an_uninterrupted_run(
    spark, source, uninterrupted, tmp_path
):
    """`retail demo` takes its start from the clock: run again after a crash on a later day,
    it passes a later start. A group the crashed run landed, not yet ingested, is run in the
    hour it landed in (its hour's raw copy and manifest), not in the new start's hour. Killed
    there too, the same command again gives the uninterrupted run's tables and files and fails
    the run the kill left STARTED; once more, it finds the hour done and runs nothing."""
    env = environment(tmp_path, "f_moved")
    code, output = finish(replay(env, source, failpoint="copy_in:sales_transactions_*"))
    assert code == -9, output[-2000:]
    moved = "2025-09-02-22:00"
    code, output = finish(replay(env, source, "publish:*_lake.silver_transactions", moved))
    assert code == -9, output[-2000:]
    assert f"group1 landed before, in {HOUR}; running that hour" in output
    manifest = Path(env["RETAIL_LAKE_ROOT"], "raw", "ingest_date=2025-09-01", "ingest_hour=22",
                    "_manifest.json")  # fmt: skip
    assert [group["group"] for group in json.loads(manifest.read_text())["groups"]] == ["group1"]
    code, output = finish(replay(env, source, start=moved))
    assert code == 0, output[-3000:]
    assert contents(spark, env) == uninterrupted[0]
    assert exports(env) == uninterrupted[1]
    runs = DagsterInstance.from_config(env["DAGSTER_HOME"]).get_runs()
    assert [run.tags["dagster/partition"] for run in runs] == [HOUR] * 3
    assert [run.status.value for run in runs] == ["SUCCESS", "FAILURE", "FAILURE"]
    code, output = finish(replay(env, source, start=moved))
    assert code == 0 and f"{HOUR}  group1: done by run {runs[0].run_id[:8]}" in output, output
    assert len(DagsterInstance.from_config(env["DAGSTER_HOME"]).get_runs()) == len(runs)


def test_two_runs_of_the_same_hour_at_once_are_serialized(uninterrupted):
    env = uninterrupted[2]
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    spans = []  # from a run's first step to its last: the lock is taken before the first
    for run in instance.get_runs():
        steps = [r.timestamp for r in instance.all_logs(run.run_id)
                 if r.dagster_event_type in (DagsterEventType.STEP_START,
                                             DagsterEventType.STEP_SUCCESS)]  # fmt: skip
        spans.append((min(steps), max(steps)))
    (a, b) = sorted(spans)
    assert a[1] <= b[0], f"the two runs overlapped: {spans}"
    waited = [
        r.user_message
        for run in instance.get_runs()
        for r in instance.all_logs(run.run_id)
        if "waiting for the writer lock" in (r.user_message or "")
    ]
    assert waited, "neither run waited for the other"


@pytest.fixture
def own_server(tmp_path):
    """A Spark server of the scenario's own (a second JVM, so the session's stays up) on a home
    and Derby metastore of its own: its settings and the server, stopped by its PID at the
    end."""
    env = {**os.environ, "RETAIL_HOME": str(tmp_path / "home"),
           "RETAIL_SPARK_PORT": str(free_port()), "RETAIL_METASTORE_PORT": str(free_port()),
           "RETAIL_SPARK_DRIVER_MEMORY": "1g"}  # fmt: skip
    settings = Settings.from_env(env)
    server = LocalSparkServer.of(settings).model_copy(update={"log_roll_kb": 16})  # rolls soon
    try:
        yield settings, server
    finally:
        server.down()


def test_a_metastore_killed_mid_write_opens_whole_on_the_next_start(own_server, tmp_path):
    """Derby under a SIGKILLed metastore service (the scenario's own): metastore changes
    were in flight (partitions being added back to back); the next start opens it (the
    killed JVM's lock files are stale, not held), every change it acknowledged is there, at
    most the one in flight besides, and the Spark server, left running, takes writes again.
    Its log meanwhile rolled over (at 16 KB here) and kept at most LOG_FILES_KEPT old files."""
    settings, server = own_server
    table, location = "derby_kill.t", tmp_path / "t"
    stop = threading.Event()
    try:
        server.up()
        session = SparkSession.builder.remote(settings.spark_remote).create()  # on this server
        session.client.set_retry_policies([ClientRetries(server)])  # the resource's: no wait
        session.sql("CREATE DATABASE derby_kill")
        session.sql(f"CREATE TABLE {table} (n int, p int) USING parquet PARTITIONED BY (p) "
                    f"LOCATION '{location}'")  # fmt: skip
        session.sql(f"INSERT INTO {table} VALUES (7, 0)")
        added, failure = [], []

        def add_partitions():
            try:
                for p in range(1, 10_000):
                    if stop.is_set():  # the test ended first: never left running
                        return
                    session.sql(f"ALTER TABLE {table} ADD PARTITION (p={p})")
                    added.append(p)
            except Exception as error:  # the kill; the client gives up at once
                failure.append(error)

        writer = threading.Thread(target=add_partitions)
        writer.start()
        deadline = time.monotonic() + 120
        while len(added) < 20:
            assert writer.is_alive() and time.monotonic() < deadline, failure
            time.sleep(0.01)
        os.kill(server.metastore.status()["pid"], signal.SIGKILL)
        writer.join(timeout=60)
        assert not writer.is_alive() and failure, "the writer did not see the server die"
        assert (Path(settings.home) / "metastore" / "metastore_db" / "db.lck").exists()

        assert server_away(failure[0]) is SparkResource  # a step would retry, not fail
        server.up()  # the same Derby, its lock files left by the killed JVM
        session = SparkSession.builder.remote(settings.spark_remote).create()
        listed = sorted(int(row[0].split("=")[1]) for row in
                        session.sql(f"SHOW PARTITIONS {table}").collect())  # fmt: skip
        assert listed[: len(added) + 1] == [0, *added]  # every acknowledged change, in order
        assert len(listed) - 1 - len(added) in (0, 1)  # and at most the one in flight
        session.sql(f"ALTER TABLE {table} ADD PARTITION (p=100000)")
        assert session.table(table).where("p = 0").collect()[0].n == 7
        session.stop()
        log = server.server.log_file
        rolled = sorted(log.parent.glob(f"{log.name}.*"))
        assert rolled and len(rolled) <= LOG_FILES_KEPT, rolled
    finally:
        stop.set()
