"""kubectl as the cluster verbs use it (`cluster demo-hpa`, `cluster verify`): found once, run
with a context and namespace, its failures as one line a person can act on; a port-forward
to a Service or pod on a loopback port, restartable, stopped however the caller ends."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_analytics_tools.stack.process import free_port, log_tail, port_open, spawn, stop_child
from gpu_analytics_tools.tools import ToolMissingError, require


class KubeError(RuntimeError):
    """A kubectl call that failed, in words a person can act on."""


def find_kubectl() -> str:
    """KUBECTL, else the one `make setup` installs (.tools/bin), else kubectl on PATH."""
    try:
        return require("kubectl", "KUBECTL")
    except ToolMissingError as exc:
        raise KubeError(str(exc)) from exc


def stderr_message(stderr: str) -> str:
    """kubectl's last line says what failed (before it: klog lines of the retries)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return (lines or ["(no message)"])[-1][:500]


@dataclass
class Kubectl:
    binary: str
    namespace: str
    context: str | None = None
    timeout: float = 20.0

    def base(self, namespace: str | None = None) -> list[str]:
        cmd = [self.binary]
        if self.context:
            cmd += ["--context", self.context]
        return [*cmd, "--namespace", namespace or self.namespace]

    def run(self, *args: str, namespace: str | None = None) -> str:
        cmd = [*self.base(namespace), *args]
        what = "kubectl " + " ".join(args)
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except FileNotFoundError as exc:
            raise KubeError(f"{self.binary} not found: run make setup or set KUBECTL") from exc
        except subprocess.TimeoutExpired as exc:
            raise KubeError(f"{what} did not answer in {self.timeout:.0f}s") from exc
        if proc.returncode != 0:
            raise KubeError(f"{what} failed ({proc.returncode}): {stderr_message(proc.stderr)}")
        return proc.stdout

    def get_json(self, *args: str, namespace: str | None = None) -> dict[str, Any]:
        """`kubectl get ARGS -o json` in `namespace` (default: this runner's)."""
        out = self.run(
            "get", *args, "-o", "json", f"--request-timeout={self.timeout:.0f}s",
            namespace=namespace,
        )  # fmt: skip
        try:
            loaded = json.loads(out)
        except json.JSONDecodeError as exc:
            raise KubeError(f"kubectl get {' '.join(args)}: output is not JSON ({exc})") from exc
        if not isinstance(loaded, dict):
            raise KubeError(f"kubectl get {' '.join(args)}: not a Kubernetes object or List")
        return loaded

    def current_context(self) -> str:
        if self.context:
            return self.context
        try:
            return self.run("config", "current-context").strip()
        except KubeError as exc:
            raise KubeError(f"no kube context ({exc}); pass --context or set KUBECONFIG") from exc


@dataclass
class PortForward:
    """`kubectl port-forward TARGET PORT:REMOTE` on 127.0.0.1, its output in `log`."""

    kubectl: Kubectl
    target: str  # svc/processor, pod/producer-...
    remote_port: int
    log: Path
    namespace: str | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> str:
        """Start (or restart) it; return its URL once the local port accepts connections."""
        self.stop()
        self.port = self.port or free_port()
        cmd = [
            *self.kubectl.base(self.namespace),
            "port-forward", "--address", "127.0.0.1",
            self.target, f"{self.port}:{self.remote_port}",
        ]  # fmt: skip
        self.proc = spawn(cmd, self.log, cwd=self.log.parent, die_with_parent=True)
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None:
                raise KubeError(
                    f"kubectl port-forward {self.target} failed ({self.proc.returncode}): "
                    f"{stderr_message(log_tail(self.log))}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise KubeError(f"kubectl port-forward {self.target}: no port in {timeout:.0f}s")
            time.sleep(0.2)
        return self.url

    def stop(self) -> None:
        if self.proc is not None:
            stop_child(self.proc, 10)
            self.proc = None
