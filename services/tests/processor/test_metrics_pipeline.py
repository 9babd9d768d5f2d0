"""Domain metrics end to end: events in through HTTP ingest and straight into Kafka, two
processor replicas sharing the partitions, and what their /metrics show together."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from gpu_analytics_tools.testing.harness import Pipeline, Processor

pytestmark = pytest.mark.integration

GPUS = 12


async def fleet(processors: list[Processor], name: str) -> Counter[str]:
    """How many replicas show each GPU in gauge `name`."""
    seen: Counter[str] = Counter()
    for processor in processors:
        for labels, _ in await processor.samples(name):
            seen[labels["gpu_uuid"]] += 1
    return seen


async def wait_for(check: Callable[[], Any], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.5)


async def test_every_gpu_once_across_replicas_whichever_way_it_arrived(
    pipeline: Pipeline, make_gpu_event: Callable[..., dict[str, Any]]
) -> None:
    first = await pipeline.start_processor()
    second = await pipeline.start_processor()
    replicas = [first, second]

    def event(i: int) -> dict[str, Any]:
        # half the fleet reports no power draw (unsupported): no series, never 0
        overrides: dict[str, Any] = {"gpu_uuid": f"GPU-{i:04d}", "gpu_index": i % 8}
        if i % 2:
            overrides["power_w"] = None
        return {**make_gpu_event(i, **overrides), "event_id": None}

    async def report_forever() -> None:
        """The fleet reports every half second: half over HTTP ingest, half as a producer
        sends them (keyed by GPU), like the real thing."""
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.stack.bootstrap_servers)
        await producer.start()
        try:
            async with httpx.AsyncClient(base_url=first.url) as client:
                while True:
                    body = [event(i) for i in range(GPUS // 2)]
                    response = await client.post("/api/v1/gpu-metrics", json=body)
                    assert response.status_code == 202, response.text
                    for i in range(GPUS // 2, GPUS):
                        e = event(i)
                        key = e["gpu_uuid"].encode()
                        await producer.send(pipeline.gpu_topic, orjson.dumps(e), key=key)
                    await producer.flush()
                    await asyncio.sleep(0.5)
        finally:
            await producer.stop()

    everyone = Counter({f"GPU-{i:04d}": 1 for i in range(GPUS)})
    reporting = asyncio.create_task(report_forever())
    try:

        async def each_exactly_once() -> bool:
            return await fleet(replicas, "gpu_analytics_gpu_utilization_ratio") == everyone

        async def split_between_both() -> bool:
            # once the group has given both replicas partitions, each shows part of the fleet
            shown = [await r.samples("gpu_analytics_gpu_utilization_ratio") for r in replicas]
            return all(shown) and await each_exactly_once()

        await wait_for(split_between_both, timeout=90)
        power = await fleet(replicas, "gpu_analytics_gpu_power_watts")
        assert set(power) == {f"GPU-{i:04d}" for i in range(0, GPUS, 2)}
        for replica in replicas:
            up = await replica.samples("gpu_analytics_dependency_up")
            assert {labels["dependency"]: v for labels, v in up} == {"kafka": 1, "mongodb": 1}

        # A third replica joins: partitions move, and the GPUs they carry move with them
        # (the old owner drops them at once, it does not wait for them to expire).
        third = await pipeline.start_processor()
        replicas.append(third)
        await wait_for(each_exactly_once, timeout=90)

        # Two leave: the first takes their partitions over and shows the whole fleet.
        second.stop()
        third.stop()

        async def whole_fleet_on_first() -> bool:
            return await fleet([first], "gpu_analytics_gpu_utilization_ratio") == everyone

        await wait_for(whole_fleet_on_first, timeout=90)
    finally:
        reporting.cancel()
        await asyncio.gather(reporting, return_exceptions=True)


async def test_llm_usage_counts_each_stored_call_once(pipeline: Pipeline) -> None:
    processor = await pipeline.start_processor()
    calls = [
        {
            "ts": "2026-12-01T12:00:00Z",
            "host": "h",
            "provider": "vllm",
            "model": "llama-3.1-8b",
            "input_tokens": 100,
            "output_tokens": 20,
            "latency_ms": 500.0,
            "ttft_ms": 40.0,
            "status": "ok" if i % 4 else "error",
        }
        for i in range(8)
    ]
    legacy = {  # the coursework producer's payload, mapped on ingest
        "ts": "2026-12-01T12:00:00",
        "model": "llama-3.1-8b",
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "latency_ms": 100.0,
    }
    async with httpx.AsyncClient(base_url=processor.url) as client:
        assert (await client.post("/api/v1/token-usage", json=calls)).status_code == 202
        assert (await client.post("/api/v1/token-usage", json=legacy)).status_code == 202
    await pipeline.wait_stored(9, "token_usage")

    async def counted() -> bool:
        return await processor.metric("gpu_analytics_llm_requests_total") == 9

    await wait_for(counted)
    model = "llama-3.1-8b"
    assert (
        await processor.metric("gpu_analytics_llm_requests_total", model=model, status="error") == 2
    )
    assert (
        await processor.metric(
            "gpu_analytics_llm_tokens_total", provider="vllm", token_type="input"
        )
        == 800
    )
    assert (
        await processor.metric(
            "gpu_analytics_llm_tokens_total", provider="legacy", token_type="output"
        )
        == 3
    )
    assert (
        await processor.metric("gpu_analytics_llm_time_to_first_token_seconds_count", model=model)
        == 8
    )
    assert (
        await processor.metric("gpu_analytics_llm_request_duration_seconds_count", model=model) == 9
    )
