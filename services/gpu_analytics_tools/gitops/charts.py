"""Render every Helm chart of the GitOps tree as Argo CD renders it.

validate.py hands over, per cluster, the Applications and resources it walked. The chart
releases in them (chart_releases.py):

- each chart source of an Application (``spec.sources`` or ``spec.source`` with ``chart:``):
  release name ``helm.releaseName`` or else the Application's name, namespace = destination
  namespace, ``--values`` for each ``$values/...`` file in order, then ``helm.valuesObject``
  (or ``helm.values``), as Argo CD passes them;
- each K3s ``HelmChart`` (helm.cattle.io/v1): release name = its metadata.name, namespace =
  ``targetNamespace``, values = ``valuesContent``, as K3s's helm-controller passes them;

and renders it with ``helm template --include-crds --kube-version`` (the K3s release's
Kubernetes) ``--api-versions`` (the built-in APIs of that release and every CRD version the
cluster's charts install; helm.py). Test hooks are dropped, as Argo CD never runs them. It also
checks that every key of our values is one the chart reads (chart_values.py).

Charts come from ``CHARTS_DIR`` (packaged ``<chart>-<version>.tgz`` files) when it is set,
else from .cache/charts/, filled by ``helm pull`` where the chart repository answers within
PROBE_TIMEOUT_S. Without either, rendering is skipped with one line per chart; under GitHub
Actions (``GITHUB_ACTIONS=true``) a skip is an issue. helm is ``HELM``, .tools/bin/helm or PATH.

Over 400 lines because ChartRenderer is one sequence per cluster (locate or pull each chart,
load it, check the values, render, render again with the CRDs' API versions, excuse the third
party's findings) whose steps share its caches; the parts without that state are the modules
named above.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib import error, request

import yaml

from gpu_analytics_tools.gitops import k8s_schemas
from gpu_analytics_tools.gitops.chart_releases import (
    Release,
    Resource,
    app_releases,
    dig,
    helmchart_release,
    manifest_file,
)
from gpu_analytics_tools.gitops.chart_values import ChartValues, check_values, load_chart
from gpu_analytics_tools.gitops.findings import Finding
from gpu_analytics_tools.gitops.helm import (
    HELM_TIMEOUT_S,
    TemplateError,
    find_helm,
    helm_env,
    helm_template,
    last_line,
)
from gpu_analytics_tools.stack.paths import repo_root

# Pulled charts and helm's own state, one per checkout (shared by the trees tests copy).
CACHE_DIR = repo_root() / ".cache"


PROBE_TIMEOUT_S = 3.0


# CRDs every K3s server installs itself (helm-controller, k3s's own controllers).
K3S_API_VERSIONS = (
    "helm.cattle.io/v1",
    "helm.cattle.io/v1/HelmChart",
    "helm.cattle.io/v1/HelmChartConfig",
    "k3s.cattle.io/v1",
    "k3s.cattle.io/v1/Addon",
    "k3s.cattle.io/v1/ETCDSnapshotFile",
)


TEST_HOOKS = {"test", "test-success", "test-failure"}


GRAFANA_SIDECAR_PROBES = (
    "the grafana subchart's one sidecar.livenessProbe/readinessProbe serves every sidecar, but "
    "each serves /healthz on a HEALTH_PORT of its own (dashboards 8084, datasources 8082)"
)
# Third-party workloads that cannot meet the workload baseline (validate.py) through
# their chart's values, each with the reason. Key: (chart, "Kind/name" as rendered, container
# or "*", rule of check_workload).
THIRD_PARTY_EXCEPTIONS: dict[tuple[str, str, str, str], str] = {
    ("argo-cd", "StatefulSet/argocd-application-controller", "application-controller", "probes"): (
        "the chart offers the application controller a readiness probe only (controller."
        "readinessProbe; no livenessProbe value), as Argo CD's own install manifests do"
    ),
    ("alloy", "Deployment/alloy", "config-reloader", "probes"): (
        "the chart has no probe values for its config-reloader sidecar (templates/containers/"
        "_watch.yaml); a stuck reloader only delays a configuration change, Alloy keeps running"
    ),
    ("kube-prometheus-stack", "Deployment/kube-prometheus-stack-grafana", "grafana-sc-dashboard",
     "probes"): GRAFANA_SIDECAR_PROBES,
    ("kube-prometheus-stack", "Deployment/kube-prometheus-stack-grafana", "grafana-sc-datasources",
     "probes"): GRAFANA_SIDECAR_PROBES,
}  # fmt: skip


@dataclass
class ClusterCharts:
    rendered: list[tuple[Release, list[Resource]]] = field(default_factory=list)
    issues: list[Finding] = field(default_factory=list)
    skipped: int = 0


# ---- where the charts come from ------------------------------------------------------------


@dataclass(frozen=True)
class Unavailable:
    reason: str
    skipped: bool  # True: nothing to check against (offline); False: an issue


_PROBED: dict[str, str | None] = {}


def _probe(url: str) -> str | None:
    try:
        req = request.Request(url.rstrip("/") + "/index.yaml", method="HEAD")
        with request.urlopen(req, timeout=PROBE_TIMEOUT_S):
            return None
    except error.HTTPError:
        return None  # the server answered; `helm pull` reports what is wrong
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def unreachable(urls: set[str]) -> dict[str, str | None]:
    """Why each chart repository cannot be reached, or None; all probed at once, once per run.

    Daemon threads with a deadline, as a DNS lookup is not bounded by the socket timeout.
    """
    if os.environ.get("CHARTS_OFFLINE"):
        # Set by .ci/run: that machine reaches package registries only, so the chart
        # repositories are not even looked up.
        return dict.fromkeys(urls, "CHARTS_OFFLINE is set")
    pending = sorted(urls - set(_PROBED))
    answers: dict[str, str | None] = {}

    def probe(url: str) -> None:
        answers[url] = _probe(url)

    threads = [threading.Thread(target=probe, args=(u,), daemon=True) for u in pending]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + PROBE_TIMEOUT_S + 1
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for url in pending:
        _PROBED[url] = answers.get(url, f"no answer within {PROBE_TIMEOUT_S:.0f}s")
    return {url: _PROBED[url] for url in urls}


# ---- rendering -----------------------------------------------------------------------------


@cache
def builtin_api_versions(kubernetes_version: str) -> tuple[str, ...]:
    """group/version and group/version/kind of every GA built-in API of that release.

    Alpha and beta APIs are off in a default K3s; Argo CD passes what the API server serves.
    """
    definitions = (
        k8s_schemas.package_schema_dir()
        / f"v{kubernetes_version}-local-strict"
        / "_definitions.json"
    )
    found: set[str] = set()
    for schema in json.loads(definitions.read_text(encoding="utf-8"))["$defs"].values():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
            # DeleteOptions and WatchEvent name every group/version, served or not.
            if kind in {"DeleteOptions", "WatchEvent"} or kind.endswith("List"):
                continue
            if re.fullmatch(r"v\d+", version):
                gv = f"{group}/{version}" if group else version
                found |= {gv, f"{gv}/{kind}"}
    return tuple(sorted(found))


def crd_api_versions(resources: list[Resource]) -> set[str]:
    """group/version and group/version/kind served by the CRDs among resources."""
    found: set[str] = set()
    for res in resources:
        if res.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = dig(res, "spec", "group"), dig(res, "spec", "names", "kind")
        for version in dig(res, "spec", "versions") or []:
            if isinstance(version, dict) and version.get("served", True):
                gv = f"{group}/{version.get('name')}"
                found |= {gv, f"{gv}/{kind}"}
    return found


def is_test_hook(res: Resource) -> bool:
    hooks = str(dig(res, "metadata", "annotations", "helm.sh/hook") or "")
    names = {h.strip() for h in hooks.split(",") if h.strip()}
    return bool(names) and names <= TEST_HOOKS


class ChartRenderer:
    """The chart step of one validation run: each chart located and loaded once, each values
    layer checked once, every release rendered per cluster."""

    def __init__(
        self,
        repo: Path,
        *,
        charts_dir: Path | None,
        helm: str | None,
        ci: bool,
        kubernetes_version: str,
        say: Callable[[str], None],
        cache_root: Path = CACHE_DIR,
    ) -> None:
        self.repo = repo
        self.charts_dir = charts_dir
        self.helm = helm
        self.ci = ci
        self.kubernetes_version = kubernetes_version
        self.say = say
        self.cache = cache_root / "charts"
        self.helm_home = cache_root / "helm"
        self.counts: Counter[str] = Counter()
        self._charts: dict[Path, ChartValues | Finding] = {}
        self._checked: set[tuple[str, str]] = set()
        self._excused: set[tuple[str, str, str, str]] = set()
        self._rendered_charts: set[str] = set()
        self._helm_missing_told = False

    @classmethod
    def from_env(
        cls, repo: Path, *, kubernetes_version: str, say: Callable[[str], None]
    ) -> ChartRenderer:
        charts_dir = os.environ.get("CHARTS_DIR")
        return cls(
            repo,
            charts_dir=Path(charts_dir).resolve() if charts_dir else None,
            helm=find_helm(repo),
            ci=os.environ.get("GITHUB_ACTIONS") == "true",
            kubernetes_version=kubernetes_version,
            say=say,
        )

    def run_helm(self, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        """Run helm (cmd[0]) with the cache-only environment, bounded in time."""
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=False,
            timeout=HELM_TIMEOUT_S,
            env=self.helm_env(),
        )

    def helm_env(self) -> dict[str, str]:
        return helm_env(self.helm_home)

    # -- locating and loading --

    def locate(self, release: Release, probes: dict[str, str | None]) -> Path | Unavailable:
        file = f"{release.chart}-{release.version}.tgz"
        if self.charts_dir is not None:
            path = self.charts_dir / file
            if path.is_file():
                return path
            return Unavailable(f"{file} is not in CHARTS_DIR ({self.charts_dir})", skipped=False)
        cached = self.cache / file
        if cached.is_file():
            return cached
        reason = probes.get(release.repo_url)
        if reason is not None:
            return Unavailable(
                f"no CHARTS_DIR, and {release.repo_url} is unreachable ({reason})", skipped=True
            )
        if self.helm is None:
            return Unavailable("helm not found (run `make setup`)", skipped=False)
        self.cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
            pull = [self.helm, "pull", release.chart, "--repo", release.repo_url]
            pull += ["--version", release.version, "--destination", tmp]
            try:
                proc = self.run_helm(pull)
            except subprocess.TimeoutExpired:
                return Unavailable(f"helm pull timed out after {HELM_TIMEOUT_S}s", skipped=False)
            pulled = Path(tmp) / file
            if proc.returncode != 0 or not pulled.is_file():
                return Unavailable(f"helm pull failed: {last_line(proc.stderr)}", skipped=False)
            pulled.replace(cached)  # whole files only: a broken pull leaves nothing behind
        return cached

    def load(self, release: Release, archive: Path) -> ChartValues | Finding:
        if archive not in self._charts:
            try:
                chart: ChartValues | Finding = load_chart(archive)
            except (tarfile.TarError, OSError, yaml.YAMLError, json.JSONDecodeError) as exc:
                chart = Finding("chart-missing", release.where, f"{archive} unreadable: {exc}")
            if isinstance(chart, ChartValues) and (chart.name, chart.version) != (
                release.chart,
                release.version,
            ):
                chart = Finding(
                    "chart-missing",
                    release.where,
                    f"{archive.name} holds {chart.name}@{chart.version}",
                )
            self._charts[archive] = chart
        return self._charts[archive]

    # -- rendering --

    def render(
        self, release: Release, archive: Path, api_versions: list[str]
    ) -> list[Resource] | Finding:
        assert self.helm is not None
        try:
            return helm_template(
                self.helm, release, archive, home=self.helm_home, api_versions=api_versions,
                include_crds=True,
            )  # fmt: skip
        except TemplateError as exc:
            return Finding("chart-render", release.where, str(exc))

    def render_cluster(
        self, cluster: str, applications: list[Resource], rendered: list[tuple[str, Resource]]
    ) -> ClusterCharts:
        result = ClusterCharts()
        releases: list[Release] = []
        for app in applications:
            found, issues = app_releases(cluster, app, self.repo)
            releases += found
            result.issues += issues
        for origin, res in rendered:
            if res.get("kind") == "HelmChart" and str(res.get("apiVersion", "")).startswith(
                "helm.cattle.io/"
            ):
                file = manifest_file(self.repo, origin, res)
                release, issues = helmchart_release(cluster, res, file)
                releases.append(release)
                result.issues += issues
        self.counts["releases"] += len(releases)

        probes: dict[str, str | None] = {}
        if self.charts_dir is None:
            uncached = {
                r.repo_url
                for r in releases
                if not (self.cache / f"{r.chart}-{r.version}.tgz").is_file()
            }
            probes = unreachable(uncached)
        ready: list[tuple[Release, Path, ChartValues]] = []
        for release in releases:
            archive = self.locate(release, probes)
            if isinstance(archive, Unavailable):
                if archive.skipped:
                    self.say(f"{release.where}: chart rendering skipped: {archive.reason}")
                    result.skipped += 1
                    if self.ci:
                        why = f"{archive.reason}; GITHUB_ACTIONS=true needs every chart"
                        result.issues.append(Finding("chart-skipped", release.where, why))
                else:
                    result.issues.append(Finding("chart-missing", release.where, archive.reason))
                continue
            chart = self.load(release, archive)
            if isinstance(chart, Finding):
                result.issues.append(chart)
                continue
            for layer in release.values:
                if (layer.source, release.label) not in self._checked:
                    self._checked.add((layer.source, release.label))
                    self.counts["values layers"] += 1
                    result.issues += check_values((layer,), chart)
            ready.append((release, archive, chart))

        if ready and self.helm is None:
            if not self._helm_missing_told:
                result.issues.append(
                    Finding("chart-render", "helm", "helm not found (run `make setup`)")
                )
                self._helm_missing_told = True
            return result
        # Argo CD passes the API versions the cluster serves: the built-in ones, K3s's CRDs and
        # those the cluster's charts install. The latter are known only after a first render,
        # so charts whose templates ask for API versions are rendered a second time.
        base = [*builtin_api_versions(self.kubernetes_version), *K3S_API_VERSIONS]
        first: list[tuple[Release, Path, ChartValues, list[Resource]]] = []
        installed: set[str] = set()
        for release, archive, chart in ready:
            docs = self.render(release, archive, base)
            if isinstance(docs, Finding):
                result.issues.append(docs)
                continue
            installed |= crd_api_versions(docs)
            first.append((release, archive, chart, docs))
        api_versions = sorted(set(base) | installed)
        for release, archive, chart, docs in first:
            if chart.reads_api_versions and installed:
                again = self.render(release, archive, api_versions)
                if isinstance(again, Finding):
                    result.issues.append(again)
                    continue
                docs = again
            kept = [d for d in docs if not is_test_hook(d)]
            if len(kept) < len(docs):
                self.say(f"{release.where}: {len(docs) - len(kept)} test hooks left out")
            self.say(f"{release.where}: {len(kept)} resources")
            self._rendered_charts.add(release.chart)
            result.rendered.append((release, kept))
        self.counts["rendered"] += len(result.rendered)
        self.counts["skipped"] += result.skipped
        return result

    # -- third-party exceptions --

    def excused(self, chart: str, workload: str, container: str, rule: str) -> str | None:
        """The reason THIRD_PARTY_EXCEPTIONS gives for this finding, or None."""
        for key in ((chart, workload, container, rule), (chart, workload, "*", rule)):
            if key in THIRD_PARTY_EXCEPTIONS:
                self._excused.add(key)
                return THIRD_PARTY_EXCEPTIONS[key]
        return None

    def unused_exceptions(self) -> list[Finding]:
        """Exceptions for a chart that was rendered but excused nothing: no longer needed."""
        return [
            Finding(
                "chart-exception", f"{chart} {workload} {container}", f"{rule}: no longer needed"
            )
            for (chart, workload, container, rule) in THIRD_PARTY_EXCEPTIONS
            if chart in self._rendered_charts
            and (chart, workload, container, rule) not in self._excused
        ]
