"""Domain metrics without a broker: the GPU fleet gauges and the LLM usage counters."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gpu_analytics.events import GpuMetric
from gpu_analytics.processor.gpu_fleet import GAUGES, GpuFleet
from gpu_analytics.processor.llm_usage import OTHER, LlmUsage

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def gpu(uuid: str, ts: datetime = T0, **values: Any) -> dict[str, Any]:
    """A GPU event as the consumer hands it to the fleet: every field but the event id (its
    `_id` by then), as test_a_stored_gpu_document_holds_every_field_the_fleet_reads checks."""
    return {
        "gpu_uuid": uuid,
        "gpu_index": 0,
        "name": "NVIDIA L4",
        "host": "node-1",
        "ts": ts,
        "utilization_gpu_pct": 50.0,
        "utilization_mem_pct": None,
        "mem_used_mb": 1024.0,
        "mem_total_mb": 23034.0,
        "power_w": None,
        "temperature_c": 61.0,
        "sm_clock_mhz": 1800.0,
        "price_per_hour_usd": 0.8,
        "namespace": None,
        "pod": None,
        "container": None,
        **values,
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def fleet_registry(fleet: GpuFleet) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(fleet)
    return registry


def series_of(registry: CollectorRegistry, name: str) -> dict[str, float]:
    return {dict(k[1])["gpu_uuid"]: v for k, v in samples(registry).items() if k[0] == name}


def test_a_stored_gpu_document_holds_every_field_the_fleet_reads() -> None:
    assert set(gpu("GPU-a")) == set(GpuMetric.model_fields) - {"event_id"}


def test_one_series_per_gpu_and_value_in_base_units() -> None:
    fleet = GpuFleet(ttl_s=60, max_gpus=10)
    fleet.update("p0", [gpu("GPU-a"), gpu("GPU-b", temperature_c=70.0)])
    reg = fleet_registry(fleet)
    assert series_of(reg, "gpu_analytics_gpu_utilization_ratio") == {"GPU-a": 0.5, "GPU-b": 0.5}
    assert series_of(reg, "gpu_analytics_gpu_memory_used_bytes")["GPU-a"] == 1024 * 1024 * 1024
    assert series_of(reg, "gpu_analytics_gpu_sm_clock_hertz")["GPU-a"] == 1.8e9
    assert series_of(reg, "gpu_analytics_gpu_temperature_celsius")["GPU-b"] == 70.0
    labels = {
        dict(k[1])["gpu_uuid"]: dict(k[1])
        for k in samples(reg)
        if k[0] == "gpu_analytics_gpu_temperature_celsius"
    }
    assert labels["GPU-a"] == {
        "gpu_uuid": "GPU-a",
        "gpu_index": "0",
        "name": "NVIDIA L4",
        "host": "node-1",
        "workload_namespace": "",
        "workload_pod": "",
        "workload_container": "",
    }


def test_naive_stamps_are_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    # The consumer's documents hold `ts` as naive UTC; the last-sample timestamp must not read
    # them as local time.
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+05:30
    time.tzset()
    try:
        naive = GpuFleet(ttl_s=60, max_gpus=10)
        naive.update("p0", [gpu("GPU-a", T0.replace(tzinfo=None))])
        naive.update("p0", [gpu("GPU-a", (T0 + timedelta(seconds=10)).replace(tzinfo=None))])
        aware = GpuFleet(ttl_s=60, max_gpus=10)
        aware.update("p0", [gpu("GPU-a", T0), gpu("GPU-a", T0 + timedelta(seconds=10))])
        seen = series_of(fleet_registry(naive), "gpu_analytics_gpu_last_sample_timestamp_seconds")
        assert seen == {"GPU-a": T0.timestamp() + 10}
        assert samples(fleet_registry(naive)) == samples(fleet_registry(aware))
    finally:
        monkeypatch.undo()
        time.tzset()


def test_an_unsupported_value_gives_no_series_never_zero() -> None:
    fleet = GpuFleet(ttl_s=60, max_gpus=10)
    fleet.update("p0", [gpu("GPU-a")])
    reg = fleet_registry(fleet)
    assert series_of(reg, "gpu_analytics_gpu_power_watts") == {}
    assert series_of(reg, "gpu_analytics_gpu_memory_utilization_ratio") == {}
    assert "GPU-a" in series_of(reg, "gpu_analytics_gpu_temperature_celsius")


def test_the_newest_sample_wins_whatever_the_arrival_order() -> None:
    fleet = GpuFleet(ttl_s=60, max_gpus=10)
    fleet.update("p0", [gpu("GPU-a", T0, temperature_c=80.0)])
    fleet.update("p0", [gpu("GPU-a", T0 - timedelta(seconds=5), temperature_c=40.0)])
    assert series_of(fleet_registry(fleet), "gpu_analytics_gpu_temperature_celsius") == {
        "GPU-a": 80.0
    }


def test_a_gpu_not_seen_for_the_ttl_drops_out() -> None:
    clock = Clock()
    fleet = GpuFleet(ttl_s=60, max_gpus=10, clock=clock)
    fleet.update("p0", [gpu("GPU-a"), gpu("GPU-b")])
    clock.now += 30
    fleet.update("p0", [gpu("GPU-b", T0 + timedelta(seconds=30))])
    clock.now += 31
    assert set(series_of(fleet_registry(fleet), "gpu_analytics_gpu_utilization_ratio")) == {"GPU-b"}


def test_a_revoked_partition_takes_its_gpus_along() -> None:
    fleet = GpuFleet(ttl_s=60, max_gpus=10)
    fleet.update("p0", [gpu("GPU-a")])
    fleet.update("p1", [gpu("GPU-b")])
    fleet.forget_partitions({"p0"})
    assert set(series_of(fleet_registry(fleet), "gpu_analytics_gpu_utilization_ratio")) == {"GPU-b"}


def test_cardinality_is_bounded_by_max_gpus() -> None:
    fleet = GpuFleet(ttl_s=3600, max_gpus=50)
    for batch in range(20):  # 2000 distinct GPUs
        fleet.update("p0", [gpu(f"GPU-{batch}-{i}") for i in range(100)])
    series = [k for k in samples(fleet_registry(fleet)) if k[0].startswith("gpu_analytics_gpu_")]
    assert len(fleet) == 50
    # at most one series per GPU and gauge (+ last-sample timestamp, time, cost, idle time, cost)
    assert len(series) <= 50 * (len(GAUGES) + 5)
    # the most recently seen are kept
    assert "GPU-19-99" in series_of(fleet_registry(fleet), "gpu_analytics_gpu_utilization_ratio")


def test_a_gpu_counts_the_time_between_its_samples_once_and_its_cost() -> None:
    fleet = GpuFleet(ttl_s=60, max_gpus=10)
    # 11 samples a second apart, $3.60/h: 10 s and one cent, however many calls ran on it
    fleet.update("p0", [gpu("GPU-a", T0 + timedelta(seconds=i), price_per_hour_usd=3.6)
                        for i in range(11)])  # fmt: skip
    fleet.update("p0", [gpu("GPU-a", T0 + timedelta(seconds=i)) for i in (3, 10)])  # redelivered
    unpriced = [gpu("GPU-b", T0 + timedelta(seconds=s), price_per_hour_usd=None) for s in (0, 30)]
    fleet.update("p0", unpriced)
    # a gap longer than the TTL: the GPU was away, it counts the TTL at most
    fleet.update("p0", [gpu("GPU-c", T0), gpu("GPU-c", T0 + timedelta(hours=1))])
    reg = fleet_registry(fleet)
    assert series_of(reg, "gpu_analytics_gpu_seconds_total") == {
        "GPU-a": 10.0, "GPU-b": 30.0, "GPU-c": 60.0
    }  # fmt: skip
    cost = series_of(reg, "gpu_analytics_gpu_cost_usd_total")
    assert cost.keys() == {"GPU-a", "GPU-c"}  # no price, no cost series (never 0)
    assert cost["GPU-a"] == pytest.approx(0.01)
    assert cost["GPU-c"] == pytest.approx(60 / 3600 * 0.8)


def test_a_gpu_held_by_a_pod_below_the_threshold_counts_as_idle() -> None:
    fleet = GpuFleet(ttl_s=60, max_gpus=10, idle_threshold_pct=5)
    pod = {"namespace": "research", "pod": "notebook-0", "container": "jupyter"}
    utils = [50.0, 50.0, 2.0, 2.0, 0.0, 90.0]  # 3 s idle of 5 s
    held = [
        gpu(
            "GPU-a", T0 + timedelta(seconds=i), utilization_gpu_pct=u, price_per_hour_usd=3.6, **pod
        )
        for i, u in enumerate(utils)
    ]
    fleet.update("p0", held)
    free = [gpu("GPU-free", T0 + timedelta(seconds=i), utilization_gpu_pct=0.0) for i in range(5)]
    fleet.update("p0", free)  # idle, but no pod holds it: unallocated, not waste
    reg = fleet_registry(fleet)
    assert series_of(reg, "gpu_analytics_gpu_idle_seconds_total") == {"GPU-a": 3, "GPU-free": 0}
    assert series_of(reg, "gpu_analytics_gpu_idle_cost_usd_total")["GPU-a"] == pytest.approx(0.003)
    labels = {
        dict(k[1])["gpu_uuid"]: dict(k[1])
        for k in samples(reg)
        if k[0] == "gpu_analytics_gpu_seconds_total"
    }
    assert labels["GPU-a"]["workload_namespace"] == "research"
    assert labels["GPU-a"]["workload_pod"] == "notebook-0"
    assert labels["GPU-a"]["workload_container"] == "jupyter"
    assert labels["GPU-free"]["workload_pod"] == ""


def token(model: str, **values: Any) -> dict[str, Any]:
    return {
        "provider": "vllm",
        "model": model,
        "input_tokens": 100,
        "output_tokens": 50,
        "latency_ms": 1800.0,
        "ttft_ms": None,
        "gpu_uuid": "GPU-a",
        "status": "ok",
        **values,
    }


def test_llm_usage_counts_tokens_requests_latency_and_tokens_per_gpu() -> None:
    registry = CollectorRegistry()
    usage = LlmUsage(registry=registry)
    usage.observe(
        [
            token("llama", ttft_ms=120.0),
            token("llama", status="error", gpu_uuid="GPU-b"),
            token("mistral", gpu_uuid=None),
        ]
    )
    got = samples(registry)

    def value(name: str, **labels: str) -> float:
        return sum(
            v for (n, ls), v in got.items() if n == name and labels.items() <= dict(ls).items()
        )

    assert value("gpu_analytics_llm_tokens_total", model="llama", token_type="input") == 200
    assert value("gpu_analytics_llm_tokens_total", model="llama", token_type="output") == 100
    assert value("gpu_analytics_llm_requests_total", model="llama", status="error") == 1
    assert value("gpu_analytics_llm_requests_total", model="mistral", status="ok") == 1
    assert value("gpu_analytics_llm_request_duration_seconds_count", model="llama") == 2
    assert value("gpu_analytics_llm_request_duration_seconds_sum", model="llama") == 3.6
    assert value("gpu_analytics_llm_request_duration_seconds_bucket", model="llama", le="2.56") == 2
    assert value("gpu_analytics_llm_time_to_first_token_seconds_count", model="llama") == 1
    # each model's tokens per GPU it names: the share its GPU time and cost are split by
    assert value("gpu_analytics_llm_gpu_tokens_total", model="llama", gpu_uuid="GPU-a") == 150
    assert value("gpu_analytics_llm_gpu_tokens_total", model="llama", gpu_uuid="GPU-b") == 150
    assert value("gpu_analytics_llm_gpu_tokens_total", model="mistral") == 0
    # no cost summed from latencies: a GPU batches many calls at once
    assert not any(n.startswith("gpu_analytics_llm_cost") for n, _ in got)


def test_model_and_gpu_pairs_are_bounded() -> None:
    registry = CollectorRegistry()
    usage = LlmUsage(registry=registry)
    usage.MAX_MODEL_GPUS = 4
    usage.observe([token("m", gpu_uuid=f"GPU-{i}") for i in range(10)])
    gpus = {
        dict(ls)["gpu_uuid"]: v
        for (n, ls), v in samples(registry).items()
        if n == "gpu_analytics_llm_gpu_tokens_total"
    }
    assert len(gpus) == 5 and gpus[OTHER] == 6 * 150


def test_the_model_label_is_bounded() -> None:
    registry = CollectorRegistry()
    usage = LlmUsage(max_models=3, registry=registry)
    usage.observe([token(f"m{i}") for i in range(10)])
    models = {
        dict(ls)["model"]
        for (n, ls) in samples(registry)
        if n == "gpu_analytics_llm_requests_total"
    }
    assert models == {"m0", "m1", "m2", OTHER}
