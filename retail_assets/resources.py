"""Resources: Spark (dagster-pyspark's resource) and where the lake, landing and exports are."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from dagster_pyspark import PySparkResource
from dagster_pyspark.resources import spark_session_from_config

from retail_assets import kafka_broker, spark_server
from retail_assets.lake import Lake
from retail_assets.settings import Settings
from retail_assets.tables import HourlyTable


class SparkResource(PySparkResource):
    """PySparkResource that first starts the embedded local Connect server when it is the target.

    `spark_config` decides where Spark is: {"spark.remote": "sc://…"} for Spark Connect, or
    {"spark.master": …} for a classic session; neither needs a code change.
    """

    manage_local_server: bool = False

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.manage_local_server:
            spark_server.ensure(Settings.from_env())
        super().setup_for_execution(context)


class StorageResource(ConfigurableResource):
    """Where files are: the landing folder (local), the lake (local, hdfs:// or s3a://), exports."""

    landing_dir: str
    lake_root: str
    exports_dir: str
    lake_database: str = "retail_lake"  # silver, quarantine
    warehouse_database: str = "retail_dwh"  # dimensions, facts, insights

    @property
    def lake(self) -> Lake:
        return Lake(self.lake_root)

    def lake_table(self, layer: str, name: str) -> HourlyTable:
        """retail_lake.<layer>_<name> at lake/<layer>/<name> (silver, quarantine)."""
        return HourlyTable(f"{self.lake_database}.{layer}_{name}", self.lake.uri(layer, name))

    def warehouse_table(self, name: str, sub_partition: str | None = None) -> HourlyTable:
        """retail_dwh.<name> at lake/warehouse/<name>."""
        location = self.lake.uri("warehouse", name)
        return HourlyTable(f"{self.warehouse_database}.{name}", location, sub_partition)

    @property
    def exports(self) -> Lake:
        """The exports folder (a partner's drop folder may be remote too)."""
        return Lake(self.exports_dir)

    @property
    def landing_dir_path(self) -> Path:
        return Path(self.landing_dir)


class KafkaResource(ConfigurableResource):
    """Connection settings for any Kafka: the local broker, or SASL_SSL to a managed cluster.

    The username and password come from the environment as `EnvVar`s (the UI shows the
    variable's name, not its value); nothing here logs them or puts them in metadata.
    """

    bootstrap_servers: str
    topic: str = "app_logs"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = ""
    # Spark's source: "python" (this project's, over confluent-kafka) or "kafka" (Spark's own
    # connector, where the cluster has its jar)
    spark_source: str = "python"
    manage_local_broker: bool = False

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.manage_local_broker:
            kafka_broker.ensure(Settings.from_env())

    def client_config(self) -> dict[str, str]:
        """librdkafka settings shared by producers, consumers and the Spark source."""
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.security_protocol.upper().startswith("SASL"):
            config.update({
                "sasl.mechanisms": self.sasl_mechanism,
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password,
            })  # fmt: skip
        return config


def spark_resource(settings: Settings) -> SparkResource:
    if settings.spark_master:
        config = {"spark.master": settings.spark_master, **spark_server.session_conf(settings)}
    else:
        config = {"spark.remote": settings.spark_remote}
    return SparkResource(spark_config=config, manage_local_server=settings.manages_local_spark)


def storage_resource(settings: Settings) -> StorageResource:
    return StorageResource(
        landing_dir=str(settings.landing_dir),
        lake_root=settings.lake_root,
        exports_dir=settings.exports_dir,
        lake_database=settings.lake_database,
        warehouse_database=settings.warehouse_database,
    )


def kafka_resource(settings: Settings) -> KafkaResource:
    def secret(name: str):
        return EnvVar(name) if os.environ.get(name) else ""

    return KafkaResource(
        bootstrap_servers=settings.kafka_bootstrap,
        topic=settings.kafka_topic,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=secret("RETAIL_KAFKA_USERNAME"),
        sasl_password=secret("RETAIL_KAFKA_PASSWORD"),
        spark_source=settings.kafka_spark_source,
        manage_local_broker=settings.manages_local_kafka,
    )


def spark_session(settings: Settings):
    """A session for code outside Dagster runs (CLI, benchmarks), through the same resource."""
    spark_server.ensure(settings)
    return spark_session_from_config(spark_resource(settings).spark_config)
