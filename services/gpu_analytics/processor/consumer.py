"""The Kafka -> MongoDB consumer: at-least-once delivery plus idempotent writes = exactly once.

One loop (aiokafka docs, consumer.rst): getmany -> decode and validate -> dead-letter the invalid
records -> bulk insert the valid ones (ordered=False, duplicates ignored) -> commit last offset + 1
for the partitions still assigned. Nothing is committed until the batch is stored and its
dead letters acknowledged; a MongoDB or Kafka outage makes the loop retry the same batch, never
skip it. An event without an id gets `<topic>:<partition>:<offset>`, stable across redelivery.
The documents it builds hold `ts` as a naive UTC datetime (fast_decode.to_naive_utc: the same
BSON date, cheaper to encode); the metrics it feeds take them so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from operator import itemgetter
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from gpu_analytics.config import ProcessorSettings
from gpu_analytics.events import (
    GPU_METRICS,
    TOKEN_USAGE,
    EventKind,
    GpuMetric,
    NotAnObject,
    TokenUsage,
    describe_errors,
    invalid_reason,
)
from gpu_analytics.fast_decode import to_naive_utc
from gpu_analytics.processor import dead_letters, metrics
from gpu_analytics.processor.dead_letters import DeadLetter
from gpu_analytics.processor.publisher import EventPublisher
from gpu_analytics.processor.storage import insert_idempotent

log = logging.getLogger(__name__)

# Far below Kafka's 1 MiB default: an event is a few hundred bytes.
MAX_EVENT_BYTES = 64 * 1024
RETRY_MIN_S, RETRY_MAX_S = 0.5, 10.0
_TS = itemgetter("ts")  # a document's naive UTC stamp

T = TypeVar("T")


@dataclass
class _Route:
    collection: str
    kind: EventKind


@dataclass
class _Batch:
    docs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    gpu_docs: dict[TopicPartition, list[dict[str, Any]]] = field(default_factory=dict)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps the partitions this replica owns, logs and drops the lag and GPU series of revoked
    ones. It takes no lock: aiokafka documents a deadlock when a listener waits on something
    held around getmany().

    `owned` is what a batch may still report on: between a revocation and the next assignment
    aiokafka's assignment() still lists the revoked partitions, so a batch finished in that
    window (its insert awaited while the group rebalanced) would bring their GPUs and lag back
    on a replica that no longer owns them."""

    def __init__(self) -> None:
        self.owned: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.owned -= revoked
        for tp in revoked:
            with contextlib.suppress(KeyError):  # no lag reported yet
                metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
        metrics.FLEET.forget_partitions(revoked)
        if revoked:
            log.info("partitions revoked", extra={"partitions": _names(revoked)})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.owned = set(assigned)
        log.info("partitions assigned", extra={"partitions": _names(assigned)})


