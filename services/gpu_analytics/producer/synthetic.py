"""A synthetic GPU fleet serving LLMs: what `PRODUCER_SOURCE=synthetic` sends without a GPU.

Nodes of real GPU models (nvidia-smi names, memory sizes, power limits, typical cloud on-demand
prices per GPU hour), each GPU serving one open-weights model through vLLM. Per GPU:

- utilisation is a bounded random walk (Ornstein-Uhlenbeck around a slowly drifting target);
- power follows utilisation between idle and the power limit, temperature follows power with a
  thermal lag, the SM clock boosts under load and throttles when hot, memory stays at vLLM's
  pre-allocated share;
- token-usage events come with each sample, Poisson-distributed with a mean proportional to
  utilisation; their latency and time to first token grow with input/output tokens and load.

Placement, as a cluster's scheduler leaves it: most GPUs are held by a vLLM pod (namespace
`inference`) and serve as above; every seventh GPU from the sixth on is held by a notebook pod
(namespace `research`) and sits idle, and every seventh from the seventh on is held by no pod
at all. So idle-but-allocated and unallocated GPUs, and what they cost, show up in every fleet
of seven GPUs or more.

Everything random comes from one `random.Random(seed)`, so a seed replays the same fleet and the
same sample sequence (timestamps and event ids aside). Time in the model advances by
`sample_interval_s` per sample of a GPU, so the dynamics do not depend on how fast one reads.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gpu_analytics.events import GpuMetric, TokenUsage
from gpu_analytics.producer.ids import EventIds
from gpu_analytics.producer.podresources import Holder, holder_fields


@dataclass(frozen=True)
class ServedModel:
    """An LLM served by vLLM on one GPU model, with its speed there at low load."""

    name: str
    tpot_ms: float  # time per output token (decode) for one stream
    prefill_tokens_per_ms: float


@dataclass(frozen=True)
class GpuModel:
    name: str  # as NVML / nvidia-smi report it
    short: str
    mem_total_mb: float  # MiB, as nvidia-smi reports it
    power_limit_w: float
    idle_power_w: float
    max_sm_clock_mhz: float
    idle_sm_clock_mhz: float
    price_per_hour_usd: float  # typical cloud on-demand price per GPU hour
    gpus_per_node: int
    weight: float  # share of nodes in a fleet
    served: tuple[ServedModel, ...]


_LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
_MISTRAL_7B = "mistralai/Mistral-7B-Instruct-v0.3"

CATALOG: tuple[GpuModel, ...] = (
    GpuModel(
        "NVIDIA H100 80GB HBM3", "h100", 81559, 700, 72, 1980, 345, 4.50, 8, 0.25,
        (
            ServedModel("meta-llama/Llama-3.3-70B-Instruct", 28.0, 6.0),
            ServedModel("Qwen/Qwen2.5-72B-Instruct", 30.0, 5.5),
            ServedModel(_LLAMA_8B, 7.0, 40.0),
        ),
    ),
    GpuModel(
        "NVIDIA A100-SXM4-80GB", "a100", 81920, 400, 55, 1410, 210, 3.20, 8, 0.2,
        (
            ServedModel("mistralai/Mixtral-8x7B-Instruct-v0.1", 18.0, 10.0),
            ServedModel("Qwen/Qwen2.5-32B-Instruct", 24.0, 8.0),
            ServedModel(_LLAMA_8B, 10.0, 25.0),
        ),
    ),
    GpuModel(
        "NVIDIA L40S", "l40s", 46068, 350, 35, 2520, 210, 1.86, 4, 0.15,
        (
            ServedModel("Qwen/Qwen2.5-14B-Instruct", 22.0, 9.0),
            ServedModel(_LLAMA_8B, 14.0, 16.0),
        ),
    ),
    GpuModel(
        "NVIDIA A10G", "a10g", 23028, 300, 22, 1710, 210, 1.01, 4, 0.15,
        (
            ServedModel(_MISTRAL_7B, 22.0, 8.0),
            ServedModel(_LLAMA_8B, 24.0, 7.0),
        ),
    ),
    GpuModel(
        "NVIDIA L4", "l4", 23034, 72, 16, 2040, 210, 0.80, 4, 0.15,
        (
            ServedModel(_MISTRAL_7B, 30.0, 5.0),
            ServedModel("Qwen/Qwen2.5-7B-Instruct", 31.0, 5.0),
        ),
    ),
    GpuModel(
        "Tesla T4", "t4", 15360, 70, 10, 1590, 300, 0.53, 4, 0.1,
        (
            ServedModel("Qwen/Qwen2.5-3B-Instruct", 28.0, 3.0),
            ServedModel("microsoft/Phi-3-mini-4k-instruct", 30.0, 3.0),
        ),
    ),
)  # fmt: skip

PROVIDER = "vllm"
# vLLM reserves this share of GPU memory for weights + KV cache at start (gpu_memory_utilization).
VLLM_MEMORY_SHARE = 0.9
AMBIENT_C = 30.0
THERMAL_TAU_S = 40.0
# Mean token-usage events per GPU sample at 100 % utilisation.
TOKEN_EVENTS_PER_SAMPLE_AT_FULL_LOAD = 3.0
MAX_STEP_S = 60.0
SERVING_NAMESPACE = "inference"
IDLE_NAMESPACE = "research"
# Position in the fleet modulo PLACEMENT_CYCLE: which GPUs idle in a pod, which no pod holds.
PLACEMENT_CYCLE, IDLE_SLOT, FREE_SLOT = 7, 5, 6


@dataclass
class SyntheticGpu:
    model: GpuModel
    served: ServedModel
    host: str
    index: int
    uuid: str
    price_per_hour_usd: float
    utilization: float  # 0..100
    target: float  # where utilisation drifts to
    mem_bandwidth_ratio: float  # memory-controller busy % per SM busy %
    max_temp_rise_c: float  # cooling quality of this slot
    temperature_c: float = AMBIENT_C + 5
    samples: int = field(default=0)
    holder: Holder | None = None  # the pod holding the GPU, None when no pod holds it

    @property
    def serving(self) -> bool:
        """Held by a vLLM pod: busy, and the token events come from it."""
        return self.holder is not None and self.holder.namespace == SERVING_NAMESPACE


def build_fleet(
    rng: random.Random, *, gpus: int, host_prefix: str, prices: dict[str, float]
) -> list[SyntheticGpu]:
    """Whole nodes of one GPU model each (the last one partly), until `gpus` GPUs."""
    fleet: list[SyntheticGpu] = []
    counts: dict[str, int] = {}
    weights = [m.weight for m in CATALOG]
    while len(fleet) < gpus:
        model = rng.choices(CATALOG, weights)[0]
        node = counts.get(model.short, 0)
        counts[model.short] = node + 1
        host = f"{host_prefix}-{model.short}-{node}"
        served = rng.choice(model.served)  # one model per node, tensor-parallel or replicas
        for index in range(min(model.gpus_per_node, gpus - len(fleet))):
            uuid = f"GPU-{_uuid4(rng)}"
            target = rng.uniform(15, 90)
            fleet.append(
                SyntheticGpu(
                    model=model,
                    served=served,
                    host=host,
                    index=index,
                    uuid=uuid,
                    price_per_hour_usd=prices.get(
                        uuid, prices.get(model.name, model.price_per_hour_usd)
                    ),
                    utilization=min(100.0, max(0.0, target + rng.gauss(0, 10))),
                    target=target,
                    mem_bandwidth_ratio=rng.uniform(0.35, 0.75),
                    max_temp_rise_c=rng.uniform(38, 52),
                )
            )
    for position, gpu in enumerate(fleet):
        _place(gpu, position)
    return fleet


def _place(gpu: SyntheticGpu, position: int) -> None:
    slot = position % PLACEMENT_CYCLE
    if slot == FREE_SLOT:
        gpu.holder, gpu.utilization = None, 0.0
    elif slot == IDLE_SLOT:
        gpu.holder = Holder(IDLE_NAMESPACE, f"notebook-{position // PLACEMENT_CYCLE}", "jupyter")
        gpu.utilization = 0.0
    else:
        model = gpu.served.name.rsplit("/", 1)[-1].lower().replace(".", "-")
        gpu.holder = Holder(SERVING_NAMESPACE, f"vllm-{model}-{gpu.host}-{gpu.index}", "vllm")


def _uuid4(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


class SyntheticSource:
    """Round-robin GPU samples, each followed by the token-usage events it served."""

    kind = "synthetic"

    def __init__(
        self,
        *,
        gpus: int,
        seed: int | None,
        host_prefix: str,
        prices: dict[str, float] | None = None,
        sample_interval_s: float = 1.0,
    ) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self.fleet = build_fleet(self._rng, gpus=gpus, host_prefix=host_prefix, prices=prices or {})
        self._dt = min(max(sample_interval_s, 0.0), MAX_STEP_S)
        self._next_gpu = 0
        self._pending: deque[GpuMetric | TokenUsage] = deque()
        self._ids = EventIds()

    def take(self, n: int) -> list[GpuMetric | TokenUsage]:
        out: list[GpuMetric | TokenUsage] = []
        pending = self._pending
        while len(out) < n:
            if not pending:
                self._sample_next()
            out.append(pending.popleft())
        return out

    def close(self) -> None:
        pass

    # -- the model ----------------------------------------------------------------------
    def _sample_next(self) -> None:
        gpu = self.fleet[self._next_gpu]
        self._next_gpu = (self._next_gpu + 1) % len(self.fleet)
        rng, dt, now = self._rng, self._dt, datetime.now(UTC)
        if gpu.serving:
            self._step(gpu, rng, dt)
        else:  # nothing runs: a few per cent of housekeeping at most
            gpu.utilization = min(4.0, abs(rng.gauss(0, 1.0)))
            gpu.samples += 1
        self._pending.append(self._metric(gpu, rng, now))
        if not gpu.serving:
            return
        for _ in range(_poisson(rng, TOKEN_EVENTS_PER_SAMPLE_AT_FULL_LOAD * gpu.utilization / 100)):
            self._pending.append(self._token_usage(gpu, rng, now))

    @staticmethod
    def _step(gpu: SyntheticGpu, rng: random.Random, dt: float) -> None:
        # Demand drifts slowly; utilisation follows it with noise (OU process), kept in 0..100.
        sqrt_dt = math.sqrt(dt)
        gpu.target = min(98.0, max(3.0, gpu.target + 1.5 * sqrt_dt * rng.gauss(0, 1)))
        u = gpu.utilization + 0.08 * (gpu.target - gpu.utilization) * dt
        u += 6.0 * sqrt_dt * rng.gauss(0, 1)
        if u < 0:
            u = -u
        elif u > 100:
            u = 200 - u
        gpu.utilization = min(100.0, max(0.0, u))
        gpu.samples += 1

    def _metric(self, gpu: SyntheticGpu, rng: random.Random, now: datetime) -> GpuMetric:
        model, load = gpu.model, gpu.utilization / 100
        power = model.idle_power_w + (model.power_limit_w - model.idle_power_w) * load**1.2
        power = min(model.power_limit_w, power * rng.uniform(0.96, 1.03))
        # Temperature approaches a level set by the power drawn, with a thermal time constant.
        settle = AMBIENT_C + gpu.max_temp_rise_c * power / model.power_limit_w
        alpha = 1 - math.exp(-self._dt / THERMAL_TAU_S) if gpu.samples > 1 else 1.0
        gpu.temperature_c += (settle - gpu.temperature_c) * alpha
        temperature = round(gpu.temperature_c + rng.gauss(0, 0.4))
        if gpu.utilization < 1:
            clock = model.idle_sm_clock_mhz
        else:
            throttle = max(0.0, temperature - 80) * 15  # clocks drop when hot
            clock = max(model.idle_sm_clock_mhz, model.max_sm_clock_mhz - throttle)
            clock -= 15 * rng.randrange(3)  # boost steps of 15 MHz
        mem_total = model.mem_total_mb
        # vLLM pre-allocates its share; a notebook holds a little; a free GPU only the driver's.
        share = VLLM_MEMORY_SHARE if gpu.serving else 0.12 if gpu.holder else 0.0
        mem_used = round(mem_total * share + rng.uniform(-40, 40)) if share else rng.randint(1, 8)
        mem_util = gpu.utilization * gpu.mem_bandwidth_ratio + rng.gauss(0, 2)
        return GpuMetric(
            event_id=next(self._ids),
            ts=now,
            host=gpu.host,
            gpu_index=gpu.index,
            gpu_uuid=gpu.uuid,
            name=model.name,
            utilization_gpu_pct=float(round(gpu.utilization)),
            utilization_mem_pct=float(min(100, max(0, round(mem_util)))),
            mem_used_mb=float(mem_used),
            mem_total_mb=mem_total,
            power_w=round(power, 2),
            temperature_c=float(temperature),
            sm_clock_mhz=clock,
            price_per_hour_usd=gpu.price_per_hour_usd,
            **holder_fields(gpu.holder),
        )

    def _token_usage(self, gpu: SyntheticGpu, rng: random.Random, now: datetime) -> TokenUsage:
        served, load = gpu.served, gpu.utilization / 100
        gauss, exp = rng.gauss, math.exp  # lognormal draws; gauss() is the cheaper normal
        operation = "chat" if rng.random() < 0.9 else "text_completion"
        input_tokens = min(32_000, max(1, int(exp(gauss(6.5, 0.9)))))  # lognormal, median ~670
        output_tokens = min(4096, max(1, int(exp(gauss(5.3, 0.8)))))  # median ~200
        # Continuous batching: per-token time grows with the batch (load), queueing with load^4.
        slowdown = 1 + 1.8 * load * load
        queue_ms = rng.expovariate(1 / (2 + 250 * load**4))
        ttft = queue_ms + input_tokens / served.prefill_tokens_per_ms * slowdown + 8
        status = "error" if rng.random() < 0.002 + 0.03 * load**4 else "ok"
        if status == "error":  # timed out or aborted: part of the answer, if any
            output_tokens = rng.randrange(0, output_tokens // 4 + 1)
        decode = output_tokens * served.tpot_ms * slowdown * exp(gauss(0, 0.12))
        return TokenUsage(
            event_id=next(self._ids),
            ts=now,
            host=gpu.host,
            provider=PROVIDER,
            model=served.name,
            operation=operation,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_ms=round(ttft + decode, 1),
            # Streaming chat reports a first token; plain completions return all at once.
            ttft_ms=round(ttft, 1) if operation == "chat" else None,
            gpu_uuid=gpu.uuid,
            status=status,
        )


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; the means here are small (a few events per sample)."""
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
