"""One Spark Connect server and one RETAIL_HOME per test session, stopped even on failure.

The environment is set before any retail_assets module is imported: settings (partitions,
resources) are read from it at import time, as in production.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from retail_assets.servers.supervisor import free_port

_HOME = Path(tempfile.mkdtemp(prefix="retail_test_home_"))
os.environ.update(
    RETAIL_HOME=str(_HOME),
    RETAIL_SPARK_PORT=str(free_port()),
    RETAIL_SPARK_DRIVER_MEMORY="2g",
    RETAIL_KAFKA_PORT=str(free_port()),
    DAGSTER_HOME=str(_HOME / "dagster"),
    RETAIL_PARTITIONS_START="2024-01-01-00:00",  # the tests replay fixed hours of 2025
)
for name in (
    "RETAIL_LANDING_DIR",
    "RETAIL_LAKE_ROOT",
    "RETAIL_EXPORTS_DIR",
    "RETAIL_SPARK_REMOTE",
    "RETAIL_SPARK_MASTER",
    "RETAIL_WAREHOUSE_DIR",
    "RETAIL_KAFKA_BOOTSTRAP",
    "RETAIL_KAFKA_TOPIC",
    "RETAIL_KAFKA_SECURITY_PROTOCOL",
    "RETAIL_KAFKA_USERNAME",
    "RETAIL_KAFKA_PASSWORD",
):
    os.environ.pop(name, None)

from retail_assets.servers.kafka_broker import LocalBroker  # noqa: E402
from retail_assets.servers.spark_connect import LocalSparkServer  # noqa: E402
from retail_assets.settings import Settings, prepare_dagster_home  # noqa: E402

prepare_dagster_home(Settings.from_env())


@pytest.fixture(scope="session", autouse=True)
def settings() -> Settings:
    """The session's settings; at the end its servers are stopped by their PIDs, also those a
    `retail` subprocess started on the session's home when no test asked for them."""
    settings = Settings.from_env()
    try:
        yield settings
    finally:
        LocalSparkServer.of(settings).down()
        LocalBroker.of(settings).down()
        shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def spark(settings):
    """The session's Spark server (started once, stopped by its PID at the end)."""
    from retail_assets.resources import spark_session

    try:
        session = spark_session(settings)
        yield session
    finally:
        LocalSparkServer.of(settings).down()


@pytest.fixture(scope="session")
def kafka(settings):
    """The session's Kafka broker (Tansu; started once, stopped by its PID at the end)."""
    broker = LocalBroker.of(settings)
    try:
        broker.up()
        yield settings.kafka_bootstrap
    finally:
        broker.down()


@pytest.fixture(scope="session")
def warehouse_source(tmp_path_factory):
    from retail_assets.dev.generator import generate
    from retail_assets_tests.helpers import WAREHOUSE_GROUPS

    return generate(
        tmp_path_factory.mktemp("wh_source"), groups=WAREHOUSE_GROUPS, rows=150, seed=21
    )


@pytest.fixture(scope="session")
def warehouse(spark, settings, warehouse_source, tmp_path_factory):
    """The shared replay: each source group landed an hour apart and run hour by hour as
    Dagster runs it (every check asserted); (storage, partition keys)."""
    from datetime import timedelta

    from retail_assets.dev.replay import land
    from retail_assets.storage.hours import key_of
    from retail_assets_tests.helpers import WAREHOUSE_START, make_storage, run

    storage = make_storage(tmp_path_factory.mktemp("wh"), "wh")
    keys = []
    for index, group in enumerate(warehouse_source):
        arrival = WAREHOUSE_START + timedelta(hours=index)
        land(group, storage.landing_dir_path, arrival)
        keys.append(key_of(arrival))
    run(settings, storage, keys)
    return storage, keys
