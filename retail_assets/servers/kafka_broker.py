"""The embedded default Kafka: one Apache Kafka process in KRaft mode (broker and controller),
for development and tests; a real Kafka is reached by configuration only (RETAIL_KAFKA_BOOTSTRAP
and the SASL settings of the `kafka` resource).

It runs from the pinned `kafka-broker` jars (jvm/pom.xml) with a capped heap. Its log (the
topics' data) lives in `$RETAIL_HOME/kafka/log`, formatted once, on the first start; so
acknowledged events survive a restart or a kill -9 like on any Kafka. On the cluster profile
it takes clients only over SASL_SSL with SCRAM-SHA-512 (servers/kafka_tls.py).
"""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from retail_assets.servers import jars
from retail_assets.servers.java import check_java, java_binary
from retail_assets.servers.kafka_tls import MECHANISM, Certificates, scram_credential
from retail_assets.servers.supervisor import (
    LocalServer,
    ServiceError,
    file_lock,
    free_port,
    secret,
    wait_until,
)
from retail_assets.settings import (
    KAFKA_BROKER_PASSWORD_VARIABLE,
    KAFKA_PASSWORD_VARIABLE,
    KAFKA_USER_VARIABLE,
    Settings,
)

JAR_SET = "kafka-broker"
MAIN_CLASS = "kafka.Kafka"
BROKER_USER = "broker"  # the SCRAM user the broker is to itself (SASL_SSL only)
ENV_PROVIDER = "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
START_TIMEOUT_S = 90
FORMAT_TIMEOUT_S = 120
LOG_FILES_KEPT = 4

# Kafka's own log4j2 output, to one rolling file (its default writes five files that grow).
LOG_LEVELS = {"kafka": "warn", "org.apache.kafka": "warn", "state.change.logger": "warn",
              "kafka.server.KafkaRaftServer": "info"}  # fmt: skip

# What a failed start's log says → the one line the user sees (the trace stays in the log).
KNOWN_CAUSES = (
    ("Failed to acquire lock on file .lock",
     "its log folder {log_dir} is held by another Kafka process; stop that one, or give this "
     "home its own folder (RETAIL_HOME)"),
    ("Address already in use",
     "its port {port} (or its controller's) is taken by another process; stop it or choose "
     "another port (RETAIL_KAFKA_PORT)"),
    ("No space left on device",
     "the disk of {log_dir} is full; free space (see docs/runbook.md, full disk)"),
    ("Invalid cluster.id",
     "its log folder {log_dir} belongs to another Kafka cluster; move it away or use its own "
     "RETAIL_HOME"),
)  # fmt: skip


