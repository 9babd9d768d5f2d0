"""Test helpers for the producer: a fake NVML and Kafka reads (used by services/tests/producer).

There is no GPU on the machines that run the tests, so NVML is faked where the producer meets
it: the functions of nvidia-ml-py's `pynvml` module, replaced one by one (`FakeNvml.install`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pynvml
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from gpu_analytics_tools.stack.topics import topic_partitions

if TYPE_CHECKING:
    import pytest

SEED = 20261127
MIB = 1024 * 1024
_SERIAL = itertools.count(1)


@dataclass
class FakeGpu:
    """What one GPU answers; a value that is an exception instance is raised instead."""

    name: Any = "NVIDIA H100 80GB HBM3"
    uuid: str = field(default_factory=lambda: f"GPU-00000000-0000-4000-8000-{next(_SERIAL):012d}")
    utilization: Any = (57, 31)  # (gpu %, memory-controller %)
    memory: Any = (40_960 * MIB, 81_559 * MIB)  # (used, total) bytes
    power_mw: Any = 312_500
    temperature: Any = 61
    sm_clock: Any = 1755
    mig: list[str] = field(default_factory=list)  # UUIDs of its MIG slices; none: MIG off


class FakeNvml:
    """nvidia-ml-py's functions, replaced at the module boundary (`pynvml.nvml*`)."""

    def __init__(self, gpus: list[FakeGpu], *, init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.calls: Counter[tuple[str, int]] = Counter()  # (function, gpu index)
        self.shutdowns = 0

    def _answer(self, function: str, index: int, value: Any) -> Any:
        self.calls[(function, index)] += 1
        if isinstance(value, BaseException):
            raise value
        return value

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
        def init() -> None:
            if self.init_error is not None:
                raise pynvml.NVMLError(self.init_error)

        def shutdown() -> None:
            self.shutdowns += 1

        def utilization(h: int) -> SimpleNamespace:
            gpu, mem = self._answer("util", h, self.gpus[h].utilization)
            return SimpleNamespace(gpu=gpu, memory=mem)

        def memory(h: int) -> SimpleNamespace:
            used, total = self._answer("memory", h, self.gpus[h].memory)
            return SimpleNamespace(used=used, total=total, free=total - used)

        def temperature(h: int, sensor: int) -> Any:
            assert sensor == pynvml.NVML_TEMPERATURE_GPU
            return self._answer("temperature", h, self.gpus[h].temperature)

        def clock(h: int, kind: int) -> Any:
            assert kind == pynvml.NVML_CLOCK_SM
            return self._answer("sm_clock", h, self.gpus[h].sm_clock)

        def uuid(h: int | tuple[int, int]) -> Any:
            if isinstance(h, tuple):  # a MIG slice's handle: (GPU index, slice index)
                return self.gpus[h[0]].mig[h[1]]
            return self._answer("uuid", h, self.gpus[h].uuid)

        def mig_count(h: int) -> int:
            if not self.gpus[h].mig:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
            return len(self.gpus[h].mig)

        patches: dict[str, Callable[..., Any]] = {
            "nvmlInit": init,
            "nvmlShutdown": shutdown,
            "nvmlDeviceGetCount": lambda: len(self.gpus),
            "nvmlDeviceGetHandleByIndex": lambda i: i,  # the handle is the index here
            "nvmlDeviceGetName": lambda h: self._answer("name", h, self.gpus[h].name),
            "nvmlDeviceGetUUID": uuid,
            "nvmlDeviceGetMaxMigDeviceCount": mig_count,
            "nvmlDeviceGetMigDeviceHandleByIndex": lambda h, i: (h, i),
            "nvmlDeviceGetUtilizationRates": utilization,
            "nvmlDeviceGetMemoryInfo": memory,
            "nvmlDeviceGetPowerUsage": lambda h: self._answer("power", h, self.gpus[h].power_mw),
            "nvmlDeviceGetTemperature": temperature,
            "nvmlDeviceGetClockInfo": clock,
        }
        for name, function in patches.items():
            monkeypatch.setattr(pynvml, name, function)
        return self


def nvml_error(code: int) -> pynvml.NVMLError:
    return pynvml.NVMLError(code)


async def end_offsets(bootstrap_servers: str, topics: list[str]) -> int:
    """Records on these topics (sum of the end offsets of every partition)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        partitions = await topic_partitions(admin, topics)
        return int(sum((await consumer.end_offsets(partitions)).values()))
    finally:
        await consumer.stop()
        await admin.close()


async def read_all(
    bootstrap_servers: str, topic: str, expected: int, *, timeout_s: float = 60
) -> list[Any]:
    """Every record of `topic` from the beginning, once `expected` of them are there."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        loop_time = asyncio.get_running_loop().time
        deadline = loop_time() + timeout_s
        while len(records) < expected and loop_time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()
