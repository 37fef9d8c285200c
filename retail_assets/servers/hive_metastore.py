"""The Hive metastore as a service of its own (Thrift), that the Spark server is a client of.

Why not inside the Spark server, as Spark's default is: Spark Connect runs every operation
on a new thread, and Hive's embedded metastore keeps one store per thread, so each operation
built a new HiveConf and ObjectStore and left its JDO PersistenceManager open: +111 an hour,
never freed (docs/design.md §2). The service keeps one store per client connection, and the
Spark server holds one. It is also what a shared metastore looks like, so both profiles run
the same way: Derby under RETAIL_HOME (embedded), or the profile's PostgreSQL (cluster).

Hive's own schematool and SQL scripts are not shipped with Spark; on PostgreSQL,
DataNucleus's SchemaTool, fed Hive's mapping (package.jdo in Spark's hive-metastore jar),
makes the same tables (`create_schema`). Left to DataNucleus's lazy creation instead, the
first CREATE TABLE deadlocks: the foreign key of a table made mid-transaction waits on a lock
the same transaction holds (seen on PostgreSQL 15). Making it again is harmless: SchemaTool
adds only what is missing.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import zipfile
from pathlib import Path

from retail_assets.servers.java import (
    SPARK_JARS,
    check_java,
    java_binary,
    pg_jdbc_jar,
)
from retail_assets.servers.postgres import LocalPostgres
from retail_assets.servers.supervisor import LocalServer, ServiceError
from retail_assets.settings import PG_PASSWORD_VARIABLE, Settings

DATABASE = "metastore"
TIMEOUT_S = 300
SERVICE_CLASS = "org.apache.hadoop.hive.metastore.HiveMetaStore"
START_TIMEOUT_S = 120
HEAP = "384m"  # a metastore answers small catalog calls (~340 MB resident, measured)
# Hive's own log settings would write every call at INFO to $TMPDIR/$USER/hive.log: warnings go
# to the service's log instead (a partition listing that falls back to the slow path is one),
# but not the two routine ones of every partition written.
LOG_SETTINGS = """\
status = error
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{ISO8601} %5p [%t] %c{2}: %m%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
logger.partition_stats.name = hive.log
logger.partition_stats.level = error
"""


class LocalMetastore(LocalServer):
    """The local metastore service: its port, its database and the warehouse it places
    databases in (the Spark server's `spark.sql.warehouse.dir`)."""

    NAME = "metastore"
    CMDLINE_MARKER = SERVICE_CLASS

    warehouse_dir: str
    # The cluster profile's PostgreSQL database and role; empty: Derby in RETAIL_HOME.
    jdbc_url: str = ""
    jdbc_user: str = ""

    @classmethod
    def of(cls, settings: Settings) -> LocalMetastore:
        store = {}
        if settings.is_cluster:
            postgres = LocalPostgres.of(settings)
            store = dict(jdbc_url=postgres.jdbc_url(DATABASE), jdbc_user=postgres.user)
        return cls(home=str(settings.home), port=settings.metastore_port,
                   warehouse_dir=settings.warehouse_dir, **store)  # fmt: skip

    @property
    def uri(self) -> str:
        return f"thrift://127.0.0.1:{self.port}"

    @property
    def derby_home(self) -> Path:
        return Path(self.home) / "metastore"

    def store_conf(self) -> dict[str, str]:
        """Derby (it creates its tables on first start), or PostgreSQL, whose tables
        `create_schema` made. The password is no setting: Hadoop reads it from the service's
        environment when it connects."""
        if not self.jdbc_url:
            database = f"jdbc:derby:;databaseName={self.derby_home / 'metastore_db'};create=true"
            return {
                "javax.jdo.option.ConnectionURL": database,
                "datanucleus.schema.autoCreateAll": "true",
            }
        return {
            "javax.jdo.option.ConnectionURL": self.jdbc_url,
            "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
            "javax.jdo.option.ConnectionUserName": self.jdbc_user,
            "javax.jdo.option.ConnectionPassword": f"${{env.{PG_PASSWORD_VARIABLE}}}",
        }

    def up(self) -> dict:
        """Start the service (or find it running) and wait until it accepts clients."""
        check_java()
        classpath = f"{SPARK_JARS}/*"
        if self.jdbc_url:
            classpath += f":{pg_jdbc_jar(self.home)}"
        self.derby_home.mkdir(parents=True, exist_ok=True)
        conf = {
            **self.store_conf(),
            "hive.metastore.warehouse.dir": self.warehouse_dir,
            "hive.metastore.schema.verification": "false",
            # Hive's default pool, BoneCP, is not among Spark's jars; HikariCP is.
            "datanucleus.connectionPoolingType": "HikariCP",
        }
        log_settings = self.server.log_settings(LOG_SETTINGS)
        cmd = [java_binary(), f"-Xmx{HEAP}", f"-Dhive.log4j.file={log_settings}",
               "-Dhive.async.log.enabled=false",  # async logging needs a jar Spark lacks
               f"-Dderby.system.home={self.derby_home}",
               "-cp", classpath, SERVICE_CLASS, "-p", str(self.port)]  # fmt: skip
        for key, value in conf.items():
            cmd += ["--hiveconf", f"{key}={value}"]
        return self.start(cmd, dict(os.environ), START_TIMEOUT_S)


def create_schema(postgres: LocalPostgres) -> None:
    """Make the metastore's tables that are missing (all of them on first start)."""
    (metastore_jar,) = SPARK_JARS.glob("hive-metastore-*.jar")
    password = os.environ[PG_PASSWORD_VARIABLE]
    settings = {
        "javax.jdo.option.ConnectionURL": postgres.jdbc_url(DATABASE),
        "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "javax.jdo.option.ConnectionUserName": postgres.user,
        "javax.jdo.option.ConnectionPassword": password,
        "datanucleus.storeManagerType": "rdbms",
        # Hive's own defaults, so the tables and columns get the names the metastore uses.
        "datanucleus.identifierFactory": "datanucleus1",
        "datanucleus.rdbms.useLegacyNativeValueStrategy": "true",
    }
    with tempfile.TemporaryDirectory(dir=Path(postgres.home) / "run") as work:
        with zipfile.ZipFile(metastore_jar) as jar:
            jar.extract("package.jdo", work)
        properties = Path(work) / "metastore.properties"  # private: the folder is 0700
        properties.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        done = subprocess.run(
            [java_binary(), "-cp", f"{SPARK_JARS}/*:{pg_jdbc_jar(postgres.home)}:{work}",
             "org.datanucleus.store.schema.SchemaTool", "-create", "-api", "JDO",
             "-props", str(properties), str(Path(work) / "package.jdo")],
            capture_output=True, text=True, timeout=TIMEOUT_S, cwd=work,
        )  # fmt: skip
    if done.returncode != 0 or "completed successfully" not in done.stdout:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise ServiceError(f"creating the Hive metastore's tables failed:\n{tail}")
