"""Configuration from environment variables: the same names locally and in the pods."""

from __future__ import annotations

from typing import Literal

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
    consumer_max_records: int = Field(default=1000, gt=0)
    consumer_poll_timeout_ms: int = Field(default=500, gt=0)


class ProducerSettings(CommonSettings):
    producer_rate: float = Field(default=10.0, gt=0, description="events per second, honoured")
    producer_source: Literal["auto", "nvml", "synthetic"] = "auto"
    producer_gpus: int = Field(default=8, gt=0, description="synthetic fleet size")
    producer_seed: int | None = Field(default=None, description="seed for a replayable fleet")
    metrics_host: str = "0.0.0.0"  # noqa: S104
    metrics_port: int = 9100
