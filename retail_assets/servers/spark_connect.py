"""The embedded default Spark: one local Spark Connect server, the client of a local Hive
metastore service that starts and stops with it.

Why one long-lived server (docs/design.md §1): a JVM start costs ~6 s per process. Every
Dagster step connects as a client.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from retail_assets.servers import jars, spark_cluster
from retail_assets.servers.hive_metastore import LocalMetastore
from retail_assets.servers.java import SPARK_HOME, check_java
from retail_assets.servers.supervisor import LocalServer, ServiceError, port_is_open
from retail_assets.settings import Settings

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
# The server JVM's garbage collector. On 2 cores the default (G1), with its concurrent threads
# and costlier write barriers, slowed a fresh server's first small hours by ~10 % against the
# throughput collector (bench/server_gc.py); an hour's pauses stay far below a second.
SERVER_GC = "-XX:+UseParallelGC"
START_TIMEOUT_S = 180
# The jar sets of jvm/pom.xml every session loads: Spark's Kafka source, Delta Lake.
SESSION_JARS = ("spark-kafka", "delta")
# Delta's commands (MERGE, OPTIMIZE, …) and its tables in the Hive metastore
DELTA_SESSION_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def ensure_session_jars(home: str) -> None:
    """Fetch the jar sets every session loads, when the home's jar folder lacks one."""
    for jar_set in SESSION_JARS:
        jars.ensure(home, jar_set)


LOG_FILES_KEPT = 4
LOG_LEVELS = {  # Spark's own defaults (log4j2-defaults.properties in its jars)
    "org.sparkproject.jetty": "warn",
    "org.sparkproject.jetty.util.component.AbstractLifeCycle": "error",
    "org.apache.hadoop.hive.metastore.RetryingHMSHandler": "fatal",
    "org.apache.hadoop.hive.ql.exec.FunctionRegistry": "error",
    "org.apache.parquet.CorruptStatistics": "error",
}


class LocalSparkServer(LocalServer):
    """The embedded server's own configuration: where its state lives and how it listens.

    A field of SparkResource when the project runs the server itself (the embedded default),
    so a run starts the server from the resource's fields, not from the environment.
    """

    NAME = "spark-connect"
    CMDLINE_MARKER = SERVER_CLASS

    warehouse_dir: str
    driver_memory: str
    metastore: LocalMetastore
    # The cluster profile (docs/profiles.md): the standalone master the server submits to;
    # empty on the embedded profile (local[*]).
    cluster_master: str = ""
    # The server's log rolls over at this size, keeping LOG_FILES_KEPT rolled files: it writes
    # ~1.3 MB an hour at INFO, for as long as the server runs.
    log_roll_kb: int = 16 * 1024

    @classmethod
    def of(cls, settings: Settings) -> LocalSparkServer:
        cluster = {}
        if settings.is_cluster:
            cluster = dict(cluster_master=spark_cluster.SparkMaster.of(settings).url)
        return cls(
            home=str(settings.home),
            port=settings.spark_port,
            warehouse_dir=settings.warehouse_dir,
            driver_memory=settings.spark_driver_memory,
            metastore=LocalMetastore.of(settings),
            **cluster,
        )

    def session_conf(self) -> dict[str, str]:
        """What any session of the platform needs: Hive catalog, lake semantics, Delta Lake
        and Spark's Kafka source (the pinned jars, which `jars.ensure` fetches before a start)."""
        folder = jars.jars_dir(self.home)
        return {
            "spark.jars": ",".join(
                str(folder / jar_set / name)
                for jar_set in SESSION_JARS
                for name in jars.names(jar_set)
            ),  # fmt: skip
            **DELTA_SESSION_CONF,
            # A Delta table's state is rebuilt from its log in this many tasks (50 by default):
            # a 1,500-row hourly write took 1.85 s with 50, 0.68 s with 1 (bench notes, #36).
            "spark.databricks.delta.snapshotPartitions": "1",
            # File listings that Spark parallelizes (VACUUM's) ran 10,000 tasks by default: a
            # VACUUM of a tiny table took 19 s, 1.5 s with 4.
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": "4",
            "spark.sql.catalogImplementation": "hive",
            "spark.sql.warehouse.dir": self.warehouse_dir,
            "spark.hadoop.hive.metastore.uris": self.metastore.uri,
            "spark.sql.sources.partitionOverwriteMode": "dynamic",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "8",
            # An hour runs ~250 small stages of a few hundred distinct plans, every hour the
            # same: with Spark's default 100 compiled classes kept, each hour compiled them
            # again (bench: a small hour 27 s -> 23 s with 2000; static, set at start).
            "spark.sql.codegen.cache.maxEntries": "2000",
            # A source option whose name matches is shown redacted in plans, the UI and logs:
            # the Kafka source's kafka.sasl.jaas.config holds the SASL password.
            "spark.sql.redaction.options.regex": "(?i)url|jaas|password|secret|token",
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
        """The cluster profile's server needs its master and database up (`retail stack up`)."""
        needed = {"Spark master": self.cluster_master, "metastore": self.metastore.jdbc_url}
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
        """Start the server and its metastore (or find them running); wait until both accept
        clients."""
        status = self.status()
        if status["running"]:  # every step's session finds both up: no more to do
            return status
        check_java()
        ensure_session_jars(self.home)
        if self.cluster_master:
            self.check_cluster()
        self.server.check_port()  # before the metastore starts for a server that cannot
        settings = self.server.rolling_log_settings(self.log_roll_kb, LOG_FILES_KEPT, LOG_LEVELS)
        logging = f"-Dlog4j2.configurationFile={settings}"
        cmd = [str(SPARK_HOME / "bin" / "spark-submit"), "--class", SERVER_CLASS,
               "--driver-java-options", f"{logging} {SERVER_GC}"]  # fmt: skip
        for key, value in self.server_conf().items():
            cmd += ["--conf", f"{key}={value}"]
        cmd.append("spark-internal")
        env = dict(os.environ)
        env.update(
            SPARK_HOME=str(SPARK_HOME),
            # Python UDFs and data sources run on the server's Python: it must be ours.
            PYSPARK_PYTHON=sys.executable,
            PYSPARK_DRIVER_PYTHON=sys.executable,
        )
        # Both JVMs start at once: the server asks the metastore nothing before a client does.
        with ThreadPoolExecutor(max_workers=1) as pool:
            metastore = pool.submit(self.metastore.up)
            status = self.start(cmd, env, START_TIMEOUT_S)
            metastore.result()
        return status

    def down(self) -> bool:
        """Stop the server, then its metastore (no client left to lose a call)."""
        stopped = super().down()
        return self.metastore.down() or stopped

    def status(self) -> dict:
        metastore = self.metastore.status()
        status = super().status()
        return {**status, "running": status["running"] and metastore["running"],
                "metastore": metastore}  # fmt: skip


def ensure(settings: Settings) -> None:
    """Start the embedded server when it is the configured target; a remote Spark is left be."""
    if settings.manages_local_spark:
        LocalSparkServer.of(settings).up()
