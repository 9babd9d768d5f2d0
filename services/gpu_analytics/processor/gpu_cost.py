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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

BASIS_TOKEN_SHARE = "gpu_time_by_token_share"


@dataclass(frozen=True)
class GpuTime:
    """One GPU's time and price in a window."""

    gpu_uuid: str
    seconds: float
    price_per_hour_usd: float | None

    @property
    def cost_usd(self) -> float | None:
        if self.price_per_hour_usd is None:
            return None
        return self.seconds / 3600 * self.price_per_hour_usd


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

    @property
    def cost_per_1k_tokens_usd(self) -> float | None:
        if not self.priced or not self.priced_tokens:
            return None
        return 1000 * self.cost_usd / self.priced_tokens


@dataclass
class Attribution:
    models: dict[str, ModelCost] = field(default_factory=dict)
    gpus: int = 0
    gpu_seconds: float = 0.0
    cost_usd: float = 0.0  # every GPU with a price, attributed or not
    attributed_gpu_seconds: float = 0.0
    attributed_cost_usd: float = 0.0


def attribute(gpus: Iterable[GpuTime], tokens: Mapping[tuple[str, str], int]) -> Attribution:
    """Split each GPU's time and cost among models by their share of its tokens.

    `tokens`: (model, gpu_uuid) -> input + output tokens of the calls naming that GPU."""
    on_gpu: dict[str, dict[str, int]] = defaultdict(dict)
    for (model, gpu_uuid), n in tokens.items():
        if n > 0:
            on_gpu[gpu_uuid][model] = n
    result = Attribution()
    for gpu in gpus:
        result.gpus += 1
        result.gpu_seconds += gpu.seconds
        cost = gpu.cost_usd
        result.cost_usd += cost or 0.0
        users = on_gpu.get(gpu.gpu_uuid)
        if not users or gpu.seconds <= 0:
            continue
        total = sum(users.values())
        result.attributed_gpu_seconds += gpu.seconds
        result.attributed_cost_usd += cost or 0.0
        for model, n in users.items():
            share = n / total
            entry = result.models.setdefault(model, ModelCost())
            entry.gpu_seconds += gpu.seconds * share
            if cost is not None:
                entry.cost_usd += cost * share
                entry.priced_tokens += n
                entry.priced = True
    return result
