"""The cost rule (processor/gpu_cost.py): GPU wall-clock time split by token share."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from gpu_analytics.processor.gpu_cost import Holding, attribute, sampled_seconds, usage_by

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_samples_stand_for_their_span_plus_one_interval_at_most_the_window() -> None:
    assert sampled_seconds(10, T0, T0 + timedelta(seconds=9), 900) == 10
    assert sampled_seconds(2, T0, T0 + timedelta(seconds=30), 900) == 60
    assert sampled_seconds(100, T0, T0 + timedelta(hours=1), 900) == 900
    assert sampled_seconds(1, T0, T0, 900) == 0


def test_a_hundred_concurrent_calls_on_one_gpu_pay_its_time_once() -> None:
    # 100 calls of 10 s each, all at once on one $3.60/h GPU sampled for 10 s
    cost = attribute(
        [Holding("GPU-a", sampled_seconds(10, T0, T0 + timedelta(seconds=9), 900), 3.6)],
        {("llama", "GPU-a"): 100 * 1000},
    )
    llama = cost.models["llama"]
    assert llama.gpu_seconds == pytest.approx(10)  # not 100 x 10 s
    assert llama.cost_usd == pytest.approx(0.01)
    assert llama.cost_per_1k_tokens_usd == pytest.approx(0.01 / 100)


def test_a_shared_gpu_is_split_by_tokens_an_idle_one_is_unattributed() -> None:
    cost = attribute(
        [Holding("GPU-a", 60, 3.6), Holding("GPU-idle", 60, 7.2), Holding("GPU-free", 60, None)],
        {("m1", "GPU-a"): 300, ("m2", "GPU-a"): 100, ("m2", "GPU-free"): 50,
         ("m3", "GPU-unknown"): 10},
    )  # fmt: skip
    assert cost.models["m1"].cost_usd == pytest.approx(0.045)
    assert cost.models["m2"].cost_usd == pytest.approx(0.015)
    assert cost.models["m2"].gpu_seconds == pytest.approx(15 + 60)
    assert cost.models["m2"].priced_tokens == 100  # tokens on the unpriced GPU are not priced
    assert "m3" not in cost.models  # a GPU with no samples in the window: no time to split
    assert (cost.gpus, cost.gpu_seconds) == (3, 180)
    assert cost.cost_usd == pytest.approx(0.18)
    assert cost.attributed_cost_usd == pytest.approx(0.06)
    assert cost.attributed_gpu_seconds == 120


def test_models_never_cost_more_than_the_fleet_nor_use_more_gpus_than_there_are() -> None:
    rng = random.Random(7)
    for _ in range(500):
        window_s = rng.choice([60.0, 900.0, 3600.0])
        gpus = []
        for i in range(rng.randrange(1, 12)):
            n = rng.randrange(0, 50)
            first = T0 + timedelta(seconds=rng.uniform(0, window_s))
            last = first + timedelta(seconds=rng.uniform(0, window_s))
            price = rng.choice([None, rng.uniform(0.3, 8)])
            gpus.append(Holding(f"GPU-{i}", sampled_seconds(n, first, last, window_s), price))
        tokens = {
            (f"m{rng.randrange(5)}", f"GPU-{rng.randrange(15)}"): rng.randrange(0, 10_000)
            for _ in range(rng.randrange(0, 40))
        }
        cost = attribute(gpus, tokens)
        fleet_price = sum(g.price_per_hour_usd or 0 for g in gpus)
        models_cost = sum(m.cost_usd for m in cost.models.values())
        models_seconds = sum(m.gpu_seconds for m in cost.models.values())
        assert models_cost <= cost.attributed_cost_usd + 1e-9
        assert cost.attributed_cost_usd <= cost.cost_usd + 1e-9
        assert cost.cost_usd <= fleet_price * window_s / 3600 + 1e-9
        assert models_seconds / window_s <= len(gpus) + 1e-9
        assert models_seconds == pytest.approx(cost.attributed_gpu_seconds)


def test_where_pods_held_a_gpu_only_their_time_is_split_and_the_basis_says_so() -> None:
    cost = attribute(
        [
            Holding("GPU-a", 40, 3.6, pod="vllm-0", namespace="inference"),
            Holding("GPU-a", 20, 3.6),  # the same GPU, no pod holding it for 20 s
            Holding("GPU-b", 60, 3.6),  # no attribution at all
        ],
        {("llama", "GPU-a"): 10, ("qwen", "GPU-b"): 10},
    )
    assert cost.models["llama"].gpu_seconds == 40
    assert cost.models["llama"].basis == "pod_gpu_time_by_token_share"
    assert cost.models["qwen"].gpu_seconds == 60
    assert cost.models["qwen"].basis == "gpu_time_by_token_share"
    assert cost.gpu_seconds == 120 and cost.gpus == 2


def test_usage_by_workload_counts_idle_time_of_held_gpus_only() -> None:
    holdings = [
        Holding("GPU-a", 3600, 2.0, "n1", "research", "notebook-0", 1.0, idle_share=1.0),
        Holding("GPU-b", 3600, 4.0, "n1", "inference", "vllm-0", 60.0, idle_share=0.25),
        Holding("GPU-c", 1800, 1.0, "n2", None, None, 0.0, idle_share=1.0),
    ]
    pods = usage_by(holdings, lambda h: h.pod)
    assert pods.keys() == {"notebook-0", "vllm-0"}
    assert (pods["notebook-0"].idle_seconds, pods["notebook-0"].idle_cost_usd) == (3600, 2.0)
    assert pods["vllm-0"].idle_cost_usd == pytest.approx(1.0)
    assert pods["vllm-0"].mean_utilization_pct == 60
    free = usage_by(holdings, lambda h: None if h.pod else h.host)
    assert free["n2"].seconds == 1800 and free["n2"].idle_seconds == 0  # not allocated: no waste
    every = usage_by(holdings, lambda _h: "all")["all"]
    assert every.cost_usd == pytest.approx(6.5)
    assert every.mean_utilization_pct == pytest.approx((3600 * 1 + 3600 * 60) / 9000)
