"""The synthetic fleet: realistic, bounded, correlated the way real serving GPUs are, replayable."""

from __future__ import annotations

import statistics
from collections import defaultdict

import pytest

from gpu_analytics.events import GpuMetric, TokenUsage
from gpu_analytics.producer.synthetic import (
    CATALOG,
    IDLE_NAMESPACE,
    PROVIDER,
    SERVING_NAMESPACE,
    SyntheticSource,
)
from gpu_analytics_tools.testing.producer import SEED

MODELS = {m.name: m for m in CATALOG}
LLMS = {s.name for m in CATALOG for s in m.served}
# Replays compare everything but the wall-clock timestamp and the (never seeded) event id.
VOLATILE = {"ts", "event_id"}


def _fleet(seed: int | None = SEED, gpus: int = 16, interval: float = 2.0) -> SyntheticSource:
    return SyntheticSource(gpus=gpus, seed=seed, host_prefix="node", sample_interval_s=interval)


@pytest.fixture(scope="module")
def events() -> list[GpuMetric | TokenUsage]:
    return list(_fleet().take(40_000))


def _split(
    events: list[GpuMetric | TokenUsage],
) -> tuple[list[GpuMetric], list[TokenUsage]]:
    gpus = [e for e in events if isinstance(e, GpuMetric)]
    tokens = [e for e in events if isinstance(e, TokenUsage)]
    return gpus, tokens


def test_same_seed_replays_the_same_events_with_fresh_ids() -> None:
    first, second = _fleet().take(2000), _fleet().take(2000)

    assert [e.model_dump(exclude=VOLATILE) for e in first] == [
        e.model_dump(exclude=VOLATILE) for e in second
    ]
    ids = {e.event_id for e in [*first, *second]}
    assert len(ids) == 4000  # a replay must not overwrite stored events downstream


def test_other_seed_gives_another_fleet() -> None:
    first, second = _fleet(seed=1).take(200), _fleet(seed=2).take(200)

    assert [e.model_dump(exclude=VOLATILE) for e in first] != [
        e.model_dump(exclude=VOLATILE) for e in second
    ]


def test_fleet_has_the_requested_size_of_real_gpu_models() -> None:
    source = _fleet(gpus=37)

    assert len(source.fleet) == 37
    assert len({g.uuid for g in source.fleet}) == 37
    assert len({(g.host, g.index) for g in source.fleet}) == 37
    for gpu in source.fleet:
        assert gpu.model in CATALOG
        assert gpu.price_per_hour_usd == gpu.model.price_per_hour_usd
        assert gpu.uuid.startswith("GPU-")
        assert gpu.index < gpu.model.gpus_per_node


def test_price_map_overrides_catalog_prices() -> None:
    prices = dict.fromkeys(MODELS, 9.99)
    source = SyntheticSource(gpus=4, seed=SEED, host_prefix="n", prices=prices)

    assert {g.price_per_hour_usd for g in source.fleet} == {9.99}


def test_gpu_samples_stay_within_physical_bounds(events: list[GpuMetric | TokenUsage]) -> None:
    gpus, _ = _split(events)

    assert len(gpus) > 5000
    for s in gpus:
        model = MODELS[s.name]
        assert s.utilization_gpu_pct is not None and 0 <= s.utilization_gpu_pct <= 100
        assert s.utilization_mem_pct is not None and 0 <= s.utilization_mem_pct <= 100
        assert s.mem_total_mb == model.mem_total_mb
        assert s.mem_used_mb is not None and 0 < s.mem_used_mb <= model.mem_total_mb
        assert s.power_w is not None
        assert model.idle_power_w * 0.95 <= s.power_w <= model.power_limit_w
        assert s.temperature_c is not None and 25 <= s.temperature_c <= 95
        assert s.sm_clock_mhz is not None
        assert model.idle_sm_clock_mhz <= s.sm_clock_mhz <= model.max_sm_clock_mhz
        assert s.price_per_hour_usd == model.price_per_hour_usd


def test_gpus_are_placed_in_pods_serving_idle_or_unallocated() -> None:
    source = _fleet(gpus=20)
    samples = [e for e in source.take(4000) if isinstance(e, GpuMetric)]
    holders = {s.gpu_uuid: (s.namespace, s.pod, s.container) for s in samples}
    serving = {u for u, h in holders.items() if h[0] == SERVING_NAMESPACE}
    idle = {u for u, h in holders.items() if h[0] == IDLE_NAMESPACE}
    free = {u for u, h in holders.items() if h == (None, None, None)}
    assert (len(serving), len(idle), len(free)) == (15, 3, 2)  # positions 5, 12, 19 / 6, 13
    assert len({holders[u] for u in serving | idle}) == 18  # one pod per GPU
    for s in samples:
        if s.gpu_uuid not in serving:
            assert s.utilization_gpu_pct is not None and s.utilization_gpu_pct < 5
    tokens = [e for e in source.take(4000) if isinstance(e, TokenUsage)]
    assert tokens and {t.gpu_uuid for t in tokens} <= serving  # idle GPUs serve no call


