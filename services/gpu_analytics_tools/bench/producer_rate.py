"""Producer send rate: our producer against Kafka's own Java ProducerPerformance.

Both send the same number of records of the same size (our mean serialized event) to fresh
topics with the same partition count on the same broker, with acks=all, idempotence, lz4, the
same linger and batch size; the runs alternate between the two. Ours is the real code path
(ProducerService with the synthetic fleet, PRODUCER_RATE unbounded); its time runs from the
first event generated to the last one acknowledged. The result is the ratio of the medians.

    python -m gpu_analytics_tools.bench.producer_rate --bootstrap-servers 127.0.0.1:9092 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import statistics
import subprocess
import sys
import uuid

from aiokafka.admin import AIOKafkaAdminClient

from gpu_analytics.config import ProducerSettings
from gpu_analytics.producer.service import ProducerService, run_async
from gpu_analytics_tools.stack.kafka import classpath, java_binary
from gpu_analytics_tools.stack.topics import create_topics

EVENTS = 100_000
PARTITIONS = 3
LINGER_MS = 10
BATCH_BYTES = 131_072
_JAVA_RESULT = re.compile(r"(\d+) records sent, ([\d.]+) records/sec")


async def _create_topic(bootstrap_servers: str, prefix: str) -> str:
    name = f"bench.{prefix}.{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap_servers, {name: PARTITIONS})
    return name


async def _delete_topics(bootstrap_servers: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


async def _ours_once(bootstrap_servers: str, topic: str, seed: int) -> tuple[float, float]:
    """(events/s, mean record bytes) of one run of the real producer, rate unbounded."""
    settings = ProducerSettings(
        kafka_bootstrap_servers=bootstrap_servers,
        topic_gpu_metrics=topic,
        topic_token_usage=topic,
        producer_rate=math.inf,
        producer_source="synthetic",
        producer_seed=seed,
        producer_linger_ms=LINGER_MS,
        producer_batch_bytes=BATCH_BYTES,
        metrics_port=0,
    )
    service = ProducerService(settings)
    code = await service.run(max_events=EVENTS, handle_signals=False)
    publisher = service.publisher
    if code != 0 or publisher is None or service.send_started is None:
        raise RuntimeError(f"producer run failed with exit code {code}")
    assert service.send_finished is not None
    sent = sum(publisher.sent.values())
    if sent != EVENTS:
        raise RuntimeError(f"producer acknowledged {sent} of {EVENTS} events")
    elapsed = service.send_finished - service.send_started
    return sent / elapsed, publisher.sent_bytes / sent


def _java_once(bootstrap_servers: str, topic: str, record_bytes: int) -> float:
    command = [
        java_binary(),
        "-Xmx512m",
        "-cp",
        classpath(),
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(EVENTS),
        "--record-size",
        str(record_bytes),
        "--throughput",
        "-1",
        "--command-property",
        f"bootstrap.servers={bootstrap_servers}",
        "acks=all",
        "enable.idempotence=true",
        "compression.type=lz4",
        f"linger.ms={LINGER_MS}",
        f"batch.size={BATCH_BYTES}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    found = _JAVA_RESULT.findall(done.stdout)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"ProducerPerformance failed:\n{done.stderr[-2000:]}")
    return float(found[-1][1])


def bench(bootstrap_servers: str, runs: int) -> dict[str, object]:
    ours: list[float] = []
    java: list[float] = []
    sizes: list[float] = []
    topics: list[str] = []
    # Interleaved (ours, Java, ours, ...) so that load from elsewhere on the machine weighs on
    # both sides alike; Java sends records of the size ours just sent.
    for run in range(runs):
        topic = asyncio.run(_create_topic(bootstrap_servers, "ours"))
        topics.append(topic)
        rate, size = run_async(_ours_once(bootstrap_servers, topic, seed=run))
        ours.append(rate)
        sizes.append(size)
        topic = asyncio.run(_create_topic(bootstrap_servers, "java"))
        topics.append(topic)
        java.append(_java_once(bootstrap_servers, topic, round(size)))
    asyncio.run(_delete_topics(bootstrap_servers, topics))
    ours_median, java_median = statistics.median(ours), statistics.median(java)
    return {
        "bench": "producer_send_rate",
        "ratio": round(ours_median / java_median, 3),
        "ours_events_per_s": round(ours_median),
        "java_events_per_s": round(java_median),
        "record_bytes": round(statistics.mean(sizes)),
        "runs": runs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.stdout.write(json.dumps(bench(args.bootstrap_servers, args.runs)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
