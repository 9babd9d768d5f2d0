"""With CHARTS_DIR the simulation serves the charts on loopback: every chart source of the
tree must point there, whether it is an Application's `source` or one of its `sources`."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from gpu_analytics_tools.cluster_sim import gitrepo
from gpu_analytics_tools.cluster_sim.layout import CHARTS_URL
from gpu_analytics_tools.testing.cluster_sim import REPO


def chart_sources(apps: Path) -> dict[str, tuple[str, str]]:
    """{Application/chart: (project, repoURL)} for every chart source under apps/."""
    found = {}
    for path in sorted(apps.glob("**/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "Application":
                continue
            spec = doc["spec"]
            for source in [spec["source"]] if "source" in spec else spec.get("sources", []):
                if "chart" in source:
                    found[f"{doc['metadata']['name']}/{source['chart']}"] = (
                        spec["project"],
                        source["repoURL"],
                    )
    return found


def source_repos(projects: Path) -> dict[str, list[str]]:
    return {
        doc["metadata"]["name"]: doc["spec"]["sourceRepos"]
        for path in sorted(projects.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and doc.get("kind") == "AppProject"
    }


def test_every_chart_source_is_served_from_loopback_and_permitted(tmp_path: Path) -> None:
    shutil.copytree(REPO / "apps", tmp_path / "apps")
    shutil.copytree(REPO / "bootstrap" / "projects", tmp_path / "bootstrap" / "projects")
    before = chart_sources(tmp_path / "apps")
    # Both forms are in the tree: prometheus-operator-crds has one `source`, the others
    # a chart and a values repository in `sources`.
    assert "prometheus-operator-crds/prometheus-operator-crds" in before
    assert "kube-prometheus-stack/kube-prometheus-stack" in before
    gitrepo._use_local_charts(tmp_path)
    after = chart_sources(tmp_path / "apps")
    assert after.keys() == before.keys()
    assert {app: url for app, (_, url) in after.items() if url != CHARTS_URL} == {}
    # Argo CD refuses a source its project does not list (InvalidSpecError).
    repos = source_repos(tmp_path / "bootstrap" / "projects")
    assert {app for app, (project, url) in after.items() if url not in repos[project]} == set()
    for project, listed in repos.items():
        assert not [r for r in listed if r.startswith("https://")], project
        assert len(listed) == len(set(listed)), f"{project} lists a repository twice: {listed}"
