"""Resources: Spark (dagster-pyspark's resource) and Kafka; storage is `retail_assets.storage`."""

from __future__ import annotations

import os

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from dagster_pyspark import PySparkResource
from dagster_pyspark.resources import spark_session_from_config

from retail_assets.servers import kafka_broker, spark_connect
from retail_assets.settings import Settings


class SparkResource(PySparkResource):
    """PySparkResource that first starts the embedded local Connect server when it is the target.

    `spark_config` decides where Spark is: {"spark.remote": "sc://…"} for Spark Connect, or
    {"spark.master": …} for a classic session; neither needs a code change.
    """

    manage_local_server: bool = False

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.manage_local_server:
            spark_connect.ensure(Settings.from_env())
        super().setup_for_execution(context)


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
        config = {"spark.master": settings.spark_master, **spark_connect.session_conf(settings)}
    else:
        config = {"spark.remote": settings.spark_remote}
    return SparkResource(spark_config=config, manage_local_server=settings.manages_local_spark)


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
    spark_connect.ensure(settings)
    return spark_session_from_config(spark_resource(settings).spark_config)
