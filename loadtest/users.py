"""Locust users for the processor: HTTP ingest (what drives the HPA) and the query API.

    locust -f loadtest/users.py --host http://127.0.0.1:8080 -u 50 -r 5    # manual
    locust -f loadtest --host http://127.0.0.1:8080                         # HPA demo shape

Events are synthetic but shaped like the real ones (gpu.metrics.v1, token.usage.v1); the seed
is fixed per user so a run can be replayed. An ingest request counts as a success only when
answered 202: a 503 (Kafka unreachable, with Retry-After) or any other status is a failure in
Locust's statistics, named by its status.
"""

from __future__ import annotations

import itertools
import random
import uuid
from typing import Any

from locust import FastHttpUser, between, task

from gpu_analytics_tools.testing import events

BATCH = 100  # events per ingest request
MODELS = ["llama-3.1-8b-instruct", "mistral-7b-instruct-v0.3", "qwen2.5-14b-instruct"]
_user_ids = itertools.count()


class IngestUser(FastHttpUser):
    """A telemetry agent posting batches of GPU samples and LLM calls."""

    host = "http://127.0.0.1:8080"
    wait_time = between(0.05, 0.2)
    weight = 4

    def on_start(self) -> None:
        self.rng = random.Random(next(_user_ids))
        self.host_name = f"loadgen-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:8]}"
        self.gpus = [f"GPU-{uuid.UUID(int=self.rng.getrandbits(128))}" for _ in range(8)]

    def _gpu_sample(self, index: int) -> dict[str, Any]:
        return events.gpu_metric(
            self.gpus[index], host=self.host_name, gpu_index=index,
            utilization=self.rng.uniform(5, 100),
        )  # fmt: skip

    def _llm_call(self) -> dict[str, Any]:
        output_tokens = self.rng.randint(16, 1024)
        return events.token_usage(
            self.rng.choice(MODELS), host=self.host_name, gpu_uuid=self.rng.choice(self.gpus),
            input_tokens=self.rng.randint(32, 4096), output_tokens=output_tokens,
            latency_ms=round(80 + output_tokens * self.rng.uniform(8, 25), 1),
            ttft_ms=round(self.rng.uniform(40, 400), 1),
            status="ok" if self.rng.random() > 0.01 else "error",
        )  # fmt: skip

    def _ingest(self, path: str, batch: list[dict[str, Any]], name: str) -> None:
        with self.client.post(path, json=batch, name=name, catch_response=True) as response:
            if response.status_code == 202:
                response.success()
            elif response.status_code:  # 0: no answer at all, Locust reports the error itself
                response.failure(refusal(response.status_code, response.headers.get("Retry-After")))

    @task(3)
    def gpu_metrics(self) -> None:
        batch = [self._gpu_sample(i % 8) for i in range(BATCH)]
        self._ingest("/api/v1/gpu-metrics", batch, "POST gpu-metrics x100")

    @task(2)
    def token_usage(self) -> None:
        batch = [self._llm_call() for _ in range(BATCH)]
        self._ingest("/api/v1/token-usage", batch, "POST token-usage x100")


def refusal(status: int, retry_after: str | None) -> str:
    """The failure message of an ingest answer other than 202 (Locust groups failures by it)."""
    message = f"HTTP {status}, expected 202"
    if retry_after is not None:
        message += f" (Retry-After: {retry_after})"
    return message


class DashboardUser(FastHttpUser):
    """Someone watching the dashboards: the query endpoints."""

    host = "http://127.0.0.1:8080"
    wait_time = between(1, 3)
    weight = 1

    @task(2)
    def gpus(self) -> None:
        self.client.get("/api/v1/gpus", name="GET gpus")

    @task(2)
    def tokens_summary(self) -> None:
        self.client.get("/api/v1/tokens/summary?minutes=15", name="GET tokens/summary")

    @task(1)
    def stats(self) -> None:
        self.client.get("/api/v1/stats", name="GET stats")
