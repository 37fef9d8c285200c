"""One Spark Connect server and one RETAIL_HOME per test session, stopped even on failure.

The environment is set before any retail_assets module is imported, so every process the
tests start (and every Definitions they build) reads the session's settings.
"""

import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from retail_assets.servers.supervisor import free_port

_HOME = Path(tempfile.mkdtemp(prefix="retail_test_home_"))
os.environ.update(
    RETAIL_HOME=str(_HOME),
    RETAIL_SPARK_PORT=str(free_port()),
    RETAIL_METASTORE_PORT=str(free_port()),
    RETAIL_SPARK_DRIVER_MEMORY="2g",
    RETAIL_KAFKA_PORT=str(free_port()),
    DAGSTER_HOME=str(_HOME / "dagster"),
    RETAIL_PARTITIONS_START="2024-01-01-00:00",  # the tests replay fixed hours of 2025
    # The pinned jars, fetched once into the checkout's git-ignored jvm/jars and shared by
    # every home the tests make (mvn copies them from ~/.m2 after the first download).
    RETAIL_JARS_DIR=str(Path(__file__).resolve().parents[1] / "jvm" / "jars"),
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
    "RETAIL_KAFKA_SASL_MECHANISM",
    "RETAIL_KAFKA_SSL_CA_LOCATION",
    "RETAIL_KAFKA_USERNAME",
    "RETAIL_KAFKA_PASSWORD",
    "RETAIL_KAFKA_BROKER_PASSWORD",
):
    os.environ.pop(name, None)

from retail_assets.servers.kafka_broker import LocalBroker  # noqa: E402
from retail_assets.servers.spark_connect import LocalSparkServer  # noqa: E402
from retail_assets.settings import Settings, prepare_dagster_home  # noqa: E402

prepare_dagster_home(Settings.from_env())


class KilledServers(logging.Handler):
    """Keeps the warning of a session server killed after its stop timeout with the thread
    dump supervisor.stop had it write to its log: the home and its logs are gone at the end."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record):
        log_file = getattr(record, "log_file", None)  # on supervisor's kill warning
        if log_file is None or not log_file.is_relative_to(_HOME):  # or a test's own server
            return
        text = log_file.read_text(errors="replace") if log_file.exists() else ""
        dump = text[text.rfind("Full thread dump") :] if "Full thread dump" in text else ""
        self.reports.append("\n".join([record.getMessage(), dump]))


# SIGTERM (a CI timeout, a `kill`) ends the session as Ctrl-C does, so pytest tears its
# fixtures down and their servers are stopped by PID; on Python's default the session would exit
# on the spot and leave them running. SIGINT gets Ctrl-C's handler too: a background job starts
# with it ignored, and each in-process Dagster run, when it ends, gives SIGTERM SIGINT's handler.
for _signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_signum, signal.default_int_handler)

_KILLED = KilledServers()
logging.getLogger("retail_assets.servers.supervisor").addHandler(_KILLED)


def pytest_sessionfinish(session):
    """A session server that had to be killed fails the run: each stops on SIGTERM in a
    second, and one that does not is a defect (it cost every run 60 s once)."""
    if _KILLED.reports:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    for report in _KILLED.reports:
        terminalreporter.section("a server killed at its stop timeout")
        terminalreporter.write_line(report)


def pytest_unconfigure(config):
    """The session's home goes at the very end, also when no test ran (--collect-only)."""
    shutil.rmtree(_HOME, ignore_errors=True)


def pytest_collection_modifyitems(items):
    """A test that reads the shared replay is end to end: `-m "not e2e"` never starts it."""
    for item in items:
        if "demo" in item.fixturenames:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def settings() -> Settings:
    """The session's settings; at the end its servers are stopped by their PIDs, also those a
    `retail` subprocess started on the session's home when no test asked for them (the home
    itself goes in pytest_unconfigure)."""
    settings = Settings.from_env()
    try:
        yield settings
    finally:
        LocalSparkServer.of(settings).down()
        LocalBroker.of(settings).down()


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
    """The session's Kafka broker (Apache Kafka; started once, stopped by its PID at the end)."""
    broker = LocalBroker.of(settings)
    try:
        broker.up()
        yield settings.kafka_bootstrap
    finally:
        broker.down()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The package as a deployment installs it: a wheel built from a copy of this checkout's
    files, installed (not editable) into a fresh venv whose dependencies are this venv's (a
    .pth file names its site-packages; nothing is downloaded). The venv's folder, outside the
    checkout: commands run from there do not see the checkout."""
    import site
    import sys

    root = tmp_path_factory.mktemp("wheel")
    source, built, venv = root / "source", root / "built", root / "venv"
    leave_out = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "bench")
    shutil.copytree(Path(__file__).resolve().parents[1], source, ignore=leave_out)
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", built, source],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    (deps,) = [Path(p) for p in site.getsitepackages() if Path(p, "dagster").exists()]
    (venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
     / "project_dependencies.pth").write_text(f"{deps}\n")  # fmt: skip
    (package,) = built.glob("retail_assets-*.whl")
    subprocess.run([venv / "bin" / "python", "-m", "pip", "-q", "install", "--no-deps",
                    "--ignore-installed", package], check=True, capture_output=True)  # fmt: skip
    return venv


@pytest.fixture(scope="session")
def demo(spark, settings, wheel) -> str:
    """The session's one shared replay: `retail demo` on the session's home and default
    databases, three groups an hour apart from 22:00 (two ingest days; group2 re-delivers
    group1), every check printed. Run by the installed wheel's `retail`, from outside the
    checkout: its hours are also the proof that an installed package runs. Many modules read
    it (test_cli, test_catalog, test_warehouse, test_outputs, test_cluster); its stdout."""
    from retail_assets_tests.helpers import DEMO_ARGS, retail

    result = retail("demo", *DEMO_ARGS, venv=wheel)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="session")
def warehouse_source(demo, settings) -> list[Path]:
    """The shared replay's source groups, in arrival order."""
    from retail_assets.storage.landing import scan_landing

    return [group.path for group in scan_landing(settings.home / "demo_source")]


@pytest.fixture(scope="session")
def warehouse(demo, settings):
    """The shared replay's storage (the session's default layout) and its partition keys."""
    from datetime import timedelta

    from retail_assets.storage.hours import key_of
    from retail_assets.storage.resource import storage_resource
    from retail_assets_tests.helpers import WAREHOUSE_GROUPS, WAREHOUSE_START

    keys = [key_of(WAREHOUSE_START + timedelta(hours=i)) for i in range(WAREHOUSE_GROUPS)]
    return storage_resource(settings), keys


@pytest.fixture(scope="session")
def debian_packages(request) -> None:
    """Every Debian package the session's selected tests need, installed at once when one of
    them first asks (one apt-get update and one install per run, never a skip)."""
    from retail_assets_tests.helpers import install_debian_packages

    wanted = {
        package
        for item in request.session.items
        for marker in item.iter_markers("debian")
        for package in marker.args
    }
    missing = sorted(package for package in wanted if not installed(package))
    if missing:
        install_debian_packages(missing, "the selected tests need " + ", ".join(missing))


def installed(package: str) -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True,
                          text=True)  # fmt: skip
    return done.stdout.endswith("install ok installed")
