"""Where the platform runs (home, folders, Spark, Kafka), read from the environment in one place.

A resource's other fields (database names, topic, Kafka protocol) have their defaults on the
resource itself; a deployment overrides them by variable (`env_fields`).

All state lives under RETAIL_HOME (lake, warehouse + metastore, exports, Dagster storage,
server pids and logs) so one directory can be inspected, backed up or wiped as a unit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent
DEFAULT_SPARK_PORT = 15002
DEFAULT_KAFKA_PORT = 19092
DEFAULT_PG_PORT = 15432
DEFAULT_METASTORE_PORT = 19083  # the local Hive metastore service (Thrift)
DEFAULT_CLUSTER_PORT = 17077  # the cluster profile's Spark master; its workers take the next ones
PARTITIONS_START_FILE = "partitions_start"  # under RETAIL_HOME
PROFILE_FILE = "profile"  # under RETAIL_HOME, written by `retail stack up`
SECRETS_FILE = "secrets.env"  # under RETAIL_HOME, mode 0600, written by `retail stack up`
PROFILES = ("embedded", "cluster")
PG_PASSWORD_VARIABLE = "RETAIL_PG_PASSWORD"
# The cluster profile's broker: the clients' SCRAM user and password, and the broker's own.
KAFKA_USER_VARIABLE = "RETAIL_KAFKA_USERNAME"
KAFKA_PASSWORD_VARIABLE = "RETAIL_KAFKA_PASSWORD"
KAFKA_BROKER_PASSWORD_VARIABLE = "RETAIL_KAFKA_BROKER_PASSWORD"


def _default_home() -> Path:
    """A git-ignored folder of the checkout when running from one, else ~/.retail_home."""
    if (CHECKOUT_DIR / "pyproject.toml").exists():
        return CHECKOUT_DIR / ".retail_home"
    return Path.home() / ".retail_home"


@dataclass(frozen=True)
class Settings:
    home: Path
    landing_dir: Path
    lake_root: str
    exports_dir: str
    warehouse_dir: str
    spark_port: int
    metastore_port: int
    spark_remote: str
    spark_master: str
    spark_driver_memory: str
    partitions_start: str
    kafka_port: int
    kafka_bootstrap: str
    profile: str  # embedded (one local server, Derby, SQLite) or cluster (docs/profiles.md)
    pg_port: int
    cluster_port: int

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.home / "dagster")

    @property
    def manages_local_spark(self) -> bool:
        """True when the project itself runs the Spark Connect server (the embedded default)."""
        return not self.spark_master and self.spark_remote == local_spark_url(self.spark_port)

    @property
    def manages_local_kafka(self) -> bool:
        """True when the project itself runs the Kafka broker (the embedded default)."""
        return self.kafka_bootstrap == local_kafka_address(self.kafka_port)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings `environ` (default: this process's environment) gives."""
        env = (os.environ if environ is None else environ).get
        home = Path(env("RETAIL_HOME") or _default_home()).resolve()
        port = int(env("RETAIL_SPARK_PORT") or DEFAULT_SPARK_PORT)
        kafka_port = int(env("RETAIL_KAFKA_PORT") or DEFAULT_KAFKA_PORT)
        return cls(
            home=home,
            landing_dir=Path(env("RETAIL_LANDING_DIR") or home / "landing").resolve(),
            lake_root=env("RETAIL_LAKE_ROOT") or str(home / "lake"),
            exports_dir=env("RETAIL_EXPORTS_DIR") or str(home / "exports"),
            warehouse_dir=env("RETAIL_WAREHOUSE_DIR") or str(home / "warehouse"),
            spark_port=port,
            metastore_port=int(env("RETAIL_METASTORE_PORT") or DEFAULT_METASTORE_PORT),
            spark_remote=env("RETAIL_SPARK_REMOTE") or local_spark_url(port),
            spark_master=env("RETAIL_SPARK_MASTER") or "",
            spark_driver_memory=env("RETAIL_SPARK_DRIVER_MEMORY") or "6g",
            partitions_start=env("RETAIL_PARTITIONS_START") or _recorded_start(home),
            kafka_port=kafka_port,
            kafka_bootstrap=env("RETAIL_KAFKA_BOOTSTRAP") or local_kafka_address(kafka_port),
            profile=_profile(env("RETAIL_PROFILE"), home),
            pg_port=int(env("RETAIL_PG_PORT") or DEFAULT_PG_PORT),
            cluster_port=int(env("RETAIL_CLUSTER_PORT") or DEFAULT_CLUSTER_PORT),
        )

    @property
    def is_cluster(self) -> bool:
        return self.profile == "cluster"


def _profile(chosen: str | None, home: Path) -> str:
    """RETAIL_PROFILE, else the one `retail stack up` recorded for this home, else embedded."""
    recorded = home / PROFILE_FILE
    if not chosen and recorded.exists():
        chosen = recorded.read_text(encoding="utf-8").strip()
    profile = chosen or "embedded"
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    return profile