def test_utilisation_is_a_bounded_random_walk(events: list[GpuMetric | TokenUsage]) -> None:
    gpus, _ = _split(events)
    series: dict[str, list[float]] = defaultdict(list)
    for s in gpus:
        assert s.utilization_gpu_pct is not None
        if s.namespace == SERVING_NAMESPACE:  # the idle and free GPUs sit near 0
            series[s.gpu_uuid].append(s.utilization_gpu_pct)

    for values in series.values():
        steps = [abs(b - a) for a, b in zip(values, values[1:], strict=False)]
        assert statistics.mean(steps) < 15  # it walks, it does not jump around
        assert statistics.pstdev(values) > 3  # and it does move
    spread = [statistics.mean(v) for v in series.values()]
    assert max(spread) - min(spread) > 10  # GPUs are not all equally busy


def test_power_and_temperature_follow_utilisation(events: list[GpuMetric | TokenUsage]) -> None:
    gpus, _ = _split(events)
    by_model: dict[str, list[GpuMetric]] = defaultdict(list)
    for s in gpus:
        by_model[s.name].append(s)

    for samples in by_model.values():
        util = [s.utilization_gpu_pct or 0.0 for s in samples]
        assert statistics.correlation(util, [s.power_w or 0.0 for s in samples]) > 0.9
        assert statistics.correlation(util, [s.temperature_c or 0.0 for s in samples]) > 0.5


def test_token_usage_rate_grows_with_utilisation(events: list[GpuMetric | TokenUsage]) -> None:
    per_sample: list[tuple[float, int]] = []  # (utilisation, token events that followed)
    for event in events:
        if isinstance(event, GpuMetric):
            per_sample.append((event.utilization_gpu_pct or 0.0, 0))
        elif per_sample:
            util, count = per_sample[-1]
            per_sample[-1] = (util, count + 1)

    idle = [n for u, n in per_sample if u < 30]
    busy = [n for u, n in per_sample if u > 70]
    assert idle and busy
    assert statistics.mean(busy) > 2 * statistics.mean(idle)


def test_token_usage_is_realistic(events: list[GpuMetric | TokenUsage]) -> None:
    gpus, tokens = _split(events)
    fleet = {s.gpu_uuid for s in gpus}

    assert len(tokens) > 5000
    for t in tokens:
        assert t.provider == PROVIDER
        assert t.model in LLMS
        assert t.gpu_uuid in fleet
        assert t.operation in ("chat", "text_completion")
        assert 1 <= t.input_tokens <= 32_000
        assert 0 <= t.output_tokens <= 4096
        if t.operation == "chat":
            assert t.ttft_ms is not None and 0 < t.ttft_ms <= t.latency_ms
        else:
            assert t.ttft_ms is None
    errors = sum(t.status == "error" for t in tokens) / len(tokens)
    assert 0 < errors < 0.05
    ok = [t for t in tokens if t.status == "ok"]
    assert statistics.correlation([t.output_tokens for t in ok], [t.latency_ms for t in ok]) > 0.5


def test_latency_grows_with_gpu_load(events: list[GpuMetric | TokenUsage]) -> None:
    # Time per output token relative to the served model's own speed on that GPU model, so
    # that which models happen to run busy or quiet does not decide the comparison.
    speed = {g.uuid: g.served.tpot_ms for g in _fleet().fleet}
    util = {}
    per_token: dict[str, list[float]] = {"idle": [], "busy": []}
    for event in events:
        if isinstance(event, GpuMetric):
            util[event.gpu_uuid] = event.utilization_gpu_pct or 0.0
        elif event.status == "ok" and event.output_tokens > 20 and event.ttft_ms is not None:
            load = util[event.gpu_uuid or ""]
            tpot = (event.latency_ms - event.ttft_ms) / event.output_tokens
            tpot /= speed[event.gpu_uuid or ""]
            if load < 30:
                per_token["idle"].append(tpot)
            elif load > 70:
                per_token["busy"].append(tpot)

    assert statistics.median(per_token["busy"]) > 1.3 * statistics.median(per_token["idle"])
