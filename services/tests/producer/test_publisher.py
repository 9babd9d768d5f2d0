"""Batching, acknowledgement counting and retries of the BatchPublisher, against a fake producer.

The fake stands in for AIOKafkaProducer's batch API (create_batch / send_batch / partitions_for)
so failures Kafka rarely shows on demand (a batch failing for good, a full accumulator) can be
produced here; the batches themselves are aiokafka's real BatchBuilder.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, ProducerClosed
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record._crecords import default_records as c_records
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from gpu_analytics.kafka.fixes import use_fast_lz4
from gpu_analytics.producer.metrics import ProducerMetrics
from gpu_analytics.producer.publisher import BatchPublisher, ProducerUnusable

TOPIC = "gpu.metrics.v1"
LZ4 = 3  # the codec id in a record batch's attributes


@dataclass
class Sent:
    topic: str
    partition: int
    builder: BatchBuilder
    future: asyncio.Future[Any]

    def values(self) -> list[bytes]:
        batch = MemoryRecords(bytes(self.builder._build())).next_batch()
        assert batch is not None
        return [record.value for record in batch]


@dataclass
class FakeProducer:
    partitions: int = 3
    batch_bytes: int = 16_384
    sent: list[Sent] = field(default_factory=list)
    refuse: list[BaseException] = field(default_factory=list)  # raised by the next send_batch

    async def partitions_for(self, _topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_bytes, 0)

    async def send_batch(self, builder: BatchBuilder, topic: str, *, partition: int) -> Any:
        if self.refuse:
            raise self.refuse.pop(0)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append(Sent(topic, partition, builder, future))
        return future


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _publisher(
    producer: FakeProducer,
    metrics: ProducerMetrics,
    clock: Callable[[], float],
    buffer_limit: int = 1000,
) -> BatchPublisher:
    return BatchPublisher(
        producer,
        metrics,
        linger_s=0.01,
        buffer_limit=buffer_limit,
        clock=clock,
    )


def _sample(metrics: ProducerMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def draining(publisher: BatchPublisher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(publisher.drain())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ProducerUnusable):
            await task


async def test_partition_is_murmur2_of_the_key_like_the_java_client() -> None:
    publisher = _publisher(FakeProducer(partitions=6), ProducerMetrics(), FakeClock())
    await publisher.refresh_partitions([TOPIC])
    partitioner = DefaultPartitioner()

    for n in range(50):
        key = f"GPU-{n:08d}".encode()
        assert publisher.partition_for(TOPIC, key) == partitioner(key, list(range(6)), [])


async def test_batches_linger_then_leave_and_count_as_sent_when_acknowledged() -> None:
    producer, metrics, clock = FakeProducer(partitions=1), ProducerMetrics(), FakeClock()
    publisher = _publisher(producer, metrics, clock)
    await publisher.refresh_partitions([TOPIC])
    async with draining(publisher):
        for n in range(5):
            publisher.add(TOPIC, b"GPU-1", b'{"n":%d}' % n)

        publisher.seal_lingering()
        await _settle()
        assert producer.sent == []  # lingering
        assert publisher.linger_delay() == pytest.approx(0.01)
        clock.now += 0.011
        publisher.seal_lingering()
        await _settle()

        assert len(producer.sent) == 1
        assert producer.sent[0].values() == [b'{"n":%d}' % n for n in range(5)]
        assert publisher.pending == 5
        assert _sample(metrics, "gpu_analytics_events_sent_total", topic=TOPIC) == 0
        producer.sent[0].future.set_result(None)
        await _settle()

    assert _sample(metrics, "gpu_analytics_events_sent_total", topic=TOPIC) == 5
    assert publisher.pending == 0
    assert publisher.sent == {TOPIC: 5}
    assert publisher.idle


async def test_full_batches_leave_without_waiting_for_linger() -> None:
    producer = FakeProducer(partitions=1, batch_bytes=1024)
    publisher = _publisher(producer, ProducerMetrics(), FakeClock())
    await publisher.refresh_partitions([TOPIC])
    async with draining(publisher):
        for n in range(40):
            publisher.add(TOPIC, b"GPU-1", b"x" * 100 + b"%d" % n)
        await _settle()

        assert len(producer.sent) >= 3  # the full ones; the last, partial one lingers
        assert publisher.linger_delay() > 0


async def test_failed_batch_is_counted_and_sent_again_unchanged() -> None:
    producer, metrics = FakeProducer(partitions=1), ProducerMetrics()
    publisher = _publisher(producer, metrics, FakeClock())
    await publisher.refresh_partitions([TOPIC])
    values = [b'{"event_id":"e%d"}' % n for n in range(3)]
    async with draining(publisher):
        for value in values:
            publisher.add(TOPIC, b"GPU-1", value)
        publisher.seal_lingering(force=True)
        await _settle()

        producer.sent[0].future.set_exception(ProducerClosed())
        await _settle()
        assert _sample(metrics, "gpu_analytics_send_errors_total") == 3
        assert publisher.pending == 3  # kept, not lost
        assert publisher.requeue_failed() == 3
        publisher.seal_lingering(force=True)
        await _settle()

        assert producer.sent[1].values() == values
        producer.sent[1].future.set_result(None)
        await _settle()
    assert publisher.pending == 0
    assert publisher.sent == {TOPIC: 3}


async def test_buffer_full_drops_oldest_failed_events_and_counts_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer, metrics = FakeProducer(partitions=1), ProducerMetrics()
    publisher = _publisher(producer, metrics, FakeClock(), buffer_limit=8)
    await publisher.refresh_partitions([TOPIC])
    async with draining(publisher):
        for n in range(6):
            publisher.add(TOPIC, b"GPU-1", b"%d" % n)
        publisher.seal_lingering(force=True)
        await _settle()
        for n in range(4):  # more events arrive while the first batch is out
            publisher.add(TOPIC, b"GPU-1", b"new%d" % n)
        assert not publisher.has_room  # 10 of 8: the send loop holds off

        producer.sent[0].future.set_exception(ProducerClosed())
        await _settle()

    assert _sample(metrics, "gpu_analytics_events_dropped_total") == 2
    assert publisher.pending == 8
    assert "buffer full: oldest failed events dropped" in caplog.messages


async def test_kafka_taking_nothing_keeps_the_batch_first_in_line() -> None:
    producer, metrics = FakeProducer(partitions=1), ProducerMetrics()
    publisher = _publisher(producer, metrics, FakeClock())
    await publisher.refresh_partitions([TOPIC])
    producer.refuse.append(KafkaTimeoutError())
    async with draining(publisher):
        publisher.add(TOPIC, b"GPU-1", b"a")
        publisher.seal_lingering(force=True)
        await _settle()

    assert _sample(metrics, "gpu_analytics_send_errors_total") == 1
    assert producer.sent[0].values() == [b"a"]  # the next try took it


async def test_dead_producer_ends_the_drain_and_its_events_move_to_the_next_one() -> None:
    first, metrics = FakeProducer(partitions=1), ProducerMetrics()
    publisher = _publisher(first, metrics, FakeClock())
    await publisher.refresh_partitions([TOPIC])
    first.refuse.append(KafkaConnectionError())
    async with draining(publisher) as drain:
        publisher.add(TOPIC, b"GPU-1", b"a")
        publisher.seal_lingering(force=True)
        await _settle()
        assert drain.done()
        assert isinstance(drain.exception(), ProducerUnusable)

    second = FakeProducer(partitions=1)
    publisher.replace_producer(second)
    async with draining(publisher):
        publisher.requeue_failed()
        publisher.seal_lingering(force=True)
        await _settle()

    assert second.sent[0].values() == [b"a"]


async def test_flush_reports_what_kafka_never_acknowledged() -> None:
    producer = FakeProducer(partitions=2)
    publisher = _publisher(producer, ProducerMetrics(), time.monotonic)
    await publisher.refresh_partitions([TOPIC])
    for n in range(10):
        publisher.add(TOPIC, b"GPU-%d" % n, b"v")

    async with draining(publisher):
        flushing = asyncio.create_task(publisher.flush(timeout=0.3))
        await _settle()
        producer.sent[0].future.set_result(None)  # one partition acknowledges, the other never

        assert await flushing == 10 - len(producer.sent[0].values())


def test_fast_lz4_frames_decode_like_any_kafka_lz4_batch() -> None:
    use_fast_lz4()
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=LZ4,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    values = [b'{"gpu_uuid":"GPU-%d","utilization_gpu_pct":%d}' % (n, n % 100) for n in range(500)]
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=None, key=b"k", value=value, headers=[])
    raw = bytes(builder.build())

    batch = MemoryRecords(raw).next_batch()

    assert batch is not None
    assert batch.compression_type == LZ4
    assert len(raw) < sum(map(len, values)) / 3  # it does compress
    assert [record.value for record in batch] == values
    assert c_records.lz4_encode.__name__ == "_lz4_fast"  # what aiokafka's batches now use
