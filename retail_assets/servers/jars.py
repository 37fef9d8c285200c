"""The jars our JVM servers run beside pyspark's own: pinned in jvm/pom.xml (the JVM side's
lock), copied from Maven Central by `mvn` into `$RETAIL_HOME/jars/<set>/` (or
`RETAIL_JARS_DIR`) the first time a server needs a set, or by `retail jars`. Maven keeps what
it downloaded in ~/.m2, so a later copy, and everything after it, works offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from retail_assets.servers.supervisor import ServiceError
from retail_assets.settings import PACKAGE_DIR

POM = PACKAGE_DIR / "jvm" / "pom.xml"  # the checkout's jvm/, shipped in the package
MAVEN_SETTINGS = PACKAGE_DIR / "jvm" / "settings.xml"
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
FETCH_TIMEOUT_S = 900


def pinned(jar_set: str) -> dict[str, str]:
    """{artifactId: version} of the set `jar_set` (a copy execution of the pom)."""
    for execution in ET.parse(POM).getroot().iterfind(".//m:execution", _NS):
        if execution.findtext("m:id", namespaces=_NS) == jar_set:
            items = execution.iterfind(".//m:artifactItem", _NS)
            return {
                item.findtext("m:artifactId", namespaces=_NS): item.findtext(
                    "m:version", namespaces=_NS
                )
                for item in items
            }
    raise KeyError(f"{POM} has no jar set {jar_set!r}")


def jars_dir(home: str | Path) -> Path:
    """The jars folder of the home `home` (RETAIL_JARS_DIR: one folder shared by homes)."""
    return Path(os.environ.get("RETAIL_JARS_DIR") or Path(home) / "jars")


def jar_name(jar_set: str, artifact: str) -> str:
    return f"{artifact}-{pinned(jar_set)[artifact]}.jar"


def names(jar_set: str) -> list[str]:
    """The file names of the pinned jars of `jar_set`."""
    return [f"{artifact}-{version}.jar" for artifact, version in pinned(jar_set).items()]


def missing(home: str | Path, jar_set: str) -> list[str]:
    """The pinned jar files of `jar_set` that its folder lacks."""
    folder = jars_dir(home) / jar_set
    return [name for name in names(jar_set) if not (folder / name).is_file()]


def ensure(home: str | Path, jar_set: str) -> Path:
    """The folder of `jar_set`, fetched first if it lacks a pinned jar; a ServiceError in one
    line naming the cause and the fix when it cannot be."""
    if missing(home, jar_set):
        fetch(home, jar_set)
        if still := missing(home, jar_set):
            raise ServiceError(f"mvn ran but {jar_set} still lacks {', '.join(still)}")
    return jars_dir(home) / jar_set


def fetch(home: str | Path, jar_set: str | None = None) -> None:
    """Copy the pinned set `jar_set` (None: every set) into the jars folder; mvn downloads
    what ~/.m2 lacks."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError(
            "Maven is required to fetch the pinned jars (jvm/pom.xml) but no `mvn` was found. "
            "On Debian: apt-get install -y maven"
        )
    command = [mvn, "-q", "-B", "-s", str(MAVEN_SETTINGS), "-f", str(POM),
               f"-Djars.dir={jars_dir(home)}",
               f"dependency:copy@{jar_set}" if jar_set else "validate"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
    if done.returncode != 0:
        errors = [line for line in done.stdout.splitlines() if "[ERROR]" in line]
        cause = errors[0].split("[ERROR]", 1)[1].split(" -> [Help")[0] if errors else done.stderr
        cause = ": ".join(cause.strip().split(": ")[-2:])  # Maven's innermost cause
        raise ServiceError(
            f"could not fetch the pinned jars from Maven Central ({cause[:300]}); check that "
            "https://repo.maven.apache.org is reachable, then run `retail jars`"
        )
