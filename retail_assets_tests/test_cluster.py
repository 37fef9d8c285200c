"""The cluster profile (docs/profiles.md) end to end: a Spark standalone master with two
workers, the Connect server submitted to it, the Hive metastore and Dagster's storage on
PostgreSQL, all brought up by `retail stack up` and used by the same commands as the embedded
profile. The session's shared replay (conftest's `demo`: three hours on the embedded profile)
runs again on it, with a streaming pass, the Spark Connect server killed in the middle of the
first hour's run and the broker after it; the warehouse and the B2B files must equal the
embedded profile's.

PostgreSQL is installed when missing (as root, as in CI), never skipped.
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest
from pyspark.sql import SparkSession

from retail_assets.dev.replay import land
from retail_assets.servers import stack
from retail_assets.servers.kafka_broker import LocalBroker
from retail_assets.servers.spark_connect import LocalSparkServer
from retail_assets.servers.supervisor import (
    ServiceError,
    alive,
    children,
    free_port,
    port_is_free,
)
from retail_assets.settings import (
    KAFKA_BROKER_PASSWORD_VARIABLE,
    KAFKA_PASSWORD_VARIABLE,
    KAFKA_USER_VARIABLE,
    PG_PASSWORD_VARIABLE,
    SECRETS_FILE,
    Settings,
)
from retail_assets.storage.failpoints import PAUSE_ENV
from retail_assets.storage.hours import key_of
from retail_assets.streaming.events import events, produce
from retail_assets_tests.helpers import (
    WAREHOUSE_START,
    contents,
    demo_environment,
    environment,
    exports,
    finish,
    replay,
    wait_for_pause,
)
from retail_assets_tests.helpers import retail as run_program

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.cluster,
    pytest.mark.debian("postgresql"),  # installed when missing
]
DEMO_START = f"{WAREHOUSE_START:%Y-%m-%d-%H}:00"

EVENTS = 500


def retail(env: dict, *args: str, program: str = "retail_assets.cli") -> str:
    """helpers.retail in the cluster's environment; its stdout, once it succeeded."""
    done = run_program(*args, env=env, program=program)
    assert done.returncode == 0, (
        f"{program} {' '.join(args)}:\n{(done.stdout + done.stderr)[-3000:]}"
    )
    return done.stdout


