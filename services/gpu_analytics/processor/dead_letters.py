"""Dead letters, each counted and shown exactly once, and their replay.

Why not a transactional producer: the consumer's stored events already rely on at-least-once
delivery plus idempotent writes, and a Kafka transaction cannot include the MongoDB writes,
so dead letters follow the same rule. Each one has a stable source id `<topic>:<partition>:
<offset>`: it is the Kafka key of the record in `<topic>.dlq` (so a record dead-lettered again
after a crash carries the same key, and readers dedupe on it) and the `_id` of its document in
the `dead_letters` collection, whose insert ignores a duplicate. The counts in /api/v1/stats
and `gpu_analytics_events_invalid_total` come from those inserts, never from topic offsets
(which a redelivery, or a transaction marker, would inflate).

A replay claims each dead letter (sets `replayed_at` where it is null) before publishing it
to its source topic, so each is replayed at most once: a second replay finds nothing to claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import Binary
from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from gpu_analytics.processor.storage import insert_idempotent

COLLECTION = "dead_letters"
PREVIEW_CHARS = 200
# Payloads up to this size are kept for a replay (the consumer refuses larger records anyway).
KEEP_BYTES = 64 * 1024

Doc = dict[str, Any]


@dataclass
class DeadLetter:
    source_topic: str
    partition: int
    offset: int
    dlq_topic: str
    reason: str
    error: str
    value: bytes | None
    key: bytes | None
    headers: list[tuple[str, bytes]]

    @property
    def source(self) -> str:
        return f"{self.source_topic}:{self.partition}:{self.offset}"

    def document(self, now: datetime) -> Doc:
        value = self.value or b""
        return {
            "_id": self.source,
            "topic": self.source_topic,
            "dlq_topic": self.dlq_topic,
            "partition": self.partition,
            "offset": self.offset,
            "reason": self.reason,
            "error": self.error,
            "dead_lettered_at": now,
            "preview": value[: PREVIEW_CHARS * 4].decode("utf-8", "replace")[:PREVIEW_CHARS],
            "size": len(value),
            "payload": Binary(value)
            if self.value is not None and len(value) <= KEEP_BYTES
            else None,
            "key": Binary(self.key) if self.key is not None else None,
            "replayed_at": None,
        }


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    await db[COLLECTION].create_indexes(
        [
            IndexModel([("dead_lettered_at", DESCENDING)]),
            IndexModel([("topic", 1), ("dead_lettered_at", DESCENDING)]),
        ]
    )


async def record(db: AsyncDatabase[Doc], letters: list[DeadLetter]) -> list[DeadLetter]:
    """Insert the dead letters; return those not recorded before (a redelivered record's
    dead letter is a duplicate `_id` and not counted again)."""
    if not letters:
        return []
    documents = await insert_idempotent(
        db[COLLECTION], [d.document(datetime.now(UTC)) for d in letters]
    )
    new = {doc["_id"] for doc in documents}
    return [d for d in letters if d.source in new]


async def counts(db: AsyncDatabase[Doc], dlq_topics: list[str]) -> dict[str, int]:
    """Dead letters per DLQ topic (each once)."""
    found = dict.fromkeys(dlq_topics, 0)
    cursor = await db[COLLECTION].aggregate([{"$group": {"_id": "$dlq_topic", "n": {"$sum": 1}}}])
    async for row in cursor:
        found[row["_id"]] = row["n"]
    return found


async def newest(
    db: AsyncDatabase[Doc], *, topic: str | None, since: datetime | None, limit: int
) -> list[Doc]:
    """Newest first; `topic` is the source topic or its DLQ topic."""
    query: Doc = {}
    if topic:
        query["$or"] = [{"topic": topic}, {"dlq_topic": topic}]
    if since:
        query["dead_lettered_at"] = {"$gte": since}
    cursor = (
        db[COLLECTION]
        .find(query, {"payload": 0, "key": 0})
        .sort([("dead_lettered_at", DESCENDING), ("_id", DESCENDING)])
        .limit(limit)
    )
    return [doc async for doc in cursor]


async def claim(
    db: AsyncDatabase[Doc], *, topic: str, since: datetime | None, dry_run: bool
) -> list[Doc]:
    """The dead letters of source `topic` not replayed yet (and replayable: payload kept),
    each claimed (replayed_at set) unless `dry_run`: a replay publishes only what it claimed."""
    query: Doc = {"topic": topic, "replayed_at": None, "payload": {"$ne": None}}
    if since:
        query["dead_lettered_at"] = {"$gte": since}
    candidates = [doc async for doc in db[COLLECTION].find(query).sort("dead_lettered_at", 1)]
    if dry_run:
        return candidates
    claimed = []
    now = datetime.now(UTC)
    for doc in candidates:
        result = await db[COLLECTION].update_one(
            {"_id": doc["_id"], "replayed_at": None}, {"$set": {"replayed_at": now}}
        )
        if result.modified_count == 1:
            claimed.append(doc)
    return claimed


async def unclaim(db: AsyncDatabase[Doc], source: str) -> None:
    """Give a claimed dead letter back (its publish failed): a later replay takes it."""
    await db[COLLECTION].update_one({"_id": source}, {"$set": {"replayed_at": None}})
