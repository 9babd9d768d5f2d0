"""Where a simulation keeps its files, which ports its components use inside its network
namespace (fixed: the namespace is its own), and where the tools are."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gpu_analytics_tools.stack.paths import repo_root, tools_dir
from gpu_analytics_tools.stack.process import ProcessRef
from gpu_analytics_tools.tools import require

# Inside the simulation's network namespace.
ETCD_PORT = 2379
ETCD_PEER_PORT = 2380
API_PORT = 6443
KCM_PORT = 10257
SCHEDULER_PORT = 10259
KWOK_PORT = 10247
REDIS_PORT = 6379
REPO_SERVER_PORT = 8081
CONTROLLER_METRICS_PORT = 8082
ARGOCD_SERVER_PORT = 8080
GIT_PORT = 9418
CHARTS_PORT = 8879
PROMETHEUS_OPERATOR_PORT = 8085
NOTIFICATIONS_METRICS_PORT = 9001
# Inside the simulation, 127.0.0.1:RECEIVER_PORT reaches whatever listens on the Unix socket
# RECEIVER_SOCKET of its state directory on the host: a test's webhook receiver (Argo CD's
# notifications), with no route out of the simulation's namespace.
RECEIVER_PORT = 8090
RECEIVER_SOCKET = "receiver.sock"
SERVICE_CIDR = "10.43.0.0/16"  # K3s's default
GIT_URL = f"git://127.0.0.1:{GIT_PORT}/gpu-analytics.git"
CHARTS_URL = f"http://127.0.0.1:{CHARTS_PORT}"
BRANCH = "cluster-sim"

TOOLS = [
    "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok",
    "argocd", "argocd-notifications", "redis-server", "kustomize", "helm", "prometheus-operator",
]  # fmt: skip


def tool(name: str) -> Path:
    """The build `make setup` installed: the simulation runs the pinned releases, never one
    found on PATH."""
    return Path(require(name, path=False))


def missing_tools() -> list[str]:
    return [name for name in TOOLS if not (tools_dir() / "bin" / name).exists()]


def install_path() -> str:
    """This clone's tool folders, for PATH: the served checkout has no .tools or .venv of its
    own, and clusters/local/install.sh takes what it lacks from PATH."""
    return f"{tools_dir() / 'bin'}:{repo_root() / '.venv' / 'bin'}"


def kubernetes_version() -> str:
    """The simulation's Kubernetes release (vX.Y.Z), as its kube-apiserver reports it."""
    out = subprocess.run(
        [str(tool("kube-apiserver")), "--version"], capture_output=True, text=True, check=True,
        timeout=30,
    ).stdout  # fmt: skip
    return out.split()[-1]


def ui_server() -> Path:
    """argocd-server with the Argo CD web UI embedded (`make argocd-ui`); `make setup`'s
    argocd-server is the same release without it."""
    return tools_dir() / "argocd-ui" / "bin" / "argocd-server"


def default_state_dir() -> Path:
    return Path(os.environ.get("CLUSTER_SIM_STATE_DIR", repo_root() / ".cache" / "cluster-sim"))


@dataclass
class SimState:
    """What `up` leaves in state.json for `status`, `down` and the tests."""

    supervisor: ProcessRef | None = None
    api_port: int = 0
    argocd_port: int = 0
    netns_inode: int = 0
    ready: bool = False
    error: str = ""
    children: dict[str, ProcessRef] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> SimState | None:
        path = state_dir / "state.json"
        if not path.is_file():
            return None
        data: dict[str, Any] = json.loads(path.read_text())
        supervisor = data.pop("supervisor")
        children = data.pop("children")
        return cls(
            supervisor=ProcessRef(**supervisor) if supervisor else None,
            children={name: ProcessRef(**ref) for name, ref in children.items()},
            **data,
        )

    def save(self, state_dir: Path) -> None:
        tmp = state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(state_dir / "state.json")


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def git(self) -> Path:
        return self.root / "git"

    @property
    def bare_repo(self) -> Path:
        return self.git / "gpu-analytics.git"

    @property
    def checkout(self) -> Path:
        return self.root / "checkout"

    @property
    def kubeconfig(self) -> Path:
        """For the host: the API server through the forwarder."""
        return self.root / "kubeconfig"

    @property
    def inner_kubeconfig(self) -> Path:
        """For the components inside the namespace."""
        return self.root / "kubeconfig.inner"

    @property
    def argocd_kubeconfig(self) -> Path:
        return self.root / "kubeconfig.argocd"

    @property
    def argocd_config(self) -> Path:
        """The argocd CLI's config file (--config)."""
        return self.root / "argocd-cli.yaml"

    def reset(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        for path in (self.root, self.logs, self.bin, self.git):
            path.mkdir(parents=True, exist_ok=True)
