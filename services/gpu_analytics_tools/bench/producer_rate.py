"""Producer CPU per event and send rate: our producer against Kafka's own Java
ProducerPerformance.

Both send the same number of records of the same size (our mean serialized event) to fresh
topics with the same partition count on the same broker, with acks=all, idempotence, lz4, the
same linger and batch size; the runs alternate between the two. Ours is the real code path
(ProducerService with the synthetic fleet, PRODUCER_RATE unbounded). The ratio is of CPU time
per event sent: ours is the CPU of this process over its run (from the service's start to the
last acknowledgement, events generated included), Java's the CPU of the ProducerPerformance
process over its life (JVM start included). CPU time holds on a loaded machine, where
throughput does not; the throughputs (first event to last acknowledgement for ours, Java's own
figure) and their ratio stay in the output beside it. Medians of the runs. The JVM's start-up
weighs on Java's figure, so one more Java run of a single record measures it, and
`steady_ratio` compares ours with Java's CPU per event without it.

    python -m gpu_analytics_tools.bench.producer_rate --bootstrap-servers 127.0.0.1:9092 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import resource
import statistics
import subprocess
import sys
import time
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


async def _ours_once(bootstrap_servers: str, topic: str, seed: int) -> tuple[float, float, float]:
    """(events/s, mean record bytes, CPU seconds per event) of one run of the real producer,
    rate unbounded."""
    cpu0 = time.process_time()
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
    return sent / elapsed, publisher.sent_bytes / sent, (time.process_time() - cpu0) / sent


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _java_once(
    bootstrap_servers: str, topic: str, record_bytes: int, records: int = EVENTS
) -> tuple[float, float]:
    """(records/s as ProducerPerformance reports it, CPU seconds of its process per record)."""
    command = [
        java_binary(),
        "-Xmx512m",
        "-cp",
        classpath(),
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(records),
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
    cpu0 = _children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    cpu = _children_cpu() - cpu0
    found = _JAVA_RESULT.findall(done.stdout)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"ProducerPerformance failed:\n{done.stderr[-2000:]}")
    return float(found[-1][1]), cpu / int(found[-1][0])


def bench(bootstrap_servers: str, runs: int) -> dict[str, object]:
    ours: list[float] = []
    java: list[float] = []
    ours_cpu: list[float] = []
    java_cpu: list[float] = []
    sizes: list[float] = []
    topics: list[str] = []
    # Interleaved (ours, Java, ours, ...) so that load from elsewhere on the machine weighs on
    # both sides alike; Java sends records of the size ours just sent.
    for run in range(runs):
        topic = asyncio.run(_create_topic(bootstrap_servers, "ours"))
        topics.append(topic)
        rate, size, cpu = run_async(_ours_once(bootstrap_servers, topic, seed=run))
        ours.append(rate)
        ours_cpu.append(cpu)
        sizes.append(size)
        topic = asyncio.run(_create_topic(bootstrap_servers, "java"))
        topics.append(topic)
        rate, cpu = _java_once(bootstrap_servers, topic, round(size))
        java.append(rate)
        java_cpu.append(cpu)
    # The JVM's start-up and connection, as CPU: one record sent. Java's CPU per event less
    # that share is its steady cost, which `steady_ratio` compares ours with.
    topic = asyncio.run(_create_topic(bootstrap_servers, "java"))
    topics.append(topic)
    _, startup_cpu = _java_once(bootstrap_servers, topic, round(statistics.mean(sizes)), 1)
    asyncio.run(_delete_topics(bootstrap_servers, topics))
    ours_median, java_median = statistics.median(ours), statistics.median(java)
    ours_us, java_us = statistics.median(ours_cpu) * 1e6, statistics.median(java_cpu) * 1e6
    steady_us = java_us - startup_cpu * 1e6 / EVENTS
    return {
        "bench": "producer_cpu_per_event",
        "ratio": round(ours_us / java_us, 3),
        "ours_cpu_us_per_event": round(ours_us, 2),
        "java_cpu_us_per_event": round(java_us, 2),
        "steady_ratio": round(ours_us / steady_us, 3),
        "java_steady_cpu_us_per_event": round(steady_us, 2),
        "java_startup_cpu_s": round(startup_cpu, 2),
        "throughput_ratio": round(ours_median / java_median, 3),
        "ours_events_per_s": round(ours_median),
        "java_events_per_s": round(java_median),
        "record_bytes": round(statistics.mean(sizes)),
        "runs": runs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--ours-once", action="store_true", help="one run of our producer alone (to profile it)"
    )
    args = parser.parse_args()
    if args.ours_once:
        topic = asyncio.run(_create_topic(args.bootstrap_servers, "ours"))
        rate, size, cpu = run_async(_ours_once(args.bootstrap_servers, topic, seed=0))
        result = {"events_per_s": round(rate), "record_bytes": round(size), "cpu_us": cpu * 1e6}
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    sys.stdout.write(json.dumps(bench(args.bootstrap_servers, args.runs)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
