"""p5: events/s landed by `app_events` vs a plain confluent-kafka consume loop over the same
topic in the same run, and produce → parquet latency (p50/p95) with passes run back to back.

Runs on its own RETAIL_HOME, Spark server and Tansu broker (free ports), stopped by PID.
Usage: python -m bench.p5_stream_vs_plain_consume [--events 100000] [--rate 200 --seconds 60]
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def plain_consume(config: dict, topic: str, ends: dict) -> float:
    """Seconds for a consume loop to read and JSON-decode every record of the topic."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**config, "group.id": "bench", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, int(p), 0) for p in ends])
    wanted, seen = sum(ends.values()), 0
    began = time.monotonic()
    while seen < wanted:
        for message in consumer.consume(num_messages=min(10_000, wanted - seen), timeout=5):
            if message.error() is None:
                json.loads(message.value())
                seen += 1
    elapsed = time.monotonic() - began
    consumer.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="retail_bench_p5_"))
    from retail_assets.services import free_port

    os.environ.update(
        RETAIL_HOME=str(home),
        RETAIL_SPARK_PORT=str(free_port()),
        RETAIL_KAFKA_PORT=str(free_port()),
        DAGSTER_HOME=str(home / "dagster"),
    )
    from dagster import materialize

    from retail_assets import kafka_broker, spark_server
    from retail_assets.assets.streaming import app_events
    from retail_assets.resources import (
        KafkaResource,
        StorageResource,
        spark_resource,
        spark_session,
    )
    from retail_assets.settings import Settings, prepare_dagster_home
    from retail_assets.streaming.events import events, produce
    from retail_assets.streaming.kafka_source import topic_offsets

    settings = Settings.from_env()
    prepare_dagster_home(settings)
    config = {"bootstrap.servers": settings.kafka_bootstrap}

    def stream_pass(topic: str) -> dict:
        """One pass on its own tables (warehouse database named after the topic)."""
        kafka = KafkaResource(bootstrap_servers=settings.kafka_bootstrap, topic=topic)
        storage = StorageResource(landing_dir=str(settings.landing_dir),
                                  lake_root=settings.lake_root, exports_dir=settings.exports_dir,
                                  warehouse_database=topic)  # fmt: skip
        resources = {"spark": spark_resource(settings), "storage": storage, "kafka": kafka}
        began = time.monotonic()
        result = materialize([app_events], resources=resources)
        assert result.success
        metadata = result.asset_materializations_for_node("app_events")[0].metadata
        return {"seconds": time.monotonic() - began,
                **{k: metadata[k].value for k in ("input_rows", "rows_per_second")}}  # fmt: skip

    try:
        spark_server.up(settings)
        kafka_broker.up(settings)
        # -- throughput: the same topic read by both, in this run
        produce(config, "bench_p5", events(args.events, seed=5))
        ends = topic_offsets(config, "bench_p5").ends
        plain_s = plain_consume(config, "bench_p5", ends)
        landed = stream_pass("bench_p5")
        assert landed["input_rows"] == args.events, landed
        plain_rate = args.events / plain_s
        # -- latency: steady production while passes run back to back (the sensor, minus its
        # 30 s tick)
        total = int(args.rate * args.seconds)
        stream = events(total, seed=6)
        producer = threading.Thread(
            target=produce, args=(config, "bench_p5_latency", stream), kwargs={"rate": args.rate}
        )
        producer.start()
        passes = []
        while producer.is_alive() or sum(p["input_rows"] for p in passes) < total:
            passes.append(stream_pass("bench_p5_latency"))
        producer.join()
        session = spark_session(settings)
        rows = session.sql(
            "SELECT input_file_name() AS file, kafka_timestamp FROM bench_p5_latency.app_events"
        ).toPandas()
    finally:
        kafka_broker.down(settings)
        spark_server.down(settings)
    rows["landed"] = rows["file"].map(lambda f: os.stat(f.removeprefix("file:")).st_mtime)
    rows["produced"] = rows["kafka_timestamp"].map(lambda t: t.timestamp())
    latency = (rows["landed"] - rows["produced"]).tolist()
    result = {
        "benchmark": "p5_stream_vs_plain_consume",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"node": platform.node(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "events": args.events,
        "plain_consume_events_per_s": round(plain_rate, 1),
        "app_events_query_events_per_s": landed["rows_per_second"],
        "app_events_whole_pass_events_per_s": round(args.events / landed["seconds"], 1),
        "ratio_query_over_plain": round(landed["rows_per_second"] / plain_rate, 4),
        "ratio_whole_pass_over_plain": round(args.events / landed["seconds"] / plain_rate, 4),
        "latency_events": total, "latency_rate_per_s": args.rate, "passes": len(passes),
        "latency_p50_s": round(statistics.median(latency), 2),
        "latency_p95_s": round(statistics.quantiles(latency, n=20)[-1], 2),
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"p5_{datetime.now(UTC):%Y%m%dT%H%M%S}_{platform.node()}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
