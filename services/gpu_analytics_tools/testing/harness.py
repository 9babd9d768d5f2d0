"""Run the real services as subprocesses against a stack: for tests and benchmarks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from gpu_analytics_tools.observability.prometheus import exposition_samples
from gpu_analytics_tools.stack.pipeline import start_service
from gpu_analytics_tools.stack.process import free_port
from gpu_analytics_tools.stack.stack import StackEnv
from gpu_analytics_tools.testing import events

CLI = str(Path(sys.executable).with_name("gpu-analytics"))
PARTITIONS = 6


@dataclass
class Processor:
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""

    def start(self) -> Processor:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = start_service("processor", {**self.env, "HTTP_PORT": str(port)}, self.log)
        return self

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"processor not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, uncommitted work is simply lost from memory."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    async def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` matching `labels`, from /metrics."""
        return sum(value for _, value in await self.samples(name, **labels))

    async def samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """The samples of `name` matching `labels`, from /metrics: (labels, value) each."""
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            text = (await client.get("/metrics")).text
        return exposition_samples(text, name, **labels)


@dataclass
class Pipeline:
    """The topics, database and consumer group one test's processors share."""

    stack: StackEnv
    gpu_topic: str
    token_topic: str
    db: str
    group: str
    log_dir: Path
    processors: list[Processor] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.stack.bootstrap_servers,
            "MONGODB_URI": self.stack.mongodb_uri,
            "MONGODB_DB": self.db,
            "TOPIC_GPU_METRICS": self.gpu_topic,
            "TOPIC_TOKEN_USAGE": self.token_topic,
            "CONSUMER_GROUP": self.group,
            "HTTP_HOST": "127.0.0.1",
            "LOG_LEVEL": "INFO",
            "CONSUMER_MAX_RECORDS": "500",
        }

    async def start_processor(self) -> Processor:
        processor = Processor(self.env(), self.log_dir / f"processor-{len(self.processors)}.log")
        self.processors.append(processor.start())
        await processor.wait_ready()
        return processor

    def diagnosis(self, lines: int = 15) -> str:
        """For a failed assertion: each processor's state and its last warnings and errors."""
        parts = []
        for processor in self.processors:
            rc = processor.proc.poll() if processor.proc else None
            state = "running" if processor.proc and rc is None else f"exited {rc}"
            log = processor.log.read_text() if processor.log.exists() else ""
            noisy = [line for line in log.splitlines() if '"level": "INFO"' not in line]
            parts.append(f"{processor.log.name} ({state}):\n" + "\n".join(noisy[-lines:]))
        return "\n".join(parts)

    async def stored(self, collection: str = "gpu_metrics") -> list[dict[str, Any]]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.stack.mongodb_uri)
        try:
            return [doc async for doc in client[self.db][collection].find({})]
        finally:
            await client.close()

    async def wait_stored(
        self, count: int, collection: str = "gpu_metrics", timeout: float = 120
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            docs = await self.stored(collection)
            if len(docs) >= count or time.monotonic() > deadline:
                return docs
            await asyncio.sleep(0.5)


def gpu_event(seq: int, **overrides: Any) -> dict[str, Any]:
    """A valid gpu.metrics.v1 payload; `seq` is carried in `host` to check every event back,
    and gives the event id, so a test can find each one."""
    fields: dict[str, Any] = {
        "gpu_uuid": f"GPU-{seq % 8:08d}", "host": f"seq-{seq}", "gpu_index": seq % 8,
        "name": "NVIDIA H100 80GB HBM3", "utilization": float(seq % 100),
        "event_id": str(uuid.UUID(int=seq + 1)),
    }  # fmt: skip
    return events.gpu_metric(**{**fields, **overrides})


async def read_records(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list[Any]:
    """Up to `count` records of `topic` from its start, waiting at most `timeout` s."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records
