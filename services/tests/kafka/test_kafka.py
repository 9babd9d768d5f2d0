"""gpu_analytics.kafka: each aiokafka adjustment at each place it patches, and the producer both
services build, start and replace one way (the last against the real local broker)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiokafka.codec
import aiokafka.record.default_records as py_records
import pytest
from aiokafka.record._crecords import default_records as c_records
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from aiokafka.record.memory_records import MemoryRecords

from gpu_analytics.kafka import fixes
from gpu_analytics.kafka.producer import new_producer, retire, start_producer
from gpu_analytics.processor.publisher import EventPublisher
from gpu_analytics_tools.stack.stack import StackEnv

LZ4 = 3  # Kafka's compression attribute


def test_fast_lz4_is_what_every_lz4_encoder_of_aiokafka_calls() -> None:
    fixes.use_fast_lz4()
    assert aiokafka.codec.lz4_encode is fixes._lz4_fast
    assert py_records.lz4_encode is fixes._lz4_fast  # the pure-Python record batches
    assert c_records.lz4_encode is fixes._lz4_fast  # the C extension's


def test_a_pure_python_batch_compressed_fast_decodes_like_any_lz4_batch() -> None:
    fixes.use_fast_lz4()
    builder = _DefaultRecordBatchBuilderPy(
        magic=2, compression_type=LZ4, is_transactional=False, producer_id=-1,
        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20,
    )  # fmt: skip
    values = [b'{"gpu_uuid":"GPU-%d","power_w":%d}' % (n, n % 700) for n in range(300)]
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=None, key=b"k", value=value, headers=[])
    raw = bytes(builder.build())
    batch = MemoryRecords(raw).next_batch()
    assert batch is not None and batch.compression_type == LZ4
    assert len(raw) < sum(map(len, values)) / 2  # it does compress
    assert [record.value for record in batch] == values


class FakeClient:
    """A client whose metadata refresh always fails, as while the broker is down."""

    def __init__(self) -> None:
        self.refreshes = 0

    def force_metadata_update(self) -> asyncio.Future[Any]:
        self.refreshes += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(False)
        return future


async def test_metadata_refreshes_are_spaced_by_a_doubling_backoff_while_they_fail() -> None:
    producer = type("P", (), {"client": FakeClient()})()
    client = producer.client
    limiter = fixes.limit_metadata_refresh(producer, initial_s=0.05, max_s=0.2)
    assert client.force_metadata_update is limiter
    loop = asyncio.get_running_loop()
    end = loop.time() + 1.0
    while loop.time() < end:  # aiokafka's sender in an outage: ask again at once, forever
        await client.force_metadata_update()
    # passes at 0, 0.05, 0.15, 0.35, 0.55, 0.75, 0.95 s: not one per loop turn
    assert 4 <= client.refreshes <= 9, client.refreshes


async def test_a_successful_refresh_resets_the_backoff() -> None:
    producer = type("P", (), {"client": FakeClient()})()
    limiter = fixes.limit_metadata_refresh(producer, initial_s=0.05, max_s=0.4)
    for _ in range(6):  # every other one waits out the backoff: 0.05, 0.1, 0.2, then 0.4
        await producer.client.force_metadata_update()
    assert limiter._backoff == 0.4
    ok: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    ok.set_result(True)
    limiter._adapt(ok)
    assert limiter._backoff == 0.05


def test_a_repeated_aiokafka_warning_passes_once_per_interval() -> None:
    repeat = fixes.RepeatFilter(interval_s=3600)
    records = [
        logging.LogRecord("aiokafka", logging.WARNING, __file__, 1, "Unable to connect", (), None)
        for _ in range(100)
    ]
    assert [repeat.filter(r) for r in records].count(True) == 1
    other = logging.LogRecord("aiokafka", logging.WARNING, __file__, 1, "Other", (), None)
    assert repeat.filter(other)
    repeat.interval_s = 0
    again = logging.LogRecord(
        "aiokafka", logging.WARNING, __file__, 1, "Unable to connect", (), None
    )
    assert repeat.filter(again) and getattr(again, "repeated_since_last", None) == 99


async def test_both_services_build_their_producer_with_the_fixes() -> None:
    producer = new_producer("127.0.0.1:1", client_id="t", linger_ms=5)
    assert isinstance(producer.client.force_metadata_update, fixes._MetadataRefreshLimiter)
    assert aiokafka.codec.lz4_encode is fixes._lz4_fast
    publisher = EventPublisher("127.0.0.1:1")
    assert isinstance(
        publisher._producer.client.force_metadata_update, fixes._MetadataRefreshLimiter
    )


async def test_a_producer_that_cannot_start_is_stopped_and_its_error_raised() -> None:
    made: list[Any] = []

    def factory() -> Any:
        made.append(new_producer("127.0.0.1:9", client_id="never", linger_ms=0))
        return made[-1]

    with pytest.raises(Exception):  # noqa: B017 - KafkaConnectionError or OSError
        await start_producer(factory)
    assert len(made) == 1 and made[0]._closed  # nothing left running behind the error


@pytest.mark.integration
async def test_a_started_producer_sends_and_retire_stops_it(stack: StackEnv) -> None:
    producer = await start_producer(
        lambda: new_producer(stack.bootstrap_servers, client_id="retire-test", linger_ms=0)
    )
    await (await producer.send("retire-test", b"x"))
    await retire(producer)
    assert producer._closed