def load_secrets(home: Path) -> None:
    """Put the home's secrets file (KEY=VALUE lines) into this process's environment, where a
    variable is not set already: secrets reach the code only as environment variables."""
    secrets = home / SECRETS_FILE
    if secrets.exists():
        for line in secrets.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.startswith("#"):
                os.environ.setdefault(name.strip(), value.strip())


def _recorded_start(home: Path) -> str:
    """The home's first hourly partition as recorded (record_partitions_start), else today."""
    recorded = home / PARTITIONS_START_FILE
    if recorded.exists():
        return recorded.read_text(encoding="utf-8").strip()
    return f"{datetime.now(UTC):%Y-%m-%d}-00:00"


def record_partitions_start(settings: Settings, earliest: str | None = None) -> str:
    """Fix where this home's hourly partitions start, so the UI offers the hours that hold
    data and not years of empty ones: the first time, at the earliest hour the lake holds or
    today 00:00 UTC; later only earlier, when a replay brings an older hour (`earliest`).

    A start set by RETAIL_PARTITIONS_START is the user's: never written, and an older hour is
    an error naming it. The start is read when the code location loads, so a running
    `retail ui` shows an earlier one after a reload.
    """
    start = settings.partitions_start
    if earliest is None or earliest >= start:
        if not os.environ.get("RETAIL_PARTITIONS_START"):
            _write_start(settings.home, start)
        return start
    if os.environ.get("RETAIL_PARTITIONS_START"):
        raise ValueError(
            f"hour {earliest} is before RETAIL_PARTITIONS_START={start}, so it is no "
            "partition; set an earlier start to use it"
        )
    _write_start(settings.home, earliest)
    return earliest


def _write_start(home: Path, start: str) -> None:
    recorded = home / PARTITIONS_START_FILE
    if not recorded.exists() or recorded.read_text(encoding="utf-8").strip() != start:
        home.mkdir(parents=True, exist_ok=True)
        staging = recorded.with_suffix(".tmp")
        staging.write_text(start + "\n", encoding="utf-8")
        staging.replace(recorded)


def env_fields(**variables: str) -> dict[str, str]:
    """{field: value} of a resource's fields whose variable the environment sets; the others
    keep the resource class's own defaults (each default is written once, on its field)."""
    return {field: os.environ[name] for field, name in variables.items() if os.environ.get(name)}


def local_spark_url(port: int) -> str:
    return f"sc://127.0.0.1:{port}"


def local_kafka_address(port: int) -> str:
    return f"127.0.0.1:{port}"


def prepare_dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME under RETAIL_HOME (unless the user set one), with the repo's dagster.yaml
    plus the profile's storage: Dagster's SQLite files with the kept-engine event log
    (orchestration/event_log.py), or the cluster profile's PostgreSQL. A dagster.yaml the
    user wrote (one that does not start as the repo's does) is left as it is."""
    dagster_home = settings.dagster_home
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    source = PACKAGE_DIR / "dagster.yaml"  # the checkout's, shipped in the package
    if source.exists():
        text = source.read_text(encoding="utf-8")
        storage = (
            CLUSTER_STORAGE.format(port=settings.pg_port)
            if settings.is_cluster
            else EMBEDDED_STORAGE.format(base_dir=json.dumps(str(dagster_home)))
        )
        wanted = text + storage
        linked = config.is_symlink() or not config.exists()  # a link: how earlier versions did it
        current = None if linked else config.read_text(encoding="utf-8")
        # Ours: none yet, a link, or one written from the repo's (it starts as the repo's does).
        ours = current is None or current.startswith(text.split("\n", 1)[0])
        if ours and current != wanted:
            staging = config.with_suffix(f".{os.getpid()}.tmp")
            staging.write_text(wanted, encoding="utf-8")
            staging.replace(config)  # atomic: two commands started together write the same
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home


# The folder is written out, not {env: DAGSTER_HOME}: a process may open this instance by
# its folder (DagsterInstance.from_config) with another DAGSTER_HOME in its environment.
EMBEDDED_STORAGE = """
# Embedded profile: Dagster's SQLite files in this folder, the event log's engines kept
# between calls (retail_assets/orchestration/event_log.py).
storage:
  custom:
    module: retail_assets.orchestration.event_log
    class: EmbeddedStorage
    config:
      base_dir: {base_dir}
"""

CLUSTER_STORAGE = f"""
# Cluster profile (docs/profiles.md): runs, event logs and schedules in PostgreSQL, so
# they outlive any one process and every process queues its runs in the same place.
# The driver is named: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which
# dagster-postgres does not bring (it brings psycopg2).
storage:
  postgres:
    postgres_db:
      scheme: postgresql+psycopg2
      hostname: 127.0.0.1
      port: {{port}}
      db_name: dagster
      username: retail
      password:
        env: {PG_PASSWORD_VARIABLE}
"""
