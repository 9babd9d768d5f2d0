"""The processor's Kafka producer: HTTP-ingested events and dead-lettered records."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
from aiokafka import AIOKafkaProducer

from gpu_analytics.events import GpuMetric, TokenUsage


class Publisher:
    def __init__(self, bootstrap_servers: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            enable_idempotence=True,
            acks="all",
            compression_type="lz4",
            linger_ms=5,
            request_timeout_ms=15_000,
        )
        self.started = False

    async def start(self) -> None:
        await self._producer.start()
        self.started = True

    async def stop(self) -> None:
        if self.started:
            await self._producer.stop()
            self.started = False

    async def reachable(self) -> bool:
        """A metadata round trip to the cluster (readiness)."""
        if not self.started:
            return False
        try:
            return bool(await self._producer.client.fetch_all_metadata())
        except Exception:  # noqa: BLE001 - any failure means "not reachable now"
            return False

    async def publish(self, topic: str, events: Sequence[GpuMetric | TokenUsage]) -> None:
        """Send every event and wait for all acknowledgements (acks=all)."""
        futures = [
            await self._producer.send(
                topic, orjson.dumps(event.model_dump(mode="json")), key=_key(event)
            )
            for event in events
        ]
        await asyncio.gather(*futures)

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


def _key(event: GpuMetric | TokenUsage) -> bytes:
    # Partition by GPU so one GPU's samples stay ordered; token events without a GPU by model.
    if isinstance(event, GpuMetric):
        return event.gpu_uuid.encode()
    return (event.gpu_uuid or event.model).encode()
