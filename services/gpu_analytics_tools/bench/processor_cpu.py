"""Benchmark (a): processor CPU per stored event against a bare reference loop, and, given a
checkout of another revision (`make bench BASE=<rev>`), against that revision's consumer in the
same run: the three interleaved, so drift on the machine hits them alike."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from gpu_analytics.config import ProducerSettings
from gpu_analytics.events import GpuMetric
from gpu_analytics.producer.sources import encode
from gpu_analytics_tools.stack.topics import create_topics
from gpu_analytics_tools.testing.harness import gpu_event

EVENTS = 30_000
WORKER = Path(__file__).with_name("consume_worker.py")


async def _fill_topic(bootstrap: str, events: int) -> str:
    """One topic of `events` realistic gpu.metrics.v1 records, shared by every run: written
    as our producer writes them (producer.sources.encode: every field, nulls included)."""
    topic = f"bench.cpu.{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, {topic: 6})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    settings = ProducerSettings(topic_gpu_metrics=topic)
    await producer.start()
    try:
        for seq in range(events):
            _, key, value = encode(GpuMetric.model_validate(gpu_event(seq)), settings)
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return topic


def worker_for(base: Path | None) -> tuple[Path, dict[str, str] | None]:
    """The worker to run and its environment: this checkout's, or with `base` the worker and
    the packages of that checkout (first on the import path)."""
    if base is None:
        return WORKER, None
    env = {**os.environ, "PYTHONPATH": str(base / "services")}
    return base / WORKER.relative_to(WORKER.parents[3]), env


def _run(
    mode: str, bootstrap: str, mongo_uri: str, topic: str, events: int, base: Path | None = None
) -> float:
    """CPU seconds per event of one worker run (`worker_for(base)`)."""
    worker, env = worker_for(base)
    out = subprocess.run(
        [sys.executable, str(worker), mode, bootstrap, mongo_uri, topic, str(events)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env=env,
    )
    result = orjson.loads(out.stdout.strip().splitlines()[-1])
    if result["stored"] < events:
        raise RuntimeError(f"{mode} stored {result['stored']} of {events}")
    return float(result["cpu_s"]) / events


def bench(
    bootstrap_servers: str, mongodb_uri: str, runs: int, base: Path | None = None
) -> dict[str, object]:
    topic = asyncio.run(_fill_topic(bootstrap_servers, EVENTS))
    ours, ref, old = [], [], []
    for _ in range(runs):  # interleaved, so drift on the machine hits all alike
        ref.append(_run("reference", bootstrap_servers, mongodb_uri, topic, EVENTS))
        ours.append(_run("ours", bootstrap_servers, mongodb_uri, topic, EVENTS))
        if base is not None:
            old.append(_run("ours", bootstrap_servers, mongodb_uri, topic, EVENTS, base))
    ours_us, ref_us = statistics.median(ours) * 1e6, statistics.median(ref) * 1e6
    result: dict[str, object] = {
        "bench": "processor_cpu_per_event",
        "ratio": round(ours_us / ref_us, 3),
        "ours_cpu_us_per_event": round(ours_us, 2),
        "reference_cpu_us_per_event": round(ref_us, 2),
        "events": EVENTS,
        "runs": runs,
    }
    if base is not None:
        base_us = statistics.median(old) * 1e6
        result["base_ratio"] = round(base_us / ref_us, 3)
        result["base_cpu_us_per_event"] = round(base_us, 2)
        result["head_over_base"] = round(ours_us / base_us, 3)
    return result
