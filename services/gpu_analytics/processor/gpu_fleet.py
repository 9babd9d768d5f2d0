"""GPU fleet gauges: the latest stored sample of every GPU, one series per GPU and value.

dcgm-exporter is the model (utilisation, framebuffer used/total, power, temperature, SM clock),
in Prometheus base units. The consumer feeds every valid GPU event it stores, whichever way it
arrived (producer or HTTP ingest both go through Kafka), so a replica shows exactly the GPUs of
the partitions it owns: the events are keyed by `gpu_uuid`, and a revoked partition's GPUs are
dropped at once, so across replicas each GPU is one series (dashboards still aggregate with
`max by (gpu_uuid)` to ride out a rebalance). A value the GPU does not support (null) gives no
series, never 0; a GPU not seen for `ttl_s` drops out; at most `max_gpus` are kept (the least
recently seen goes first), which bounds the cardinality at `max_gpus` x len(GAUGES).

Two counters per GPU give its time and cost: each newer sample adds the wall-clock time since
the GPU's previous one (at most `ttl_s`: a longer gap means the GPU was away), priced at the
sample's hourly rate. Two more count the part of it that a pod held the GPU while its
utilisation was below `idle_threshold_pct` (allocated but idle: waste). A GPU costs its price
whatever it runs, so these are what models' costs are split from (processor/gpu_cost.py);
their sum over the fleet never runs faster than one second per GPU per second of event time.
A redelivered or older sample adds nothing, and a GPU that moves to another replica
starts its series again there from zero (rate() copes).

prometheus_client's Gauge cannot expire series by age, hence this small collector.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gpu_analytics.events import assume_utc

MIB = 1024 * 1024

# The workload_* labels name the pod holding the GPU (empty when none does): not namespace/pod/
# container, which the ServiceMonitor sets to the processor's own (Prometheus would rename ours
# to exported_*).
LABELS = (
    "gpu_uuid", "gpu_index", "name", "host",
    "workload_namespace", "workload_pod", "workload_container",
)  # fmt: skip


@dataclass(frozen=True)
class _Gauge:
    name: str
    help: str
    field: str
    scale: float


# name, help, event field, factor from the event's unit to the metric's
GAUGES = (
    _Gauge(
        "gpu_analytics_gpu_utilization_ratio",
        "GPU utilisation (time a kernel ran), 0-1 (DCGM_FI_DEV_GPU_UTIL / 100).",
        "utilization_gpu_pct",
        0.01,
    ),
    _Gauge(
        "gpu_analytics_gpu_memory_utilization_ratio",
        "Memory controller utilisation, 0-1 (DCGM_FI_DEV_MEM_COPY_UTIL / 100).",
        "utilization_mem_pct",
        0.01,
    ),
    _Gauge(
        "gpu_analytics_gpu_memory_used_bytes",
        "Framebuffer memory used (DCGM_FI_DEV_FB_USED).",
        "mem_used_mb",
        MIB,
    ),
    _Gauge(
        "gpu_analytics_gpu_memory_total_bytes",
        "Framebuffer memory in total.",
        "mem_total_mb",
        MIB,
    ),
    _Gauge("gpu_analytics_gpu_power_watts", "Power draw (DCGM_FI_DEV_POWER_USAGE).", "power_w", 1),
    _Gauge(
        "gpu_analytics_gpu_temperature_celsius",
        "GPU temperature (DCGM_FI_DEV_GPU_TEMP).",
        "temperature_c",
        1,
    ),
    _Gauge(
        "gpu_analytics_gpu_sm_clock_hertz",
        "SM clock (DCGM_FI_DEV_SM_CLOCK x 1e6).",
        "sm_clock_mhz",
        1e6,
    ),
    _Gauge(
        "gpu_analytics_gpu_price_per_hour_usd",
        "On-demand price of the GPU per hour, as its producer reports it.",
        "price_per_hour_usd",
        1,
    ),
)

LAST_SEEN = "gpu_analytics_gpu_last_sample_timestamp_seconds"
SECONDS = "gpu_analytics_gpu_seconds"  # + _total
SECONDS_HELP = "Wall-clock time the GPU was there: the time between its consecutive samples."
COST = "gpu_analytics_gpu_cost_usd"  # + _total
COST_HELP = "What the GPU cost: its time priced at the hourly rate its samples report."
IDLE_SECONDS = "gpu_analytics_gpu_idle_seconds"  # + _total
IDLE_SECONDS_HELP = (
    "Time the GPU was held by a pod yet below the idle utilisation threshold "
    "(GPU_IDLE_UTILIZATION_PCT): allocated and wasted."
)
IDLE_COST = "gpu_analytics_gpu_idle_cost_usd"  # + _total
IDLE_COST_HELP = "What that idle but allocated time cost."


@dataclass(slots=True)
class _Sample:
    labels: tuple[str, ...]
    ts: datetime
    values: dict[str, float]
    partition: Any
    seen: float
    seconds: float = 0.0
    cost_usd: float | None = None  # None until a sample had a price
    idle_seconds: float = 0.0
    idle_cost_usd: float = 0.0


class GpuFleet(Collector):
    def __init__(
        self,
        *,
        ttl_s: float,
        max_gpus: int,
        idle_threshold_pct: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_gpus = max_gpus
        self.idle_threshold_pct = idle_threshold_pct
        self._clock = clock
        self._lock = threading.Lock()
        self._gpus: OrderedDict[str, _Sample] = OrderedDict()  # least recently seen first

    def update(self, partition: Any, docs: Iterable[dict[str, Any]]) -> None:
        """Take the stored GPU events of one partition: dicts holding every GpuMetric field, as
        the consumer stores them (`ts` naive UTC; aware also works, the same kind throughout, as
        they compare).

        Per event only the GPU's time and cost are added up (the hot path: every stored
        sample passes here); its labels and gauge values are built once per GPU and batch,
        from its newest sample."""
        now = self._clock()
        newest: dict[str, dict[str, Any]] = {}
        ttl, idle_below = self.ttl_s, self.idle_threshold_pct
        with self._lock:
            gpus = self._gpus
            for doc in docs:
                uuid = doc["gpu_uuid"]
                ts = doc["ts"]
                state = gpus.get(uuid)
                if state is None:
                    gpus[uuid] = _Sample((), ts, {}, partition, now)
                    newest[uuid] = doc
                elif ts > state.ts:
                    # Inlined (the hot path): the time since the GPU's previous sample, at
                    # most ttl_s, priced at this sample's rate; the idle part of it when a pod
                    # held the GPU below the threshold.
                    gap = (ts - state.ts).total_seconds()
                    if gap > ttl:
                        gap = ttl
                    state.seconds += gap
                    state.ts = ts
                    newest[uuid] = doc
                    price = doc["price_per_hour_usd"]
                    cost = 0.0
                    if price is not None:
                        cost = gap / 3600 * price
                        state.cost_usd = (state.cost_usd or 0.0) + cost
                    if doc["pod"]:
                        util = doc["utilization_gpu_pct"]
                        if util is not None and util < idle_below:
                            state.idle_seconds += gap
                            state.idle_cost_usd += cost
                elif ts == state.ts:  # the same sample again
                    newest[uuid] = doc
                else:  # an older sample: the GPU is still alive
                    state.seen, state.partition = now, partition
                    gpus.move_to_end(uuid)
            for uuid, doc in newest.items():
                state = gpus[uuid]
                state.labels = (
                    uuid,
                    str(doc["gpu_index"]),
                    doc["name"],
                    doc["host"],
                    doc["namespace"] or "",
                    doc["pod"] or "",
                    doc["container"] or "",
                )  # fmt: skip
                state.values = {
                    g.name: doc[g.field] * g.scale for g in GAUGES if doc[g.field] is not None
                }
                state.seen, state.partition = now, partition
                gpus.move_to_end(uuid)
            while len(gpus) > self.max_gpus:
                gpus.popitem(last=False)

    def forget_partitions(self, partitions: Iterable[Any]) -> None:
        """Drop the GPUs of revoked partitions: their new owner reports them now."""
        gone = set(partitions)
        with self._lock:
            for uuid in [u for u, s in self._gpus.items() if s.partition in gone]:
                del self._gpus[uuid]

    def __len__(self) -> int:
        with self._lock:
            return len(self._gpus)

    def collect(self) -> Iterable[Metric]:
        deadline = self._clock() - self.ttl_s
        with self._lock:
            while self._gpus:
                oldest = next(iter(self._gpus.values()))
                if oldest.seen >= deadline:
                    break
                self._gpus.popitem(last=False)
            # Copied under the lock: update() changes a GPU's state in place.
            samples = [
                (s.labels, s.values, s.ts, s.seconds, s.cost_usd, s.idle_seconds, s.idle_cost_usd)
                for s in self._gpus.values()
            ]
        families = {g.name: GaugeMetricFamily(g.name, g.help, labels=LABELS) for g in GAUGES}
        last = GaugeMetricFamily(
            LAST_SEEN, "Timestamp of the GPU's latest stored sample.", labels=LABELS
        )
        seconds = CounterMetricFamily(SECONDS, SECONDS_HELP, labels=LABELS)
        cost = CounterMetricFamily(COST, COST_HELP, labels=LABELS)
        idle = CounterMetricFamily(IDLE_SECONDS, IDLE_SECONDS_HELP, labels=LABELS)
        idle_cost = CounterMetricFamily(IDLE_COST, IDLE_COST_HELP, labels=LABELS)
        for labels, values, ts, gpu_s, cost_usd, idle_s, idle_cost_usd in samples:
            for name, value in values.items():
                families[name].add_metric(labels, value)
            last.add_metric(labels, assume_utc(ts).timestamp())
            seconds.add_metric(labels, gpu_s)
            idle.add_metric(labels, idle_s)
            if cost_usd is not None:
                cost.add_metric(labels, cost_usd)
                idle_cost.add_metric(labels, idle_cost_usd)
        yield from families.values()
        yield from (last, seconds, cost, idle, idle_cost)

    def describe(self) -> Iterable[Metric]:
        for g in GAUGES:
            yield GaugeMetricFamily(g.name, g.help, labels=LABELS)
        yield GaugeMetricFamily(LAST_SEEN, "", labels=LABELS)
        yield CounterMetricFamily(SECONDS, SECONDS_HELP, labels=LABELS)
        yield CounterMetricFamily(COST, COST_HELP, labels=LABELS)
        yield CounterMetricFamily(IDLE_SECONDS, IDLE_SECONDS_HELP, labels=LABELS)
        yield CounterMetricFamily(IDLE_COST, IDLE_COST_HELP, labels=LABELS)
