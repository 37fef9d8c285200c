"""Recovery's small parts on real Dagster: which errors are retried, runs left STARTED by a
dead worker, and the writer lock's wait (the processes killed for real: test_faults.py)."""

import os
import subprocess

import grpc
import pytest
from confluent_kafka import KafkaError, KafkaException
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RetryPolicy,
    asset,
    build_sensor_context,
    materialize,
)
from dagster._core.test_utils import create_run_for_test
from pyspark.errors import RetriesExceeded

from retail_assets.assets.retries import final_unless_transient, server_away
from retail_assets.orchestration.runs import fail_orphaned_runs
from retail_assets.orchestration.sensors import orphaned_runs
from retail_assets.orchestration.workers import WORKER_TAG, worker
from retail_assets.orchestration.writer_lock import LockTimeout, writer_lock
from retail_assets.resources import ClientRetries, KafkaResource, SparkResource
from retail_assets.servers.spark_connect import LocalSparkServer
from retail_assets_tests.helpers import messages

SPARK_GONE = RetriesExceeded(errorClass="RETRIES_EXCEEDED", messageParameters={})


def test_a_server_away_is_told_from_a_data_error(spark):
    brokers_down = KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert server_away(SPARK_GONE) is SparkResource
    assert server_away(brokers_down) is KafkaResource
    try:  # an error raised while handling one keeps it as its context
        try:
            raise SPARK_GONE
        except RetriesExceeded:
            raise RuntimeError("the facts write failed") from None
    except RuntimeError as wrapped:
        assert server_away(wrapped) is None  # `from None`: the cause was cut on purpose
    with pytest.raises(Exception) as data_error:
        spark.sql("SELECT no_such_column FROM range(1)").collect()
    assert server_away(data_error.value) is None
    assert server_away(ValueError("price 'abc' is not a number")) is None
    # A Kafka error of our own making (a message, no KafkaError) is about the data.
    assert server_away(KafkaException("the broker's end offsets are behind the checkpoint")) is None


GONE = "sc://127.0.0.1:9"
POLICY_DELAY = 0.2


def attempts(
    error: Exception, fails: int, local_server: LocalSparkServer | None = None
) -> tuple[bool, list[tuple[str, float]]]:
    """Materialize an asset that raises `error` on its first `fails` attempts under a
    3-retry policy, on a Spark resource whose server is at GONE (the project's own when
    `local_server` is given): whether it ended well, and each retry's message and wait."""
    tries = []

    @asset(retry_policy=RetryPolicy(max_retries=3, delay=POLICY_DELAY))
    @final_unless_transient
    def flaky(spark: SparkResource) -> None:
        tries.append(1)
        if len(tries) <= fails:
            raise error

    instance = DagsterInstance.ephemeral()
    gone = SparkResource(spark_config={"spark.remote": GONE}, local_server=local_server)
    result = materialize([flaky], resources={"spark": gone}, instance=instance,
                         raise_on_error=False)  # fmt: skip
    events = instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY)
    retried = [event.dagster_event.event_specific_data for event in events]
    return result.success, [(messages(retry.error), retry.seconds_to_wait) for retry in retried]


def test_a_server_away_is_retried_and_named_with_its_recovery_command():
    succeeded, retries = attempts(SPARK_GONE, fails=2)
    assert succeeded and [wait for _, wait in retries] == [POLICY_DELAY] * 2
    assert GONE in retries[0][0] and "retail spark up" in retries[0][0]


def test_a_server_the_project_runs_is_retried_at_once(settings, tmp_path):
    """The retry's resource starts the embedded server again: waiting would only be waiting."""
    ours = LocalSparkServer.of(settings).model_copy(update={"home": str(tmp_path)})
    succeeded, retries = attempts(SPARK_GONE, fails=2, local_server=ours)
    assert succeeded and [wait for _, wait in retries] == [0, 0]
    assert GONE in retries[0][0] and "the retry starts it again" in retries[0][0]


