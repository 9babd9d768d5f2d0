"""Analytics queries over what the consumer stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel

from gpu_analytics.events import GpuMetric
from gpu_analytics.processor import storage
from gpu_analytics.processor.deps import DbDep, RuntimeDep
from gpu_analytics.processor.gpu_cost import (
    Holding,
    Usage,
    attribute,
    sampled_seconds,
    usage_by,
)

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
    # GPU's hourly rate; None where no GPU with a price served it. cost_basis says which time
    # was split: pod_gpu_time_by_token_share where pods held its GPUs (the time they held
    # them), gpu_time_by_token_share otherwise (the GPUs' whole time).
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
    db: DbDep, runtime: RuntimeDep, minutes: Annotated[int, Query(ge=1, le=1440)] = 15
) -> TokenSummary:
    """Per model over the last `minutes`: throughput, p95 latency, GPU time and cost.

    Cost is GPU wall-clock time, split among the models on a GPU by their share of its tokens
    (processor/gpu_cost.py), never the sum of request latencies: a GPU batches many calls."""
    until = datetime.now(UTC)
    since = until - timedelta(minutes=minutes)
    window_s = minutes * 60.0
    holdings = await _holdings(db, runtime, since, until)
    tokens = await _tokens_on_gpus(db, since, until)
    cost = attribute(holdings, tokens)
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
                cost_basis=share.basis if share else None,
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


async def _holdings(
    db: DbDep, runtime: RuntimeDep, since: datetime, until: datetime
) -> list[Holding]:
    window_s = (until - since).total_seconds()
    idle_pct = runtime.settings.gpu_idle_utilization_pct
    return [
        Holding(
            gpu_uuid=row["_id"]["gpu_uuid"],
            seconds=sampled_seconds(row["samples"], row["first"], row["last"], window_s),
            price_per_hour_usd=row["price_per_hour_usd"],
            host=row["host"],
            namespace=row["_id"].get("namespace"),
            pod=row["_id"].get("pod"),
            mean_utilization_pct=row["utilization_gpu_pct"],
            idle_share=row["idle_samples"] / row["samples"],
        )
        for row in await storage.gpu_holdings(db, since=since, until=until, idle_below_pct=idle_pct)
    ]


async def _tokens_on_gpus(
    db: DbDep, since: datetime, until: datetime
) -> dict[tuple[str, str], int]:
    return {
        (row["_id"]["model"], row["_id"]["gpu_uuid"]): row["tokens"]
        for row in await storage.tokens_by_model_and_gpu(db, since=since, until=until)
    }


class UsageFigures(BaseModel):
    gpus: int
    gpu_hours: float
    mean_utilization_pct: float | None
    cost_usd: float | None
    idle_gpu_hours: float  # held by a pod, below the idle threshold
    idle_cost_usd: float | None

    @classmethod
    def of(cls, usage: Usage, **more: Any) -> Any:
        return cls(
            gpus=len(usage.gpus),
            gpu_hours=usage.seconds / 3600,
            mean_utilization_pct=usage.mean_utilization_pct,
            cost_usd=usage.cost_usd,
            idle_gpu_hours=usage.idle_seconds / 3600,
            idle_cost_usd=usage.idle_cost_usd,
            **more,
        )


class WorkloadUsage(UsageFigures):
    namespace: str
    pod: str
    models: list[str]  # models whose calls named its GPUs


class NamespaceUsage(UsageFigures):
    namespace: str


class NodeUnallocated(UsageFigures):
    host: str  # GPUs of this node no pod held (their idle figures are 0: not allocated)


class ModelUsage(BaseModel):
    model: str
    gpu_hours: float
    cost_usd: float | None
    cost_basis: str | None


class GpuUsage(BaseModel):
    minutes: int
    since: datetime
    until: datetime
    idle_threshold_pct: float
    total: UsageFigures
    workloads: list[WorkloadUsage]
    namespaces: list[NamespaceUsage]
    models: list[ModelUsage]
    unallocated: list[NodeUnallocated]


@router.get("/gpus/usage")
async def gpus_usage(
    db: DbDep, runtime: RuntimeDep, minutes: Annotated[int, Query(ge=1, le=1440)] = 60
) -> GpuUsage:
    """GPU time, utilisation, cost and waste over the last `minutes`: per pod and namespace
    holding GPUs (idle = held while below GPU_IDLE_UTILIZATION_PCT), per model (its token
    share of its GPUs' time), and the GPU-hours no pod held, per node."""
    until = datetime.now(UTC)
    since = until - timedelta(minutes=minutes)
    holdings = await _holdings(db, runtime, since, until)
    tokens = await _tokens_on_gpus(db, since, until)
    models_of: dict[str, set[str]] = {}
    for model, gpu_uuid in tokens:
        models_of.setdefault(gpu_uuid, set()).add(model)
    pods = usage_by(holdings, lambda h: (h.namespace or "", h.pod) if h.pod else None)
    pod_models: dict[tuple[str, str], set[str]] = {}
    for h in holdings:
        if h.pod:
            pod_models.setdefault((h.namespace or "", h.pod), set()).update(
                models_of.get(h.gpu_uuid, ())
            )
    namespaces = usage_by(holdings, lambda h: h.namespace or "" if h.pod else None)
    free = usage_by(holdings, lambda h: None if h.pod else h.host)
    cost = attribute(holdings, tokens)
    return GpuUsage(
        minutes=minutes,
        since=since,
        until=until,
        idle_threshold_pct=runtime.settings.gpu_idle_utilization_pct,
        total=UsageFigures.of(usage_by(holdings, lambda _h: "").get("", Usage())),
        workloads=[
            WorkloadUsage.of(u, namespace=ns, pod=pod, models=sorted(pod_models[ns, pod]))
            for (ns, pod), u in sorted(pods.items())
        ],
        namespaces=[NamespaceUsage.of(u, namespace=ns) for ns, u in sorted(namespaces.items())],
        models=[
            ModelUsage(
                model=model,
                gpu_hours=m.gpu_seconds / 3600,
                cost_usd=m.cost_usd if m.priced else None,
                cost_basis=m.basis,
            )
            for model, m in sorted(cost.models.items())
        ],
        unallocated=[NodeUnallocated.of(u, host=host) for host, u in sorted(free.items())],
    )


@router.get("/stats")
async def stats(db: DbDep, runtime: RuntimeDep) -> Stats:
    """Documents per collection and records dead-lettered per DLQ topic."""
    dlq = await runtime.dlq_counts()
    return Stats(
        collections=await storage.collection_counts(db), dlq=dlq, dlq_total=sum(dlq.values())
    )
