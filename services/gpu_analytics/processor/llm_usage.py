"""LLM usage metrics per model, counted once per stored `token.usage.v1` event.

Names follow the OpenTelemetry GenAI semantic conventions where they fit (`gen_ai.token.type`
becomes the `token_type` label, `gen_ai.client.operation.duration` the request duration, with
the buckets the conventions advise) and vLLM's for time to first token. Cost is the formula of
`/api/v1/tokens/summary`: the GPU time of a call (its latency) priced at the hourly rate of the
GPU it ran on; calls on a GPU whose price is unknown add GPU-seconds but no cost.

Only newly stored events count (a redelivered duplicate does not), so the counters agree with
the database. The `model` label takes at most `max_models` values; later ones are `other`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from pymongo.errors import PyMongoError

from gpu_analytics.processor.histogram import BulkHistogram

log = logging.getLogger(__name__)

OTHER = "other"

# OpenTelemetry GenAI: advised buckets of gen_ai.client.operation.duration (seconds).
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92
)  # fmt: skip
# ... and of gen_ai.server.time_to_first_token (seconds).
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10)


class LlmUsage:
    def __init__(
        self, *, max_models: int = 200, registry: CollectorRegistry | None = REGISTRY
    ) -> None:
        self.max_models = max_models
        self._models: set[str] = set()
        self.tokens = Counter(
            "gpu_analytics_llm_tokens_total",
            "Tokens of stored LLM calls, by token_type (input = prompt, output = completion).",
            ["provider", "model", "token_type"],
            registry=registry,
        )
        self.requests = Counter(
            "gpu_analytics_llm_requests_total",
            "Stored LLM calls, by status (ok, error).",
            ["provider", "model", "status"],
            registry=registry,
        )
        self.duration = BulkHistogram(
            "gpu_analytics_llm_request_duration_seconds",
            "Duration of the LLM call as its client measured it (latency_ms).",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.ttft = BulkHistogram(
            "gpu_analytics_llm_time_to_first_token_seconds",
            "Time to the first output token (ttft_ms), where the client reported it.",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.gpu_seconds = Counter(
            "gpu_analytics_llm_gpu_seconds_total",
            "GPU time of LLM calls that name their GPU (sum of their latencies).",
            ["model"],
            registry=registry,
        )
        self.cost = Counter(
            "gpu_analytics_llm_cost_usd_total",
            "Cost of LLM calls: GPU time priced at the GPU's hourly rate.",
            ["model"],
            registry=registry,
        )

    def _model(self, name: str) -> str:
        if name in self._models:
            return name
        if len(self._models) < self.max_models:
            self._models.add(name)
            return name
        return OTHER

    def observe(
        self, docs: Iterable[dict[str, Any]], price_of: Callable[[str], float | None]
    ) -> None:
        """Count newly stored token events (dicts of TokenUsage fields)."""
        tokens: dict[tuple[str, str, str], int] = defaultdict(int)
        requests: dict[tuple[str, str, str], int] = defaultdict(int)
        durations: dict[str, list[float]] = defaultdict(list)
        ttfts: dict[str, list[float]] = defaultdict(list)
        gpu_s: dict[str, float] = defaultdict(float)
        cost: dict[str, float] = defaultdict(float)
        for doc in docs:
            model = self._model(doc["model"])
            provider = doc["provider"]
            tokens[provider, model, "input"] += doc["input_tokens"]
            tokens[provider, model, "output"] += doc["output_tokens"]
            requests[provider, model, doc["status"]] += 1
            seconds = doc["latency_ms"] / 1000
            durations[model].append(seconds)
            if doc.get("ttft_ms") is not None:
                ttfts[model].append(doc["ttft_ms"] / 1000)
            if doc.get("gpu_uuid") is not None:
                gpu_s[model] += seconds
                price = price_of(doc["gpu_uuid"])
                if price is not None:
                    cost[model] += seconds / 3600 * price
        for key, n in tokens.items():
            self.tokens.labels(*key).inc(n)
        for key, n in requests.items():
            self.requests.labels(*key).inc(n)
        for model, values in durations.items():
            self.duration.observe_many((model,), values)
        for model, values in ttfts.items():
            self.ttft.observe_many((model,), values)
        for model, seconds in gpu_s.items():
            self.gpu_seconds.labels(model).inc(seconds)
        for model, usd in cost.items():
            self.cost.labels(model).inc(usd)


class PriceBook:
    """Hourly price per GPU for the cost metric. Learnt from the GPU events this replica stores;
    a GPU not among them (its events may sit in another replica's partitions) is looked up in
    MongoDB once, and an unknown price is looked up again after `retry_s`."""

    MAX_GPUS = 100_000

    def __init__(
        self,
        lookup: Callable[[str], Awaitable[float | None]],
        *,
        retry_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._retry_s = retry_s
        self._clock = clock
        self._prices: dict[str, float] = {}
        self._unknown: dict[str, float] = {}  # gpu_uuid -> when it was last looked up

    def learn(self, docs: Iterable[dict[str, Any]]) -> None:
        for doc in docs:
            price = doc.get("price_per_hour_usd")
            if price is not None:
                if len(self._prices) >= self.MAX_GPUS:
                    self._prices.clear()
                self._prices[doc["gpu_uuid"]] = price
                self._unknown.pop(doc["gpu_uuid"], None)

    async def prepare(self, gpu_uuids: Iterable[str]) -> None:
        """Look up the GPUs of a batch whose price is not known yet."""
        now = self._clock()
        for uuid in set(gpu_uuids):
            if uuid in self._prices or now - self._unknown.get(uuid, -1e18) < self._retry_s:
                continue
            try:
                price = await self._lookup(uuid)
            except PyMongoError as exc:
                log.warning("cannot look up a GPU price", extra={"error": repr(exc)})
                price = None
            if price is None:
                if len(self._unknown) >= self.MAX_GPUS:
                    self._unknown.clear()
                self._unknown[uuid] = now
            else:
                self._prices[uuid] = price

    def __call__(self, gpu_uuid: str) -> float | None:
        return self._prices.get(gpu_uuid)
