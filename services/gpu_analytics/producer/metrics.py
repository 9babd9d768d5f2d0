"""Prometheus metrics of the producer and the small HTTP server exposing them on :9100."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)


class ProducerMetrics:
    """One registry per service instance, so tests can run several producers in a process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.events_sent = Counter(
            "gpu_analytics_events_sent",
            "Events acknowledged by Kafka (acks=all).",
            ["topic"],
            registry=self.registry,
        )
        self.send_errors = Counter(
            "gpu_analytics_send_errors",
            "Events whose send attempt failed; they are kept and sent again.",
            registry=self.registry,
        )
        self.nvml_errors = Counter(
            "gpu_analytics_nvml_errors",
            "NVML calls that failed (other than 'not supported'), by NVML function.",
            ["call"],
            registry=self.registry,
        )
        self.pod_resources_errors = Counter(
            "gpu_analytics_pod_resources_errors",
            "Failed asks of the kubelet's PodResources API, by reason (socket_missing, "
            "permission_denied, unavailable, rpc_error): GPUs go out without their pod.",
            ["reason"],
            registry=self.registry,
        )
        self.pod_resources_up = Gauge(
            "gpu_analytics_pod_resources_up",
            "1 while the kubelet's PodResources API answers (GPU samples name their pod), else 0.",
            registry=self.registry,
        )
        self.otlp_spans_exported = Counter(
            "gpu_analytics_otlp_spans_exported",
            "Token usage spans exported over OTLP (PRODUCER_TOKEN_TRANSPORT=otlp), by result "
            "(success, failure: after the SDK's own retries).",
            ["result"],
            registry=self.registry,
        )
        self.events_dropped = Counter(
            "gpu_analytics_events_dropped",
            "Failed events dropped because the retry buffer (PRODUCER_RETRY_BUFFER) was full.",
            registry=self.registry,
        )
        self.samples_skipped = Counter(
            "gpu_analytics_producer_samples_skipped",
            "Scheduled samples never taken because sending fell behind PRODUCER_RATE.",
            registry=self.registry,
        )
        self.buffered = Gauge(
            "gpu_analytics_producer_buffered_events",
            "Events handed to the producer and not yet acknowledged by Kafka.",
            registry=self.registry,
        )
        self.rate_target = Gauge(
            "gpu_analytics_producer_rate_target",
            "PRODUCER_RATE in events per second (+Inf when unbounded).",
            registry=self.registry,
        )


def metrics_app(metrics: ProducerMetrics, alive: Callable[[], bool]) -> Starlette:
    """`/metrics` in the Prometheus text format and `/healthz` (200 while the send loop lives)."""

    async def prometheus(_request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_request: Request) -> Response:
        ok = alive()
        return JSONResponse({"status": "ok" if ok else "down"}, status_code=200 if ok else 503)

    return Starlette(
        routes=[
            Route("/metrics", prometheus, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


class MetricsServer(uvicorn.Server):
    """uvicorn inside the producer's own event loop.

    uvicorn normally takes over SIGTERM/SIGINT and re-raises them after its shutdown; the
    producer owns those signals (it must flush Kafka first), so this server leaves them alone.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def metrics_server(app: Starlette, *, host: str, port: int) -> MetricsServer:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our JSON logging (gpu_analytics.logs) is already configured
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    return MetricsServer(config)
