"""`gpu-analytics stack up/down/status` as a user runs them, on free ports in a temp folder."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from gpu_analytics_tools.stack.process import free_port, port_open
from gpu_analytics_tools.stack.topics import declared_topics

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("gpu-analytics"))


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "stack", *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "STACK_STATE_DIR": str(tmp_path / "state"),
        "KAFKA_PORT": str(free_port()),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
        "MONGO_PORT": str(free_port()),
    }
    yield env
    _run("down", env=env)  # never leave a broker behind, whatever the test did


async def _topics(port: int) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def _ports(env: dict[str, str]) -> list[int]:
    return [int(env[k]) for k in ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "MONGO_PORT")]


def test_up_detached_prints_addresses_and_down_frees_ports(stack_env: dict[str, str]) -> None:
    up = _run("up", "--detach", env=stack_env)
    assert up.returncode == 0, up.stderr
    assert f"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{stack_env['KAFKA_PORT']}" in up.stdout.splitlines()
    assert f"MONGODB_URI=mongodb://127.0.0.1:{stack_env['MONGO_PORT']}" in up.stdout.splitlines()
    assert all(port_open("127.0.0.1", p) for p in _ports(stack_env))
    assert set(declared_topics()) <= asyncio.run(_topics(int(stack_env["KAFKA_PORT"])))

    status = _run("status", env=stack_env)
    assert status.returncode == 0
    assert "kafka: running" in status.stdout and "mongo: running" in status.stdout

    again = _run("up", "--detach", env=stack_env)
    assert again.returncode == 0
    assert "already running" in again.stderr
    assert again.stdout == up.stdout

    down = _run("down", env=stack_env)
    assert down.returncode == 0, down.stderr
    assert not any(port_open("127.0.0.1", p) for p in _ports(stack_env))
    assert _run("status", env=stack_env).returncode == 1
    assert "nothing was running" in _run("down", env=stack_env).stderr


def test_up_reports_a_taken_port_and_starts_nothing(stack_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(stack_env["MONGO_PORT"])))
        squatter.listen()
        up = _run("up", "--detach", env=stack_env)
    assert up.returncode == 1
    assert f"port {stack_env['MONGO_PORT']}" in up.stderr
    assert "already in use" in up.stderr
    assert not port_open("127.0.0.1", int(stack_env["KAFKA_PORT"]))


def test_foreground_up_stops_both_servers_on_ctrl_c(stack_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [CLI, "stack", "up"],
        env=stack_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip() for _ in range(2)]
    assert lines[0].startswith("KAFKA_BOOTSTRAP_SERVERS="), proc.stderr
    assert lines[1].startswith("MONGODB_URI=")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    assert not any(port_open("127.0.0.1", p) for p in _ports(stack_env))
