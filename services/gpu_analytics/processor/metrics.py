"""Pipeline metrics (dashboards and alerts use exactly these names)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from gpu_analytics.processor.histogram import BulkHistogram

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
BATCH_STORE_SECONDS = Histogram(
    "gpu_analytics_batch_store_seconds",
    "Time to store one consumed batch (validation, dead-lettering, bulk insert).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
END_TO_END_LATENCY = BulkHistogram(
    "gpu_analytics_end_to_end_latency_seconds",
    "Store time minus event timestamp.",
    ["topic"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
CONSUMER_LAG = Gauge(
    "gpu_analytics_consumer_lag",
    "Records between the partition's high watermark and the committed offset.",
    ["topic", "partition"],
)
