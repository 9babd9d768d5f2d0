"""`gpu-analytics producer` as a user runs it, where no Kafka is needed: --once and bad settings."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from gpu_analytics.config import ProducerSettings
from gpu_analytics.events import GpuMetric
from gpu_analytics.producer.service import ProducerService
from gpu_analytics_tools.testing.producer import SEED

CLI = str(Path(sys.executable).with_name("gpu-analytics"))


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("PRODUCER_", "KAFKA_", "TOPIC_"))
    }
    environment.update(env)
    return subprocess.run(
        [CLI, "producer", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def _logs(stream: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.splitlines() if line.startswith("{")]


def test_once_prints_one_valid_gpu_metric_and_nothing_else() -> None:
    done = _run("--once", "--source", "synthetic", PRODUCER_SEED=str(SEED))

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    event = GpuMetric.model_validate_json(lines[0])
    assert event.event_id
    assert event.utilization_gpu_pct is not None
    assert orjson.loads(lines[0]) == event.model_dump(mode="json")


def test_once_auto_without_a_gpu_says_it_uses_the_synthetic_fleet() -> None:
    # No NVIDIA driver on the machines running the tests: auto must fall back, and say so.
    done = _run("--once", PRODUCER_SOURCE="auto")

    assert done.returncode == 0, done.stderr
    GpuMetric.model_validate_json(done.stdout)
    messages = [entry["message"] for entry in _logs(done.stderr)]
    assert "source: synthetic (auto: no GPU through NVML)" in messages


def test_once_nvml_without_a_gpu_fails_clearly() -> None:
    done = _run("--once", "--source", "nvml")

    assert done.returncode == 1
    assert done.stdout == ""
    assert any("NVML sees no GPU" in str(e["message"]) for e in _logs(done.stderr))


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--source", "gpu"), {}), ((), {"PRODUCER_RATE": "-5"})],
    ids=["unknown-source", "negative-rate"],
)
def test_bad_settings_exit_2_with_the_field_named(
    args: tuple[str, ...], env: dict[str, str]
) -> None:
    done = _run(*args, **env)

    assert done.returncode == 2
    errors = [e for e in _logs(done.stdout) if e["message"] == "invalid configuration"]
    assert errors
    assert "producer_" in str(errors[0]["errors"])


async def test_gives_up_when_kafka_never_answers(unused_tcp_port: int) -> None:
    settings = ProducerSettings(
        kafka_bootstrap_servers=f"127.0.0.1:{unused_tcp_port}",
        producer_source="synthetic",
        producer_kafka_wait_s=1.5,
        metrics_port=0,
    )

    assert await ProducerService(settings).run(handle_signals=False) == 1


async def test_stop_while_waiting_for_kafka_exits_cleanly(unused_tcp_port: int) -> None:
    settings = ProducerSettings(
        kafka_bootstrap_servers=f"127.0.0.1:{unused_tcp_port}",
        producer_source="synthetic",
        metrics_port=0,
    )
    service = ProducerService(settings)
    loop = asyncio.get_running_loop()
    loop.call_later(1.0, service.stop)

    assert await asyncio.wait_for(service.run(handle_signals=False), 15) == 0
