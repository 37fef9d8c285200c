"""Resources: Spark (dagster-pyspark's resource) and Kafka; storage is `retail_assets.storage`."""

from __future__ import annotations

import gc

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from dagster_pyspark import PySparkResource
from dagster_pyspark.resources import spark_session_from_config
from pyspark.sql import SparkSession
from pyspark.sql.connect.client.retries import DefaultPolicy
from pyspark.sql.connect.session import SparkSession as ConnectSession

from retail_assets.servers.hive_metastore import LocalMetastore
from retail_assets.servers.kafka_broker import LocalBroker
from retail_assets.servers.kafka_tls import MECHANISM
from retail_assets.servers.spark_connect import LocalSparkServer, ensure_session_jars
from retail_assets.settings import (
    KAFKA_PASSWORD_VARIABLE,
    KAFKA_USER_VARIABLE,
    Settings,
    env_fields,
)
from retail_assets.streaming.kafka_offsets import TIMEOUT_S, Offsets, topic_offsets


class SparkResource(PySparkResource):
    """PySparkResource that first starts the embedded local Connect server when it is the target.

    `spark_config` decides where Spark is: {"spark.remote": "sc://…"} for Spark Connect, or
    {"spark.master": …} for a classic session; neither needs a code change. The session is
    made on first use; after the server went away (`went_away`) the next use makes a new
    one, as a restarted server does not know the old session.
    """

    local_server: LocalSparkServer | None = None  # set when the project runs the server itself
    # A classic session's (RETAIL_SPARK_MASTER) metastore: the local service, shared by every
    # process's session (an embedded Derby in each would admit one process at a time).
    local_metastore: LocalMetastore | None = None

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._spark_session = None

    @property
    def spark_session(self) -> SparkSession:
        if self._spark_session is None:
            self._spark_session = connect(self)
        return self._spark_session

    @property
    def restarts_on_retry(self) -> bool:
        """The retry's session starts the server again itself (`connect`)."""
        return self.local_server is not None

    def went_away(self) -> str:
        """Forget the session and say which server to bring back, and how."""
        stale, self._spark_session = self._spark_session, None
        if stale is not None and hasattr(stale, "client"):
            stale.client.set_retry_policies([])  # releasing it must not wait on the dead server
            stale.stop()
            del stale
            gc.collect()  # its finalizer runs now, between calls (see `connect`)
        where = self.spark_config.get("spark.remote") or self.spark_config.get("spark.master")
        start = "the retry starts it again" if self.local_server else "restart it"
        return (
            f"the Spark server {where} or its metastore stopped answering; {start}, or "
            "start it with `retail spark up` and re-execute the run"
        )


class ClientRetries(DefaultPolicy):
    """How long a Connect client waits for an unreachable server before the step fails and its
    retry policy (assets/retries.py) takes over with a new session.

    Spark's own default waits ~10 minutes (15 retries) before it says anything; these 8 wait
    ~45 s, time for a remote server to restart. The embedded server's process is ours to see:
    once it is gone, no wait brings it back (the step's retry starts it again), so the client
    gives up at once.
    """

    def __init__(self, local_server: LocalSparkServer | None):
        super().__init__(max_retries=8, max_backoff=10_000)
        self.local_server = local_server

    def can_retry(self, error: BaseException) -> bool:
        gone = self.local_server is not None and self.local_server.server.pid() is None
        return super().can_retry(error) and not gone


