"""The idempotent producer of both services: one set of client settings, the aiokafka fixes
applied, started and replaced one way.

A producer is unusable for good when aiokafka's sender task died, or when a batch failed with
one of `FATAL`: its producer id, epoch and sequence numbers no longer match the broker's, and
every later batch fails the same way. Replacing it means `start_producer` (a new producer id,
sequences afresh), putting the new one in the old one's place, and only then `retire` the old
one; while the new one cannot start, the old one is kept and the caller tries again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.partitioner import murmur2

from gpu_analytics.kafka.fixes import limit_metadata_refresh, use_fast_lz4

log = logging.getLogger(__name__)

# OutOfOrderSequenceNumber is what a Kafka outage long enough for batches to expire leaves
# behind (aio-libs/aiokafka#1017).
FATAL = (
    OutOfOrderSequenceNumber,
    ProducerFenced,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    UnknownProducerId,
)
RETIRE_TIMEOUT_S = 5.0


def key_partition(key: bytes, partitions: Sequence[int]) -> int:
    """The partition of a keyed record among a topic's `partitions` (sorted): murmur2, as the
    Java client and aiokafka's default partitioner place it, so one key (a GPU) stays in one
    partition whichever service sends it."""
    return partitions[(int(murmur2(key)) & 0x7FFFFFFF) % len(partitions)]


def new_producer(
    bootstrap_servers: str,
    *,
    client_id: str,
    linger_ms: int,
    max_batch_size: int = 16384,
    request_timeout_ms: int = 40_000,
) -> AIOKafkaProducer:
    """An idempotent producer (retries never duplicate or reorder a partition), acks=all,
    lz4 in its fast mode, metadata refreshes spaced while Kafka is away."""
    use_fast_lz4()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        compression_type="lz4",
        linger_ms=linger_ms,
        max_batch_size=max_batch_size,
        request_timeout_ms=request_timeout_ms,
    )
    limit_metadata_refresh(producer)
    return producer


async def start_producer(factory: Callable[[], AIOKafkaProducer]) -> AIOKafkaProducer:
    """A new producer, started; stopped again and the error raised when it cannot start
    (KafkaError or OSError while Kafka is away)."""
    producer = factory()
    try:
        await producer.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.shield(producer.stop())
        raise
    return producer


async def retire(producer: AIOKafkaProducer, timeout: float = RETIRE_TIMEOUT_S) -> None:
    """Stop a replaced or finished producer, waiting at most `timeout` s for what it holds."""
    try:
        await asyncio.wait_for(producer.stop(), timeout)
    except (TimeoutError, KafkaError, OSError) as exc:
        log.warning("Kafka producer did not close cleanly", extra={"error": repr(exc)})


def sender_failure(producer: Any) -> BaseException | None:
    """The error aiokafka's sender task ended with, or None while it runs (or never started).
    A private attribute, read defensively: a missing one reads as "running"."""
    task = getattr(getattr(producer, "_sender", None), "sender_task", None)
    if not isinstance(task, asyncio.Task) or not task.done() or task.cancelled():
        return None
    return task.exception() or KafkaError("the producer's sender task ended")
