"""Only External Secrets may reach the EC2 instance metadata service (and so the node role that
reads the SSM secrets): every other namespace has a namespace-wide egress guard, a default deny
or an allow-all that excepts the metadata IP. (Workload policies that open egress again are
reviewed with the workloads; this checks the guard each namespace starts from.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
METADATA = "169.254.169.254/32"
ALLOWED = {"external-secrets"}


def _render(tree: Path) -> list[dict[str, Any]]:
    kustomize = REPO / ".tools" / "bin" / "kustomize"
    if not kustomize.exists():
        pytest.fail("kustomize not found: run `make setup`")
    out = subprocess.run(
        [str(kustomize), "build", str(tree / "bootstrap" / "namespaces")],
        capture_output=True,
        text=True,
        check=True,
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _blocks_metadata(policy: dict[str, Any]) -> bool:
    spec = policy["spec"]
    if spec.get("podSelector") or "Egress" not in spec.get("policyTypes", []):
        return False  # not namespace-wide, or says nothing about egress
    for rule in spec.get("egress", []):
        for peer in rule.get("to", [{}]):
            block = peer.get("ipBlock")
            if block and METADATA not in block.get("except", []):
                return False
    return True


def exposed_namespaces(tree: Path) -> set[str]:
    docs = _render(tree)
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    guarded = {
        d["metadata"]["namespace"]
        for d in docs
        if d["kind"] == "NetworkPolicy" and _blocks_metadata(d)
    }
    return namespaces - guarded - ALLOWED


def test_no_namespace_but_external_secrets_reaches_instance_metadata() -> None:
    assert exposed_namespaces(REPO) == set()


def test_a_namespace_without_the_guard_is_reported(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(REPO / "bootstrap", tree / "bootstrap")
    kustomization = tree / "bootstrap" / "namespaces" / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("  - loki-egress-networkpolicy.yaml\n", "")
    )
    assert exposed_namespaces(tree) == {"loki"}
