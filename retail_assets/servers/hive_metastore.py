"""The Hive metastore's tables in the cluster profile's PostgreSQL, made before any server
uses them.

Hive's own schematool and SQL scripts are not shipped with Spark; DataNucleus's SchemaTool,
fed Hive's mapping (package.jdo in Spark's hive-metastore jar), makes the same tables. Left to
DataNucleus's lazy creation instead, the first CREATE TABLE deadlocks: the foreign key of a
table made mid-transaction waits on a lock the same transaction holds (seen on PostgreSQL
15). Making it again is harmless: SchemaTool adds only what is missing.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pyspark

from retail_assets.servers.postgres import LocalPostgres
from retail_assets.servers.spark_connect import PG_JDBC_JAR, java_binary
from retail_assets.servers.supervisor import ServiceError
from retail_assets.settings import PG_PASSWORD_VARIABLE

DATABASE = "metastore"
TIMEOUT_S = 300


def create_schema(postgres: LocalPostgres) -> None:
    """Make the metastore's tables that are missing (all of them on first start)."""
    jars = Path(pyspark.__file__).parent / "jars"
    (metastore_jar,) = jars.glob("hive-metastore-*.jar")
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
            [java_binary(), "-cp", f"{jars}/*:{PG_JDBC_JAR}:{work}",
             "org.datanucleus.store.schema.SchemaTool", "-create", "-api", "JDO",
             "-props", str(properties), str(Path(work) / "package.jdo")],
            capture_output=True, text=True, timeout=TIMEOUT_S, cwd=work,
        )  # fmt: skip
    if done.returncode != 0 or "completed successfully" not in done.stdout:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise ServiceError(f"creating the Hive metastore's tables failed:\n{tail}")