def _names(tps: set[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}:{tp.partition}" for tp in tps)


class EventConsumer:
    def __init__(
        self,
        settings: ProcessorSettings,
        db: AsyncDatabase[dict[str, Any]],
        publisher: EventPublisher,
    ) -> None:
        self._settings = settings
        self._db = db
        self._publisher = publisher
        self._routes = {
            settings.topic_gpu_metrics: _Route("gpu_metrics", GPU_METRICS),
            settings.topic_token_usage: _Route("token_usage", TOKEN_USAGE),
        }
        self._listener = _Rebalance()
        self._stopping = asyncio.Event()
        self._gpu_topic = settings.topic_gpu_metrics
        self._token_topic = settings.topic_token_usage
        metrics.FLEET.ttl_s = settings.fleet_series_ttl_s
        metrics.FLEET.max_gpus = settings.fleet_max_gpus
        metrics.FLEET.idle_threshold_pct = settings.gpu_idle_utilization_pct
        metrics.LLM.max_models = settings.llm_max_models
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    def request_stop(self) -> None:
        """Stop fetching: the batch in hand is finished and committed, then run() leaves the
        group and returns (graceful shutdown)."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until request_stop() (or cancellation)."""
        self._consumer.subscribe(list(self._routes), listener=self._listener)
        await self._consumer.start()
        try:
            while not self._stopping.is_set():
                batches = await self._consumer.getmany(
                    timeout_ms=self._settings.consumer_poll_timeout_ms,
                    max_records=self._settings.consumer_max_records,
                )
                if batches:
                    started = time.perf_counter()
                    await self._handle(batches)
                    metrics.BATCH_STORE_SECONDS.observe(time.perf_counter() - started)
        finally:
            await self._consumer.stop()

    async def _handle(self, batches: dict[TopicPartition, list[Any]]) -> None:
        batch = _Batch()
        for tp, records in batches.items():
            self._decode(tp, records, batch)
        await self._send_dead_letters(batch.dead_letters)
        for topic, docs in batch.docs.items():
            collection = self._db[self._routes[topic].collection]
            new = await self._retry(
                f"store {len(docs)} events", partial(insert_idempotent, collection, docs)
            )
            metrics.EVENTS_STORED.labels(topic).inc(len(new))
            if len(new) < len(docs):
                metrics.EVENTS_DUPLICATE.labels(topic).inc(len(docs) - len(new))
            metrics.END_TO_END_LATENCY.observe_elapsed(
                (topic,), datetime.now(UTC).replace(tzinfo=None), map(_TS, docs)
            )
            if topic == self._token_topic:
                metrics.LLM.observe(new)
        owned = self._listener.owned
        for tp, gpu_docs in batch.gpu_docs.items():
            if tp in owned:  # a partition revoked meanwhile: its new owner shows those GPUs
                metrics.FLEET.update(tp, gpu_docs)
        await self._commit(batch.offsets)

    def _decode(self, tp: TopicPartition, records: list[Any], batch: _Batch) -> None:
        # The hot loop (every record passes here): names bound once, the common case (a valid
        # v1 event) validated straight from bytes; anything else takes the full path in _parse.
        route = self._routes[tp.topic]
        validate = route.kind.document_from_json  # `ts` naive UTC: see to_naive_utc
        docs = batch.docs.setdefault(tp.topic, [])
        first = len(docs)
        for record in records:
            value = record.value
            try:
                if not value or len(value) > MAX_EVENT_BYTES:
                    raise ValueError
                doc = validate(value)
            except ValueError:  # pydantic's ValidationError included
                try:
                    doc = self._document(value, route)
                except _Invalid as bad:
                    batch.dead_letters.append(self._dead_letter(tp, record, bad))
                    continue
            # `_id` = the event id (else its stable offset id): a redelivered event is a
            # duplicate key, never a second document.
            doc["_id"] = doc.pop("event_id") or f"{tp.topic}:{tp.partition}:{record.offset}"
            docs.append(doc)
        metrics.EVENTS_CONSUMED.labels(tp.topic).inc(len(records))
        batch.offsets[tp] = records[-1].offset + 1
        if tp.topic == self._gpu_topic:
            batch.gpu_docs[tp] = docs[first:]

    @classmethod
    def _document(cls, value: bytes | None, route: _Route) -> dict[str, Any]:
        """What the fast path declined, judged by the models (legacy payloads included), as
        the document to store: the validated field values as they are (no nested models
        here, far cheaper than model_dump()), `ts` naive UTC. Raises _Invalid."""
        doc = cls._parse(value, route).__dict__.copy()
        doc["ts"] = to_naive_utc(doc["ts"])
        return doc

    @staticmethod
    def _parse(value: bytes | None, route: _Route) -> GpuMetric | TokenUsage:
        if not value:
            raise _Invalid("empty", "record has no value")
        if len(value) > MAX_EVENT_BYTES:
            raise _Invalid("too_large", f"{len(value)} bytes > {MAX_EVENT_BYTES}")
        try:
            return route.kind.from_json(value)
        except ValidationError as exc:
            raise _Invalid(invalid_reason(exc), describe_errors(exc)) from exc
        except NotAnObject as exc:
            raise _Invalid("not_object", str(exc)) from exc
        except orjson.JSONDecodeError as exc:
            raise _Invalid("not_json", str(exc)) from exc

    def _dead_letter(self, tp: TopicPartition, record: Any, bad: _Invalid) -> DeadLetter:
        return DeadLetter(
            source_topic=tp.topic,
            partition=tp.partition,
            offset=record.offset,
            dlq_topic=self._settings.dlq_topic(tp.topic),
            reason=bad.reason,
            error=bad.detail[:1000],
            value=record.value,
            key=record.key,
            headers=list(record.headers or ()),
        )

    async def _send_dead_letters(self, letters: list[DeadLetter]) -> None:
        """Publish them all to their DLQ topics and wait for every acknowledgement (a failed
        one is sent again until the broker takes it), then record them in MongoDB, where each
        is counted once (see dead_letters). Their source offsets are committed only after."""
        sent = [await self._retry("queue a dead letter", partial(self._send, d)) for d in letters]
        for letter, future in zip(letters, sent, strict=True):
            try:
                await future
            except KafkaError:
                await self._retry("dead-letter a record", partial(self._send_wait, letter))
        new = await self._retry(
            f"record {len(letters)} dead letters", partial(dead_letters.record, self._db, letters)
        )
        for letter in new:
            metrics.EVENTS_INVALID.labels(letter.source_topic, letter.reason).inc()

    async def _send(self, letter: DeadLetter) -> asyncio.Future[object]:
        # Keyed by the source position: a record dead-lettered again after a crash has the
        # same key, which readers of the DLQ topic dedupe on.
        headers = [
            *letter.headers,
            ("dlq.reason", letter.reason.encode()),
            ("dlq.error", letter.error.encode()),  # at most 1000 characters
            ("dlq.source", letter.source.encode()),
        ]
        if letter.key is not None:
            headers.append(("dlq.key", letter.key))
        return await self._publisher.dead_letter(
            letter.dlq_topic, value=letter.value, key=letter.source.encode(), headers=headers
        )

    async def _send_wait(self, letter: DeadLetter) -> object:
        return await (await self._send(letter))

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        # Only partitions we still own: a revoked one is re-read by its new owner, whose
        # inserts of the same ids are duplicates and ignored.
        mine = {tp: offset for tp, offset in offsets.items() if tp in self._listener.owned}
        delay = RETRY_MIN_S
        while mine:
            try:
                await self._consumer.commit(mine)
                break
            except CommitFailedError as exc:
                log.warning(
                    "commit rejected by a rebalance; the records will be redelivered",
                    extra={"error": str(exc)},
                )
                return
            except KafkaError as exc:
                log.warning(f"cannot commit; retrying in {delay:.1f}s", extra={"error": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                mine = {tp: offset for tp, offset in mine.items() if tp in self._listener.owned}
        for tp, offset in mine.items():
            if tp not in self._listener.owned:  # revoked while the commit was in flight
                continue
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(highwater - offset)

    async def _retry(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        """Retry `action` until it succeeds: an outage pauses the pipeline, it drops nothing."""
        delay = RETRY_MIN_S
        while True:
            try:
                return await action()
            except (PyMongoError, KafkaError, OSError) as exc:
                log.warning(f"cannot {what}; retrying in {delay:.1f}s", extra={"error": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)


class _Invalid(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
