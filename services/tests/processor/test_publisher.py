"""The processor's publisher as readiness uses it, on a real broker."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from gpu_analytics.events import GPU_METRICS
from gpu_analytics.processor.publisher import EventPublisher, to_record
from gpu_analytics_tools.stack.stack import StackEnv
from gpu_analytics_tools.testing.fixtures import TopicFactory
from gpu_analytics_tools.testing.harness import gpu_event, read_records
from gpu_analytics_tools.testing.producer import end_offsets

pytestmark = pytest.mark.integration


async def test_reachable_answers_within_its_timeout_while_the_broker_is_frozen(
    own_stack: StackEnv,
) -> None:
    """A SIGSTOPped broker keeps its connections open and answers nothing: the check must
    say no within its timeout (aiokafka's own request timeout is 15 s), and yes once it
    answers again."""
    assert own_stack.local is not None
    publisher = EventPublisher(own_stack.bootstrap_servers)
    await publisher.start()
    try:
        assert await publisher.reachable(2.0)
        own_stack.local.freeze_service("kafka")
        try:
            started = time.monotonic()
            assert not await publisher.reachable(1.0)
            took = time.monotonic() - started
        finally:
            own_stack.local.thaw_service("kafka")
        assert took < 1.5, f"the check took {took:.1f}s"
        assert await publisher.reachable(5.0)
    finally:
        await publisher.stop()


async def test_an_unusable_producer_is_replaced_in_the_background(
    stack: StackEnv, new_topic: TopicFactory
) -> None:
    """After a fatal error of the idempotent producer (what a long outage leaves behind,
    aio-libs/aiokafka#1017) readiness says no at once, without waiting for the replacement,
    which then starts on its own; the next check says yes and publishing works again."""
    topic = await new_topic("pub.")
    publisher = EventPublisher(stack.bootstrap_servers)
    await publisher.start()
    try:
        old = publisher._producer
        # The error as aiokafka reports it on a publish; planted here because a broker that
        # really loses the producer's sequence state takes a long outage to produce.
        publisher._broken = OutOfOrderSequenceNumber()
        started = time.monotonic()
        assert not await publisher.reachable(2.0)
        assert time.monotonic() - started < 0.5
        deadline = time.monotonic() + 20
        while not await publisher.reachable(2.0):
            assert time.monotonic() < deadline, "no new producer within 20 s"
            await asyncio.sleep(0.2)
        assert publisher._producer is not old
        event = GPU_METRICS.from_json(orjson.dumps(gpu_event(1)))
        await publisher.publish(topic, [to_record(event)], timeout=10)
    finally:
        await publisher.stop()


async def test_a_renewal_that_waits_for_kafka_logs_once_not_on_every_try(
    own_stack: StackEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """With the producer unusable and Kafka down, every readiness check tries a new producer:
    the broken state and the failed start are logged once (then once a minute), and the
    replacement, once Kafka is back, says after how many tries."""
    assert own_stack.local is not None
    publisher = EventPublisher(own_stack.bootstrap_servers)
    await publisher.start()
    caplog.set_level(logging.INFO, logger="gpu_analytics.processor.publisher")
    try:
        publisher._broken = OutOfOrderSequenceNumber()  # as in the test above
        await asyncio.to_thread(own_stack.local.stop_service, "kafka")
        try:
            for _ in range(4):
                assert not await publisher.reachable(1.0)
                assert publisher._renewal is not None
                await asyncio.wait([publisher._renewal], timeout=30)
        finally:
            await asyncio.to_thread(own_stack.local.start_service, "kafka")
        deadline = time.monotonic() + 30
        while not await publisher.reachable(2.0):
            assert time.monotonic() < deadline, "no new producer within 30 s of Kafka's return"
            await asyncio.sleep(0.2)
    finally:
        await publisher.stop()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines.count(("ERROR", "Kafka producer unusable; starting a new one")) == 1, lines
    failed = [m for level, m in lines if level == "WARNING" and "cannot start" in m]
    assert len(failed) == 1, lines
    started = [r for r in caplog.records if r.getMessage() == "new Kafka producer started"]
    assert len(started) == 1, lines
    assert started[0].failed_attempts >= 4  # type: ignore[attr-defined]


async def test_many_requests_on_one_partition_at_once_are_all_published(
    stack: StackEnv, new_topic: TopicFactory
) -> None:
    """Forty HTTP requests at once whose events share a key (one GPU): each waits its turn
    for the partition. Left to aiokafka, every waiter polled for the slot and the loser of
    every race ran out of its 15 s timeout in about a quarter of a second (KafkaTimeoutError:
    a 503 for a healthy broker)."""
    topic = await new_topic("pub.")
    publisher = EventPublisher(stack.bootstrap_servers)
    await publisher.start()
    try:
        requests = [
            [_record(gpu_event(r * 100 + i, gpu_uuid="GPU-one")) for i in range(100)]
            for r in range(40)
        ]
        await asyncio.gather(*(publisher.publish(topic, r, timeout=30) for r in requests))
    finally:
        await publisher.stop()
    assert await end_offsets(stack.bootstrap_servers, [topic]) == 4000


async def test_concurrent_requests_share_batches_and_keep_their_order(
    stack: StackEnv, new_topic: TopicFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forty requests of a hundred events over eight GPUs at once: what waits for a partition
    leaves together, a batch per partition at a time, not a batch per request and partition
    (240 here, the cost that capped HTTP ingest). The broker gets every event, and each
    GPU's events in the order each request gave them. send_batch is counted on the real
    producer, which still sends."""
    topic = await new_topic("pub.", partitions=6)
    publisher = EventPublisher(stack.bootstrap_servers)
    await publisher.start()
    producer = publisher._producer  # noqa: SLF001 - counting the batches it is handed
    batches = 0
    send_batch = producer.send_batch

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal batches
        batches += 1
        return await send_batch(*args, **kwargs)

    monkeypatch.setattr(producer, "send_batch", counted)
    try:
        requests = [[_record(gpu_event(r * 100 + i)) for i in range(100)] for r in range(40)]
        await asyncio.gather(*(publisher.publish(topic, r, timeout=30) for r in requests))
    finally:
        await publisher.stop()
    assert batches < 40, f"{batches} batches for 40 requests"
    records = await read_records(stack.bootstrap_servers, topic, 4000)
    assert len(records) == 4000
    seqs: dict[str, list[int]] = {}
    for record in records:
        event = orjson.loads(record.value)
        seqs.setdefault(event["gpu_uuid"], []).append(int(event["host"].removeprefix("seq-")))
    for gpu, order in seqs.items():
        for r in range(40):  # within a request, in the order given
            mine = [seq for seq in order if seq // 100 == r]
            assert mine == sorted(mine), gpu
    assert len({record.partition for record in records}) > 1  # several partitions at once


def _record(fields: dict[str, object]) -> tuple[bytes, bytes]:
    return to_record(GPU_METRICS.from_json(orjson.dumps(fields)))
