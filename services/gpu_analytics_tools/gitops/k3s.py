"""The cluster's Kubernetes release, read from the one K3s pin that the local cluster and CI
use (clusters/local/k3d.env; tests/cluster/test_versions.py holds terraform/'s pin equal)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from gpu_analytics_tools.stack.paths import repo_root

PIN = Path("clusters/local/k3d.env")


@cache
def kubernetes_version(repo: Path | None = None) -> str:
    """'1.36.4' from K3S_IMAGE=rancher/k3s:v1.36.4-k3s1."""
    path = (repo or repo_root()) / PIN
    found = re.search(r"^K3S_IMAGE=\S+:v(\d+\.\d+\.\d+)-k3s\d+$", path.read_text(), re.M)
    if found is None:
        raise ValueError(f"{path}: no K3S_IMAGE=<image>:v<major>.<minor>.<patch>-k3s<n> line")
    return found.group(1)


def schema_version(repo: Path | None = None) -> str:
    """The JSON schemas' version, '1.36.0': kubernetes-validate ships one set per minor release."""
    major, minor, _ = kubernetes_version(repo).split(".")
    return f"{major}.{minor}.0"
