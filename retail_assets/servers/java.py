"""The JVM our servers run on (Spark Connect, the Hive metastore) and the jars they load."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pyspark

from retail_assets.servers import jars
from retail_assets.servers.supervisor import ServiceError

SPARK_HOME = Path(pyspark.__file__).parent
SPARK_JARS = SPARK_HOME / "jars"  # Spark's, Hive's metastore and Derby: pinned by the lock


def pg_jdbc_jar(home: str | Path) -> str:
    """The PostgreSQL JDBC driver the cluster profile's metastore loads: the pinned one
    (fetched on first use), or RETAIL_PG_JDBC_JAR."""
    if chosen := os.environ.get("RETAIL_PG_JDBC_JAR"):
        return chosen
    return str(jars.ensure(home, "metastore-jdbc") / jars.jar_name("metastore-jdbc", "postgresql"))


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


def check_java() -> None:
    major = java_major_version()
    if major < 17:
        raise ServiceError(f"Spark 4 needs Java 17 or newer; found Java {major}.")
