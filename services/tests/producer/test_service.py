"""The producer against the real local broker: keys, rate, metrics, and a flushing SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from gpu_analytics.config import ProducerSettings
from gpu_analytics.events import GpuMetric, TokenUsage
from gpu_analytics.producer.service import ProducerService
from gpu_analytics_tools.stack.process import free_port
from gpu_analytics_tools.stack.stack import StackEnv
from gpu_analytics_tools.testing.fixtures import TopicFactory
from gpu_analytics_tools.testing.producer import SEED, read_all

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("gpu-analytics"))
SettingsFactory = Callable[..., ProducerSettings]  # the producer_settings fixture


async def _topics(new_topic: TopicFactory) -> tuple[str, str]:
    return await new_topic("gpu.", partitions=3), await new_topic("tok.", partitions=3)


async def test_events_are_keyed_by_gpu_uuid_valid_and_all_delivered(
    stack: StackEnv, new_topic: TopicFactory, producer_settings: SettingsFactory
) -> None:
    gpu_topic, token_topic = (
        await new_topic("gpu.", partitions=3),
        await new_topic("tok.", partitions=3),
    )
    settings = producer_settings(
        topic_gpu_metrics=gpu_topic, topic_token_usage=token_topic, producer_rate=float("inf")
    )
    service = ProducerService(settings)

    assert await service.run(max_events=3000, handle_signals=False) == 0

    assert service.publisher is not None
    sent = service.publisher.sent
    assert sum(sent.values()) == 3000
    gpu_records = await read_all(stack.bootstrap_servers, gpu_topic, sent[gpu_topic])
    token_records = await read_all(stack.bootstrap_servers, token_topic, sent[token_topic])
    assert len(gpu_records) == sent[gpu_topic]
    assert len(token_records) == sent[token_topic]
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for record in gpu_records:
        metric = GpuMetric.model_validate_json(record.value)
        assert record.key == metric.gpu_uuid.encode()
        partitions[record.key].add(record.partition)
    for record in token_records:
        usage = TokenUsage.model_validate_json(record.value)
        assert record.key == (usage.gpu_uuid or usage.model).encode()
    assert all(len(p) == 1 for p in partitions.values())  # one GPU, one partition: ordered
    ids = [orjson.loads(r.value)["event_id"] for r in [*gpu_records, *token_records]]
    assert len(set(ids)) == 3000


async def _count(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> int:
    return int(sum((await consumer.end_offsets(partitions)).values()))


async def test_rate_is_honoured_within_5_percent_over_30_s(
    stack: StackEnv, new_topic: TopicFactory, producer_settings: SettingsFactory
) -> None:
    rate, window = 400.0, 30.0
    gpu_topic, token_topic = (
        await new_topic("gpu.", partitions=3),
        await new_topic("tok.", partitions=3),
    )
    settings = producer_settings(
        topic_gpu_metrics=gpu_topic, topic_token_usage=token_topic, producer_rate=rate
    )
    service = ProducerService(settings)
    running = asyncio.create_task(service.run(handle_signals=False))
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap_servers)
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in (gpu_topic, token_topic) for p in range(3)]
        while await _count(consumer, partitions) == 0:
            assert not running.done(), "the producer stopped"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # past the start-up

        start, before = time.monotonic(), await _count(consumer, partitions)
        await asyncio.sleep(window)
        end, after = time.monotonic(), await _count(consumer, partitions)
    finally:
        await consumer.stop()
        service.stop()
        assert await running == 0

    measured = (after - before) / (end - start)
    assert measured == pytest.approx(rate, rel=0.05), f"{measured:.1f} events/s"


async def test_sigterm_stops_flushes_and_every_counted_event_is_on_the_topics(
    stack: StackEnv, new_topic: TopicFactory
) -> None:
    gpu_topic, token_topic = (
        await new_topic("gpu.", partitions=3),
        await new_topic("tok.", partitions=3),
    )
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PRODUCER_", "TOPIC_"))},
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
        "TOPIC_GPU_METRICS": gpu_topic,
        "TOPIC_TOKEN_USAGE": token_topic,
        "PRODUCER_RATE": "3000",
        "PRODUCER_SOURCE": "synthetic",
        "PRODUCER_SEED": str(SEED),
        "PRODUCER_HOST": "test-node",
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        CLI, "producer", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output = asyncio.create_task(process.communicate())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            scraped = 0.0
            deadline = time.monotonic() + 60
            while scraped < 2000 and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                try:
                    health = await http.get("/healthz")
                    metrics = await http.get("/metrics")
                except httpx.TransportError:
                    continue  # not listening yet
                assert health.status_code == 200
                assert metrics.status_code == 200
                assert "gpu_analytics_send_errors_total 0.0" in metrics.text
                scraped = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in metrics.text.splitlines()
                    if line.startswith("gpu_analytics_events_sent_total{")
                )
            assert scraped >= 2000, "the producer did not send"
        process.send_signal(signal.SIGTERM)  # while events are in flight at 3000/s
        stdout, _ = await asyncio.wait_for(output, 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0, stdout.decode()[-3000:]
    logs = [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]
    final = next(entry for entry in logs if entry["message"] == "producer stopped")
    assert final["undelivered"] == 0
    sent = final["events_sent"]
    assert isinstance(sent, dict)
    assert sum(sent.values()) >= scraped
    for topic in (gpu_topic, token_topic):
        records = await read_all(stack.bootstrap_servers, topic, sent[topic], timeout_s=30)
        assert len(records) == sent[topic]  # all of them, and no duplicates
