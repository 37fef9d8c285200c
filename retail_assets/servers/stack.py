"""`retail stack`: every local server of a profile, brought up in order and down in reverse.

The profile a home runs is recorded under RETAIL_HOME by `stack up`, so later commands need
no setting; one home holds one profile's data (the metastores differ).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import replace

from retail_assets.servers.hive_metastore import LocalMetastore, create_schema
from retail_assets.servers.kafka_broker import LocalBroker
from retail_assets.servers.postgres import LocalPostgres
from retail_assets.servers.spark_cluster import WORKERS, SparkMaster, SparkWorker
from retail_assets.servers.spark_connect import LocalSparkServer
from retail_assets.servers.supervisor import LocalServer, ServiceError
from retail_assets.settings import (
    KAFKA_BROKER_PASSWORD_VARIABLE,
    KAFKA_PASSWORD_VARIABLE,
    KAFKA_USER_VARIABLE,
    PG_PASSWORD_VARIABLE,
    PROFILE_FILE,
    SECRETS_FILE,
    Settings,
    load_secrets,
    prepare_dagster_home,
)


def servers(settings: Settings) -> list[LocalServer]:
    """The profile's local servers in start order (a remote Spark or Kafka is not ours)."""
    found: list[LocalServer] = []
    if settings.is_cluster:
        found += [LocalPostgres.of(settings), SparkMaster.of(settings)]
        found += SparkWorker.all_of(settings)
    if settings.manages_local_spark:
        found += [LocalMetastore.of(settings), LocalSparkServer.of(settings)]
    if settings.manages_local_kafka:
        found.append(LocalBroker.of(settings))
    return found


def choose(settings: Settings, profile: str | None) -> Settings:
    """Record `profile` for this home (a home holding another profile's data refuses)."""
    profile = profile or settings.profile
    if profile != settings.profile and (settings.home / "lake").exists():
        raise ServiceError(
            f"{settings.home} holds the {settings.profile} profile's data; use another "
            f"RETAIL_HOME for the {profile} profile"
        )
    (settings.home / PROFILE_FILE).write_text(profile + "\n", encoding="utf-8")
    chosen = replace(settings, profile=profile)
    if chosen.is_cluster:
        make_secrets(chosen)
    prepare_dagster_home(chosen)
    return chosen


def make_secrets(settings: Settings) -> None:
    """The database's and the broker's passwords (and the broker's client user) of our own on
    first use, each unless the environment or the home's file already has it."""
    path = settings.home / SECRETS_FILE
    load_secrets(settings.home)
    wanted = {PG_PASSWORD_VARIABLE: None, KAFKA_USER_VARIABLE: "retail",
              KAFKA_PASSWORD_VARIABLE: None, KAFKA_BROKER_PASSWORD_VARIABLE: None}  # fmt: skip
    missing = [name for name in wanted if not os.environ.get(name)]
    if missing:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
            for name in missing:
                handle.write(f"{name}={wanted[name] or secrets.token_urlsafe(24)}\n")
    load_secrets(settings.home)


def up(settings: Settings) -> list[dict]:
    """Start every server of the profile (those running are found, not started twice)."""
    statuses = []
    for server in servers(settings):
        if isinstance(server, LocalSparkServer) and settings.is_cluster:
            SparkMaster.of(settings).wait_for_workers(WORKERS)  # the app gets its executors
        statuses.append({"name": server.name, **server.up()})
        if isinstance(server, LocalPostgres):
            create_schema(server)
    return statuses


def down(settings: Settings) -> list[str]:
    """Stop every server of the profile, last started first; the names of those stopped (the
    Spark server stops its metastore too)."""
    running = [server for server in reversed(servers(settings)) if server.status()["pid"]]
    for server in running:
        server.down()
    return [server.name for server in running]


def status(settings: Settings) -> dict:
    report = {"profile": settings.profile, "home": str(settings.home),
              "servers": [server.status() for server in servers(settings)]}  # fmt: skip
    if settings.is_cluster:
        master = SparkMaster.of(settings)
        if master.status()["running"]:
            state = master.state()
            report["cluster"] = {
                "alive_workers": state.get("aliveworkers"),
                "cores": state.get("cores"),
                "cores_used": state.get("coresused"),
                "applications": [
                    {"name": app["name"], "state": app["state"], "cores": app["cores"]}
                    for app in state.get("activeapps", [])
                ],
            }
    report["running"] = all(server["running"] for server in report["servers"])
    return report
