"""The pod-attribution component (services/deploy/components/pod-attribution): an overlay that
includes it builds, mounts the kubelet's PodResources directory read-only into the NVML
producer only, and passes kubeconform -strict."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from gpu_analytics_tools.gitops import kubeconform, tree

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools" / "bin"


def _tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{name} not found: run `make setup`")
    return str(path)


def test_an_overlay_with_the_component_mounts_the_socket_read_only(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    deploy = REPO / "services" / "deploy"
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "gpu-telemetry",
                # kustomize takes relative paths only
                "resources": [os.path.relpath(deploy / "base", overlay)],
                "components": [os.path.relpath(deploy / "components" / "pod-attribution", overlay)],
            }
        )
    )
    built = subprocess.run(
        [_tool("kustomize"), "build", "--load-restrictor=LoadRestrictionsNone", str(overlay)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(built) if d]
    (daemonset,) = [d for d in docs if d["kind"] == "DaemonSet"]
    spec = daemonset["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "pod-resources")
    assert volume["hostPath"] == {"path": "/var/lib/kubelet/pod-resources", "type": "Directory"}
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "pod-resources")
    assert mount["readOnly"] is True
    others = [d for d in docs if d["kind"] == "Deployment"]
    assert others and all(
        "pod-resources" not in str(d["spec"]["template"]["spec"].get("volumes")) for d in others
    )
    # the daemonset only: the rest of the base is checked by make validate already
    tools = tree.find_tools(REPO)
    report = tree.Report()
    counts = kubeconform.run_kubeconform(
        [("pod-attribution", daemonset)],
        tools,
        kubeconform.k8s_schema_root(REPO),
        kubeconform.DEFAULT_CRD_SCHEMA_LOCATION,
        "pod-attribution",
        report,
    )
    assert counts["valid"] == 1 and not report.findings, report.findings
