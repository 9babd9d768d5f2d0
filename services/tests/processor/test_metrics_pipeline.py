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
from aiokafka import AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from gpu_analytics.config import ProcessorSettings
from gpu_analytics.processor import metrics
from gpu_analytics.processor.consumer import EventConsumer
from gpu_analytics.processor.publisher import EventPublisher
from gpu_analytics_tools.testing.harness import PARTITIONS, Pipeline, Processor

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


async def test_a_batch_finished_during_a_rebalance_leaves_revoked_gpus_to_their_new_owner(
    pipeline: Pipeline, make_gpu_event: Callable[..., dict[str, Any]]
) -> None:
    """The race behind a GPU shown by two replicas: aiokafka calls on_partitions_revoked while a
    batch's insert is awaited, and its assignment() still lists the revoked partitions until the
    new assignment arrives. A batch finished in that window stores its events (exactly once, as
    ever) but brings back neither the GPUs nor the lag of the partitions it lost, and commits
    nothing for them: their new owner reads them again. Driven in-process on the real broker and
    database, the consumer's own listener called where aiokafka calls it."""
    uuids = {f"GPU-RACE-{i}" for i in range(8)}
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.stack.bootstrap_servers)
    await producer.start()
    try:
        for i, uuid in enumerate(sorted(uuids)):
            event = make_gpu_event(i, gpu_uuid=uuid)
            await producer.send(pipeline.gpu_topic, orjson.dumps(event), key=uuid.encode())
        await producer.flush()
    finally:
        await producer.stop()

    settings = ProcessorSettings(
        kafka_bootstrap_servers=pipeline.stack.bootstrap_servers,
        mongodb_uri=pipeline.stack.mongodb_uri,
        mongodb_db=pipeline.db,
        topic_gpu_metrics=pipeline.gpu_topic,
        topic_token_usage=pipeline.token_topic,
        consumer_group=pipeline.group,
    )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    publisher = EventPublisher(settings.kafka_bootstrap_servers)
    await publisher.start()
    consumer = EventConsumer(settings, mongo[settings.mongodb_db], publisher)
    kafka, listener = consumer._consumer, consumer._listener
    kafka.subscribe([pipeline.gpu_topic, pipeline.token_topic], listener=listener)
    await kafka.start()
    try:
        batches: dict[TopicPartition, list[Any]] = {}
        deadline = time.monotonic() + 60
        while sum(len(records) for records in batches.values()) < len(uuids):
            assert time.monotonic() < deadline, "the events were not fetched"
            for tp, records in (await kafka.getmany(timeout_ms=500)).items():
                batches.setdefault(tp, []).extend(records)
        gpu_partitions = {tp for tp in kafka.assignment() if tp.topic == pipeline.gpu_topic}
        assert len(gpu_partitions) == PARTITIONS

        def shown() -> set[str]:
            return {
                s.labels["gpu_uuid"]
                for family in metrics.FLEET.collect()
                for s in family.samples
                if family.name == "gpu_analytics_gpu_utilization_ratio"
            } & uuids

        def lag_series() -> set[str]:
            return {
                s.labels["partition"]
                for family in REGISTRY.collect()
                if family.name == "gpu_analytics_consumer_lag"
                for s in family.samples
                if s.labels.get("topic") == pipeline.gpu_topic
            }

        # Revoked, and the new assignment not here yet: aiokafka still lists the partitions.
        revoked = kafka.assignment()
        await listener.on_partitions_revoked(revoked)
        assert kafka.assignment() == revoked
        await consumer._handle(batches)
        assert len(await pipeline.stored()) == len(uuids)
        assert shown() == set(), "a revoked partition's GPUs came back"
        assert lag_series() == set(), "a revoked partition's lag came back"
        assert all([await kafka.committed(tp) is None for tp in gpu_partitions])

        # Assigned back (the same replica wins them again): the redelivered batch shows them.
        await listener.on_partitions_assigned(revoked)
        await consumer._handle(batches)
        assert len(await pipeline.stored()) == len(uuids)
        assert shown() == uuids
        assert lag_series() == {str(tp.partition) for tp in batches if tp in gpu_partitions}
    finally:
        await kafka.stop()
        await publisher.stop()
        await mongo.close()
        metrics.FLEET.forget_partitions(kafka.assignment() | set(batches))


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
