"""The embedded default Spark: one local Spark Connect server that owns the Hive metastore.

Why one long-lived server (docs/design.md §1): a JVM start costs ~6 s per process, and the
embedded Derby metastore admits a single JVM. Every Dagster step connects as a client.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyspark

from retail_assets.servers import spark_cluster
from retail_assets.servers.postgres import LocalPostgres
from retail_assets.servers.supervisor import LocalServer, ServiceError, port_is_open
from retail_assets.settings import PG_PASSWORD_VARIABLE, Settings

PG_JDBC_JAR = os.environ.get("RETAIL_PG_JDBC_JAR") or "/usr/share/java/postgresql.jar"
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
START_TIMEOUT_S = 180


def java_binary() -> str:
    """The `java` in JAVA_HOME, else on PATH; a clear error if none."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise ServiceError(
            "Java 17 is required for Spark but no `java` was found. On Debian: "
            "apt-get install -y openjdk-17-jre-headless (or set JAVA_HOME)."
        )
    return java


def java_major_version() -> int:
    """The major version of the `java` Spark will run on."""
    java = java_binary()
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise ServiceError(f"Could not read the Java version from `{java} -version`: {out!r}")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 else major


class LocalSparkServer(LocalServer):
    """The embedded server's own configuration: where its state lives and how it listens.

    A field of SparkResource when the project runs the server itself (the embedded default),
    so a run starts the server from the resource's fields, not from the environment.
    """

    NAME = "spark-connect"
    CMDLINE_MARKER = SERVER_CLASS

    warehouse_dir: str
    driver_memory: str
    # The cluster profile (docs/profiles.md): the standalone master the server submits to, and
    # the metastore's PostgreSQL database; empty on the embedded profile (local[*], Derby).
    cluster_master: str = ""
    metastore_jdbc: str = ""

    @classmethod
    def of(cls, settings: Settings) -> LocalSparkServer:
        cluster = {}
        if settings.is_cluster:
            cluster = dict(
                cluster_master=spark_cluster.SparkMaster.of(settings).url,
                metastore_jdbc=LocalPostgres.of(settings).jdbc_url("metastore"),
            )
        return cls(
            home=str(settings.home),
            port=settings.spark_port,
            warehouse_dir=settings.warehouse_dir,
            driver_memory=settings.spark_driver_memory,
            **cluster,
        )

    def session_conf(self) -> dict[str, str]:
        """What any session of the platform needs: Hive catalog and lake semantics."""
        return {
            "spark.sql.catalogImplementation": "hive",
            "spark.sql.warehouse.dir": self.warehouse_dir,
            **self.metastore_conf(),
            "spark.sql.sources.partitionOverwriteMode": "dynamic",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "8",
            # An hour runs ~250 small stages of a few hundred distinct plans, every hour the
            # same: with Spark's default 100 compiled classes kept, each hour compiled them
            # again (bench: a small hour 27 s -> 23 s with 2000; static, set at start).
            "spark.sql.codegen.cache.maxEntries": "2000",
        }

    def metastore_conf(self) -> dict[str, str]:
        """Derby in RETAIL_HOME (one JVM), or the profile's PostgreSQL (shared). The password
        is no setting: Hadoop reads it from the server's environment when it connects."""
        if not self.metastore_jdbc:
            metastore = Path(self.home) / "metastore"
            return {
                "spark.hadoop.javax.jdo.option.ConnectionURL": (
                    f"jdbc:derby:;databaseName={metastore / 'metastore_db'};create=true"
                ),
                "spark.driver.extraJavaOptions": f"-Dderby.system.home={metastore}",
            }
        return {
            "spark.hadoop.javax.jdo.option.ConnectionURL": self.metastore_jdbc,
            "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
            "spark.hadoop.javax.jdo.option.ConnectionUserName": "retail",
            "spark.hadoop.javax.jdo.option.ConnectionPassword": f"${{env.{PG_PASSWORD_VARIABLE}}}",
            # `retail stack up` makes the tables (servers/hive_metastore.py), as a
            # schematool would; the server never alters the schema.
            "spark.hadoop.hive.metastore.schema.verification": "false",
            "spark.driver.extraClassPath": PG_JDBC_JAR,
        }

    def cluster_conf(self) -> dict[str, str]:
        """Work goes to the standalone cluster's executors, one per worker core."""
        if not self.cluster_master:
            return {}
        return {
            "spark.master": self.cluster_master,
            "spark.executor.cores": str(spark_cluster.WORKER_CORES),
            "spark.cores.max": str(spark_cluster.WORKERS * spark_cluster.WORKER_CORES),
            "spark.executor.memory": spark_cluster.EXECUTOR_MEMORY,
            "spark.pyspark.python": sys.executable,  # Python data sources run on executors
            "spark.executor.logs.rolling.strategy": "size",
            "spark.executor.logs.rolling.maxSize": str(64 * 1024 * 1024),
            "spark.executor.logs.rolling.maxRetainedFiles": "4",
        }

    def check_cluster(self) -> None:
        """The cluster profile's server needs its master and metastore up (`retail stack up`)."""
        if not Path(PG_JDBC_JAR).exists():
            raise ServiceError(
                f"the metastore's JDBC driver {PG_JDBC_JAR} is missing; on Debian: apt-get "
                "install -y libpostgresql-jdbc-java (or set RETAIL_PG_JDBC_JAR)"
            )
        needed = {"Spark master": self.cluster_master, "metastore": self.metastore_jdbc}
        for what, url in needed.items():
            host_port = url.split("//", 1)[1].split("/", 1)[0]
            host, port = host_port.rsplit(":", 1)
            if not port_is_open(host, int(port)):
                raise ServiceError(f"the cluster profile's {what} {url} is down: `retail stack up`")

    def server_conf(self) -> dict[str, str]:
        """The local Connect server: loopback only, all state under RETAIL_HOME."""
        return {
            **self.session_conf(),
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.port),
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.memory": self.driver_memory,
            "spark.local.dir": str(Path(self.home) / "spark-tmp"),
            "spark.ui.enabled": "false",
            **self.cluster_conf(),
        }

    def up(self) -> dict:
        """Start the server (or find it running) and wait until it accepts clients."""
        major = java_major_version()
        if major < 17:
            raise ServiceError(f"Spark 4 needs Java 17 or newer; found Java {major}.")
        if self.cluster_master:
            self.check_cluster()
        spark_home = Path(pyspark.__file__).parent
        cmd = [str(spark_home / "bin" / "spark-submit"), "--class", SERVER_CLASS]
        for key, value in self.server_conf().items():
            cmd += ["--conf", f"{key}={value}"]
        cmd.append("spark-internal")
        env = dict(os.environ)
        env.update(
            SPARK_HOME=str(spark_home),
            # Python UDFs and data sources run on the server's Python: it must be ours.
            PYSPARK_PYTHON=sys.executable,
            PYSPARK_DRIVER_PYTHON=sys.executable,
        )
        return self.start(cmd, env, START_TIMEOUT_S)


def ensure(settings: Settings) -> None:
    """Start the embedded server when it is the configured target; a remote Spark is left be."""
    if settings.manages_local_spark:
        LocalSparkServer.of(settings).up()