def connect(resource: SparkResource) -> SparkSession:
    """A session on the resource's Spark; the embedded server, or a classic session's
    metastore, started first when it is ours."""
    local_server = resource.local_server
    ours = local_server or resource.local_metastore
    if resource.local_metastore:  # a classic session loads the session jars from the home
        ensure_session_jars(resource.local_metastore.home)
    if ours:
        ours.up()
    session = spark_session_from_config(resource.spark_config)
    if isinstance(session, ConnectSession):
        session.client.set_retry_policies([ClientRetries(local_server)])
        if local_server:
            # pyspark's reattachable execution shares one thread pool among all sessions, and
            # closing any session shuts it down: a session finalized by the garbage collector
            # during another session's call deadlocks the process (seen in the tests). On
            # loopback there is no connection to reattach; the retry policy covers a restart.
            session.client.disable_reattachable_execute()
    return session


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
    # The CA file (PEM) that signed the broker's certificate, when it is not one the system
    # trusts (the cluster profile's own CA); empty: the system's.
    ssl_ca_location: str = ""
    local_broker: LocalBroker | None = None  # set when the project runs the broker itself
    # How long the sensor waits for the broker's answer before it skips as unreachable.
    sensor_timeout_s: float = 10

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.local_broker:
            self.local_broker.up()

    def went_away(self) -> str:
        return (
            f"the Kafka broker {self.bootstrap_servers} was unreachable; once it is back "
            "(`retail kafka up` for the embedded one) the retry or a re-execution goes on"
        )

    def client_config(self) -> dict[str, str]:
        """librdkafka settings shared by the producer, the sensor and the asset's offset checks."""
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
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config

    def spark_options(self) -> dict[str, str]:
        """The same connection for Spark's Kafka source (Java client settings, `kafka.`…)."""
        options = {
            "kafka.bootstrap.servers": self.bootstrap_servers,
            "kafka.security.protocol": self.security_protocol,
        }
        if self.security_protocol.upper().startswith("SASL"):
            module = "plain.PlainLoginModule" if self.sasl_mechanism.upper() == "PLAIN" else (
                "scram.ScramLoginModule")  # fmt: skip
            options.update({
                "kafka.sasl.mechanism": self.sasl_mechanism,
                "kafka.sasl.jaas.config": f"org.apache.kafka.common.security.{module} required "
                f'username="{self.sasl_username}" password="{self.sasl_password}";',
            })  # fmt: skip
        if self.ssl_ca_location:
            options.update({"kafka.ssl.truststore.type": "PEM",
                            "kafka.ssl.truststore.location": self.ssl_ca_location})  # fmt: skip
        return options

    def offsets(self, timeout: float = TIMEOUT_S) -> Offsets:
        """Where each partition of the topic starts and ends (empty: no topic yet)."""
        return topic_offsets(self.client_config(), self.topic, timeout)


def spark_resource(settings: Settings) -> SparkResource:
    local = LocalSparkServer.of(settings)
    if settings.spark_master:
        config = {"spark.master": settings.spark_master, **local.session_conf()}
        return SparkResource(spark_config=config, local_metastore=local.metastore)
    config = {"spark.remote": settings.spark_remote}
    return SparkResource(
        spark_config=config, local_server=local if settings.manages_local_spark else None
    )


def kafka_resource(settings: Settings) -> KafkaResource:
    """The deployment's Kafka: the fields its environment sets, the class's defaults otherwise
    (the cluster profile's own broker: SASL_SSL with SCRAM-SHA-512 and its CA).

    The credentials are `EnvVar`s whenever the protocol is SASL: Dagster reads them when a run
    starts (a missing one fails the run by name), and never shows their values.
    """
    local = LocalBroker.of(settings) if settings.manages_local_kafka else None
    fields = {}
    if local and local.sasl_ssl:
        fields = dict(security_protocol=local.protocol, sasl_mechanism=MECHANISM,
                      ssl_ca_location=str(local.certificates.ca))  # fmt: skip
    fields |= env_fields(
        topic="RETAIL_KAFKA_TOPIC",
        security_protocol="RETAIL_KAFKA_SECURITY_PROTOCOL",
        sasl_mechanism="RETAIL_KAFKA_SASL_MECHANISM",
        ssl_ca_location="RETAIL_KAFKA_SSL_CA_LOCATION",
    )
    if fields.get("security_protocol", "").upper().startswith("SASL"):
        fields.update(
            sasl_username=EnvVar(KAFKA_USER_VARIABLE),
            sasl_password=EnvVar(KAFKA_PASSWORD_VARIABLE),
        )
    return KafkaResource(bootstrap_servers=settings.kafka_bootstrap, local_broker=local, **fields)


def spark_session(settings: Settings) -> SparkSession:
    """A session for code outside Dagster runs (CLI, benchmarks), through the same resource."""
    return connect(spark_resource(settings))
