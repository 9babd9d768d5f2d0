"""Configuration from environment variables: the same names locally and in the pods."""

from __future__ import annotations

import socket
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_gpu_metrics: str = "gpu.metrics.v1"
    topic_token_usage: str = "token.usage.v1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def dlq_topic(self, topic: str) -> str:
        return f"{topic}.dlq"


class ProcessorSettings(CommonSettings):
    mongodb_uri: str = "mongodb://127.0.0.1:27017"
    mongodb_db: str = "gpu_analytics"
    consumer_group: str = "processor"
    http_host: str = "0.0.0.0"  # noqa: S104 - the pod's port; locally 127.0.0.1 via HTTP_HOST
    http_port: int = 8080
    # Largest accepted ingest body; larger ones get 413 before any parsing.
    ingest_max_bytes: int = Field(default=1_048_576, gt=0)
    # The longest an ingest request waits for Kafka to acknowledge its events; past it (or on a
    # Kafka error) it answers 503 with Retry-After, so a client never waits out its own timeout.
    ingest_publish_timeout_s: float = Field(default=5.0, gt=0)
    consumer_max_records: int = Field(default=1000, gt=0)
    consumer_poll_timeout_ms: int = Field(default=500, gt=0)
    # On SIGTERM: how long the consumer may take to finish and commit the batch in hand and
    # leave the group, after HTTP requests have drained (the pod's grace period covers both).
    shutdown_timeout_s: float = Field(default=20.0, gt=0)
    # GPU fleet gauges: a GPU with no stored sample for this long drops out of /metrics, and
    # at most this many GPUs are shown (the least recently seen go first).
    fleet_series_ttl_s: float = Field(default=300.0, gt=0)
    fleet_max_gpus: int = Field(default=4096, gt=0)
    # A GPU held by a pod but below this utilisation (per cent) is idle: its time and cost
    # count as waste in /api/v1/gpus/usage and the idle metrics.
    gpu_idle_utilization_pct: float = Field(default=5.0, ge=0, le=100)
    # Distinct `model` label values of the LLM metrics; later models are counted as "other".
    llm_max_models: int = Field(default=200, gt=0)
    # RETENTION_DAYS: stored events older than this are deleted by MongoDB (a TTL index on
    # `ts` of both collections, changed in place when this changes; processor/retention.py).
    retention_days: int = Field(default=30, ge=1)


class ProducerSettings(CommonSettings):
    producer_rate: float = Field(
        default=10.0, gt=0, description="events per second, honoured; inf = as fast as possible"
    )
    producer_source: Literal["auto", "nvml", "synthetic"] = "auto"
    producer_gpus: int = Field(default=8, gt=0, le=4096, description="synthetic fleet size")
    producer_seed: int | None = Field(default=None, description="seed for a replayable fleet")
    # Host name written into every event; in a pod set it from spec.nodeName (downward API).
    producer_host: str = Field(default_factory=socket.gethostname, min_length=1, max_length=256)
    # On-demand price per GPU hour by GPU name or UUID, as JSON: {"NVIDIA H100 80GB HBM3": 4.5}.
    # NVML knows no prices: GPUs not in the map are sent with a null price.
    producer_gpu_prices: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    # Batching: a batch leaves when it is full or has waited this long (Kafka's linger.ms).
    producer_linger_ms: int = Field(default=10, ge=0, le=1000)
    producer_batch_bytes: int = Field(default=131_072, ge=1024, le=1_048_576)
    # The kubelet's PodResources socket (read-only hostPath in the NVML DaemonSet): names the
    # pod holding each GPU. Empty: no attribution. Absent or unusable: samples go out without
    # a pod and gpu_analytics_pod_resources_errors_total says why.
    producer_pod_resources_socket: str = "/var/lib/kubelet/pod-resources/kubelet.sock"
    # Token usage to Kafka as JSON (kafka), or as OpenTelemetry GenAI spans over OTLP/HTTP to
    # PRODUCER_OTLP_ENDPOINT (otlp: the processor's /v1/traces, as an instrumented client).
    producer_token_transport: Literal["kafka", "otlp"] = "kafka"
    producer_otlp_endpoint: str = "http://127.0.0.1:8080/v1/traces"
    # How long to wait for Kafka at start before giving up (the pod is then restarted).
    producer_kafka_wait_s: float = Field(default=120.0, gt=0)
    # On SIGTERM: how long to wait for Kafka to acknowledge what is buffered.
    producer_flush_timeout_s: float = Field(default=20.0, gt=0)
    # Events held while Kafka is slow or down (not yet acknowledged, or failed and waiting to be
    # sent again: the event id makes a resend idempotent downstream). At this many the producer
    # stops taking samples (counted as skipped) and failed events beyond it are dropped oldest
    # first (counted and logged). ~1 KiB of memory per event.
    producer_buffer_events: int = Field(default=50_000, gt=0)
    metrics_host: str = "0.0.0.0"  # noqa: S104 - the pod's port; locally 127.0.0.1 via METRICS_HOST
    metrics_port: int = Field(default=9100, ge=0, le=65535, description="0 = no metrics server")