def dg(env: dict, *args: str) -> str:
    """Dagster's own command line (`dg`, the project's, from the checkout), as CI drives the
    project: it reads the instance before any project code runs, so the home's secrets file
    is exported first (docs/profiles.md). It succeeds and warns of nothing."""
    done = subprocess.run([str(Path(sys.executable).with_name("dg")), *args],
                          env={**env, **home_secrets(Path(env["RETAIL_HOME"]))},
                          cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "Warning" not in output, f"dg {args}:\n{output[-3000:]}"
    return done.stdout


def home_secrets(home: Path) -> dict[str, str]:
    """The variables of the home's secrets file, which `stack up` made."""
    text = (home / SECRETS_FILE).read_text(encoding="utf-8")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def port_block() -> int:
    """A master port whose workers' ports (+1, +2) and web ports (+1000…) are free too."""
    while True:
        port = free_port()
        wanted = [port + base + step for base in (0, 1000) for step in range(3)]
        if wanted[-1] < 65536 and all(port_is_free("127.0.0.1", p) for p in wanted):
            return port


def stack_pids(settings: Settings) -> list[int]:
    """Every process of the stack: the servers and what they started (executors, backends)."""
    pids = [server.server.pid() for server in stack.servers(settings)]
    return [p for pid in pids if pid for p in (pid, *children(pid))]


@pytest.fixture(scope="module")
def cluster(debian_packages):
    """The profile's servers on a home of their own, stopped by their PIDs at the end."""
    root = Path(tempfile.mkdtemp(prefix="retail_cluster_"))
    root.chmod(0o755)  # as root, PostgreSQL runs as `postgres`, which must reach its folder
    env = {
        **environment(root, "c_cluster"),
        "RETAIL_HOME": str(root / "home"),
        "RETAIL_PROFILE": "cluster",
        "RETAIL_SPARK_PORT": str(free_port()),
        "RETAIL_METASTORE_PORT": str(free_port()),
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


def test_the_shared_replay_and_a_stream_through_kills_equal_the_embedded_profile(
    spark, settings, demo, warehouse_source, cluster, tmp_path
):
    """The shared replay's groups on the cluster, at the same hours. The first group by
    `retail replay`, its Connect server SIGKILLed while the run is paused after writing silver
    (early, so that only the second server's executors warm up on the hour): the step fails
    naming the server and the recovery command, and its retry policy runs it again on a server
    the resource started again (submitted to the cluster, its Hive metastore PostgreSQL's). Then
    events produced, then the broker SIGKILLed; the other hours as one single-run backfill from
    `dg launch --job hourly_pipeline --partition-range`; the broker started again and a stream
    pass that lands every event once. Equal
    to the embedded replay, hour by hour, so this also proves a single-run backfill equal to
    hourly runs."""
    first, *others = warehouse_source
    on = Settings.from_env(cluster)
    server, paused = LocalSparkServer.of(on), tmp_path / "paused"
    env = {**cluster, PAUSE_ENV: str(paused)}
    silver = "publish:*_lake.silver_transactions"
    process = replay(env, first.parent, silver, DEMO_START, "--groups", first.name)
    try:
        wait_for_pause(paused, process)
        killed = server.server.pid()
        kill(server)
        paused.unlink()
        code, output = finish(process)
        assert code == 0, output[-3000:]
    finally:
        finish(process)
    # The console tells it in the project's lines: the server gone, the retry, then "ok".
    (retry,) = [line for line in output.splitlines() if "retrying the step" in line]
    assert on.spark_remote in retry and "retrying the step now (attempt 2 of 4)" in retry, retry
    json_lines = [line for line in output.splitlines() if '"logger": ' in line]
    assert not json_lines, json_lines[:3]  # pyspark's JSON log lines: in their file
    assert server.server.pid() not in (None, killed)  # the retry started a new server
    (retried,) = query(on, "dagster", "SELECT event FROM event_logs "
                                      "WHERE dagster_event_type = 'STEP_UP_FOR_RETRY'")  # fmt: skip
    assert "retail spark up" in retried[0] and on.spark_remote in retried[0], retried[0]

    # Events the broker acknowledged (acks=all) outlive its kill -9: none is read before it.
    retail(cluster, "produce", "--count", str(EVENTS))
    kill(LocalBroker.of(on))
    hours = [WAREHOUSE_START + timedelta(hours=n) for n in range(1, len(others) + 1)]
    for group, arrival in zip(others, hours, strict=True):
        land(group, Path(cluster["RETAIL_LANDING_DIR"]), arrival)
    dg(cluster, "launch", "--job", "hourly_pipeline",
       "--partition-range", f"{key_of(hours[0])}...{key_of(hours[-1])}")  # fmt: skip
    retail(cluster, "kafka", "up")
    retail(cluster, "stream")
    landed = app_events(cluster)
    assert len(landed) == EVENTS  # nothing lost, nothing doubled
    assert len({(row["kafka_partition"], row["kafka_offset"]) for row in landed}) == EVENTS

    session = SparkSession.builder.remote(on.spark_remote).create()
    try:
        on_cluster = contents(session, cluster)
    finally:
        session.stop()
    embedded = demo_environment(settings)
    on_embedded = contents(spark, embedded)
    streamed = set(on_cluster) - set(on_embedded)  # only the cluster run streams
    assert on_embedded and streamed and all(name.startswith("app_event") for name in streamed)
    assert {name: on_cluster[name] for name in on_embedded} == on_embedded
    assert exports(cluster) == exports(embedded) != {}


def query(settings: Settings, database: str, sql: str) -> list[tuple]:
    """Rows of a query on the stack's PostgreSQL, as its own user."""
    password = home_secrets(settings.home)[PG_PASSWORD_VARIABLE]
    connection = psycopg2.connect(host="127.0.0.1", port=settings.pg_port, user="retail",
                                  password=password, dbname=database)  # fmt: skip
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def test_the_executors_ran_the_work_and_postgresql_holds_the_state(cluster):
    settings = Settings.from_env(cluster)
    status = json.loads(retail(cluster, "stack", "status"))
    assert status["running"] and status["cluster"]["alive_workers"] == 2
    assert status["cluster"]["applications"][0]["cores"] == 2  # one executor per worker
    for worker in ("spark-worker-1", "spark-worker-2"):
        logs = (settings.home / "spark-cluster" / worker).glob("app-*/*/stderr")
        assert any("Finished task" in log.read_text() for log in logs), worker

    secrets = home_secrets(settings.home)
    passwords = [secrets[name] for name in (PG_PASSWORD_VARIABLE, KAFKA_PASSWORD_VARIABLE,
                                            KAFKA_BROKER_PASSWORD_VARIABLE)]  # fmt: skip
    # In no file of the home but its secrets file (logs, configuration, data, run records),
    # on no command line of the stack, in no Spark setting, in no Dagster event.
    files = [path for path in settings.home.rglob("*")
             if path.is_file() and path.name != SECRETS_FILE]  # fmt: skip
    cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in stack_pids(settings)]
    session = SparkSession.builder.remote(settings.spark_remote).create()
    try:
        spark_settings = json.dumps(session.conf.getAll)
    finally:
        session.stop()
    events = query(settings, "dagster", "SELECT event FROM event_logs")
    for password in passwords:
        assert not [path for path in files if password.encode() in path.read_bytes()]
        assert not [line for line in cmdlines if password.encode() in line]
        assert password not in spark_settings
        assert not [event for (event,) in events if password in event]

    tables = query(
        settings,
        "metastore",
        """SELECT t."TBL_NAME" FROM "TBLS" t JOIN "DBS" d
                                   ON t."DB_ID" = d."DB_ID" WHERE d."NAME" = 'c_cluster_dwh'""",
    )
    assert {"fact_branch_sales_hours", "app_events"} <= {name for (name,) in tables}
    runs = query(settings, "dagster", "SELECT status, count(*) FROM runs GROUP BY status")
    assert dict(runs).get("SUCCESS", 0) >= 3 and "FAILURE" not in dict(runs)  # 2 batch, 1 pass


def test_the_broker_takes_only_sasl_ssl_clients_with_the_right_password(cluster):
    """The profile's broker: TLS and SCRAM-SHA-512 only. A client without credentials, with a
    wrong password, or without the CA is refused, each with librdkafka's own reason."""
    settings = Settings.from_env(cluster)
    broker, secrets = LocalBroker.of(settings), home_secrets(settings.home)
    tls = broker.certificates
    for key in (tls.ca_key, tls.keystore):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    allowed = {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_SSL",
               "sasl.mechanisms": "SCRAM-SHA-512", "ssl.ca.location": str(tls.ca),
               "sasl.username": secrets[KAFKA_USER_VARIABLE],
               "sasl.password": secrets[KAFKA_PASSWORD_VARIABLE]}  # fmt: skip
    refused = {
        "only TLS clients: check security.protocol": {"bootstrap.servers": broker.bootstrap},
        "Authentication failed": {**allowed, "sasl.password": "not-the-password"},
        "certificate verify failed": {k: v for k, v in allowed.items() if k != "ssl.ca.location"},
    }
    for reason, config in refused.items():
        with pytest.raises(ServiceError, match=reason):
            produce(config, "t_refused", events(1, seed=1))  # told at once, not at 10 s
    assert produce(allowed, "t_allowed", events(3, seed=1))["delivered"] == 3


def test_stack_down_leaves_no_process_behind(cluster):
    settings = Settings.from_env(cluster)
    pids = stack_pids(settings)
    # postgres, master, 2 workers, 2 executors, metastore, Connect server, broker
    assert len(pids) >= 9
    stopped = json.loads(retail(cluster, "stack", "down"))["stopped"]
    assert len(stopped) == 7
    assert [pid for pid in pids if alive(pid)] == []
