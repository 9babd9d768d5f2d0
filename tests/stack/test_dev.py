"""`gpu-analytics dev` (make dev) as a user runs it, on free ports in a temp folder: the stack,
the processor, a synthetic producer and Prometheus (where make setup built it) come up through
the pipeline launcher, events flow, and Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gpu_analytics_tools.stack.pipeline import cli, prometheus_binary
from gpu_analytics_tools.stack.process import free_port

pytestmark = pytest.mark.integration

CLI = cli()


def wait_for(check: Callable[[], bool], seconds: float = 90) -> bool:
    """True once `check` holds (a refused connection counts as not yet), False after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    return False


@pytest.mark.timeout(300)
def test_dev_serves_the_pipeline_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    ports = {
        name: free_port()
        for name in ("HTTP_PORT", "METRICS_PORT", "PROMETHEUS_PORT", "KAFKA_PORT",
                     "KAFKA_CONTROLLER_PORT", "MONGO_PORT")
    }  # fmt: skip
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}}
    env["STACK_STATE_DIR"] = str(tmp_path / "state")
    stderr = tmp_path / "dev.err"
    with stderr.open("wb") as err:
        dev = subprocess.Popen([CLI, "dev"], env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        deadline = time.monotonic() + 180
        while "running; press Ctrl-C" not in stderr.read_text():
            assert dev.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.5)
        base = f"http://127.0.0.1:{ports['HTTP_PORT']}"
        stored = wait_for(
            lambda: (
                httpx.get(f"{base}/api/v1/stats", timeout=5)
                .json()["collections"]
                .get("gpu_metrics", 0)
                > 0
            )
        )
        assert stored, stderr.read_text()  # the producer's events reached MongoDB
        assert wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200)
        producer = httpx.get(f"http://127.0.0.1:{ports['METRICS_PORT']}/metrics", timeout=5)
        assert "gpu_analytics_events_sent_total" in producer.text
        if prometheus_binary() is not None:
            prometheus = f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}"
            assert wait_for(
                lambda: httpx.get(f"{prometheus}/-/ready", timeout=5).status_code == 200
            )
    finally:
        dev.send_signal(signal.SIGINT)
        out, _ = dev.communicate(timeout=120)
    log = stderr.read_text()
    assert dev.returncode == 0, log
    assert "dev: stopped" in log
    assert f"processor API   http://127.0.0.1:{ports['HTTP_PORT']}/docs" in out
