"""What tests/cluster shares: a running simulation as the tests drive it (kubectl and the
argocd CLI on the host, through its forwarders) and the installed tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_analytics_tools.cluster_sim import cli as sim_cli
from gpu_analytics_tools.cluster_sim import netns
from gpu_analytics_tools.cluster_sim.layout import install_path
from gpu_analytics_tools.stack.paths import repo_root
from gpu_analytics_tools.testing.webhooks import WebhookReceiver

REPO = repo_root()
TOOLS_BIN = REPO / ".tools" / "bin"


def report(text: str) -> None:
    """Figures and tables on stderr (shown with `pytest -s`)."""
    sys.stderr.write(f"\n{text}\n")


@dataclass
class RunningSim:
    sim: sim_cli.Sim
    state_dir: Path
    loopback_samples: list[set[str]]
    # What the simulation posts to 127.0.0.1:RECEIVER_PORT (Argo CD's notifications).
    webhooks: WebhookReceiver

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.sim.env())
        env["PATH"] = f"{install_path()}:{env.get('PATH', '')}"
        env["ARGOCD"] = str(TOOLS_BIN / "argocd")
        env["KUBECTL"] = str(TOOLS_BIN / "kubectl")
        env["GPU_ANALYTICS"] = str(REPO / ".venv" / "bin" / "gpu-analytics")
        env.update(extra)
        return env

    def run(
        self, *cmd: str, check: bool = True, timeout: float = 120, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            list(cmd), env=self.env(**extra), capture_output=True, text=True, timeout=timeout,
            cwd=self.sim.layout.checkout, check=False,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(TOOLS_BIN / "kubectl"), *args], env=self.env(), input=stdin,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr}")
        return proc

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def sample_connections(self) -> None:
        """Remote addresses of every TCP connection in the simulation's namespace, now."""
        state = sim_cli.running(self.state_dir)
        assert state is not None and state.supervisor is not None, "the simulation is not running"
        self.loopback_samples.append(netns.remote_addresses(state.supervisor.pid))


@dataclass(frozen=True)
class Installed:
    sim: RunningSim
    output: str
    seconds: float
