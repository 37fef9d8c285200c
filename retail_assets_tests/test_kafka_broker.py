"""The embedded Apache Kafka broker's start failures: one line naming the cause and the fix,
the Java trace left in its log. (Its durability across kill -9 is test_cluster's.)"""

import fcntl
from concurrent.futures import ThreadPoolExecutor

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


def test_two_starts_at_once_start_one_broker(tmp_path):
    """As a sensor's tick and `retail kafka up` may: each start writes the settings and formats
    the log unless they take turns; both calls must return the one broker."""
    broker = LocalBroker(home=str(tmp_path), port=free_port())
    try:
        with ThreadPoolExecutor(2) as pool:
            started = [pool.submit(broker.up) for _ in range(2)]
            pids = {future.result()["pid"] for future in started}
    finally:
        broker.down()
    assert len(pids) == 1 and None not in pids, pids
