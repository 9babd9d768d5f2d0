"""The Locust users run headless against a real processor on 127.0.0.1 without a failure, and
the HPA demo shape ramps up, spikes and ends."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gpu_analytics_tools.stack.stack import StackEnv
from gpu_analytics_tools.stack.topics import create_topics
from gpu_analytics_tools.testing.harness import Pipeline

LOADTEST = Path(__file__).resolve().parents[2] / "loadtest"
LOCUST = str(Path(sys.executable).with_name("locust"))


@pytest.mark.integration
async def test_users_drive_ingest_and_queries_without_failures(
    stack: StackEnv, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    line = Pipeline(stack, f"lt.gpu.{run}", f"lt.tok.{run}", f"lt_{run}", f"lt-{run}", tmp_path)
    await create_topics(stack.bootstrap_servers, {line.gpu_topic: 2, line.token_topic: 2})
    processor = await line.start_processor()
    try:
        result = subprocess.run(
            [
                LOCUST,
                "-f",
                str(LOADTEST / "users.py"),
                "--headless",
                "-u",
                "4",
                "-r",
                "4",
                "-t",
                "6s",
                "--host",
                processor.url,
                "--json",
                "--only-summary",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        processor.stop()
    assert result.returncode == 0, result.stderr[-2000:]
    stats = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert stats["POST gpu-metrics x100"]["num_requests"] > 0
    assert stats["POST token-usage x100"]["num_requests"] > 0
    assert sum(entry["num_failures"] for entry in stats.values()) == 0
    docs = await line.wait_stored(100)
    assert len(docs) >= 100


def test_hpa_demo_shape_ramps_spikes_and_ends() -> None:
    # In a child process: importing locust monkey-patches the interpreter (gevent).
    probe = (
        "import hpa_demo\n"
        "shape = hpa_demo.HpaDemo()\n"
        "out = []\n"
        "for s in range(0, 800, 30):\n"
        "    shape.get_run_time = lambda s=s: s\n"
        "    tick = shape.tick()\n"
        "    out.append(tick[0] if tick else None)\n"
        "print(out)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=LOADTEST,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    users = json.loads(result.stdout.strip().splitlines()[-1].replace("None", "null"))
    assert users[0] == 10
    assert max(u for u in users if u is not None) == 120
    assert users[-1] is None  # the shape ends the run