class Unavailable(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE


def test_the_client_stops_waiting_once_the_embedded_servers_process_is_gone(
    spark, settings, tmp_path
):
    running = LocalSparkServer.of(settings)  # the session's server, up
    gone = running.model_copy(update={"home": str(tmp_path)})  # no process of ours there
    assert ClientRetries(running).can_retry(Unavailable())
    assert ClientRetries(None).can_retry(Unavailable())  # a remote server: wait for it
    assert not ClientRetries(gone).can_retry(Unavailable())
    assert not ClientRetries(running).can_retry(ValueError("not a server's absence"))


def test_a_data_error_fails_at_once():
    succeeded, retries = attempts(ValueError("price 'abc' is not a number"), fails=1)
    assert not succeeded and retries == []


def test_runs_whose_worker_died_are_failed_and_no_others(tmp_path):
    ended = subprocess.Popen(["sleep", "60"])
    dead = worker(ended.pid)
    ended.kill()
    ended.wait()
    host, pid, started = worker(os.getpid()).rsplit(":", 2)
    tags = {
        "dead": dead,
        "alive": worker(os.getpid()),
        "reused_pid": f"{host}:{pid}:{int(started) - 1}",  # same pid, another process
        "other_host": f"elsewhere:{pid}:1",  # cannot be checked from here: left alone
    }
    with DagsterInstance.ephemeral() as instance:
        runs = {name: create_run_for_test(instance, job_name=name, tags={WORKER_TAG: tag},
                                          status=DagsterRunStatus.STARTED)  # fmt: skip
                for name, tag in tags.items()}  # fmt: skip
        untagged = create_run_for_test(instance, status=DagsterRunStatus.STARTED)
        assert sorted(fail_orphaned_runs(instance)) == sorted(
            [runs["dead"].run_id, runs["reused_pid"].run_id]
        )
        status = {name: instance.get_run_by_id(run.run_id).status for name, run in runs.items()}
        assert status == {"dead": DagsterRunStatus.FAILURE, "alive": DagsterRunStatus.STARTED,
                          "reused_pid": DagsterRunStatus.FAILURE,
                          "other_host": DagsterRunStatus.STARTED}  # fmt: skip
        assert instance.get_run_by_id(untagged.run_id).status == DagsterRunStatus.STARTED
        assert orphaned_runs(build_sensor_context(instance=instance)).skip_message == (
            "no orphaned runs"  # the first pass failed them already
        )


def test_the_writer_lock_names_its_holder_and_gives_up_after_its_timeout(tmp_path):
    said = []
    held = pytest.raises(LockTimeout, match="still held by run 1234 of hourly_pipeline")
    second = writer_lock(tmp_path, "run 5678", timeout=0.3, say=said.append, poll=0.05)
    with writer_lock(tmp_path, "run 1234 of hourly_pipeline"), held, second:
        pass
    assert said == [
        f"waiting for the writer lock {tmp_path / '.writer.lock'}, held by run 1234 of "
        f"hourly_pipeline (pid {os.getpid()})"
    ]
    with writer_lock(tmp_path, "run 5678", timeout=0.3):  # released by its holder
        pass


def test_the_embedded_servers_sessions_share_no_release_pool(spark):
    """pyspark's reattachable execution hands releases to one thread pool shared by every
    session, and any session's close shuts it down. A session finalized by the garbage
    collector while another submitted to that pool deadlocked the test process (seen: the
    storage modules run alone hung in test_stream_tables). The embedded server's sessions,
    the resource's and the tests', do not use it; a remote server's keep reattaching."""
    from pyspark.sql.connect.client.reattach import ExecutePlanResponseReattachableIterator

    pool = ExecutePlanResponseReattachableIterator
    pool.shutdown()  # whatever other sessions made before
    spark.range(3).collect()  # the session `connect` made, as the Spark resource's
    assert pool._release_thread_pool_instance is None
