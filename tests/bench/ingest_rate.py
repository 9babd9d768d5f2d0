"""Benchmark (c): HTTP ingest events/s with batches of 100, against publishing the same events
straight to Kafka from the client (the ceiling the HTTP path adds its work on top of)."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from gpu_analytics.stack.fixtures import StackEnv
from gpu_analytics.stack.harness import Pipeline, gpu_event
from gpu_analytics.stack.topics import create_topics

BATCH = 100
BATCHES = 200
CONCURRENCY = 8


def _batches() -> list[list[dict[str, object]]]:
    return [[gpu_event(b * BATCH + i) for i in range(BATCH)] for b in range(BATCHES)]


async def _ours(stack: StackEnv, log_dir: Path) -> float:
    run = uuid.uuid4().hex[:8]
    line = Pipeline(
        stack, f"bench.ing.{run}", f"bench.tok.{run}", f"bench_{run}", f"i-{run}", log_dir
    )
    await create_topics(stack.bootstrap_servers, {line.gpu_topic: 6, line.token_topic: 6})
    processor = await line.start_processor()
    bodies = [orjson.dumps(b) for b in _batches()]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            response = await client.post(
                "/api/v1/gpu-metrics", content=body, headers={"content-type": "application/json"}
            )
            response.raise_for_status()

    try:
        async with httpx.AsyncClient(base_url=processor.url, timeout=60) as client:
            started = time.perf_counter()
            await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
            return BATCH * BATCHES / (time.perf_counter() - started)
    finally:
        processor.stop()


async def _direct(bootstrap: str) -> float:
    topic = f"bench.direct.{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, {topic: 6})
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        compression_type="lz4",
        linger_ms=5,
    )
    await producer.start()
    try:
        events = [e for batch in _batches() for e in batch]
        started = time.perf_counter()
        futures = [
            await producer.send(topic, orjson.dumps(e), key=str(e["gpu_uuid"]).encode())
            for e in events
        ]  # all in flight at once: the broker's best case
        await asyncio.gather(*futures)
        return len(events) / (time.perf_counter() - started)
    finally:
        await producer.stop()


def bench(stack: StackEnv, runs: int, log_dir: Path) -> dict[str, object]:
    ours, direct = [], []
    for _ in range(runs):
        direct.append(asyncio.run(_direct(stack.bootstrap_servers)))
        ours.append(asyncio.run(_ours(stack, log_dir)))
    ours_rate, direct_rate = statistics.median(ours), statistics.median(direct)
    return {
        "bench": "http_ingest_rate",
        "ratio": round(ours_rate / direct_rate, 3),
        "ours_events_per_s": round(ours_rate),
        "direct_kafka_events_per_s": round(direct_rate),
        "batch": BATCH,
        "concurrency": CONCURRENCY,
        "events": BATCH * BATCHES,
        "runs": runs,
        "cpus": os.cpu_count(),
    }
