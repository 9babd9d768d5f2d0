"""Valid v1 event payloads, shaped like the real ones, for the tests, the load test (loadtest/),
verify-observability and `cluster verify`: the one place that writes a gpu.metrics.v1 or a
token.usage.v1 by hand. Readings follow utilization the way the synthetic fleet's do: memory,
power and temperature rise with it, within the model's limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class GpuModel:
    mem_total_mb: float
    power_max_w: float
    price_per_hour_usd: float
    sm_clock_mhz: float


MODELS = {
    "NVIDIA L4": GpuModel(23_034.0, 72.0, 0.80, 2040.0),
    "NVIDIA H100 80GB HBM3": GpuModel(81_559.0, 700.0, 3.90, 1980.0),
}


def timestamp(ts: datetime | str | None) -> str:
    """ISO-8601: now by default; a string is taken as given (tests of malformed times)."""
    if isinstance(ts, str):
        return ts
    return (ts or datetime.now(UTC)).isoformat()


def gpu_metric(
    gpu_uuid: str,
    *,
    host: str,
    gpu_index: int = 0,
    name: str = "NVIDIA L4",
    utilization: float = 50.0,
    event_id: str | None = None,
    ts: datetime | str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A gpu.metrics.v1 sample of a GPU at `utilization` percent; `overrides` set any field."""
    model, u = MODELS[name], utilization / 100
    event: dict[str, Any] = {
        "ts": timestamp(ts),
        "host": host,
        "gpu_index": gpu_index,
        "gpu_uuid": gpu_uuid,
        "name": name,
        "utilization_gpu_pct": round(utilization, 1),
        "utilization_mem_pct": round(utilization * 0.6, 1),
        "mem_used_mb": round(model.mem_total_mb * 0.95 * u, 1),
        "mem_total_mb": model.mem_total_mb,
        "power_w": round(model.power_max_w * (0.28 + 0.72 * u), 1),
        "temperature_c": round(35 + 40 * u, 1),
        "sm_clock_mhz": model.sm_clock_mhz,
        "price_per_hour_usd": model.price_per_hour_usd,
    }
    if event_id is not None:
        event["event_id"] = event_id
    return {**event, **overrides}


def token_usage(
    model: str,
    *,
    host: str,
    gpu_uuid: str | None = None,
    input_tokens: int = 512,
    output_tokens: int = 128,
    latency_ms: float | None = None,
    ttft_ms: float | None = 100.0,
    status: str = "ok",
    event_id: str | None = None,
    ts: datetime | str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A token.usage.v1 event of one chat call; latency from the output length unless given."""
    event: dict[str, Any] = {
        "ts": timestamp(ts),
        "host": host,
        "provider": "vllm",
        "model": model,
        "operation": "chat",
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "latency_ms": latency_ms if latency_ms is not None else round(80 + output_tokens * 12, 1),
        "ttft_ms": ttft_ms,
        "gpu_uuid": gpu_uuid,
        "status": status,
    }
    if event_id is not None:
        event["event_id"] = event_id
    return {**event, **overrides}
