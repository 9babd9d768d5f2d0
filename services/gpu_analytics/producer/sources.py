"""Which source feeds the producer: `nvml`, `synthetic`, or `auto` (NVML when it sees a GPU)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Protocol

from gpu_analytics.config import ProducerSettings
from gpu_analytics.events import GpuMetric, TokenUsage, to_json
from gpu_analytics.producer.nvml import NvmlSource, NvmlUnavailable
from gpu_analytics.producer.podresources import PodResources
from gpu_analytics.producer.synthetic import TOKEN_EVENTS_PER_SAMPLE_AT_FULL_LOAD, SyntheticSource

log = logging.getLogger(__name__)

Event = GpuMetric | TokenUsage


class Source(Protocol):
    kind: str

    def take(self, n: int) -> Sequence[Event]:
        """The next `n` events, each with a fresh `event_id`."""
        ...

    def close(self) -> None: ...


def encode(event: Event, settings: ProducerSettings) -> tuple[str, bytes, bytes]:
    """(topic, key, value): key = the GPU's UUID (token usage without a GPU: the model)."""
    if isinstance(event, GpuMetric):
        topic, key = settings.topic_gpu_metrics, event.gpu_uuid
    else:
        topic, key = settings.topic_token_usage, event.gpu_uuid or event.model
    return topic, key.encode(), to_json(event)


def open_source(
    settings: ProducerSettings,
    *,
    on_nvml_error: Callable[[str], None] = lambda _c: None,
    on_pod_resources: tuple[Callable[[str], None], Callable[[bool], None]] | None = None,
) -> Source:
    """Raises NvmlUnavailable when `nvml` was asked for and NVML sees no GPU.
    `on_pod_resources`: (error, state) callbacks of the PodResources client (its metrics)."""
    kind = settings.producer_source
    if kind in ("nvml", "auto"):
        try:
            source = NvmlSource(
                host=settings.producer_host,
                prices=settings.producer_gpu_prices,
                on_error=on_nvml_error,
                pod_resources=_pod_resources(settings, on_pod_resources),
            )
        except NvmlUnavailable as exc:
            if kind == "nvml":
                raise
            log.info("source: synthetic (auto: no GPU through NVML)", extra={"reason": str(exc)})
        else:
            log.info(
                "source: nvml",
                extra={"requested": kind, "gpus": len(source.gpus)},
            )
            return source
    synthetic = synthetic_source(settings)
    if kind == "synthetic":
        log.info("source: synthetic", extra={"gpus": len(synthetic.fleet)})
    return synthetic


def _pod_resources(
    settings: ProducerSettings,
    callbacks: tuple[Callable[[str], None], Callable[[bool], None]] | None,
) -> PodResources | None:
    if not settings.producer_pod_resources_socket:
        return None
    on_error, on_state = callbacks or (lambda _r: None, lambda _u: None)
    return PodResources(
        settings.producer_pod_resources_socket, on_error=on_error, on_state=on_state
    )


def synthetic_source(settings: ProducerSettings) -> SyntheticSource:
    # One sample of a GPU is followed by ~1.5 token events on average (half load), so at
    # PRODUCER_RATE each GPU is sampled about every gpus * 2.5 / rate seconds.
    per_sample = 1 + TOKEN_EVENTS_PER_SAMPLE_AT_FULL_LOAD / 2
    rate = settings.producer_rate
    interval = settings.producer_gpus * per_sample / rate if math.isfinite(rate) else 1.0
    return SyntheticSource(
        gpus=settings.producer_gpus,
        seed=settings.producer_seed,
        host_prefix=settings.producer_host,
        prices=settings.producer_gpu_prices,
        sample_interval_s=interval,
    )
