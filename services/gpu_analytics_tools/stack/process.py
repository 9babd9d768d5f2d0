"""Start, identify and stop the child processes of the stack, and check their ports."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import random
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psutil


class PortInUseError(RuntimeError):
    pass


def ensure_port_free(host: str, port: int, what: str, env_name: str) -> None:
    """Fail with a clear message when another process already listens on `port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUseError(
                f"port {port} on {host} ({what}) is already in use by another process; "
                f"stop it or choose another port with {env_name}"
            ) from exc


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


# Ports handed out by free_port in this process, so two servers started together never get
# the same one (none of them is bound until its server starts).
_HANDED_OUT: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now, for a server started soon after (tests beside a dev stack).

    Taken below the kernel's ephemeral range (where bind(0) would pick): ports from that range
    are also given to outgoing connections, so one of those could take the port in the
    seconds before the server binds it (Kafka formats its storage first)."""
    high = min(_ephemeral_low(), 32768) - 1
    low = high - 11999
    if low < 1024:  # an ephemeral range that starts low leaves no room below it
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])
    for _ in range(200):
        port = random.randint(low, high)  # noqa: S311 - not a secret
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise PortInUseError(f"no free port found on {host} between {low} and {high}")


@functools.cache
def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


@dataclass(frozen=True)
class ProcessRef:
    """A pid plus its start time, so a recycled pid is never mistaken for our process."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        return cls(pid=pid, create_time=psutil.Process(pid).create_time())

    def alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            return bool(
                abs(proc.create_time() - self.create_time) < 0.01
                and proc.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.NoSuchProcess:
            return False

    def send(self, sig: signal.Signals) -> None:
        """Send `sig`; a process that is gone (or a recycled pid) is an error, not a no-op."""
        if not self.alive():
            raise ProcessLookupError(f"process {self.pid} is not running")
        psutil.Process(self.pid).send_signal(sig)

    def freeze(self, timeout: float = 5.0) -> None:
        """SIGSTOP, then wait until every thread has stopped. The signal takes effect
        asynchronously: a thread that runs on another core when kill() returns goes on for a
        moment (a frozen broker still answered a request 2 ms later, on a loaded machine)."""
        self.send(signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while not self._stopped():
            if time.monotonic() > deadline:
                raise TimeoutError(f"process {self.pid} did not stop within {timeout:.0f} s")
            time.sleep(0.005)

    def _stopped(self) -> bool:
        """Every thread in state T (stopped); psutil reads a thread's state by its id."""
        try:
            threads = psutil.Process(self.pid).threads()
            return bool(threads) and all(
                psutil.Process(t.id).status() == psutil.STATUS_STOPPED for t in threads
            )
        except psutil.NoSuchProcess:  # the process, or one of its threads, ended meanwhile
            return False

    def stop(self, timeout: float) -> None:
        """SIGTERM, wait up to `timeout` seconds, then SIGKILL."""
        if not self.alive():
            return
        proc = psutil.Process(self.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(10)


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when its parent dies, however the parent dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(
    cmd: Sequence[str],
    log_file: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    *,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `cmd` in its own session (a terminal's Ctrl-C reaches only the stack CLI, which
    then stops the children in order), with stdout and stderr appended to `log_file`.
    `die_with_parent`: killed with the calling process (start it before any thread)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            preexec_fn=_die_with_parent if die_with_parent else None,  # noqa: PLW1509
        )


def stop_child(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM a child we started, wait up to `timeout` seconds, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def wait_ports_closed(host: str, ports: Sequence[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(port_open(host, port) for port in ports):
            return True
        time.sleep(0.1)
    return False


def log_tail(log_file: Path, lines: int = 20) -> str:
    if not log_file.exists():
        return "(no log)"
    return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])


def log_errors(log_file: Path, lines: int = 5) -> str:
    """The first lines that report an error: what a server says before its shutdown lines,
    which are all a tail shows."""
    if not log_file.exists():
        return "(no log)"
    found = [
        line
        for line in log_file.read_text(errors="replace").splitlines()
        if " ERROR " in line or " FATAL " in line or "Exception" in line
    ]
    return "\n".join(found[:lines]) or "(none)"


class StopRequest:
    """Set by Ctrl-C (SIGINT) or SIGTERM: a foreground command polls it, then stops its
    children in order instead of being killed halfway. Used as a context manager, it gives the
    signals back to the handlers they had before when the block ends."""

    def __init__(self) -> None:
        self.requested = False
        self._before = {
            sig: signal.signal(sig, self._set) for sig in (signal.SIGINT, signal.SIGTERM)
        }

    def __enter__(self) -> StopRequest:
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._before.items():
            signal.signal(sig, handler)

    def _set(self, _sig: int, _frame: FrameType | None) -> None:
        self.requested = True
