"""Benchmark (a): processor CPU per stored event against a bare reference loop."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from gpu_analytics_tools.stack.topics import create_topics
from gpu_analytics_tools.testing.harness import gpu_event

EVENTS = 30_000
WORKER = Path(__file__).with_name("consume_worker.py")


async def _fill_topic(bootstrap: str, events: int) -> str:
    """One topic of `events` realistic gpu.metrics.v1 records, shared by every run."""
    topic = f"bench.cpu.{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, {topic: 6})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    try:
        for seq in range(events):
            event = gpu_event(seq)
            await producer.send(topic, orjson.dumps(event), key=event["gpu_uuid"].encode())
        await producer.flush()
    finally:
        await producer.stop()
    return topic


def _run(mode: str, bootstrap: str, mongo_uri: str, topic: str, events: int) -> float:
    out = subprocess.run(
        [sys.executable, str(WORKER), mode, bootstrap, mongo_uri, topic, str(events)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result = orjson.loads(out.stdout.strip().splitlines()[-1])
    if result["stored"] < events:
        raise RuntimeError(f"{mode} stored {result['stored']} of {events}")
    return float(result["cpu_s"]) / events


def bench(bootstrap_servers: str, mongodb_uri: str, runs: int) -> dict[str, object]:
    topic = asyncio.run(_fill_topic(bootstrap_servers, EVENTS))
    ours, ref = [], []
    for _ in range(runs):  # interleaved, so drift on the machine hits both alike
        ref.append(_run("reference", bootstrap_servers, mongodb_uri, topic, EVENTS))
        ours.append(_run("ours", bootstrap_servers, mongodb_uri, topic, EVENTS))
    ours_us, ref_us = statistics.median(ours) * 1e6, statistics.median(ref) * 1e6
    return {
        "bench": "processor_cpu_per_event",
        "ratio": round(ours_us / ref_us, 3),
        "ours_cpu_us_per_event": round(ours_us, 2),
        "reference_cpu_us_per_event": round(ref_us, 2),
        "events": EVENTS,
        "runs": runs,
    }
