"""Encoded events into Kafka through aiokafka's batch API, without a future per event.

Records are appended to one open batch per topic-partition (partition = murmur2(key), the same
as the Java client and aiokafka's default partitioner, so key = gpu_uuid keeps a GPU's samples
in order). A batch is sealed when it is full or has waited `linger_s`, and a background task
(`drain`) hands sealed batches, in order, to the idempotent producer. aiokafka retries each
until the broker acknowledges it (acks=all); its one future then counts all its records as sent.

The send loop only appends and never waits for Kafka: while the broker is down, batches queue
here, up to `buffer_limit` unacknowledged events; only then does the producer stop taking
samples (counted as skipped). If a batch fails for good (the producer was closed or hit a fatal
error), its records are appended again and resent: each carries its event id, so the processor
stores it once. Nothing is dropped silently: past `buffer_limit`, failed events are dropped
oldest first, counted in events_dropped_total and logged.

See https://aiokafka.readthedocs.io/en/stable/producer.html#direct-batch-control
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

from gpu_analytics.kafka.producer import key_partition
from gpu_analytics.producer.metrics import ProducerMetrics

log = logging.getLogger(__name__)

Record = tuple[bytes, bytes]  # key, value
_KEY_CACHE_LIMIT = 100_000


@dataclass
class _Batch:
    topic: str
    partition: int
    builder: Any  # aiokafka.producer.message_accumulator.BatchBuilder
    created: float
    records: list[Record] = field(default_factory=list)


class ProducerUnusable(RuntimeError):
    """aiokafka refuses new batches (closed, or its sender died): it has to be replaced."""


class BatchPublisher:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        metrics: ProducerMetrics,
        *,
        linger_s: float,
        buffer_limit: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._producer = producer
        self._metrics = metrics
        self._linger_s = linger_s
        self.buffer_limit = buffer_limit
        self._clock = clock
        self._open: dict[tuple[str, int], _Batch] = {}
        self._sealed: deque[_Batch] = deque()
        self._has_sealed = asyncio.Event()
        self._progress = asyncio.Event()  # set on every acknowledgement or failure
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._retry: deque[tuple[str, bytes, bytes]] = deque()
        self._partitions: dict[str, list[int]] = {}
        self._key_partition: dict[tuple[str, bytes], int] = {}
        self._sent_counters: dict[str, Any] = {}
        self._last_error_log = -60.0
        self.buffered = 0  # appended here or handed to aiokafka, not yet acknowledged
        self.sent: dict[str, int] = {}
        self.sent_bytes = 0
        self.failed = 0

    # -- partitions ---------------------------------------------------------------------
    async def refresh_partitions(self, topics: list[str]) -> None:
        """Learn each topic's partitions (waits for metadata; Kafka may auto-create)."""
        for topic in dict.fromkeys(topics):
            partitions = sorted(await self._producer.partitions_for(topic))
            if self._partitions.get(topic) != partitions:
                self._partitions[topic] = partitions
                self._key_partition = {
                    k: p for k, p in self._key_partition.items() if k[0] != topic
                }

    def partition_for(self, topic: str, key: bytes) -> int:
        cached = self._key_partition.get((topic, key))
        if cached is not None:
            return cached
        partition = key_partition(key, self._partitions[topic])
        if len(self._key_partition) >= _KEY_CACHE_LIMIT:
            self._key_partition.clear()
        self._key_partition[(topic, key)] = partition
        return partition

    # -- appending (the send loop) ------------------------------------------------------
    def add(self, topic: str, key: bytes, value: bytes) -> None:
        partition = self.partition_for(topic, key)
        batch = self._open.get((topic, partition))
        if batch is None:
            batch = self._new_batch(topic, partition)
        if batch.builder.append(timestamp=None, key=key, value=value) is None:
            if not batch.records:
                raise ValueError(f"a record of {len(value)} bytes exceeds the batch size")
            self._seal(batch)  # full
            batch = self._new_batch(topic, partition)
            if batch.builder.append(timestamp=None, key=key, value=value) is None:
                raise ValueError(f"a record of {len(value)} bytes exceeds the batch size")
        batch.records.append((key, value))
        self.buffered += 1

    def _new_batch(self, topic: str, partition: int) -> _Batch:
        batch = _Batch(topic, partition, self._producer.create_batch(), self._clock())
        self._open[(topic, partition)] = batch
        return batch

    def _seal(self, batch: _Batch) -> None:
        del self._open[(batch.topic, batch.partition)]
        batch.builder.close()  # complete: aiokafka must neither add to it nor linger it
        self._sealed.append(batch)
        self._has_sealed.set()

    def seal_lingering(self, *, force: bool = False) -> None:
        """Seal the batches that waited `linger_s` (all of them when `force`)."""
        now = self._clock()
        for batch in list(self._open.values()):
            if force or now - batch.created >= self._linger_s:
                self._seal(batch)

    def linger_delay(self) -> float:
        """Seconds until the oldest open batch is due (inf when none is open)."""
        if not self._open:
            return float("inf")
        oldest = min(b.created for b in self._open.values())
        return max(0.0, oldest + self._linger_s - self._clock())

    def requeue_failed(self) -> int:
        """Append the records of failed batches again (before new events)."""
        n = len(self._retry)
        for _ in range(n):
            topic, key, value = self._retry.popleft()
            self.add(topic, key, value)
        return n

    @property
    def pending(self) -> int:
        """Events not yet acknowledged, including those waiting to be sent again."""
        return self.buffered + len(self._retry)

    @property
    def has_room(self) -> bool:
        return self.pending < self.buffer_limit

    async def wait_for_progress(self, timeout: float) -> None:
        """Until Kafka acknowledges (or fails) a batch, or `timeout` seconds."""
        self._progress.clear()
        try:
            await asyncio.wait_for(self._progress.wait(), timeout)
        except TimeoutError:
            pass

    # -- handing batches to Kafka (the drain task) --------------------------------------
    async def drain(self) -> None:
        """Hand sealed batches to aiokafka in order, forever. Waits while aiokafka still
        holds an undrained batch of the same partition; when Kafka takes nothing for
        request_timeout_ms the batch stays first in line. Raises ProducerUnusable."""
        sealed = self._sealed
        while True:
            if not sealed:
                self._has_sealed.clear()
                await self._has_sealed.wait()
                continue
            batch = sealed[0]
            try:
                future = await self._producer.send_batch(
                    batch.builder, batch.topic, partition=batch.partition
                )
            except KafkaTimeoutError:
                self._metrics.send_errors.inc(len(batch.records))
                self._log_failure(
                    "Kafka took no batch within request_timeout_ms; keeping the events",
                    len(batch.records),
                )
                continue
            except KafkaError as exc:
                raise ProducerUnusable(str(exc) or type(exc).__name__) from exc
            sealed.popleft()
            self._in_flight.add(future)
            future.add_done_callback(functools.partial(self._done, batch))

    def _done(self, batch: _Batch, future: asyncio.Future[Any]) -> None:
        self._in_flight.discard(future)
        self._progress.set()
        n = len(batch.records)
        self.buffered -= n
        error = future.exception() if not future.cancelled() else asyncio.CancelledError()
        if error is None:
            counter = self._sent_counters.get(batch.topic)
            if counter is None:
                counter = self._metrics.events_sent.labels(topic=batch.topic)
                self._sent_counters[batch.topic] = counter
            counter.inc(n)
            self.sent[batch.topic] = self.sent.get(batch.topic, 0) + n
            self.sent_bytes += sum(len(v) for _, v in batch.records)
            return
        self.failed += n
        self._metrics.send_errors.inc(n)
        self._log_failure(
            "batch not delivered; its events will be sent again", n, error=repr(error)
        )
        self._keep_for_retry(batch)

    def _keep_for_retry(self, batch: _Batch) -> None:
        retry = self._retry
        retry.extend((batch.topic, k, v) for k, v in batch.records)
        overflow = self.pending - self.buffer_limit
        if overflow > 0:
            dropped = min(overflow, len(retry))
            for _ in range(dropped):
                retry.popleft()
            self._metrics.events_dropped.inc(dropped)
            log.error(
                "buffer full: oldest failed events dropped",
                extra={"dropped": dropped, "buffer_limit": self.buffer_limit},
            )

    def _log_failure(self, message: str, events: int, **extra: object) -> None:
        now = self._clock()
        if now - self._last_error_log >= 10:  # a long outage logs every 10 s, not per batch
            self._last_error_log = now
            log.warning(message, extra={"events": events, "pending": self.pending, **extra})

    # -- replacing the producer / flushing ----------------------------------------------
    def replace_producer(self, producer: AIOKafkaProducer) -> None:
        """Move everything not yet handed over to the retry buffer, for the new producer
        (its batches were built for the old one)."""
        for batch in [*self._open.values(), *self._sealed]:
            self._retry.extend((batch.topic, k, v) for k, v in batch.records)
            self.buffered -= len(batch.records)
        self._open.clear()
        self._sealed.clear()
        self._producer = producer

    @property
    def idle(self) -> bool:
        """Nothing left to send or to be acknowledged."""
        return not (self._open or self._sealed or self._in_flight or self._retry)

    async def flush(self, timeout: float) -> int:
        """Seal everything and wait (while `drain` runs) until Kafka acknowledged it all,
        retrying failed batches, or until `timeout`. Returns the events left unacknowledged."""
        deadline = self._clock() + timeout
        while True:
            self.requeue_failed()
            self.seal_lingering(force=True)
            remaining = deadline - self._clock()
            if self.idle or remaining <= 0:
                return self.pending
            await self.wait_for_progress(min(remaining, 0.1))
