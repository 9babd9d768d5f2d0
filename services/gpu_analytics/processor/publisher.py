"""The processor's Kafka producer: HTTP-ingested events and dead-lettered records."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from gpu_analytics.events import GpuMetric, TokenUsage, to_json
from gpu_analytics.kafka.producer import (
    FATAL,
    key_partition,
    new_producer,
    retire,
    sender_failure,
    start_producer,
)
from gpu_analytics.processor.partition_lane import PartitionLane

log = logging.getLogger(__name__)

# While Kafka stays away, a replacement is tried on every readiness check (every 2 s): the
# first failure is logged, then one line a minute with the count, not one line per try.
RENEWAL_LOG_EVERY_S = 60.0
# On stop, batches still being sent get this long to reach Kafka. Every request has had its
# answer by then (uvicorn's graceful shutdown comes first): a batch still here belongs to
# requests that gave up on it (503, retried by their clients), so cancelling loses nothing.
STOP_WAIT_S = 5.0


class EventPublisher:
    """The processor's producer: HTTP-ingested events, dead-lettered records."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._producer = self._new_producer()
        self._renewing = asyncio.Lock()
        self._broken: BaseException | None = None  # a fatal error seen on the current producer
        self._renewal: asyncio.Task[None] | None = None  # a replacement being started
        self._reported: BaseException | None = None  # the unusable state already logged
        self._failed_renewals = 0  # background replacements that failed since the last success
        self._renewal_logged_at = -RENEWAL_LOG_EVERY_S
        # The current producer's partitions, each sending its requests' records in batches
        # one at a time (partition_lane.py); every lane's task still sending, old ones too.
        self._lanes: dict[tuple[str, int], PartitionLane] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self.started = False

    def _new_producer(self) -> AIOKafkaProducer:
        return new_producer(
            self._bootstrap_servers,
            client_id="gpu-analytics-processor",
            linger_ms=5,
            # A request's events for one partition in one batch: 100 events are about 30 KB,
            # two or three 16 KiB batches each waiting its turn for the partition otherwise.
            # Well under the broker's 1 MiB message.max.bytes, compressed or not.
            max_batch_size=262_144,
            request_timeout_ms=15_000,
        )

    async def start(self) -> None:
        await self._producer.start()
        self.started = True

    async def stop(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewal
        if self._sending:  # every request answered by now: only batches nobody waits for
            _, late = await asyncio.wait(self._sending, timeout=STOP_WAIT_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self.started:
            await self._producer.stop()
            self.started = False

    async def reachable(self, timeout: float) -> bool:
        """A metadata round trip to the cluster within `timeout` seconds (readiness): a broker
        that is partitioned away (connections open, no answers) reads as unreachable at once,
        not after the client's request timeout. A producer that died is replaced in the
        background; until the new one runs the answer is no."""
        if not self.started:
            return False
        if self._unusable() is not None:
            if self._renewal is None or self._renewal.done():
                self._renewal = asyncio.create_task(self._renew_if_unusable(), name="renew")
                self._renewal.add_done_callback(self._renewal_done)
            return False
        try:
            async with asyncio.timeout(timeout):
                return bool(await self._producer.client.fetch_all_metadata())
        except Exception:  # noqa: BLE001 - any failure means "not reachable now"
            return False

    async def _renew_if_unusable(self) -> None:
        """Replace the producer once it is unusable for good: a publish saw one of the `FATAL`
        errors, or aiokafka's sender task died (as gpu_analytics.kafka.producer describes).
        Raises KafkaError (or OSError) while Kafka cannot be reached; the old producer is then
        kept and the next call tries again."""
        if self._unusable() is None:
            return
        async with self._renewing:
            error = self._unusable()
            if error is None:  # another request renewed it while this one waited
                return
            if error is not self._reported:
                self._reported = error
                log.error(
                    "Kafka producer unusable; starting a new one", extra={"error": repr(error)}
                )
            fresh = await start_producer(self._new_producer)  # raises: the old one is kept
            old, self._producer, self._broken = self._producer, fresh, None
            self._lanes = {}  # the old lanes send what they hold through the old producer
            # What the old one still holds fails the same way: it is not waited for long.
            await retire(old)

    def _renewal_done(self, task: asyncio.Task[None]) -> None:
        """Done callback of a background renewal. A failure (Kafka still away) is retried on
        the next readiness check, the old producer kept meanwhile; logged as RENEWAL_LOG_EVERY_S
        says."""
        if task.cancelled():  # the publisher stopped
            return
        if (error := task.exception()) is None:
            if self._failed_renewals:
                log.info(
                    "new Kafka producer started",
                    extra={"failed_attempts": self._failed_renewals},
                )
            self._failed_renewals = 0
            return
        self._failed_renewals += 1
        now = time.monotonic()
        if now - self._renewal_logged_at >= RENEWAL_LOG_EVERY_S:
            self._renewal_logged_at = now
            log.warning(
                "cannot start a new Kafka producer yet; retrying on each readiness check",
                extra={"error": repr(error), "failed_attempts": self._failed_renewals},
            )

    def _unusable(self) -> BaseException | None:
        return self._broken or sender_failure(self._producer)

    def _observe(self, producer: AIOKafkaProducer, future: asyncio.Future[object]) -> None:
        """Done callback of each batch sent: mark its error as retrieved (after a timed-out
        publish nobody awaits the future; asyncio would log "exception was never retrieved")
        and note a fatal one against the producer that sent it."""
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, FATAL) and producer is self._producer and self._broken is None:
            self._broken = error

    async def publish(
        self,
        topic: str,
        records: Sequence[Record],
        *,
        timeout: float | None = None,
    ) -> None:
        """Send every (key, value) record and wait for all acknowledgements (acks=all), for at
        most `timeout` seconds in all (None: as long as the producer's own timeouts take).

        Raises a KafkaError when Kafka refused or failed a record, TimeoutError when not every
        record was acknowledged in time. Either way the outcome of each is unknown: some may
        still reach Kafka later (a queued send is never taken back, so nothing is half
        written). The caller tells its client to retry; the event ids make a retry idempotent
        downstream. A producer left unusable by an earlier error is replaced first.
        """
        dones: list[asyncio.Future[None]] = []
        async with asyncio.timeout(timeout):
            await self._renew_if_unusable()
            producer = self._producer
            partitions = sorted(await producer.partitions_for(topic))
            by_partition: dict[int, list[Record]] = {}
            placed: dict[bytes, int] = {}  # a GPU's events share a key: murmur2 once per key
            for record in records:
                partition = placed.get(record[0])
                if partition is None:
                    partition = placed[record[0]] = key_partition(record[0], partitions)
                by_partition.setdefault(partition, []).append(record)
            for partition, group in by_partition.items():
                lane = self._lane(producer, topic, partition)
                dones.extend(lane.add(group))
                if lane.task is not None and lane.task not in self._sending:
                    self._sending.add(lane.task)
                    lane.task.add_done_callback(self._sending.discard)
            # `wait` neither cancels the futures on timeout nor raises their errors.
            await asyncio.wait(dones, return_when=asyncio.FIRST_EXCEPTION)
        for done in dones:
            if done.done():
                done.result()  # raises the first Kafka error, if any

    def _lane(self, producer: AIOKafkaProducer, topic: str, partition: int) -> PartitionLane:
        lane = self._lanes.get((topic, partition))
        if lane is None:
            observe = functools.partial(self._observe, producer)
            lane = self._lanes[topic, partition] = PartitionLane(
                producer, topic, partition, observe
            )
        return lane

    async def dead_letter(
        self,
        topic: str,
        *,
        value: bytes | None,
        key: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> asyncio.Future[object]:
        """Queue one record for the dead-letter topic; the caller awaits the returned future
        before committing the source offset."""
        return await self._producer.send(topic, value, key=key, headers=headers)  # type: ignore[no-any-return]


Record = tuple[bytes, bytes]  # (key, value) of one Kafka record


def record_key(fields: Mapping[str, Any]) -> bytes:
    """The Kafka key of an event, from its field values: by GPU, so one GPU's samples stay
    ordered; token events without a GPU by model."""
    return str(fields.get("gpu_uuid") or fields["model"]).encode()


def to_record(event: GpuMetric | TokenUsage) -> Record:
    """An event model as a record."""
    return record_key(event.__dict__), to_json(event)
