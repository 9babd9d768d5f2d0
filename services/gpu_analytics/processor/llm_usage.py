"""LLM usage metrics per model, counted once per stored `token.usage.v1` event.

Names follow the OpenTelemetry GenAI semantic conventions where they fit (`gen_ai.token.type`
becomes the `token_type` label, `gen_ai.client.operation.duration` the request duration, with
the buckets the conventions advise) and vLLM's for time to first token.

Cost is not counted here: a GPU batches many calls at once, so a call's latency is not GPU time
it alone paid for. The GPU fleet counts each GPU's time and cost (gpu_fleet.py), and
`gpu_analytics_llm_gpu_tokens_total` gives each model's share of the tokens on each GPU; the
dashboards and recording rules split a GPU's cost by that share, the rule of
`/api/v1/tokens/summary` (processor/gpu_cost.py).

Only newly stored events count (a redelivered duplicate does not), so the counters agree with
the database. The `model` label takes at most `max_models` values; later ones are `other`; at
most `MAX_MODEL_GPUS` (model, gpu_uuid) pairs are kept (later ones count as gpu_uuid `other`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from gpu_analytics.processor.histogram import BulkHistogram

OTHER = "other"

# OpenTelemetry GenAI: advised buckets of gen_ai.client.operation.duration (seconds).
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92
)  # fmt: skip
# ... and of gen_ai.server.time_to_first_token (seconds).
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10)


class LlmUsage:
    MAX_MODEL_GPUS = 20_000

    def __init__(
        self, *, max_models: int = 200, registry: CollectorRegistry | None = REGISTRY
    ) -> None:
        self.max_models = max_models
        self._models: set[str] = set()
        self._pairs: set[tuple[str, str]] = set()
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
        self.gpu_tokens = Counter(
            "gpu_analytics_llm_gpu_tokens_total",
            "Input + output tokens of LLM calls that name their GPU, by model and GPU: each "
            "model's share of a GPU's time and cost.",
            ["model", "gpu_uuid"],
            registry=registry,
        )

    def _model(self, name: str) -> str:
        if name in self._models:
            return name
        if len(self._models) < self.max_models:
            self._models.add(name)
            return name
        return OTHER

    def _pair(self, model: str, gpu_uuid: str) -> tuple[str, str]:
        pair = (model, gpu_uuid)
        if pair in self._pairs:
            return pair
        if len(self._pairs) < self.MAX_MODEL_GPUS:
            self._pairs.add(pair)
            return pair
        return model, OTHER

    def observe(self, docs: Iterable[dict[str, Any]]) -> None:
        """Count newly stored token events (dicts of TokenUsage fields)."""
        tokens: dict[tuple[str, str, str], int] = defaultdict(int)
        requests: dict[tuple[str, str, str], int] = defaultdict(int)
        durations: dict[str, list[float]] = defaultdict(list)
        ttfts: dict[str, list[float]] = defaultdict(list)
        gpu_tokens: dict[tuple[str, str], int] = defaultdict(int)
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
                gpu_tokens[model, doc["gpu_uuid"]] += doc["input_tokens"] + doc["output_tokens"]
        for key, n in tokens.items():
            self.tokens.labels(*key).inc(n)
        for key, n in requests.items():
            self.requests.labels(*key).inc(n)
        for model, values in durations.items():
            self.duration.observe_many((model,), values)
        for model, values in ttfts.items():
            self.ttft.observe_many((model,), values)
        for (model, gpu_uuid), n in gpu_tokens.items():
            self.gpu_tokens.labels(*self._pair(model, gpu_uuid)).inc(n)
