"""`helm template` as Argo CD and K3s's helm-controller run it, with helm state of its own:
the one renderer of `make validate`'s chart step and of the simulation's Argo CD settings."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from gpu_analytics_tools.gitops import k3s
from gpu_analytics_tools.gitops.chart_releases import Release, Resource
from gpu_analytics_tools.manifests import load_manifests
from gpu_analytics_tools.tools import find

KUBE_VERSION = k3s.kubernetes_version()


HELM_TIMEOUT_S = 300


def find_helm(repo: Path) -> str | None:
    return find("helm", "HELM", folder=repo / ".tools" / "bin")


class TemplateError(RuntimeError):
    """`helm template` failed, timed out or wrote no YAML: the reason in one line."""


def helm_env(home: Path) -> dict[str, str]:
    """Helm state of its own under `home`: no user plugins, repositories or logins leak in."""
    return {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def helm_template(
    helm: str,
    release: Release,
    archive: Path,
    *,
    home: Path,
    kube_version: str = KUBE_VERSION,
    api_versions: Sequence[str] = (),
    include_crds: bool = False,
) -> list[Resource]:
    """The release rendered as Argo CD and K3s's helm-controller render it: `helm template`
    with its name, namespace, the Kubernetes version and its values layers in order. The one
    renderer of `make validate`'s chart step and of the simulation's Argo CD settings."""
    with tempfile.TemporaryDirectory(prefix="helm-template-") as tmp:
        cmd = [helm, "template", release.name, str(archive)]
        cmd += ["--namespace", release.namespace, "--kube-version", kube_version]
        cmd += ["--include-crds"] if include_crds else []
        for api in api_versions:
            cmd += ["--api-versions", api]
        for i, layer in enumerate(release.values):
            path = layer.path
            if path is None:
                path = Path(tmp) / f"values-{i}.yaml"
                path.write_text(layer.text, encoding="utf-8")
            cmd += ["--values", str(path)]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, check=False, timeout=HELM_TIMEOUT_S,
                env=helm_env(home),
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise TemplateError(f"timed out ({HELM_TIMEOUT_S}s)") from exc
    if proc.returncode != 0:
        raise TemplateError(last_line(proc.stderr))
    try:
        return load_manifests(proc.stdout)
    except yaml.YAMLError as exc:
        raise TemplateError(f"output is not YAML: {exc}") from exc


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "failed"
