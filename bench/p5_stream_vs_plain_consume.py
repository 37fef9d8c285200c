"""p5: events/s landed by `app_events` vs a plain confluent-kafka consume loop over the same
topic in the same run (100,000 events quick, 500,000 full), and produce → parquet latency
(p50/p95) at 200 events/s with passes run back to back. A pass of the same size on another
topic first warms the server; its rate is reported too.

Usage: python -m bench.p5_stream_vs_plain_consume [--quick]
"""

import json
import os
import statistics
import threading
import time

from bench.harness import Bench, headline, main, say

GOAL = 0.5
LATENCY_GOAL_S = 10  # beyond the sensor's interval: a pass starts at most one tick after events


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


def measure(bench: Bench, quick: bool) -> dict:
    from dagster import materialize

    from retail_assets.assets.streaming import app_events
    from retail_assets.dev.replay import QUIET
    from retail_assets.orchestration.sensors import kafka_sensor
    from retail_assets.resources import KafkaResource, spark_resource, spark_session
    from retail_assets.streaming.events import events, produce
    from retail_assets.streaming.kafka_offsets import topic_offsets

    count, rate, seconds = (100_000, 200.0, 20.0) if quick else (500_000, 200.0, 60.0)
    settings = bench.settings
    config = {"bootstrap.servers": settings.kafka_bootstrap}

    def stream_pass(topic: str) -> dict:
        """One pass on its own tables (named after the topic)."""
        kafka = KafkaResource(bootstrap_servers=settings.kafka_bootstrap, topic=topic)
        resources = {"spark": spark_resource(settings), "storage": bench.storage(topic),
                     "kafka": kafka}  # fmt: skip
        began = time.monotonic()
        result = materialize([app_events], resources=resources, run_config=QUIET)
        assert result.success
        metadata = result.asset_materializations_for_node("app_events")[0].metadata
        return {"seconds": time.monotonic() - began,
                **{k: metadata[k].value for k in ("input_rows", "rows_per_second")}}  # fmt: skip

    with bench.servers(kafka=True):
        # A platform's server is long-lived: the measured pass is not the fresh JVM's first
        # (its code not yet compiled), which is reported beside it.
        produce(config, "p5_first", events(count, seed=4))
        first = stream_pass("p5_first")
        # -- throughput: the same topic read by both, in this run
        produce(config, "p5", events(count, seed=5))
        plain_s = plain_consume(config, "p5", topic_offsets(config, "p5").ends)
        landed = stream_pass("p5")
        assert landed["input_rows"] == first["input_rows"] == count, (first, landed)
        say(f"p5: plain {count / plain_s:,.0f} events/s, app_events "
            f"{landed['rows_per_second']:,.0f} events/s (first pass "
            f"{first['rows_per_second']:,.0f})")  # fmt: skip
        # -- latency: steady production while passes run back to back (the sensor's path,
        # minus its 30 s tick)
        total = int(rate * seconds)
        producer = threading.Thread(target=produce, args=(config, "p5_latency",
                                    events(total, seed=6)), kwargs={"rate": rate})  # fmt: skip
        producer.start()
        passes = []
        while producer.is_alive() or sum(p["input_rows"] for p in passes) < total:
            passes.append(stream_pass("p5_latency"))
        producer.join()
        rows = (
            spark_session(settings)
            .sql("SELECT input_file_name() AS file, kafka_timestamp FROM p5_latency_dwh.app_events")
            .toPandas()
        )
    rows["landed"] = rows["file"].map(lambda f: os.stat(f.removeprefix("file:")).st_mtime)
    rows["produced"] = rows["kafka_timestamp"].map(lambda t: t.timestamp())
    latency = (rows["landed"] - rows["produced"]).tolist()
    plain_rate = count / plain_s
    p95 = statistics.quantiles(latency, n=20)[-1]
    tick = kafka_sensor.minimum_interval_seconds
    query = landed["rows_per_second"] / plain_rate
    whole = count / landed["seconds"] / plain_rate
    return {
        "headlines": [
            headline("p5 app_events query / plain consume (events/s)", round(query, 4),
                     f"≥ {GOAL}", query >= GOAL),
            headline("p5 whole pass / plain consume (events/s)", round(whole, 4), "", None),
            headline("p5 first query of a fresh server / plain consume (events/s)",
                     round(first["rows_per_second"] / plain_rate, 4), "", None),
            headline("p5 produce → parquet latency p50 s", round(statistics.median(latency), 1),
                     "", None),
            headline("p5 produce → parquet latency p95 s (passes back to back; the sensor "
                     f"adds at most its {tick} s tick)", round(p95, 1),
                     f"≤ {LATENCY_GOAL_S}", p95 <= LATENCY_GOAL_S),
        ],
        "events": count,
        "plain_consume_events_per_s": round(plain_rate, 1),
        "app_events_query_events_per_s": landed["rows_per_second"],
        "app_events_whole_pass_events_per_s": round(count / landed["seconds"], 1),
        "latency_events": total, "latency_rate_per_s": rate, "latency_passes": len(passes),
    }  # fmt: skip


if __name__ == "__main__":
    main("p5_stream_vs_plain_consume", measure)
