"""Real GPUs through NVML (nvidia-ml-py, module `pynvml`).

NVML is initialised once. Each metric call is probed once per GPU: a call that answers
`NVMLError_NotSupported` (a T4 has no SM clock readout in some drivers, MIG slices have no
power, ...) is never made again for that GPU and its fields are sent as `null`, never as `0`.
Any other NVML error is counted in `gpu_analytics_nvml_errors_total{call}`, sends `null` for that
sample and is tried again next time: a flaky sensor never stops the producer.

With a `PodResources` (the kubelet's API, on a Kubernetes node), each sample names the pod,
namespace and container holding the GPU; a MIG slice held by a pod counts for its parent GPU
(the slices' UUIDs are read once at start).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pynvml

from gpu_analytics.events import GpuMetric
from gpu_analytics.producer.ids import EventIds
from gpu_analytics.producer.podresources import PodResources, holder_fields

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# Per-GPU metric calls; names are the NVML functions (the `call` label of nvml_errors_total).
UTILIZATION = "nvmlDeviceGetUtilizationRates"
MEMORY = "nvmlDeviceGetMemoryInfo"
POWER = "nvmlDeviceGetPowerUsage"
TEMPERATURE = "nvmlDeviceGetTemperature"
SM_CLOCK = "nvmlDeviceGetClockInfo"


def _read_utilization(handle: Any) -> tuple[float, float]:
    rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
    return float(rates.gpu), float(rates.memory)


def _read_memory(handle: Any) -> tuple[float, float]:
    info = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return info.used / MIB, info.total / MIB


def _read_power(handle: Any) -> float:
    return float(pynvml.nvmlDeviceGetPowerUsage(handle)) / 1000  # milliwatts


def _read_temperature(handle: Any) -> float:
    return float(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))


def _read_sm_clock(handle: Any) -> float:
    return float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM))


_READERS: dict[str, Callable[[Any], Any]] = {
    UTILIZATION: _read_utilization,
    MEMORY: _read_memory,
    POWER: _read_power,
    TEMPERATURE: _read_temperature,
    SM_CLOCK: _read_sm_clock,
}


class NvmlUnavailable(RuntimeError):
    """NVML did not initialise or sees no GPU; `auto` falls back to the synthetic fleet."""


@dataclass
class NvmlGpu:
    index: int
    handle: Any
    uuid: str
    name: str
    price_per_hour_usd: float | None
    unsupported: set[str] = field(default_factory=set)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _bounded(value: float | None, low: float, high: float) -> float | None:
    """A reading outside the physical range (driver glitch) is no reading."""
    if value is None or not low <= value <= high:
        return None
    return value


class NvmlSource:
    kind = "nvml"

    def __init__(
        self,
        *,
        host: str,
        prices: dict[str, float] | None = None,
        on_error: Callable[[str], None] = lambda _call: None,
        pod_resources: PodResources | None = None,
    ) -> None:
        """Initialise NVML and probe every GPU; raises NvmlUnavailable."""
        self.host = host
        self._pods = pod_resources
        self._on_error = on_error
        self._ids = EventIds()
        self._next_gpu = 0
        self._last_error_log: dict[str, float] = {}
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(f"NVML did not initialise: {exc}") from exc
        try:
            count = int(pynvml.nvmlDeviceGetCount())
        except pynvml.NVMLError as exc:
            self._shutdown()
            raise NvmlUnavailable(f"NVML could not count GPUs: {exc}") from exc
        self.gpus: list[NvmlGpu] = []
        for index in range(count):
            gpu = self._open_gpu(index, prices or {})
            if gpu is not None:
                self.gpus.append(gpu)
        if not self.gpus:
            self._shutdown()
            raise NvmlUnavailable(f"NVML reports {count} GPU(s), none usable")
        for gpu in self.gpus:
            self._probe(gpu)
        # MIG slice UUID -> its GPU's UUID: the device plugin hands out slices.
        self.parent_of = {mig: gpu.uuid for gpu in self.gpus for mig in self._mig_slices(gpu)}

    @staticmethod
    def _mig_slices(gpu: NvmlGpu) -> list[str]:
        try:
            count = int(pynvml.nvmlDeviceGetMaxMigDeviceCount(gpu.handle))
        except pynvml.NVMLError:  # not MIG-capable, or MIG off
            return []
        slices = []
        for index in range(count):
            try:
                handle = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu.handle, index)
                slices.append(_text(pynvml.nvmlDeviceGetUUID(handle)))
            except pynvml.NVMLError:  # no slice at this index
                continue
        return slices

    def _open_gpu(self, index: int, prices: dict[str, float]) -> NvmlGpu | None:
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        except pynvml.NVMLError as exc:
            self._error("nvmlDeviceGetHandleByIndex", exc)
            return None
        try:
            uuid = _text(pynvml.nvmlDeviceGetUUID(handle))
        except pynvml.NVMLError as exc:
            self._error("nvmlDeviceGetUUID", exc)
            uuid = f"{self.host}-gpu{index}"  # still one stable key per GPU
        try:
            name = _text(pynvml.nvmlDeviceGetName(handle))
        except pynvml.NVMLError as exc:
            self._error("nvmlDeviceGetName", exc)
            name = "unknown"
        return NvmlGpu(
            index=index,
            handle=handle,
            uuid=uuid,
            name=name,
            price_per_hour_usd=prices.get(uuid, prices.get(name)),
        )

    def _probe(self, gpu: NvmlGpu) -> None:
        for call in _READERS:
            self._read(gpu, call)
        log.info(
            "GPU found",
            extra={
                "gpu_index": gpu.index,
                "gpu_uuid": gpu.uuid,
                "gpu_name": gpu.name,
                "unsupported_calls": sorted(gpu.unsupported),
            },
        )

    def _read(self, gpu: NvmlGpu, call: str) -> Any:
        if call in gpu.unsupported:
            return None
        try:
            return _READERS[call](gpu.handle)
        except pynvml.NVMLError_NotSupported:
            gpu.unsupported.add(call)
            log.info(
                "NVML call not supported: sending null",
                extra={"call": call, "gpu_uuid": gpu.uuid},
            )
            return None
        except pynvml.NVMLError as exc:
            self._error(call, exc, gpu_uuid=gpu.uuid)
            return None

    def _error(self, call: str, exc: Exception, **extra: object) -> None:
        self._on_error(call)
        now = time.monotonic()
        if now - self._last_error_log.get(call, -60.0) >= 60:  # one line per call per minute
            self._last_error_log[call] = now
            log.warning("NVML call failed", extra={"call": call, "error": str(exc), **extra})

    def sample(self, gpu: NvmlGpu) -> GpuMetric:
        utilization = self._read(gpu, UTILIZATION)
        memory = self._read(gpu, MEMORY)
        gpu_pct, mem_pct = utilization if utilization is not None else (None, None)
        mem_used, mem_total = memory if memory is not None else (None, None)
        holder = self._pods.holders(self.parent_of).get(gpu.uuid) if self._pods else None
        return GpuMetric(
            event_id=next(self._ids),
            ts=datetime.now(UTC),
            host=self.host,
            gpu_index=gpu.index,
            gpu_uuid=gpu.uuid,
            name=gpu.name,
            utilization_gpu_pct=_bounded(gpu_pct, 0, 100),
            utilization_mem_pct=_bounded(mem_pct, 0, 100),
            mem_used_mb=_bounded(mem_used, 0, float("inf")),
            mem_total_mb=_bounded(mem_total, 0, float("inf")),
            power_w=_bounded(self._read(gpu, POWER), 0, 10_000),
            temperature_c=_bounded(self._read(gpu, TEMPERATURE), -40, 150),
            sm_clock_mhz=_bounded(self._read(gpu, SM_CLOCK), 0, 100_000),
            price_per_hour_usd=gpu.price_per_hour_usd,
            **holder_fields(holder),
        )

    def take(self, n: int) -> list[GpuMetric]:
        """The next `n` samples, round-robin over the GPUs."""
        out = []
        for _ in range(n):
            gpu = self.gpus[self._next_gpu]
            self._next_gpu = (self._next_gpu + 1) % len(self.gpus)
            out.append(self.sample(gpu))
        return out

    def close(self) -> None:
        if self._pods is not None:
            self._pods.close()
        self._shutdown()

    @staticmethod
    def _shutdown() -> None:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError as exc:
            log.debug("nvmlShutdown failed", extra={"error": str(exc)})
