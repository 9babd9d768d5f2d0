"""kubeconform on the rendered resources: Kubernetes schemas generated offline for the K3s
release, CRD schemas from the CRDs-catalog at a pinned commit (or a local copy); zero invalid
and zero skipped resources."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import yaml

from gpu_analytics_tools.gitops import k3s
from gpu_analytics_tools.gitops.findings import Finding
from gpu_analytics_tools.gitops.k8s_schemas import generate as generate_k8s_schemas
from gpu_analytics_tools.gitops.tree import Report, Resource, Tools

KUBERNETES_VERSION = k3s.schema_version()
# The CRDs-catalog at a commit, never a branch: the same schemas on every run (2026-08-20).
CRDS_CATALOG_COMMIT = "7b1e26ef9deea49293714d204c1a2270aab1178f"
DEFAULT_CRD_SCHEMA_LOCATION = (
    f"https://raw.githubusercontent.com/datreeio/CRDs-catalog/{CRDS_CATALOG_COMMIT}/"
    "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
)
K8S_SCHEMA_TEMPLATE = (
    "{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/"
    "{{ .ResourceKind }}{{ .KindSuffix }}.json"
)


def k8s_schema_root(repo: Path) -> Path:
    """The generated Kubernetes schemas, generating them first if they are missing."""
    root = repo / ".tools" / "schemas" / "kubernetes"
    if not (root / f"v{KUBERNETES_VERSION}-standalone-strict").is_dir():
        generate_k8s_schemas(root, KUBERNETES_VERSION)
    return root


def run_kubeconform(
    resources: list[tuple[str, Resource]],
    tools: Tools,
    k8s_schemas: Path,
    crd_location: str,
    label: str,
    report: Report,
) -> Counter[str]:
    docs = "---\n".join(yaml.safe_dump(r, sort_keys=False) for _, r in resources)
    proc = subprocess.run(
        [
            tools.kubeconform,
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            KUBERNETES_VERSION,
            "-schema-location",
            f"{k8s_schemas}/{K8S_SCHEMA_TEMPLATE}",
            "-schema-location",
            crd_location,
            "-",
        ],
        input=docs,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report.findings.append(Finding("kubeconform", label, proc.stderr.strip() or "no output"))
        return Counter()
    counts = Counter({k: int(v) for k, v in (data.get("summary") or {}).items()})
    for item in data.get("resources") or []:
        status = str(item.get("status", "")).removeprefix("status")
        if status.lower() == "valid":
            continue
        what = f"{item.get('kind')}/{item.get('name')}"
        report.findings.append(
            Finding("kubeconform", label, f"{what} {status.lower()}: {item.get('msg', '')}")
        )
    return counts
