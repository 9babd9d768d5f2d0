"""Moving a cluster's tree to another git source at install time (make cluster-up): the root
and AppProjects it applies, and the patches that move every Application when Argo CD renders
the tree, checked on kustomize's output of the real tree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_analytics_tools.cluster.source import install_manifests, source_patches

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE = REPO / ".tools" / "bin" / "kustomize"
FORK, BRANCH = "https://github.com/someone/fork.git", "feature"


def build(root: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(KUSTOMIZE), "build", str(root / "clusters" / "local")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def our_sources(docs: list[dict[str, Any]]) -> dict[str, list[tuple[str, str | None]]]:
    """Per Application / AppProject: (repoURL, revision) of each source in a git repository."""
    found: dict[str, list[tuple[str, str | None]]] = {}
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "AppProject":
            found[name] = [(doc["spec"]["sourceRepos"][0], None)]
        elif doc["kind"] == "Application":
            spec = doc["spec"]
            found[name] = [
                (s["repoURL"], s["targetRevision"])
                for s in spec.get("sources") or [spec["source"]]
                if "chart" not in s
            ]
    return found


def test_chart_values_applications_keep_their_values_source_second() -> None:
    for doc in build(REPO):
        labels = doc["metadata"].get("labels", {})
        if labels.get("gpu-analytics.io/source") == "chart-values":
            sources = doc["spec"]["sources"]
            assert sources[1].get("ref") == "values", doc["metadata"]["name"]


def test_patches_move_every_application_and_project(tmp_path: Path) -> None:
    """What Argo CD does with the root's kustomize.patches: add them to the kustomization."""
    copy = tmp_path / "repo"
    for folder in ("apps", "bootstrap", "clusters", "platform", "services", "monitoring"):
        shutil.copytree(REPO / folder, copy / folder)
    kustomization = copy / "clusters" / "local" / "kustomization.yaml"
    doc = yaml.safe_load(kustomization.read_text())
    doc["patches"] = [*doc.get("patches", []), *source_patches(FORK, BRANCH)]
    kustomization.write_text(yaml.safe_dump(doc))
    moved = our_sources(build(copy))
    assert moved
    for name, sources in moved.items():
        for url, revision in sources:
            assert url == FORK, name
            assert revision in (BRANCH, None), name


def test_install_manifests_move_root_and_projects_only_when_asked() -> None:
    docs = build(REPO)
    same = install_manifests(docs)
    assert sorted(f"{d['kind']}/{d['metadata']['name']}" for d in same) == [
        "AppProject/bootstrap",
        "AppProject/observability",
        "AppProject/pipeline",
        "AppProject/platform",
        "Application/root",
    ]
    root = next(d for d in same if d["kind"] == "Application")
    assert "kustomize" not in root["spec"]["source"]
    moved = install_manifests(docs, FORK, BRANCH)
    root = next(d for d in moved if d["kind"] == "Application")
    assert (root["spec"]["source"]["repoURL"], root["spec"]["source"]["targetRevision"]) == (
        FORK,
        BRANCH,
    )
    assert root["spec"]["source"]["kustomize"]["patches"] == source_patches(FORK, BRANCH)
    assert all(d["spec"]["sourceRepos"][0] == FORK for d in moved if d["kind"] == "AppProject")


def test_without_a_root_it_says_so() -> None:
    with pytest.raises(ValueError, match="one root Application"):
        install_manifests([d for d in build(REPO) if d["metadata"]["name"] != "root"])
