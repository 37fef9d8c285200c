"""The cluster profile (docs/profiles.md) end to end: a Spark standalone master with two
workers, the Connect server submitted to it, the Hive metastore and Dagster's storage on
PostgreSQL, all brought up by `retail stack up` and used by the same commands as the embedded
profile. Three hours and a streaming pass run on it, with the Spark Connect server and the
broker killed between hours; the warehouse and the B2B files must equal the embedded
profile's on the same input.

PostgreSQL is installed when missing (as root, as in CI), never skipped.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
from pyspark.sql import SparkSession

from retail_assets.dev.generator import generate
from retail_assets.servers import stack
from retail_assets.servers.kafka_broker import LocalBroker
from retail_assets.servers.postgres import bin_dir
from retail_assets.servers.spark_connect import PG_JDBC_JAR, LocalSparkServer
from retail_assets.servers.supervisor import (
    ServiceError,
    alive,
    children,
    free_port,
    port_is_free,
)
from retail_assets.settings import PG_PASSWORD_VARIABLE, SECRETS_FILE, Settings
from retail_assets_tests.helpers import (
    REPLAY_START,
    contents,
    environment,
    exports,
    finish,
    install_debian_packages,
    replay,
)

pytestmark = pytest.mark.cluster

EVENTS = 500


def retail(env: dict, *args: str, timeout: float = 900) -> str:
    done = subprocess.run([sys.executable, "-m", "retail_assets.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert done.returncode == 0, f"retail {' '.join(args)}:\n{(done.stdout + done.stderr)[-3000:]}"
    return done.stdout


def port_block() -> int:
    """A master port whose workers' ports (+1, +2) and web ports (+1000…) are free too."""
    while True:
        port = free_port()
        wanted = [port + step for base in (0, 1000) for step in range(3)]
        if wanted[-1] < 65536 and all(port_is_free("127.0.0.1", p) for p in wanted):
            return port


def stack_pids(settings: Settings) -> list[int]:
    """Every process of the stack: the servers and what they started (executors, backends)."""
    pids = [server.server.pid() for server in stack.servers(settings)]
    return [p for pid in pids if pid for p in (pid, *children(pid))]


def server_installed() -> bool:
    try:
        return bin_dir().exists()
    except ServiceError:
        return False


def no_system_cluster() -> None:
    """Installing Debian's server must not make (and start) a system cluster: the profile
    runs its own, and the test leaves no process it did not start by PID."""
    settings = Path("/etc/postgresql-common/createcluster.d")
    if os.geteuid() == 0:
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "retail-no-main-cluster.conf").write_text("create_main_cluster = false\n")


@pytest.fixture(scope="module")
def cluster():
    """The profile's servers on a home of their own, stopped by their PIDs at the end."""
    if not (server_installed() and Path(PG_JDBC_JAR).exists()):
        no_system_cluster()
        install_debian_packages(["postgresql", "libpostgresql-jdbc-java"],
                                "the cluster profile's test needs PostgreSQL")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="retail_cluster_"))
    root.chmod(0o755)  # as root, PostgreSQL runs as `postgres`, which must reach its folder
    env = {
        **environment(root, "c_cluster"),
        "RETAIL_HOME": str(root / "home"),
        "RETAIL_PROFILE": "cluster",
        "RETAIL_SPARK_PORT": str(free_port()),
        "RETAIL_KAFKA_PORT": str(free_port()),
        "RETAIL_PG_PORT": str(free_port()),
        "RETAIL_CLUSTER_PORT": str(port_block()),
    }
    env.pop(PG_PASSWORD_VARIABLE, None)  # `stack up` makes the home's own
    try:
        retail(env, "stack", "up")
        yield env
    finally:
        subprocess.run([sys.executable, "-m", "retail_assets.cli", "stack", "down"], env=env,
                       capture_output=True, timeout=300)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    groups = generate(tmp_path_factory.mktemp("cluster_source"), groups=3, rows=300, seed=11)
    return groups[0].parent, [group.name for group in groups]


def kill(server) -> None:
    """SIGKILL a server of the stack by its PID, as a crash would."""
    pid = server.server.pid()
    assert pid is not None, f"{server.name} was not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while alive(pid):
        assert time.monotonic() < deadline, f"{server.name} outlived SIGKILL"
        time.sleep(0.1)


