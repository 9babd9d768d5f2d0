"""Pipeline metrics (dashboards and alerts use exactly these names)."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from gpu_analytics.processor.gpu_fleet import GpuFleet
from gpu_analytics.processor.histogram import BulkHistogram
from gpu_analytics.processor.llm_usage import LlmUsage

EVENTS_CONSUMED = Counter(
    "gpu_analytics_events_consumed_total", "Records read from Kafka.", ["topic"]
)
EVENTS_STORED = Counter(
    "gpu_analytics_events_stored_total", "Events newly written to MongoDB.", ["topic"]
)
EVENTS_DUPLICATE = Counter(
    "gpu_analytics_events_duplicate_total",
    "Redelivered events already in MongoDB (ignored: idempotent writes).",
    ["topic"],
)
EVENTS_INVALID = Counter(
    "gpu_analytics_events_invalid_total",
    "Records sent to the dead-letter topic, by reason.",
    ["topic", "reason"],
)
INGEST_EVENTS = Counter(
    "gpu_analytics_ingest_events_total", "Events accepted over HTTP and published.", ["topic"]
)
OTLP_SPANS = Counter(
    "gpu_analytics_otlp_spans_total",
    "Spans received on /v1/traces, by outcome: accepted (published as token.usage.v1), "
    "rejected (GenAI usage but invalid, in the partial success), no_genai_usage (dropped).",
    ["outcome"],
)
BATCH_STORE_SECONDS = Histogram(
    "gpu_analytics_batch_store_seconds",
    "Time to store one consumed batch (validation, dead-lettering, bulk insert).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
END_TO_END_LATENCY = BulkHistogram(
    "gpu_analytics_end_to_end_latency_seconds",
    "Store time minus event timestamp.",
    ["topic"],
    # 10 s is the freshness SLO's threshold (monitoring/slos/processor.yaml): keep it a bound.
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
CONSUMER_LAG = Gauge(
    "gpu_analytics_consumer_lag",
    "Records between the partition's high watermark and the committed offset.",
    ["topic", "partition"],
)
DEPENDENCY_UP = Gauge(
    "gpu_analytics_dependency_up",
    "1 while the dependency answers the readiness check (what /readyz reports), else 0.",
    ["dependency"],
)

# HTTP request duration buckets (prometheus-fastapi-instrumentator's http_request_duration_seconds):
# 0.25 s is the ingest latency SLO's threshold (monitoring/slos/processor.yaml): keep it a bound.
HTTP_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Domain metrics (their settings are applied by the consumer: FLEET_SERIES_TTL_S, FLEET_MAX_GPUS).
FLEET = GpuFleet(ttl_s=300, max_gpus=4096)
REGISTRY.register(FLEET)
LLM = LlmUsage()