class LocalBroker(LocalServer):
    """The embedded broker's own configuration (a field of KafkaResource when it is the target)."""

    NAME = "kafka-broker"
    CMDLINE_MARKER = MAIN_CLASS

    # Heap of the broker JVM: the embedded broker serves one project's topics (RSS ~360 MB).
    heap_mb: int = 512
    partitions: int = 3  # of a topic a client creates by producing to it
    # The cluster profile: clients only over TLS with SASL/SCRAM-SHA-512, the controller's
    # listener only with a certificate of the broker's CA (mutual TLS).
    sasl_ssl: bool = False

    @classmethod
    def of(cls, settings: Settings) -> LocalBroker:
        return cls(home=str(settings.home), port=settings.kafka_port, sasl_ssl=settings.is_cluster)

    @property
    def certificates(self) -> Certificates:
        return Certificates(self.folder / "tls")

    @property
    def protocol(self) -> str:
        return "SASL_SSL" if self.sasl_ssl else "PLAINTEXT"

    @property
    def folder(self) -> Path:
        return Path(self.home) / "kafka"

    @property
    def log_dir(self) -> Path:
        """The topics' data (Kafka's "log"), with the cluster's identity in meta.properties."""
        return self.folder / "log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def properties(self, controller_port: int) -> str:
        """server.properties of a one-node cluster on loopback: every replication factor 1."""
        protocol = self.protocol
        listeners = f"{protocol}://{self.bootstrap},CONTROLLER://127.0.0.1:{controller_port}"
        controller = "SSL" if self.sasl_ssl else "PLAINTEXT"
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners={listeners}",
            f"advertised.listeners={protocol}://{self.bootstrap}",
            "controller.listener.names=CONTROLLER",
            f"inter.broker.listener.name={protocol}",
            f"listener.security.protocol.map={protocol}:{protocol},CONTROLLER:{controller}",
            *(self.security_properties() if self.sasl_ssl else []),
            f"log.dirs={self.log_dir}",
            f"num.partitions={self.partitions}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",  # 50 by default: recovered one by one after a crash
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # After a crash the restarted broker waits out its old registration's session (9 s
            # by default) before it leads again: one node on loopback needs no long one.
            "broker.heartbeat.interval.ms=500",
            "broker.session.timeout.ms=2000",
        ]) + "\n"  # fmt: skip

    def security_properties(self) -> list[str]:
        """TLS on both listeners, SCRAM on the clients' one; the broker's own password comes
        from its environment through Kafka's EnvVarConfigProvider: it is in no file."""
        tls = self.certificates
        secret = f"${{env:{KAFKA_BROKER_PASSWORD_VARIABLE}}}"
        jaas = (f"org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{BROKER_USER}" password="{secret}";')  # fmt: skip
        return [
            "config.providers=env",
            f"config.providers.env.class={ENV_PROVIDER}",
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={tls.keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={tls.ca}",
            "listener.name.controller.ssl.client.auth=required",
        ]

    def admin_config(self) -> dict[str, str]:
        """librdkafka settings for the broker's own checks (as its own SCRAM user)."""
        config = {"bootstrap.servers": self.bootstrap, "security.protocol": self.protocol}
        if self.sasl_ssl:
            config.update({
                "sasl.mechanisms": MECHANISM,
                "sasl.username": BROKER_USER,
                "sasl.password": secret(KAFKA_BROKER_PASSWORD_VARIABLE),
                "ssl.ca.location": str(self.certificates.ca),
            })  # fmt: skip
        return config

    def java_command(self, main: str, *args: str) -> list[str]:
        classpath = f"{jars.jars_dir(self.home) / JAR_SET}/*"  # ensured by `up` first
        settings = self.server.rolling_log_settings(16 * 1024, LOG_FILES_KEPT, LOG_LEVELS)
        return [
            java_binary(), f"-Xmx{self.heap_mb}m", "-Xms64m", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={settings}",
            f"-Dorg.apache.kafka.automatic.config.providers={ENV_PROVIDER}",
            "-cp", classpath, main, *args,
        ]  # fmt: skip

    def format_once(self, config: Path) -> None:
        """Give the log folder its cluster identity, the first time only (it keeps it)."""
        if (self.log_dir / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        users = []
        if self.sasl_ssl:  # the SCRAM users, salted: no password on the command line
            client = os.environ.get(KAFKA_USER_VARIABLE) or "retail"
            for user, variable in ((BROKER_USER, KAFKA_BROKER_PASSWORD_VARIABLE),
                                   (client, KAFKA_PASSWORD_VARIABLE)):  # fmt: skip
                users += ["--add-scram", scram_credential(user, secret(variable))]
        command = self.java_command("kafka.tools.StorageTool", "format", "--ignore-formatted",
                                    f"--cluster-id={cluster_id}", "-c", str(config),
                                    *users)  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            # The exception's own line says why; the trace's last frame does not.
            reason = next((line for line in lines if "Exception" in line or "Error" in line),
                          lines[-1])  # fmt: skip
            raise ServiceError(f"{self.name}: formatting {self.log_dir} failed: {reason}")

    def up(self) -> dict:
        """Start the broker (or find it running) and wait until it leads its partitions."""
        # One starter at a time from here to the start: a sensor's tick and `retail kafka up`
        # at once would each write the settings and format the log (the second one fails).
        with file_lock(self.folder / "start.lock"):
            status = self._start() if self.server.pid() is None else self.status()
        wait_until(self.leads_its_partitions, START_TIMEOUT_S,
                   f"{self.name} did not lead its partitions within {START_TIMEOUT_S}s "
                   f"(log: {self.server.log_file})")  # fmt: skip
        return status

    def _start(self) -> dict:
        check_java()
        self.server.check_port()
        jars.ensure(self.home, JAR_SET)  # before anything starts
        if self.sasl_ssl:
            secret(KAFKA_BROKER_PASSWORD_VARIABLE)
            self.certificates.ensure()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        config = self.folder / "server.properties"
        config.write_text(self.properties(free_port()), encoding="utf-8")
        self.format_once(config)
        causes = [(seen, what.format(log_dir=self.log_dir, port=self.port))
                  for seen, what in KNOWN_CAUSES]  # fmt: skip
        command = self.java_command(MAIN_CLASS, str(config))
        return self.start(command, dict(os.environ), START_TIMEOUT_S, causes)

    def leads_its_partitions(self) -> bool:
        """The broker answers metadata and every partition has its leader: after a restart
        the port opens seconds before clients can produce (NOT_LEADER_FOR_PARTITION)."""
        admin = AdminClient({**self.admin_config(), "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=2)
        except KafkaException:
            return False
        return bool(metadata.brokers) and all(
            topic.error is None and all(p.leader >= 0 and p.error is None
                                        for p in topic.partitions.values())
            for topic in metadata.topics.values()
        )  # fmt: skip


def ensure(settings: Settings) -> None:
    """Start the embedded broker when it is the configured target; a remote Kafka is left be."""
    if settings.manages_local_kafka:
        LocalBroker.of(settings).up()
