"""Fixtures of the producer tests: a fake NVML, and settings against the test stack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pynvml
import pytest

from gpu_analytics.config import ProducerSettings
from gpu_analytics_tools.stack.stack import StackEnv
from gpu_analytics_tools.testing.producer import SEED, FakeGpu, FakeNvml


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeNvml]:
    """`fake_nvml([FakeGpu(...), ...])`: NVML answers for these GPUs in this test."""

    def make(gpus: list[FakeGpu], *, init_error: int | None = None) -> FakeNvml:
        return FakeNvml(gpus, init_error=init_error).install(monkeypatch)

    return make


@pytest.fixture
def no_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML as on a machine without the NVIDIA driver, whatever this machine has."""

    def init() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", init)


SettingsFactory = Callable[..., ProducerSettings]


@pytest.fixture
def producer_settings(stack: StackEnv) -> SettingsFactory:
    """Settings against the test stack: synthetic, seeded, no metrics port unless asked."""

    def make(**overrides: Any) -> ProducerSettings:
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": stack.bootstrap_servers,
            "producer_source": "synthetic",
            "producer_seed": SEED,
            "producer_host": "test-node",
            "metrics_port": 0,
            **overrides,
        }
        return ProducerSettings(**values)

    return make
