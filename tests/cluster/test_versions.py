"""The simulation runs what the clusters run: Kubernetes of the pinned K3s release, the
Argo CD release of the bootstrap chart, etcd 3.6."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from gpu_analytics_tools.testing.cluster_sim import RunningSim

REPO = Path(__file__).resolve().parents[2]
GOTOOLS = REPO / "scripts" / "gotools"
BIN = REPO / ".tools" / "bin"


def required(wrapper: str, module: str) -> str:
    match = re.search(
        rf"(?m)^\s+{re.escape(module)} (v\S+)", (GOTOOLS / wrapper / "go.mod").read_text()
    )
    assert match, f"{module} not required in scripts/gotools/{wrapper}/go.mod"
    return match.group(1)


def k3s_pin() -> str:
    match = re.search(
        r'default\s+=\s+"(v[\d.]+)\+k3s\d+"', (REPO / "terraform" / "variables.tf").read_text()
    )
    assert match
    return match.group(1)


def test_kubernetes_wrapper_is_the_k3s_release() -> None:
    version = required("kubernetes", "k8s.io/kubernetes")
    assert version == k3s_pin()
    # Every staging module at the matching v0.x release.
    minor_patch = version.removeprefix("v1.")
    replaces = re.findall(
        r"(?m)^\s+(k8s\.io/\S+) => (k8s\.io/\S+) (v\S+)$",
        (GOTOOLS / "kubernetes" / "go.mod").read_text(),
    )
    assert len(replaces) >= 30
    assert {v for _, _, v in replaces} == {f"v0.{minor_patch}"}


def test_api_server_reports_the_k3s_kubernetes_version(cluster_sim: RunningSim) -> None:
    version = json.loads(cluster_sim.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == k3s_pin()


def test_argocd_cli_reports_its_release() -> None:
    out = subprocess.run(
        [str(BIN / "argocd"), "version", "--client", "--short"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split()[-1].split("+")[0] == required("argocd", "github.com/argoproj/argo-cd/v3")


def test_etcd_is_3_6() -> None:
    assert required("etcd", "go.etcd.io/etcd/server/v3").startswith("v3.6.")


def chart_app_version(name: str, version: str) -> str:
    """appVersion of the packaged chart in CHARTS_DIR; skips the test where it is not there."""
    tgz = Path(os.environ.get("CHARTS_DIR") or "/nonexistent") / f"{name}-{version}.tgz"
    if not tgz.is_file():
        pytest.skip(f"{name} chart {version} not in CHARTS_DIR: appVersion not checked")
    with tarfile.open(tgz) as tar:
        member = tar.extractfile(f"{name}/Chart.yaml")
        assert member is not None
        return str(yaml.safe_load(member.read())["appVersion"])


def app_pin(path: str) -> str:
    """The chart version an Application of apps/ pins."""
    spec = yaml.safe_load((REPO / "apps" / path).read_text())["spec"]
    sources = spec.get("sources") or [spec["source"]]
    return next(str(s["targetRevision"]) for s in sources if "chart" in s)


def test_argocd_is_the_bootstrap_charts_app_version() -> None:
    """Where the pinned argo-cd chart is at hand (CHARTS_DIR), its appVersion is the Argo CD
    the simulation builds."""
    chart = yaml.safe_load((REPO / "bootstrap" / "argo-cd" / "helmchart.yaml").read_text())["spec"]
    app_version = chart_app_version("argo-cd", chart["version"])
    assert app_version == required("argocd", "github.com/argoproj/argo-cd/v3")


def test_prometheus_operator_is_the_crds_charts_release() -> None:
    """The operator the simulation runs is the release whose CRDs the cluster gets."""
    crds = chart_app_version(
        "prometheus-operator-crds", app_pin("observability/prometheus-operator-crds.yaml")
    )
    module = "github.com/prometheus-operator/prometheus-operator"
    assert crds == required("prometheus-operator", module)


def test_kube_prometheus_stack_operator_reads_the_pinned_crds() -> None:
    """kube-prometheus-stack leaves its CRDs to prometheus-operator-crds (crds.enabled: false):
    the operator it ships must be of the same minor release as those CRDs."""
    crds = chart_app_version(
        "prometheus-operator-crds", app_pin("observability/prometheus-operator-crds.yaml")
    )
    stack = chart_app_version(
        "kube-prometheus-stack", app_pin("observability/kube-prometheus-stack.yaml")
    )
    assert stack.split(".")[:2] == crds.split(".")[:2], (stack, crds)


def test_k3d_runs_the_k3s_release() -> None:
    env = dict(
        line.split("=", 1)
        for line in (REPO / "clusters" / "local" / "k3d.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    release = re.search(
        r'default\s+=\s+"(v[\d.]+\+k3s\d+)"', (REPO / "terraform" / "variables.tf").read_text()
    )
    assert release
    # image tags spell the K3s release with '-' for '+'
    assert env["K3S_IMAGE"] == f"rancher/k3s:{release.group(1).replace('+', '-')}"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", env["K3D_VERSION"])
