"""Child processes of the stack: free ports for them, and freezing one (what the frozen-server
reliability scenarios do to a broker)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_analytics_tools.stack.process import ProcessRef, free_port, log_errors, log_tail

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


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    """An outgoing connection never takes such a port before its server binds it."""
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(port < ephemeral_low for port in ports), sorted(ports)[-5:]
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_failed_start_reports_the_error_that_the_shutdown_lines_hide(tmp_path: Path) -> None:
    log = tmp_path / "kafka.log"
    error = (
        "[2026-12-02 15:43:39,004] ERROR [KafkaRaftServer nodeId=1] Fatal error during broker "
        "startup. Prepare to shutdown (kafka.server.BrokerServer)\n"
        "org.apache.kafka.common.KafkaException: Socket server failed to bind to "
        "127.0.0.1:53533: Address already in use."
    )
    shutdown = "\n".join(
        f"[2026-12-02 15:43:41,211] INFO [controller-1-ThrottledChannelReaper-{n}]: Stopped"
        for n in range(30)
    )
    log.write_text(f"[2026-12-02 15:43:38,100] INFO starting\n{error}\n{shutdown}\n")
    assert "Address already in use" not in log_tail(log)
    assert log_errors(log) == error
    assert log_errors(tmp_path / "absent.log") == "(no log)"


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
    for _ in range(20):  # a SIGSTOP that is only sent leaves a thread running in most rounds
        spinning.freeze()
        states = _thread_states(spinning.pid)
        assert states and all(state == "T" for state in states), states
        spinning.send(signal.SIGCONT)
        while "T" in _thread_states(spinning.pid):
            time.sleep(0.01)


def test_freezing_a_process_that_is_gone_is_an_error(spinning: ProcessRef) -> None:
    spinning.send(signal.SIGKILL)
    while spinning.alive():
        time.sleep(0.01)
    with pytest.raises(ProcessLookupError):
        spinning.freeze()
