"""Analytics queries over what the consumer stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel

from gpu_analytics.events import GpuMetric
from gpu_analytics.processor import storage
from gpu_analytics.processor.deps import DbDep, RuntimeDep

router = APIRouter(prefix="/api/v1", tags=["queries"])


class GpuSample(GpuMetric):
    event_id: str


class ModelTokenSummary(BaseModel):
    model: str
    events: int
    errors: int
    input_tokens: int
    output_tokens: int
    tokens_per_s: float
    p95_latency_ms: float | None
    cost_per_1k_tokens_usd: float | None  # GPU time priced at the GPU's hourly rate


class TokenSummary(BaseModel):
    minutes: int
    since: datetime
    models: list[ModelTokenSummary]


class Stats(BaseModel):
    collections: dict[str, int]
    dlq: dict[str, int]
    dlq_total: int


def _sample(doc: dict[str, Any]) -> GpuSample:
    return GpuSample.model_validate({**doc, "event_id": doc["_id"]}, strict=False)


@router.get("/gpus")
async def list_gpus(db: DbDep) -> list[GpuSample]:
    """The latest sample of every GPU seen."""
    return [_sample(doc) for doc in await storage.latest_per_gpu(db)]


@router.get("/gpus/{gpu_uuid}/metrics")
async def gpu_metrics(
    gpu_uuid: str,
    db: DbDep,
    since: Annotated[AwareDatetime | None, Query(description="default: until - 1 hour")] = None,
    until: Annotated[AwareDatetime | None, Query(description="default: now")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[GpuSample]:
    """Samples of one GPU between `since` and `until` (ISO-8601 with a timezone), newest first."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(hours=1)
    if since > until:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "type": "value_error",
                    "loc": ["query", "since"],
                    "msg": "since must not be after until",
                }
            ],
        )
    if not await storage.gpu_known(db, gpu_uuid):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no samples of GPU {gpu_uuid!r}")
    docs = await storage.gpu_samples(gpu_uuid=gpu_uuid, since=since, until=until, limit=limit)
    return [
        GpuSample.model_validate({**d.model_dump(), "event_id": d.id}, strict=False) for d in docs
    ]


@router.get("/tokens/summary")
async def tokens_summary(
    db: DbDep, minutes: Annotated[int, Query(ge=1, le=1440)] = 15
) -> TokenSummary:
    """Per model over the last `minutes`: throughput, p95 latency and cost per 1k tokens."""
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    prices = {
        doc["gpu_uuid"]: doc.get("price_per_hour_usd") for doc in await storage.latest_per_gpu(db)
    }
    cost: dict[str, float] = {}
    priced: set[str] = set()
    for row in await storage.gpu_seconds_by_model(db, since=since):
        price = prices.get(row["_id"]["gpu_uuid"])
        if price is not None:
            model = row["_id"]["model"]
            cost[model] = cost.get(model, 0.0) + row["latency_ms"] / 3_600_000 * price
            priced.add(model)
    models = []
    for row in await storage.token_usage_summary(db, since=since):
        tokens = row["input_tokens"] + row["output_tokens"]
        p95 = row["p95_latency_ms"]
        models.append(
            ModelTokenSummary(
                model=row["_id"],
                events=row["events"],
                errors=row["errors"],
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                tokens_per_s=tokens / (minutes * 60),
                p95_latency_ms=p95[0] if p95 else None,
                cost_per_1k_tokens_usd=(
                    1000 * cost[row["_id"]] / tokens if row["_id"] in priced and tokens else None
                ),
            )
        )
    return TokenSummary(minutes=minutes, since=since, models=models)


@router.get("/stats")
async def stats(db: DbDep, runtime: RuntimeDep) -> Stats:
    """Documents per collection and records dead-lettered per DLQ topic."""
    dlq = await runtime.dlq_counts()
    return Stats(
        collections=await storage.collection_counts(db), dlq=dlq, dlq_total=sum(dlq.values())
    )
