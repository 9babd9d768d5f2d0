"""What GPUs cost over a time window, and which model it goes to.

The rule (the same in /api/v1/tokens/summary, the metrics and the dashboards):

- A GPU costs its hourly price for the wall-clock time it is there, whatever it runs. Its time
  in a window comes from its samples: n samples spread over [first, last] stand for
  n x (last - first) / (n - 1) seconds (the span plus one mean sampling interval), at most the
  window. A GPU with one sample in the window counts no time; one that stopped reporting for a
  while inside the window is counted across the gap.
- Inference servers batch: tens to hundreds of requests run on one GPU at once, so summing
  request latencies would charge the same GPU-second many times. Instead a GPU's time is split
  among the models that used it in proportion to their tokens on it (input + output) in the
  window. Time of a GPU that served no call naming it stays unattributed: idle, or serving
  calls that do not say which GPU they ran on.
- Cost per 1k tokens of a model is its attributed cost over its tokens on those GPUs.

By construction the models' GPU-seconds never exceed the GPUs' seconds, and their cost never
exceeds the fleet's price x time.

By workload (/api/v1/gpus/usage): the time a pod held a GPU is the pod's, busy or not; the part
of it whose samples were below the idle threshold (GPU_IDLE_UTILIZATION_PCT) is idle: allocated
and wasted. Time no pod held a GPU is unallocated, reported per node.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

K = TypeVar("K")

BASIS_TOKEN_SHARE = "gpu_time_by_token_share"
BASIS_PODS = "pod_gpu_time_by_token_share"


@dataclass(frozen=True)
class Holding:
    """One GPU in a window, held by one pod (or by none): its samples' time, price, use."""

    gpu_uuid: str
    seconds: float
    price_per_hour_usd: float | None
    host: str = ""
    namespace: str | None = None
    pod: str | None = None
    mean_utilization_pct: float | None = None
    idle_share: float = 0.0  # of its samples below the idle threshold

    @property
    def cost_usd(self) -> float | None:
        if self.price_per_hour_usd is None:
            return None
        return self.seconds / 3600 * self.price_per_hour_usd

    @property
    def idle_seconds(self) -> float:
        return self.seconds * self.idle_share if self.pod else 0.0


def sampled_seconds(samples: int, first: datetime, last: datetime, window_s: float) -> float:
    """The time that `samples` samples from `first` to `last` stand for, at most `window_s`."""
    if samples < 2 or last <= first:
        return 0.0
    span = (last - first).total_seconds()
    return min(window_s, span * samples / (samples - 1))


@dataclass
class ModelCost:
    gpu_seconds: float = 0.0
    cost_usd: float = 0.0
    priced_tokens: int = 0  # tokens on GPUs with time and a price: the cost's denominator
    priced: bool = False
    pods: bool = False  # some of its GPU time is time its GPUs were held by pods

    @property
    def cost_per_1k_tokens_usd(self) -> float | None:
        if not self.priced or not self.priced_tokens:
            return None
        return 1000 * self.cost_usd / self.priced_tokens

    @property
    def basis(self) -> str | None:
        if not self.priced:
            return None
        return BASIS_PODS if self.pods else BASIS_TOKEN_SHARE


@dataclass
class Attribution:
    models: dict[str, ModelCost] = field(default_factory=dict)
    gpus: int = 0
    gpu_seconds: float = 0.0
    cost_usd: float = 0.0  # every GPU with a price, attributed or not
    attributed_gpu_seconds: float = 0.0
    attributed_cost_usd: float = 0.0


def _add(total: float | None, value: float | None) -> float | None:
    return total if value is None else (total or 0.0) + value


def attribute(holdings: Iterable[Holding], tokens: Mapping[tuple[str, str], int]) -> Attribution:
    """Split each GPU's time and cost among models by their share of its tokens. Where pods
    held the GPU, only that time is split (a pod pays for what it holds, busy or idle).

    `tokens`: (model, gpu_uuid) -> input + output tokens of the calls naming that GPU."""
    on_gpu: dict[str, dict[str, int]] = defaultdict(dict)
    for (model, gpu_uuid), n in tokens.items():
        if n > 0:
            on_gpu[gpu_uuid][model] = n
    holdings = list(holdings)
    every = usage_by(holdings, lambda h: h.gpu_uuid)
    held = usage_by(holdings, lambda h: h.gpu_uuid if h.pod else None)
    result = Attribution(gpus=len(every))
    for gpu_uuid, gpu in every.items():
        result.gpu_seconds += gpu.seconds
        result.cost_usd += gpu.cost_usd or 0.0
        split = held.get(gpu_uuid, gpu)  # the time pods held it, where they did
        pods = split is not gpu and split.seconds > 0
        seconds, cost = (split.seconds, split.cost_usd) if pods else (gpu.seconds, gpu.cost_usd)
        users = on_gpu.get(gpu_uuid)
        if not users or seconds <= 0:
            continue
        total = sum(users.values())
        result.attributed_gpu_seconds += seconds
        result.attributed_cost_usd += cost or 0.0
        for model, n in users.items():
            share = n / total
            entry = result.models.setdefault(model, ModelCost())
            entry.gpu_seconds += seconds * share
            entry.pods = entry.pods or pods
            if cost is not None:
                entry.cost_usd += cost * share
                entry.priced_tokens += n
                entry.priced = True
    return result


@dataclass
class Usage:
    """GPU time, cost and waste summed over holdings (a pod's, a namespace's, a node's)."""

    gpus: set[str] = field(default_factory=set)
    seconds: float = 0.0
    cost_usd: float | None = None
    idle_seconds: float = 0.0
    idle_cost_usd: float | None = None
    _busy: float = 0.0  # sum of mean utilisation x seconds
    _timed: float = 0.0  # seconds with a utilisation

    def add(self, h: Holding) -> None:
        self.gpus.add(h.gpu_uuid)
        self.seconds += h.seconds
        self.cost_usd = _add(self.cost_usd, h.cost_usd)
        self.idle_seconds += h.idle_seconds
        if h.price_per_hour_usd is not None:
            idle_cost = h.idle_seconds / 3600 * h.price_per_hour_usd
            self.idle_cost_usd = _add(self.idle_cost_usd, idle_cost)
        if h.mean_utilization_pct is not None:
            self._busy += h.mean_utilization_pct * h.seconds
            self._timed += h.seconds

    @property
    def mean_utilization_pct(self) -> float | None:
        return self._busy / self._timed if self._timed else None


def usage_by(holdings: Iterable[Holding], key: Callable[[Holding], K | None]) -> dict[K, Usage]:
    """Usage per key; holdings whose key is None are left out."""
    out: dict[K, Usage] = defaultdict(Usage)
    for h in holdings:
        k = key(h)
        if k is not None:
            out[k].add(h)
    return dict(out)
