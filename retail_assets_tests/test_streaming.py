"""The streaming path against the session's Apache Kafka broker and Spark server: producer,
Spark's Kafka source, app_events, window counts, the Kafka sensor, and exactly-once across a
kill -9.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SkipReason,
    build_sensor_context,
    materialize,
)
from pyspark.sql import functions as F

from retail_assets.assets.streaming import app_events
from retail_assets.definitions import defs
from retail_assets.orchestration.jobs import app_events_job
from retail_assets.orchestration.sensors import kafka_sensor
from retail_assets.resources import KafkaResource, spark_resource
from retail_assets.servers.kafka_broker import LocalBroker
from retail_assets.servers.supervisor import ServiceError, free_port
from retail_assets.streaming.events import events, produce
from retail_assets.streaming.kafka_offsets import topic_offsets
from retail_assets.transforms.events import parse_events
from retail_assets_tests.helpers import declared_columns, make_storage, written_columns

pytestmark = pytest.mark.e2e

START = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
SPACING = timedelta(seconds=2)


def new_stream(base, settings, name):
    """A stream of its own: topic, lake and databases no other test reads or writes."""
    storage = make_storage(base, name)
    kafka = KafkaResource(
        bootstrap_servers=settings.kafka_bootstrap,
        topic=f"t_{name}",
        local_broker=LocalBroker.of(settings),  # the session's broker, already up
    )
    return storage, kafka, []


@pytest.fixture
def stream(request, tmp_path, settings, kafka):
    return new_stream(tmp_path, settings, request.node.name.removeprefix("test_")[:40])


def send(stream, count, seed, start, extra=None):
    """Produce `count` events and remember what was sent (the test's own record)."""
    _, kafka, sent = stream
    batch = list(events(count, seed, start=start, spacing=SPACING, extra=extra))
    report = produce(kafka.client_config(), kafka.topic, iter(batch))
    assert report["delivered"] == count and report["failed"] == 0
    sent.extend(batch)


def stream_pass(settings, stream):
    storage, kafka, _ = stream
    result = materialize(
        [app_events],
        resources={"spark": spark_resource(settings), "storage": storage, "kafka": kafka},
    )
    assert result.success
    return result.asset_materializations_for_node("app_events")[0].metadata


def landed(spark, storage, table="app_events"):
    return spark.table(f"{storage.warehouse_database}.{table}")


# ---------------------------------------------------------------- producer and broker


def test_produce_to_an_unreachable_broker_is_a_clear_error():
    config = {"bootstrap.servers": f"127.0.0.1:{free_port()}"}
    with pytest.raises(ServiceError, match="unreachable"):
        produce(config, "t_unreachable", events(1, seed=1), timeout=1)


# ---------------------------------------------------------------- landing


@pytest.fixture(scope="module")
def landing(tmp_path_factory, settings, spark, kafka):
    """One pass over 900 events, one with an unknown nested field and one that is not JSON."""
    stream = new_stream(tmp_path_factory.mktemp("landing"), settings, "landing")
    _, kafka, sent = stream
    send(stream, 900, seed=1, start=START, extra={"campaign": "spring"})
    odd = {**next(events(1, 2, start=START)), "device": {"os": "ios", "version": 17}}
    produce(kafka.client_config(), kafka.topic, iter([odd]))
    sent.append(odd)
    raw = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    raw.produce(kafka.topic, b"not json")
    assert raw.flush(30) == 0
    return stream, stream_pass(settings, stream)


def test_produced_events_land_exactly_once_with_unknown_fields_kept(spark, landing):
    (storage, _, sent), metadata = landing

    rows = landed(spark, storage).collect()
    assert len(rows) == len(sent) + 1
    assert len({(r.kafka_partition, r.kafka_offset) for r in rows}) == len(rows)
    assert metadata["input_rows"].value == len(rows)
    assert sum(metadata["remaining_lag"].value.values()) == 0
    valid = [r for r in rows if r.is_valid]
    got = Counter((r.event_type, r.customer_id, r.event_time.strftime("%Y-%m-%dT%H:%M:%S"))
                  for r in valid)  # fmt: skip
    assert got == Counter((e["eventType"], e["customerId"], e["timestamp"]) for e in sent)
    extras = [json.loads(r.extra_fields) for r in valid]
    assert sum(e == {"campaign": "spring"} for e in extras) == 900
    (device,) = [e["device"] for e in extras if "device" in e]
    assert json.loads(device) == {"os": "ios", "version": 17}
    (bad,) = [r for r in rows if not r.is_valid]
    assert bad.raw_value == "not json"
    purchases = [r for r in valid if r.event_type == "purchase"]
    assert purchases and all(r.quantity and r.total_amount and r.payment_method for r in purchases)
    # Delta tables, a version per micro-batch, the newest one in the metadata
    table = f"{storage.warehouse_database}.app_events"
    assert spark.sql(f"DESCRIBE DETAIL {table}").first().format == "delta"
    history = spark.sql(f"DESCRIBE HISTORY {table}").orderBy("version").collect()
    assert [h.operation for h in history] == ["CREATE TABLE", "STREAMING UPDATE"]
    assert history[-1].operationMetrics["numOutputRows"] == str(len(rows))
    assert metadata["table_version"].value == history[-1].version


def test_app_events_has_the_columns_the_ui_declares(spark, landing):
    (storage, _, _), _ = landing
    assert declared_columns("app_events") == written_columns(spark, storage, "app_events")


def test_the_events_table_reads_without_spark_as_spark_reads_it(spark, landing):
    """delta-rs (the `deltalake` package) reads the table from its folder alone: no
    metastore, no Spark, no code of ours."""
    from deltalake import DeltaTable

    (storage, _, _), _ = landing
    columns = ["kafka_partition", "kafka_offset", "event_type", "event_date"]
    table = DeltaTable(storage.stream_table("app_events").location)
    read = table.to_pandas(columns=columns)
    by_spark = landed(spark, storage).select(*columns).collect()
    assert Counter(read.itertuples(index=False, name=None)) == Counter(map(tuple, by_spark))
    newest = spark.sql(f"DESCRIBE HISTORY {storage.warehouse_database}.app_events LIMIT 1")
    assert table.version() == newest.first().version


def test_window_counts_equal_a_count_over_the_landed_events(spark, landing):
    (storage, _, _), _ = landing
    events_ = landed(spark, storage).where("is_valid").collect()
    counted = Counter()
    for r in events_:
        start = r.event_time.replace(minute=r.event_time.minute // 5 * 5, second=0)
        counted[(start, r.event_type)] += 1
    # final = the watermark (latest event time - 10 minutes) has passed the window's end
    watermark = max(r.event_time for r in events_) - timedelta(minutes=10)
    final = {k: n for k, n in counted.items() if k[0] + timedelta(minutes=5) <= watermark}
    windows = landed(spark, storage, "app_event_counts").collect()
    assert final and len(windows) == len(final)  # each final window once, no open one
    assert {(w.window_start, w.event_type): w.events for w in windows} == final


def test_each_record_is_parsed_once_and_only_one_with_new_fields_again(spark):
    """Fields taken straight off from_json become a parse each in the optimized plan (15 per
    record, most of the events query's CPU): the typed parse and the key listing run once per
    record, the catch-all parse only where a key is not a known field."""
    value = '{"eventType": "purchase", "coupon": "X%d", "timestamp": "2025-05-01T10:00:00"}'
    records = spark.range(3).select(  # not literal rows: the optimizer would fold the parse away
        F.lit(0).alias("kafka_partition"),
        F.col("id").alias("kafka_offset"),
        F.current_timestamp().alias("kafka_timestamp"),
        F.lit("1").alias("key"),
        F.format_string(value, "id").alias("value"),
    )
    plan = parse_events(records)._explain_string(mode="simple")
    assert plan.count("from_json(") == 2 and plan.count("jsonObjectKeys(") == 1, plan
    catch_all = plan.index("from_json(MapType(StringType,StringType")
    assert plan.rfind("CASE WHEN exists(_keys", 0, catch_all) > plan.rfind(" END AS ", 0, catch_all)


def test_records_without_new_fields_have_none_and_non_objects_are_kept_whole(spark):
    values = [
        '{"eventType": "view", "timestamp": "2025-05-01T10:00:00", "metadata": {"a": "b"}}',
        '{"eventType": "view", "timestamp": "2025-05-01T10:00:00", "device": {"os": "ios"}}',
        '{"timestamp": "2025-05-01T10:00:00", "quantity": "many"}',
        "[1, 2]",
        "{}",
    ]
    records = spark.createDataFrame(
        [(0, offset, None, None, value) for offset, value in enumerate(values)],
        "kafka_partition int, kafka_offset long, kafka_timestamp timestamp, key binary, "
        "value string",
    )
    rows = parse_events(records).orderBy("kafka_offset").collect()
    assert [r.is_valid for r in rows] == [True, True, True, False, False]
    assert [r.extra_fields for r in rows[:3]] == [None, '{"device":"{\\"os\\":\\"ios\\"}"}', None]
    assert rows[0].metadata == {"a": "b"} and rows[2].quantity is None
    assert [r.raw_value for r in rows] == [None, None, None, "[1, 2]", "{}"]


def test_a_pass_on_a_home_of_the_layout_before_delta_is_refused_by_name(spark, settings, stream):
    """Also a pass with nothing new to land, which starts no query: it reads nothing."""
    storage, kafka, _ = stream
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {storage.warehouse_database}")
    spark.sql(f"CREATE VIEW {storage.warehouse_database}.app_events AS SELECT 1 AS kafka_offset")
    resources = {"spark": spark_resource(settings), "storage": storage, "kafka": kafka}

    result = materialize([app_events], resources=resources, raise_on_error=False)

    (failure,) = [event for event in result.all_events if event.is_step_failure]
    error = failure.step_failure_data.error.to_string()
    assert f"{storage.warehouse_database}.app_events is of the streaming layout before" in error


def test_events_produced_between_runs_are_landed_by_the_next_run(spark, settings, stream):
    storage, _, _ = stream
    send(stream, 100, seed=3, start=START)
    assert stream_pass(settings, stream)["input_rows"].value == 100
    send(stream, 300, seed=3, start=START + 100 * SPACING)
    metadata = stream_pass(settings, stream)
    assert metadata["input_rows"].value == 300
    assert metadata["start_offsets"].value != metadata["end_offsets"].value
    assert landed(spark, storage).count() == 400


def test_a_pass_whose_batches_another_query_ran_ends_where_the_checkpoint_is(
    spark, settings, stream
):
    """A query a killed run left on the server may commit the batches after a pass read its
    position and before its own query started: the pass then ends where the checkpoint is."""
    from retail_assets.assets.streaming import EVENTS
    from retail_assets.assets.streaming import stream_pass as query_pass
    from retail_assets.storage.checkpoints import position

    storage, kafka, _ = stream
    send(stream, 200, seed=7, start=START)
    starts, ends = kafka.offsets()
    before = position(storage.last_commit(kafka.topic, EVENTS), starts)  # read, then…
    stream_pass(settings, stream)  # …another query on the checkpoint lands every event
    summary = query_pass(spark, kafka, storage, EVENTS, before, ends, max_per_batch=1000)
    assert (summary["batches"], summary["end_offsets"]) == (0, ends)
    assert landed(spark, storage).count() == 200


# ---------------------------------------------------------------- the sensor


def sensor_decision(stream, instance, kafka=None):
    storage, own, _ = stream
    resources = {"kafka": kafka or own, "storage": storage}
    with build_sensor_context(instance=instance, resources=resources) as context:
        return kafka_sensor(context)


def test_sensor_requests_a_run_only_for_uncommitted_events(spark, settings, stream):
    with DagsterInstance.ephemeral() as instance:
        idle = sensor_decision(stream, instance)
        assert isinstance(idle, SkipReason) and "does not exist" in idle.skip_message
        send(stream, 50, seed=4, start=START)
        request = sensor_decision(stream, instance)
        assert isinstance(request, RunRequest)
        assert request.tags["retail/lane"] == "streaming"
        assert sensor_decision(stream, instance).run_key == request.run_key  # same offsets

        job = defs().resolve_job_def(app_events_job.name)
        instance.create_run_for_job(job, status=DagsterRunStatus.STARTED)
        busy = sensor_decision(stream, instance)
        assert isinstance(busy, SkipReason) and "in flight" in busy.skip_message

    stream_pass(settings, stream)  # lands the 50
    with DagsterInstance.ephemeral() as instance:
        idle = sensor_decision(stream, instance)
        assert isinstance(idle, SkipReason) and "no events" in idle.skip_message


def test_sensor_skips_with_the_reason_when_the_broker_is_down(stream):
    down = KafkaResource(
        bootstrap_servers=f"127.0.0.1:{free_port()}", topic=stream[1].topic, sensor_timeout_s=1
    )
    with DagsterInstance.ephemeral() as instance:
        decision = sensor_decision(stream, instance, kafka=down)
    assert isinstance(decision, SkipReason) and "not reachable" in decision.skip_message


# ---------------------------------------------------------------- kill -9


KILL_ENV = {"RETAIL_KAFKA_TOPIC": "t_kill", "RETAIL_LAKE_DB": "t_lake_kill",
            "RETAIL_DWH_DB": "t_dwh_kill"}  # fmt: skip


def retail_stream():
    env = {**os.environ, **KILL_ENV}
    return subprocess.Popen(
        [sys.executable, "-m", "retail_assets.cli", "stream"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def test_a_run_killed_mid_batch_then_run_again_lands_each_event_once(
    spark, settings, kafka, monkeypatch
):
    from retail_assets.storage.resource import storage_resource

    topic, count = KILL_ENV["RETAIL_KAFKA_TOPIC"], 40_000
    report = produce({"bootstrap.servers": kafka}, topic, events(count, seed=5, start=START))
    assert report["delivered"] == count
    for name, value in KILL_ENV.items():
        monkeypatch.setenv(name, value)
    storage = storage_resource(settings)  # the CLI's, on the test's own databases
    checkpoint = storage.checkpoint_uri(topic, "app_events")
    first = retail_stream()
    try:
        deadline = time.monotonic() + 240
        while not os.path.exists(f"{checkpoint}/offsets/0"):  # the batch is planned, running
            assert first.poll() is None, first.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the first pass never planned a batch"
            time.sleep(0.1)
        assert not os.path.exists(f"{checkpoint}/commits/0")  # …and not yet committed
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    # A query left running on the same checkpoint (as a killed client's query may be) must
    # not corrupt it: the next pass takes over.
    orphan = start_orphan(spark, settings, storage, topic)
    more = produce({"bootstrap.servers": kafka}, topic, events(2000, seed=6, start=START))
    # Two passes started together (a `retail stream` beside the sensor's run): one waits.
    second, third = retail_stream(), retail_stream()
    outputs = [finish(process) for process in (second, third)]  # both end before any assert
    for code, text in outputs:
        assert code == 0, text[-3000:]
        assert sum(json.loads(text.splitlines()[-1])["remaining_lag"].values()) == 0
    assert not orphan.isActive
    instance = DagsterInstance.get()
    runs = instance.get_runs(RunsFilter(job_name=app_events_job.name))
    waited = [r.user_message for run in runs[:2] for r in instance.all_logs(run.run_id)
              if "waiting for the writer lock" in (r.user_message or "")]  # fmt: skip
    assert waited and ".stream.lock" in waited[0], "neither pass waited for the other"
    rows = spark.table(f"{storage.warehouse_database}.app_events").select(
        "kafka_partition", "kafka_offset"
    )
    assert rows.count() == count + more["delivered"]
    assert rows.distinct().count() == rows.count()


def finish(process: subprocess.Popen) -> tuple[int, str]:
    try:
        output = process.communicate(timeout=600)[0].decode()
    finally:
        if process.poll() is None:  # a failing test never leaves a pass running
            process.kill()
            process.wait()
    return process.returncode, output


def start_orphan(spark, settings, storage, topic):
    from retail_assets.assets.streaming import EVENTS, stream_writer

    kafka = KafkaResource(
        bootstrap_servers=settings.kafka_bootstrap,
        topic=topic,
        local_broker=LocalBroker.of(settings),
    )
    writer = stream_writer(spark, kafka, storage, EVENTS, max_per_batch=1000)
    return writer.queryName("orphan").trigger(processingTime="2 seconds").start()


def test_retail_produce_adds_the_extra_field_to_every_event(kafka):
    result = subprocess.run(
        [sys.executable, "-m", "retail_assets.cli", "produce", "--count", "40", "--topic",
         "t_cli", "--extra-field", "campaign=winter", "--extra-field", "ab=b"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["delivered"] == 40
    config = {"bootstrap.servers": kafka}
    ends = topic_offsets(config, "t_cli").ends
    reader = Consumer({**config, "group.id": "t_cli", "enable.partition.eof": True})
    reader.assign([TopicPartition("t_cli", int(p), 0) for p in ends])
    bodies, deadline = [], time.monotonic() + 30
    while len(bodies) < 40 and time.monotonic() < deadline:
        message = reader.poll(0.5)
        if message is not None and message.error() is None:
            bodies.append(json.loads(message.value()))
    reader.close()
    assert len(bodies) == 40
    assert all(b["campaign"] == "winter" and b["ab"] == "b" for b in bodies)
    assert {b["eventType"] for b in bodies} <= {
        "productView", "addToCart", "purchase", "recommendationClick"
    }  # fmt: skip


# ---------------------------------------------------------------- small pure parts


def write_checkpoint(path, entries, committed):
    (path / "offsets").mkdir()
    (path / "commits").mkdir()
    for batch, entry in enumerate(entries):
        (path / "offsets" / str(batch)).write_text(entry)
    for batch in committed:
        (path / "commits" / str(batch)).write_text("v1\n{}")
    (path / "commits" / ".1.crc").write_text("")  # Spark's checksum files are not batches


def test_the_checkpoint_says_what_the_newest_committed_batch_reached(tmp_path):
    from retail_assets.storage.checkpoints import last_commit
    from retail_assets.storage.lake import Lake

    meta = '{"batchWatermarkMs":0,"batchTimestampMs":1}'
    lines = ('{"t":{"0":3}}', '{"t":{"1":9,"0":7}}', '{"t":{"0":8,"1":9}}')  # Kafka's
    entries = [f"v1\n{meta}\n{line}" for line in lines]
    write_checkpoint(tmp_path, entries, committed=(0, 1))  # batch 2 is planned, not committed
    commit = last_commit(Lake(str(tmp_path)))
    assert (commit.batch, commit.offsets) == (1, {"0": 7, "1": 9})


def test_an_offsets_log_of_another_format_is_a_clear_error(tmp_path):
    from retail_assets.storage.checkpoints import last_commit
    from retail_assets.storage.lake import Lake

    write_checkpoint(tmp_path, ['v2\n{}\n{"t":{"0":3}}'], committed=(0,))
    with pytest.raises(ValueError, match="offsets log 'v2'"):
        last_commit(Lake(str(tmp_path)))


def test_a_checkpoint_of_the_python_source_before_is_refused_by_name(tmp_path):
    """Offsets {"<partition>": n} (this project's own source before Spark's): Spark's Kafka
    source cannot read on from them; the refusal says where to look."""
    from retail_assets.storage.checkpoints import last_commit
    from retail_assets.storage.lake import Lake

    write_checkpoint(tmp_path, ['v1\n{}\n{"0":3,"1":4}'], committed=(0,))
    with pytest.raises(ValueError, match="not Spark's Kafka source's.*runbook"):
        last_commit(Lake(str(tmp_path)))
