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

from retail_assets.servers.supervisor import LocalServer, ServiceError
from retail_assets.settings import Settings

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
START_TIMEOUT_S = 180


def java_major_version() -> int:
    """The major version of the `java` on PATH (or in JAVA_HOME); a clear error if none."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise ServiceError(
            "Java 17 is required for Spark but no `java` was found. On Debian: "
            "apt-get install -y openjdk-17-jre-headless (or set JAVA_HOME)."
        )
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

    @classmethod
    def of(cls, settings: Settings) -> LocalSparkServer:
        return cls(
            home=str(settings.home),
            port=settings.spark_port,
            warehouse_dir=settings.warehouse_dir,
            driver_memory=settings.spark_driver_memory,
        )

    def session_conf(self) -> dict[str, str]:
        """What any session of the platform needs: Hive catalog and lake semantics."""
        metastore = Path(self.home) / "metastore"
        return {
            "spark.sql.catalogImplementation": "hive",
            "spark.sql.warehouse.dir": self.warehouse_dir,
            "spark.hadoop.javax.jdo.option.ConnectionURL": (
                f"jdbc:derby:;databaseName={metastore / 'metastore_db'};create=true"
            ),
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={metastore}",
            "spark.sql.sources.partitionOverwriteMode": "dynamic",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "8",
        }

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
        }

    def up(self) -> dict:
        """Start the server (or find it running) and wait until it accepts clients."""
        major = java_major_version()
        if major < 17:
            raise ServiceError(f"Spark 4 needs Java 17 or newer; found Java {major}.")
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
