"""The embedded Apache Kafka broker's start failures: one line naming the cause and the fix,
the Java trace left in its log. (Its durability across kill -9 is test_cluster's.)"""

import fcntl

import pytest

from retail_assets.servers.kafka_broker import LocalBroker
from retail_assets.servers.supervisor import ServiceError, free_port


def test_a_log_folder_held_by_another_process_is_one_line_naming_it(tmp_path):
    broker = LocalBroker(home=str(tmp_path), port=free_port())
    broker.log_dir.mkdir(parents=True)
    try:
        with open(broker.log_dir / ".lock", "a") as held:  # as another Kafka holds it
            fcntl.lockf(held, fcntl.LOCK_EX)
            with pytest.raises(ServiceError) as refused:
                broker.up()
    finally:
        broker.down()
    message = str(refused.value)
    assert "\n" not in message and "Exception" not in message, message
    assert f"its log folder {broker.log_dir} is held by another Kafka process" in message
    assert "Failed to acquire lock" in broker.server.log_file.read_text()  # the trace: logged
