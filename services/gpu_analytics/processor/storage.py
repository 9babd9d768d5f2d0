"""MongoDB access: Beanie documents for indexes and queries, pymongo bulk inserts when hot."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pymongo
from beanie import Document, init_beanie
from pydantic import ConfigDict
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from gpu_analytics.config import ProcessorSettings
from gpu_analytics.events import GpuMetric, TokenUsage
from gpu_analytics.processor.retention import ensure_ttl

DUPLICATE_KEY = 11000

Doc = dict[str, Any]


# Read models: the event fields plus the id, lax and mutable as Beanie expects (the strict,
# frozen event models guard the way in; what is stored already passed them).
_READ = ConfigDict(strict=False, frozen=False, extra="ignore")


class GpuMetricDocument(Document, GpuMetric):
    model_config = _READ  # type: ignore[misc]
    id: str  # type: ignore[assignment]  # the event id

    class Settings:
        name = "gpu_metrics"
        indexes: ClassVar[list[Any]] = [
            pymongo.IndexModel([("gpu_uuid", pymongo.ASCENDING), ("ts", pymongo.DESCENDING)]),
            # The single-field index on ts is the retention TTL index: retention.ensure_ttl
            # owns it (same key, so Beanie must not create it without the expiry).
        ]


class TokenUsageDocument(Document, TokenUsage):
    model_config = _READ  # type: ignore[misc]
    id: str  # type: ignore[assignment]

    class Settings:
        name = "token_usage"
        indexes: ClassVar[list[Any]] = [
            pymongo.IndexModel([("ts", pymongo.DESCENDING), ("model", pymongo.ASCENDING)]),
            # + the TTL index on ts (retention.ensure_ttl).
        ]


COLLECTIONS = ("gpu_metrics", "token_usage")


async def init_storage(
    client: AsyncMongoClient[Doc], db_name: str, *, retention_days: int | None = None
) -> AsyncDatabase[Doc]:
    """Register the documents and create their indexes, the retention TTL index included
    (idempotent; a changed retention is applied in place). `retention_days` None: the
    RETENTION_DAYS setting."""
    database = client[db_name]
    await init_beanie(database=database, document_models=[GpuMetricDocument, TokenUsageDocument])
    if retention_days is None:
        retention_days = ProcessorSettings().retention_days
    await ensure_ttl(database, retention_days, COLLECTIONS)
    return database


async def insert_idempotent(collection: AsyncCollection[Doc], docs: list[Doc]) -> list[Doc]:
    """Insert `docs` unordered; return the ones newly stored. `_id` is the event id, so a
    redelivered event fails with a duplicate-key error, which is ignored (the caller counts it
    as len(docs) minus what is returned). Any other error propagates and the caller retries the
    whole batch (nothing is committed)."""
    if not docs:
        return []
    try:
        await collection.insert_many(docs, ordered=False)
        return docs
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(err.get("code") != DUPLICATE_KEY for err in errors):
            raise
        duplicates = {err["index"] for err in errors}
        return [doc for i, doc in enumerate(docs) if i not in duplicates]


async def latest_per_gpu(db: AsyncDatabase[Doc]) -> list[Doc]:
    pipeline: list[Doc] = [
        {"$sort": {"gpu_uuid": 1, "ts": -1}},
        {"$group": {"_id": "$gpu_uuid", "doc": {"$first": "$$ROOT"}}},
        {"$replaceRoot": {"newRoot": "$doc"}},
        {"$sort": {"gpu_uuid": 1}},
    ]
    cursor = await db["gpu_metrics"].aggregate(pipeline)
    return [doc async for doc in cursor]


async def gpu_known(db: AsyncDatabase[Doc], gpu_uuid: str) -> bool:
    return await db["gpu_metrics"].find_one({"gpu_uuid": gpu_uuid}, {"_id": 1}) is not None


async def gpu_samples(
    *, gpu_uuid: str, since: datetime, until: datetime, limit: int
) -> list[GpuMetricDocument]:
    return (
        await GpuMetricDocument.find(
            GpuMetricDocument.gpu_uuid == gpu_uuid,
            GpuMetricDocument.ts >= since,
            GpuMetricDocument.ts <= until,
        )
        .sort("-ts")
        .limit(limit)
        .to_list()
    )


async def token_usage_summary(db: AsyncDatabase[Doc], *, since: datetime) -> list[Doc]:
    """Per model: events, errors, token sums and p95 latency, over events since `since`."""
    pipeline: list[Doc] = [
        {"$match": {"ts": {"$gte": since}}},
        {
            "$group": {
                "_id": "$model",
                "events": {"$sum": 1},
                "errors": {"$sum": {"$cond": [{"$eq": ["$status", "error"]}, 1, 0]}},
                "input_tokens": {"$sum": "$input_tokens"},
                "output_tokens": {"$sum": "$output_tokens"},
                "p95_latency_ms": {
                    "$percentile": {"input": "$latency_ms", "p": [0.95], "method": "approximate"}
                },
            }
        },
        {"$sort": {"_id": 1}},
    ]
    cursor = await db["token_usage"].aggregate(pipeline)
    return [doc async for doc in cursor]


async def gpu_holdings(
    db: AsyncDatabase[Doc], *, since: datetime, until: datetime, idle_below_pct: float
) -> list[Doc]:
    """Per GPU and the pod holding it (none included) with samples in [since, until]: their
    number, first and last time, mean price and utilisation (nulls ignored), the samples below
    `idle_below_pct`, and the host; for gpu_cost.Holding."""
    util = "$utilization_gpu_pct"
    pipeline: list[Doc] = [
        {"$match": {"ts": {"$gte": since, "$lte": until}}},
        {
            "$group": {
                "_id": {"gpu_uuid": "$gpu_uuid", "namespace": "$namespace", "pod": "$pod"},
                "samples": {"$sum": 1},
                "first": {"$min": "$ts"},
                "last": {"$max": "$ts"},
                "price_per_hour_usd": {"$avg": "$price_per_hour_usd"},
                "utilization_gpu_pct": {"$avg": util},
                # null sorts below numbers in MongoDB: an unknown utilisation is not idle
                "idle_samples": {
                    "$sum": {
                        "$cond": [
                            {"$and": [{"$ne": [util, None]}, {"$lt": [util, idle_below_pct]}]},
                            1,
                            0,
                        ]
                    }
                },
                "host": {"$last": "$host"},
            }
        },
    ]
    cursor = await db["gpu_metrics"].aggregate(pipeline)
    return [doc async for doc in cursor]


async def tokens_by_model_and_gpu(
    db: AsyncDatabase[Doc], *, since: datetime, until: datetime
) -> list[Doc]:
    """Per (model, GPU) of calls naming their GPU: input + output tokens, to split GPU time."""
    pipeline: list[Doc] = [
        {"$match": {"ts": {"$gte": since, "$lte": until}, "gpu_uuid": {"$ne": None}}},
        {
            "$group": {
                "_id": {"model": "$model", "gpu_uuid": "$gpu_uuid"},
                "tokens": {"$sum": {"$add": ["$input_tokens", "$output_tokens"]}},
            }
        },
    ]
    cursor = await db["token_usage"].aggregate(pipeline)
    return [doc async for doc in cursor]


async def collection_counts(db: AsyncDatabase[Doc]) -> dict[str, int]:
    return {name: await db[name].estimated_document_count() for name in COLLECTIONS}
