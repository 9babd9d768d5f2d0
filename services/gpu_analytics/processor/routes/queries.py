"""Analytics queries over what the consumer stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel

from gpu_analytics.events import GpuMetric
from gpu_analytics.processor import storage
from gpu_analytics.processor.deps import DbDep, RuntimeDep
from gpu_analytics.processor.gpu_cost import BASIS_TOKEN_SHARE, GpuTime, attribute, sampled_seconds

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
    # The model's share of its GPUs' wall-clock time (processor/gpu_cost.py), priced at each
    # GPU's hourly rate; None where no GPU with a price served it.
    gpu_seconds: float
    cost_usd: float | None
    cost_per_1k_tokens_usd: float | None
    cost_basis: str | None


class FleetCost(BaseModel):
    """Every GPU with samples in the window: its time, its cost, and how much of both went to
    models (the rest is unattributed: idle, or serving calls that name no GPU)."""

    gpus: int
    gpu_seconds: float
    cost_usd: float
    attributed_gpu_seconds: float
    attributed_cost_usd: float


class TokenSummary(BaseModel):
    minutes: int
    since: datetime
    until: datetime
    models: list[ModelTokenSummary]
    fleet: FleetCost


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
    """Per model over the last `minutes`: throughput, p95 latency, GPU time and cost.

    Cost is GPU wall-clock time, split among the models on a GPU by their share of its tokens
    (processor/gpu_cost.py), never the sum of request latencies: a GPU batches many calls."""
    until = datetime.now(UTC)
    since = until - timedelta(minutes=minutes)
    window_s = minutes * 60.0
    gpus = [
        GpuTime(
            gpu_uuid=row["_id"],
            seconds=sampled_seconds(row["samples"], row["first"], row["last"], window_s),
            price_per_hour_usd=row["price_per_hour_usd"],
        )
        for row in await storage.gpu_time(db, since=since, until=until)
    ]
    tokens = {
        (row["_id"]["model"], row["_id"]["gpu_uuid"]): row["tokens"]
        for row in await storage.tokens_by_model_and_gpu(db, since=since, until=until)
    }
    cost = attribute(gpus, tokens)
    models = []
    for row in await storage.token_usage_summary(db, since=since):
        total = row["input_tokens"] + row["output_tokens"]
        p95 = row["p95_latency_ms"]
        share = cost.models.get(row["_id"])
        priced = share is not None and share.priced
        models.append(
            ModelTokenSummary(
                model=row["_id"],
                events=row["events"],
                errors=row["errors"],
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                tokens_per_s=total / window_s,
                p95_latency_ms=p95[0] if p95 else None,
                gpu_seconds=share.gpu_seconds if share else 0.0,
                cost_usd=share.cost_usd if share and priced else None,
                cost_per_1k_tokens_usd=share.cost_per_1k_tokens_usd if share else None,
                cost_basis=BASIS_TOKEN_SHARE if priced else None,
            )
        )
    fleet = FleetCost(
        gpus=cost.gpus,
        gpu_seconds=cost.gpu_seconds,
        cost_usd=cost.cost_usd,
        attributed_gpu_seconds=cost.attributed_gpu_seconds,
        attributed_cost_usd=cost.attributed_cost_usd,
    )
    return TokenSummary(minutes=minutes, since=since, until=until, models=models, fleet=fleet)


@router.get("/stats")
async def stats(db: DbDep, runtime: RuntimeDep) -> Stats:
    """Documents per collection and records dead-lettered per DLQ topic."""
    dlq = await runtime.dlq_counts()
    return Stats(
        collections=await storage.collection_counts(db), dlq=dlq, dlq_total=sum(dlq.values())
    )
