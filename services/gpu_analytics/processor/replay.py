"""`gpu-analytics dlq replay`: re-publish dead letters to their source topic once the cause is
fixed. Each is claimed in MongoDB before it is sent (dead_letters.claim), so it is replayed at
most once: a second replay in a row publishes nothing. A replayed record is a new record of
the source topic; if it is still invalid it is dead-lettered again, under its new position."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pymongo import AsyncMongoClient

from gpu_analytics.config import ProcessorSettings
from gpu_analytics.processor import dead_letters

log = logging.getLogger(__name__)


async def replay(
    settings: ProcessorSettings,
    *,
    topic: str,
    since: datetime | None,
    dry_run: bool,
    say: Callable[[str], None],
) -> int:
    """Publish the unreplayed dead letters of source `topic`; return how many (or, with
    `dry_run`, how many would be)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_uri, tz_aware=True, serverSelectionTimeoutMS=10_000
    )
    try:
        db = client[settings.mongodb_db]
        docs = await dead_letters.claim(db, topic=topic, since=since, dry_run=dry_run)
        if dry_run:
            for doc in docs:
                say(f"would replay {doc['_id']} ({doc['reason']}): {doc['preview'][:80]}")
            return len(docs)
        if not docs:
            return 0
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=True, acks="all"
        )
        await producer.start()
        published = 0
        try:
            for doc in docs:
                try:
                    sent = await producer.send(
                        topic,
                        bytes(doc["payload"]),
                        key=bytes(doc["key"]) if doc.get("key") is not None else None,
                        headers=[("dlq.replayed_from", doc["_id"].encode())],
                    )
                    await sent
                    published += 1
                except KafkaError:
                    for rest in docs[published:]:  # not sent: a later replay takes them
                        await dead_letters.unclaim(db, rest["_id"])
                    raise
        finally:
            await producer.stop()
        return published
    finally:
        await client.close()
