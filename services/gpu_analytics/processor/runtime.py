"""Everything the processor holds while it runs: clients, the consumer task, readiness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from gpu_analytics.config import ProcessorSettings
from gpu_analytics.processor import dead_letters, metrics
from gpu_analytics.processor.consumer import EventConsumer
from gpu_analytics.processor.publisher import EventPublisher
from gpu_analytics.processor.storage import init_storage

log = logging.getLogger(__name__)

READINESS_INTERVAL_S = 2.0
# Each dependency's check answers within this, so readiness is never older than both added:
# a server that stops answering without closing its connections is not waited out.
CHECK_TIMEOUT_S = 2.0


class Runtime:
    def __init__(self, settings: ProcessorSettings) -> None:
        self.settings = settings
        self.mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            settings.mongodb_uri, tz_aware=True, serverSelectionTimeoutMS=5000
        )
        self.db: AsyncDatabase[dict[str, Any]] = self.mongo[settings.mongodb_db]
        self.publisher = EventPublisher(settings.kafka_bootstrap_servers)
        self.consumer: EventConsumer | None = None
        self.ready = {"kafka": False, "mongodb": False}
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Return at once; dependencies are awaited in the background (readiness says when)."""
        self._tasks = [
            asyncio.create_task(self._pipeline(), name="pipeline"),
            asyncio.create_task(self._readiness(), name="readiness"),
        ]
        for task in self._tasks:
            task.add_done_callback(_log_crash)

    async def stop(self) -> None:
        """Graceful: the consumer stops fetching, finishes and commits the batch in hand and
        leaves its group, within shutdown_timeout_s; only then is it cancelled."""
        pipeline = self._tasks[0] if self._tasks else None
        for task in self._tasks[1:]:
            task.cancel()
        if pipeline is not None:
            if self.consumer is not None:
                self.consumer.request_stop()
                try:
                    await asyncio.wait_for(
                        asyncio.shield(pipeline), timeout=self.settings.shutdown_timeout_s
                    )
                    log.info("consumer stopped: batch committed, group left")
                except TimeoutError:
                    log.warning(
                        "consumer did not stop in time; cancelling (its batch is redelivered)",
                        extra={"timeout_s": self.settings.shutdown_timeout_s},
                    )
                except Exception:  # noqa: BLE001,S110 - a crash is logged by _log_crash
                    pass
            pipeline.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.publisher.stop()
        await self.mongo.close()

    def alive(self) -> bool:
        """The consumer pipeline still runs (it only ends by crashing)."""
        return bool(self._tasks) and not self._tasks[0].done()

    async def _connect_kafka(self) -> None:
        async for attempt in _forever("connect to Kafka"):
            with attempt:
                await self.publisher.start()

    async def _pipeline(self) -> None:
        # Kafka first and on its own: HTTP ingest needs only Kafka, so it accepts events while
        # MongoDB is still away (the consumer stores them once it is back).
        kafka = asyncio.create_task(self._connect_kafka(), name="connect-kafka")
        try:
            async for attempt in _forever("connect to MongoDB and create indexes"):
                with attempt:
                    await init_storage(
                        self.mongo,
                        self.settings.mongodb_db,
                        retention_days=self.settings.retention_days,
                    )
                    await dead_letters.ensure_indexes(self.db)
            await kafka
        finally:
            kafka.cancel()
        log.info(
            "processor connected; consuming",
            extra={"topics": [self.settings.topic_gpu_metrics, self.settings.topic_token_usage]},
        )
        self.consumer = EventConsumer(self.settings, self.db, self.publisher)
        await self.consumer.run()

    async def _readiness(self) -> None:
        while True:
            mongodb, kafka = await asyncio.gather(
                self._mongo_ok(), self.publisher.reachable(CHECK_TIMEOUT_S)
            )
            self.ready.update(mongodb=mongodb, kafka=kafka)
            for dependency, up in self.ready.items():
                metrics.DEPENDENCY_UP.labels(dependency).set(1 if up else 0)
            await asyncio.sleep(READINESS_INTERVAL_S)

    async def _mongo_ok(self) -> bool:
        try:
            await asyncio.wait_for(self.mongo.admin.command("ping"), timeout=CHECK_TIMEOUT_S)
            return True
        except (PyMongoError, TimeoutError):
            return False

    # -- queries that need Kafka ---------------------------------------------------------
    async def dlq_counts(self) -> dict[str, int]:
        """Records dead-lettered per DLQ topic, each once (see dead_letters)."""
        dlqs = [
            self.settings.dlq_topic(t)
            for t in (self.settings.topic_gpu_metrics, self.settings.topic_token_usage)
        ]
        return await dead_letters.counts(self.db, dlqs)


def _log_crash(task: asyncio.Task[None]) -> None:
    """A background task that ends other than by cancellation has crashed: say so at once
    (/healthz turns 503 too), not only when the process shuts down."""
    if task.cancelled() or task.exception() is None:
        return
    log.error(f"{task.get_name()} task crashed", exc_info=task.exception())


def _forever(what: str) -> AsyncRetrying:
    """Retry with backoff until it works, logging each failure: a dependency that is not up
    yet (pods start in any order) delays readiness, it does not crash the pod."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            f"cannot {what} yet; retrying",
            extra={"attempt": state.attempt_number, "error": repr(error)},
        )

    return AsyncRetrying(
        wait=wait_exponential(multiplier=0.5, max=10),
        retry=retry_if_exception_type(Exception),
        before_sleep=before_sleep,
    )
