"""The app-of-apps walk of `make validate`: each cluster root built with kustomize, every
Application followed to its path (or chart), the rendered resources and Applications collected
per cluster; the tools it runs found once."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_analytics_tools.gitops.chart_releases import dig
from gpu_analytics_tools.gitops.findings import Finding
from gpu_analytics_tools.manifests import load_manifests
from gpu_analytics_tools.tools import find

Resource = dict[str, Any]


PINNED_VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")


@dataclass
class Tools:
    kustomize: list[str]
    kubeconform: str
    checkov: str | None
    amtool: str


@dataclass
class ClusterResult:
    name: str
    applications: list[Resource] = field(default_factory=list)
    git_paths: list[str] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)
    # (path the resource was rendered from, resource)
    rendered: list[tuple[str, Resource]] = field(default_factory=list)
    kubeconform: Counter[str] = field(default_factory=Counter)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    clusters: list[ClusterResult] = field(default_factory=list)
    checkov: Counter[str] = field(default_factory=Counter)
    # Chart releases (found, rendered, skipped) and kubeconform's counts on their output.
    charts: Counter[str] = field(default_factory=Counter)
    chart_kubeconform: Counter[str] = field(default_factory=Counter)
    # Alertmanager configurations amtool checked.
    alertmanager_configs: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


def out(line: str) -> None:
    sys.stdout.write(f"validate: {line}\n")
    sys.stdout.flush()


def ident(res: Resource) -> str:
    ns = dig(res, "metadata", "namespace")
    name = dig(res, "metadata", "name")
    return f"{res.get('kind')}/{ns + '/' if ns else ''}{name}"


def find_tools(repo: Path) -> Tools:
    bin_dir = repo / ".tools" / "bin"
    kustomize = find("kustomize", "KUSTOMIZE", folder=bin_dir)
    kubectl = find("kubectl", "KUBECTL", folder=bin_dir)
    if kustomize:
        kustomize_cmd = [kustomize, "build"]
    elif kubectl:
        kustomize_cmd = [kubectl, "kustomize"]
    else:
        raise SystemExit("validate: kustomize not found (run `make setup`)")
    kubeconform = find("kubeconform", "KUBECONFORM", folder=bin_dir)
    if not kubeconform:
        raise SystemExit("validate: kubeconform not found (run `make setup`)")
    checkov = find("checkov", "CHECKOV", folder=repo / ".tools" / "checkov" / "bin")
    amtool = find("amtool", "AMTOOL", folder=bin_dir)
    if not amtool:
        raise SystemExit("validate: amtool not found (run `make setup`)")
    return Tools(kustomize_cmd, kubeconform, checkov, amtool)


class Renderer:
    def __init__(self, repo: Path, tools: Tools, report: Report) -> None:
        self.repo = repo
        self.tools = tools
        self.report = report
        self._cache: dict[str, list[Resource] | None] = {}

    def build(self, rel: str, where: str) -> list[Resource] | None:
        """kustomize build of repo/rel (cached); None and a finding when it fails."""
        if rel in self._cache:
            return self._cache[rel]
        path = self.repo / rel
        result: list[Resource] | None = None
        if not path.is_dir():
            self.report.findings.append(Finding("app-path", where, f"path {rel} does not exist"))
        elif not any((path / n).is_file() for n in ("kustomization.yaml", "kustomization.yml")):
            self.report.findings.append(
                Finding("app-path", where, f"path {rel} has no kustomization.yaml")
            )
        else:
            proc = subprocess.run(
                [*self.tools.kustomize, str(path)], capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                msg = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
                self.report.findings.append(Finding("build", rel, msg))
            else:
                result = load_manifests(proc.stdout)
        self._cache[rel] = result
        return result


def walk_cluster(cluster_dir: Path, renderer: Renderer, report: Report) -> ClusterResult:
    """Build the cluster root and every in-repo Application path reachable from it."""
    repo = renderer.repo
    name = cluster_dir.name
    result = ClusterResult(name)
    root_rel = cluster_dir.relative_to(repo).as_posix()
    rendered = renderer.build(root_rel, f"cluster {name}")
    if rendered is None:
        return result
    out(f"[{name}] {root_rel}: {len(rendered)} resources")
    result.rendered += [(root_rel, r) for r in rendered]
    roots = [
        r
        for r in rendered
        if r.get("kind") == "Application" and dig(r, "spec", "source", "path") == root_rel
    ]
    if len(roots) != 1:
        report.findings.append(
            Finding("root-app", root_rel, f"needs exactly one Application with path {root_rel}")
        )
        return result
    root_file = cluster_dir / "root-app.yaml"
    if not root_file.is_file():
        report.findings.append(Finding("root-app", root_rel, "root-app.yaml is missing"))
    repo_url = dig(roots[0], "spec", "source", "repoURL")

    seen_paths = {root_rel}
    queue = [r for r in rendered if r.get("kind") == "Application"]
    seen_apps: set[str] = set()
    while queue:
        app = queue.pop(0)
        app_name = str(dig(app, "metadata", "name"))
        if app_name in seen_apps:
            report.findings.append(Finding("app", app_name, "Application defined twice"))
            continue
        seen_apps.add(app_name)
        result.applications.append(app)
        spec = app.get("spec") or {}
        sources: list[Resource] = spec.get("sources") or (
            [spec["source"]] if spec.get("source") else []
        )
        if not sources:
            report.findings.append(Finding("app-source", app_name, "no source"))
        refs = {s["ref"]: s for s in sources if s.get("ref")}
        for source in sources:
            where = f"[{name}] Application {app_name}"
            if source.get("chart"):
                check_chart_source(source, refs, repo, repo_url, where, report)
                result.charts.append(f"{source['chart']}@{source.get('targetRevision')}")
                continue
            if source.get("repoURL") != repo_url:
                report.findings.append(
                    Finding(
                        "app-source",
                        where,
                        f"git source {source.get('repoURL')!r} is not this repository "
                        f"({repo_url}, set in {root_rel}/root-app.yaml)",
                    )
                )
                continue
            path = source.get("path")
            if path is None or path in seen_paths:
                continue
            seen_paths.add(path)
            built = renderer.build(path, where)
            if built is None:
                continue
            result.git_paths.append(path)
            out(f"[{name}]   {path}: {len(built)} resources")
            result.rendered += [(path, r) for r in built]
            queue += [r for r in built if r.get("kind") == "Application"]
    return result


def check_chart_source(
    source: Resource,
    refs: dict[str, Resource],
    repo: Path,
    repo_url: Any,
    where: str,
    report: Report,
) -> None:
    version = str(source.get("targetRevision", ""))
    if not PINNED_VERSION.match(version):
        report.findings.append(
            Finding("chart-pinned", where, f"chart {source['chart']} version {version!r}")
        )
    if not str(source.get("repoURL", "")).startswith("https://"):
        report.findings.append(Finding("chart-pinned", where, "chart repoURL is not https"))
    for values in dig(source, "helm", "valueFiles") or []:
        ref, _, rel = str(values).partition("/")
        if not ref.startswith("$"):
            continue
        ref_source = refs.get(ref[1:])
        if ref_source is None or ref_source.get("repoURL") != repo_url:
            report.findings.append(Finding("values", where, f"{values}: no source ref {ref}"))
        elif not (repo / rel).is_file():
            report.findings.append(Finding("values", where, f"{values}: {rel} does not exist"))
