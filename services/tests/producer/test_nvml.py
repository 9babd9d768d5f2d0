"""NVML readings mapped to gpu.metrics.v1.

There is no GPU on the machines that run these tests, so NVML is faked at the nvidia-ml-py
function boundary: each `pynvml.nvml*` function the producer calls is replaced (FakeNvml), and
everything from there on (probing, unit conversion, nulls, error counting) is the real code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pynvml
import pytest

from gpu_analytics.config import ProducerSettings
from gpu_analytics.events import GpuMetric
from gpu_analytics.producer.metrics import ProducerMetrics
from gpu_analytics.producer.nvml import (
    POWER,
    SM_CLOCK,
    TEMPERATURE,
    NvmlSource,
    NvmlUnavailable,
)
from gpu_analytics.producer.sources import open_source
from gpu_analytics.producer.synthetic import SyntheticSource
from gpu_analytics_tools.testing.producer import MIB, FakeGpu, FakeNvml

FakeNvmlFactory = Callable[..., FakeNvml]


def _errors(metrics: ProducerMetrics, call: str) -> float:
    value = metrics.registry.get_sample_value("gpu_analytics_nvml_errors_total", {"call": call})
    return value or 0.0


def _source(metrics: ProducerMetrics, **kwargs: Any) -> NvmlSource:
    return NvmlSource(
        host="node-1", on_error=lambda call: metrics.nvml_errors.labels(call).inc(), **kwargs
    )


def test_nvml_sample_maps_every_field_with_units(fake_nvml: FakeNvmlFactory) -> None:
    gpus = [
        FakeGpu(name=b"NVIDIA H100 80GB HBM3"),  # older nvidia-ml-py versions return bytes
        FakeGpu(name="NVIDIA L4", memory=(12 * 1024 * MIB, 23_034 * MIB), power_mw=41_250),
    ]
    fake_nvml(gpus)
    source = _source(ProducerMetrics(), prices={"NVIDIA H100 80GB HBM3": 4.5})

    first, second, third = source.take(3)

    assert isinstance(first, GpuMetric)
    assert first.event_id and first.event_id != second.event_id
    assert (first.host, first.gpu_index, first.gpu_uuid) == ("node-1", 0, gpus[0].uuid)
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert first.utilization_gpu_pct == 57
    assert first.utilization_mem_pct == 31
    assert first.mem_used_mb == 40_960
    assert first.mem_total_mb == 81_559
    assert first.power_w == 312.5  # NVML reports milliwatts
    assert first.temperature_c == 61
    assert first.sm_clock_mhz == 1755
    assert first.price_per_hour_usd == 4.5
    assert (second.gpu_index, second.name, second.power_w) == (1, "NVIDIA L4", 41.25)
    assert second.mem_used_mb == 12 * 1024
    assert second.price_per_hour_usd is None  # not in the price map: unknown, not free
    assert third.gpu_index == 0  # round-robin


def test_price_map_by_uuid_wins_over_name(fake_nvml: FakeNvmlFactory) -> None:
    gpu = FakeGpu()
    fake_nvml([gpu])
    source = _source(ProducerMetrics(), prices={gpu.uuid: 2.0, "NVIDIA H100 80GB HBM3": 4.5})

    assert source.take(1)[0].price_per_hour_usd == 2.0


def test_unsupported_call_is_sent_as_null_and_never_called_again(
    fake_nvml: FakeNvmlFactory,
) -> None:
    not_supported = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    fake = fake_nvml([FakeGpu(power_mw=not_supported, sm_clock=not_supported), FakeGpu()])
    metrics = ProducerMetrics()
    source = _source(metrics)

    samples = source.take(6)

    unsupported, supported = samples[0::2], samples[1::2]
    assert all(s.power_w is None and s.sm_clock_mhz is None for s in unsupported)
    assert all(s.temperature_c == 61 for s in unsupported)  # the rest still read
    assert all(s.power_w == 312.5 and s.sm_clock_mhz == 1755 for s in supported)
    assert fake.calls[("power", 0)] == 1  # the probe only
    assert fake.calls[("sm_clock", 0)] == 1
    assert fake.calls[("power", 1)] == 4  # probe + 3 samples
    assert source.gpus[0].unsupported == {POWER, SM_CLOCK}
    assert _errors(metrics, POWER) == 0  # "not supported" is a capability, not an error


def test_failing_call_is_counted_sent_as_null_and_retried(fake_nvml: FakeNvmlFactory) -> None:
    gpu = FakeGpu(temperature=pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN))
    fake = fake_nvml([gpu])
    metrics = ProducerMetrics()
    source = _source(metrics)

    failing = source.take(2)
    gpu.temperature = 64  # the sensor recovers
    recovered = source.take(1)[0]

    assert [s.temperature_c for s in failing] == [None, None]
    assert all(s.power_w == 312.5 for s in failing)
    assert recovered.temperature_c == 64
    assert fake.calls[("temperature", 0)] == 4  # probe + 3 samples: an error is retried
    assert _errors(metrics, TEMPERATURE) == 3  # probe + the two failing samples


def test_gpu_lost_mid_run_never_crashes(fake_nvml: FakeNvmlFactory) -> None:
    gpu = FakeGpu()
    fake_nvml([gpu])
    metrics = ProducerMetrics()
    source = _source(metrics)
    lost = pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
    gpu.utilization = gpu.memory = gpu.power_mw = gpu.temperature = gpu.sm_clock = lost

    sample = source.take(1)[0]

    assert sample.gpu_uuid == gpu.uuid
    numbers = sample.model_dump(include={"utilization_gpu_pct", "mem_used_mb", "power_w"})
    assert set(numbers.values()) == {None}
    assert _errors(metrics, POWER) == 1


def test_out_of_range_reading_is_null_not_a_validation_error(fake_nvml: FakeNvmlFactory) -> None:
    fake_nvml([FakeGpu(utilization=(4294967295, 20), temperature=255)])

    sample = _source(ProducerMetrics()).take(1)[0]

    assert sample.utilization_gpu_pct is None
    assert sample.utilization_mem_pct == 20
    assert sample.temperature_c is None


def test_nvml_without_gpus_is_unavailable(fake_nvml: FakeNvmlFactory) -> None:
    fake = fake_nvml([])

    with pytest.raises(NvmlUnavailable, match="0 GPU"):
        _source(ProducerMetrics())
    assert fake.shutdowns == 1


def test_auto_uses_nvml_when_it_reports_a_gpu(fake_nvml: FakeNvmlFactory) -> None:
    fake_nvml([FakeGpu()])
    source = open_source(ProducerSettings(producer_source="auto", producer_host="node-1"))

    assert isinstance(source, NvmlSource)
    source.close()


@pytest.mark.parametrize("gpus", [0, None], ids=["no-gpu", "no-driver"])
def test_auto_falls_back_to_synthetic(
    fake_nvml: FakeNvmlFactory, gpus: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    if gpus is None:
        fake_nvml([FakeGpu()], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    else:
        fake_nvml([])
    caplog.set_level("INFO")

    source = open_source(ProducerSettings(producer_source="auto", producer_gpus=3))

    assert isinstance(source, SyntheticSource)
    assert len(source.fleet) == 3
    assert "source: synthetic (auto: no GPU through NVML)" in caplog.messages


def test_nvml_requested_without_a_gpu_is_an_error(fake_nvml: FakeNvmlFactory) -> None:
    fake_nvml([FakeGpu()], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    with pytest.raises(NvmlUnavailable, match="Driver Not Loaded"):
        open_source(ProducerSettings(producer_source="nvml"))