def app_events(env: dict) -> list[dict]:
    query = f"SELECT kafka_partition, kafka_offset FROM {env['RETAIL_DWH_DB']}.app_events"
    return json.loads(retail(env, "sql", query, "--format", "json"))


def test_three_hours_and_a_stream_through_kills_equal_the_embedded_profile(
    spark, cluster, source, tmp_path
):
    folder, groups = source
    embedded = environment(tmp_path / "embedded", "c_embedded")
    code, output = finish(replay(embedded, folder))  # the session's embedded server
    assert code == 0, output[-3000:]

    settings = Settings.from_env(cluster)
    start = datetime.strptime(REPLAY_START, "%Y-%m-%d-%H:%M")
    for index, group in enumerate(groups):
        hour = f"{start + timedelta(hours=index):%Y-%m-%d-%H:00}"
        retail(cluster, "replay", str(folder), "--start", hour, "--groups", group)
        if index == 0:
            retail(cluster, "produce", "--count", str(EVENTS))
            retail(cluster, "stream")
            landed = app_events(cluster)
            assert len(landed) == EVENTS
            # Crashes between hours: the next replay's run starts the Connect server again
            # (its Hive metastore is PostgreSQL's), the next stream pass the broker.
            kill(LocalSparkServer.of(settings))
            kill(LocalBroker.of(settings))
        if index == 1:
            retail(cluster, "stream")  # on a new broker (Tansu keeps topics in memory)
            assert app_events(cluster) == landed  # nothing lost, nothing doubled

    session = SparkSession.builder.remote(settings.spark_remote).create()
    try:
        on_cluster = contents(session, cluster)
    finally:
        session.stop()
    on_embedded = contents(spark, embedded)
    streamed = set(on_cluster) - set(on_embedded)  # only the cluster run streams
    assert on_embedded and streamed and all(name.startswith("app_event") for name in streamed)
    assert {name: on_cluster[name] for name in on_embedded} == on_embedded
    assert exports(cluster) == exports(embedded) != {}


def test_the_executors_ran_the_work_and_postgresql_holds_the_state(cluster):
    settings = Settings.from_env(cluster)
    status = json.loads(retail(cluster, "stack", "status"))
    assert status["running"] and status["cluster"]["alive_workers"] == 2
    assert status["cluster"]["applications"][0]["cores"] == 2  # one executor per worker
    for worker in ("spark-worker-1", "spark-worker-2"):
        logs = (settings.home / "spark-cluster" / worker).glob("app-*/*/stderr")
        assert any("Finished task" in log.read_text() for log in logs), worker

    secrets = (settings.home / SECRETS_FILE).read_text().split()
    password = dict(line.split("=", 1) for line in secrets)[PG_PASSWORD_VARIABLE]
    logs = "".join(log.read_text(errors="replace") for log in settings.home.rglob("*.log"))
    assert password not in logs  # nor in any server's log

    def query(database: str, sql: str) -> list[tuple]:
        connection = psycopg2.connect(host="127.0.0.1", port=settings.pg_port, user="retail",
                                      password=password, dbname=database)  # fmt: skip
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        finally:
            connection.close()

    tables = query(
        "metastore",
        """SELECT t."TBL_NAME" FROM "TBLS" t JOIN "DBS" d
                                   ON t."DB_ID" = d."DB_ID" WHERE d."NAME" = 'c_cluster_dwh'""",
    )
    assert {"fact_branch_sales_hours", "app_events"} <= {name for (name,) in tables}
    runs = query("dagster", "SELECT status, count(*) FROM runs GROUP BY status")
    assert dict(runs).get("SUCCESS", 0) >= 5 and "FAILURE" not in dict(runs)  # 3 hours, 2 passes


def test_stack_down_leaves_no_process_behind(cluster):
    settings = Settings.from_env(cluster)
    pids = stack_pids(settings)
    assert len(pids) >= 8  # postgres, master, 2 workers, 2 executors, Connect server, broker
    stopped = json.loads(retail(cluster, "stack", "down"))["stopped"]
    assert len(stopped) == 6
    assert [pid for pid in pids if alive(pid)] == []
