"""Freezing a child process (what the frozen-server reliability scenarios do to a broker)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_analytics.stack.process import ProcessRef

# Four threads that never wait: whichever runs on another core when SIGSTOP is sent goes on
# until that core takes the signal, which is the window freeze() has to close.
SPINNING = """
import threading, time
def spin():
    while True:
        pass
for _ in range(4):
    threading.Thread(target=spin, daemon=True).start()
time.sleep(120)
"""


def _thread_states(pid: int) -> list[str]:
    return [
        stat.read_text().rsplit(")", 1)[1].split()[0]
        for stat in Path(f"/proc/{pid}/task").glob("*/stat")
    ]


@pytest.fixture
def spinning() -> Iterator[ProcessRef]:
    proc = subprocess.Popen([sys.executable, "-c", SPINNING])
    try:
        while len(_thread_states(proc.pid)) < 5:
            time.sleep(0.01)
        yield ProcessRef.of(proc.pid)
    finally:
        proc.kill()
        proc.wait(10)


def test_freeze_returns_once_every_thread_has_stopped(spinning: ProcessRef) -> None:
    for _ in range(5):  # a SIGSTOP that is only sent leaves a thread running in most rounds
        spinning.freeze()
        states = _thread_states(spinning.pid)
        assert states and all(state == "T" for state in states), states
        spinning.send(signal.SIGCONT)
        while "T" in _thread_states(spinning.pid):
            time.sleep(0.01)


def test_freezing_a_process_that_is_gone_is_an_error(spinning: ProcessRef) -> None:
    subprocess.run(["kill", "-9", str(spinning.pid)], check=True)
    while spinning.alive():
        time.sleep(0.01)
    with pytest.raises(ProcessLookupError):
        spinning.freeze()
