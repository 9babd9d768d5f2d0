"""Render every Helm chart of the GitOps tree as Argo CD renders it.

validate.py hands over, per cluster, the Applications and resources it walked.
This module finds every chart release in them:

- each chart source of an Application (``spec.sources`` or ``spec.source`` with ``chart:``):
  release name ``helm.releaseName`` or else the Application's name, namespace = destination
  namespace, ``--values`` for each ``$values/...`` file in order, then ``helm.valuesObject``
  (or ``helm.values``), as Argo CD passes them;
- each K3s ``HelmChart`` (helm.cattle.io/v1): release name = its metadata.name, namespace =
  ``targetNamespace``, values = ``valuesContent``, as K3s's helm-controller passes them;

and renders it with ``helm template --include-crds --kube-version`` (the K3s release's
Kubernetes) ``--api-versions`` (the built-in APIs of that release and every CRD version the
cluster's charts install). Test hooks are dropped, as Argo CD never runs them. It also checks
that every key of our values is one the chart reads (``check_values``).

Charts come from ``CHARTS_DIR`` (packaged ``<chart>-<version>.tgz`` files) when it is set,
else from .cache/charts/, filled by ``helm pull`` where the chart repository answers within
PROBE_TIMEOUT_S. Without either, rendering is skipped with one line per chart; under GitHub
Actions (``GITHUB_ACTIONS=true``) a skip is an issue. helm is ``HELM``, .tools/bin/helm or PATH.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib import error, request

import yaml

from gpu_analytics_tools.gitops import k3s, k8s_schemas
from gpu_analytics_tools.gitops.findings import Finding
from gpu_analytics_tools.manifests import load_manifests
from gpu_analytics_tools.stack.paths import repo_root
from gpu_analytics_tools.tools import find

Resource = dict[str, Any]
KeyPath = tuple[str, ...]

# Pulled charts and helm's own state, one per checkout (shared by the trees tests copy).
CACHE_DIR = repo_root() / ".cache"
KUBE_VERSION = k3s.kubernetes_version()
PROBE_TIMEOUT_S = 3.0
HELM_TIMEOUT_S = 300
# CRDs every K3s server installs itself (helm-controller, k3s's own controllers).
K3S_API_VERSIONS = (
    "helm.cattle.io/v1",
    "helm.cattle.io/v1/HelmChart",
    "helm.cattle.io/v1/HelmChartConfig",
    "k3s.cattle.io/v1",
    "k3s.cattle.io/v1/Addon",
    "k3s.cattle.io/v1/ETCDSnapshotFile",
)
# What Argo CD and K3s read from an Application's helm block / a HelmChart's spec. Anything
# else there would change the rendering in a way this step does not reproduce: an issue.
APP_HELM_KEYS = {"releaseName", "valueFiles", "values", "valuesObject"}
HELMCHART_UNSUPPORTED = {"set", "valuesSecrets", "chartContent"}
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

# Values maps that a chart copies through whole (toYaml, range) although its defaults list
# some keys: every key below them is read. Key: (chart, key path as check_values prints it).
FREE_FORM_VALUES: dict[tuple[str, str], str] = {
    ("argo-cd", "configs.cm"): "every key but create/annotations becomes an argocd-cm entry "
    '(templates/_helpers.tpl "argo-cd.config.cm")',
    ("argo-cd", "configs.params"): "every key but create/annotations becomes an "
    'argocd-cmd-params-cm entry (templates/_helpers.tpl "argo-cd.config.params")',
    # Kubernetes objects the charts copy into the pod spec with toYaml; kubeconform -strict
    # then checks every field below them on the rendered output.
    ("alloy", "configReloader.resources"): "toYaml in templates/containers/_watch.yaml",
    ("kube-prometheus-stack", "grafana.containerSecurityContext"): (
        "toYaml in the grafana subchart's templates/_pod.tpl"
    ),
    ("kube-prometheus-stack", "grafana.sidecar.securityContext"): (
        "toYaml for every sidecar in the grafana subchart's templates/_pod.tpl"
    ),
    ("kube-prometheus-stack", "prometheus-node-exporter.securityContext"): (
        "toYaml in the prometheus-node-exporter subchart's templates/daemonset.yaml"
    ),
    ("kube-prometheus-stack", "prometheus-node-exporter.containerSecurityContext"): (
        "toYaml in the prometheus-node-exporter subchart's templates/daemonset.yaml"
    ),
}


@dataclass(frozen=True)
class ValuesLayer:
    """One set of values, in the order helm merges them (later wins)."""

    source: str  # a repository file, or the manifest field that holds the values
    text: str
    path: Path | None = None  # the file itself, for value files


@dataclass(frozen=True)
class Release:
    cluster: str
    owner: str  # "Application alloy", "HelmChart argo-cd"
    chart: str
    version: str
    repo_url: str
    name: str
    namespace: str
    values: tuple[ValuesLayer, ...]

    @property
    def label(self) -> str:
        return f"{self.chart}@{self.version}"

    @property
    def where(self) -> str:
        return f"[{self.cluster}] {self.owner} ({self.label})"


@dataclass
class ChartValues:
    """What a packaged chart reads from values: defaults, schema, subcharts, dependency keys."""

    name: str
    version: str
    defaults: dict[str, Any]
    schema: Any
    subcharts: dict[str, ChartValues]  # by the key the parent's values use (alias or name)
    # Dependency conditions and tags as a nested map with None leaves: helm reads them too.
    dependency_keys: dict[str, Any]
    reads_api_versions: bool  # a template asks .Capabilities.APIVersions


@dataclass
class ClusterCharts:
    rendered: list[tuple[Release, list[Resource]]] = field(default_factory=list)
    issues: list[Finding] = field(default_factory=list)
    skipped: int = 0


# ---- finding the releases ------------------------------------------------------------------


def dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def app_releases(cluster: str, app: Resource, repo: Path) -> tuple[list[Release], list[Finding]]:
    """The chart sources of one Application, with their values as Argo CD passes them."""
    name = str(dig(app, "metadata", "name"))
    spec = app.get("spec") or {}
    sources: list[Resource] = spec.get("sources") or (
        [spec["source"]] if spec.get("source") else []
    )
    refs = {str(s["ref"]) for s in sources if s.get("ref")}
    releases: list[Release] = []
    issues: list[Finding] = []
    for source in sources:
        if not source.get("chart"):
            continue
        where = f"[{cluster}] Application {name}"
        helm = source.get("helm") or {}
        issues += [
            Finding("chart-render", where, f"helm.{key} is not reproduced by validate")
            for key in sorted(set(helm) - APP_HELM_KEYS)
        ]
        layers: list[ValuesLayer] = []
        unreadable = []
        for entry in helm.get("valueFiles") or []:
            ref, _, rel = str(entry).partition("/")
            path = repo / rel
            if ref.startswith("$") and ref[1:] in refs and path.is_file():
                layers.append(ValuesLayer(rel, path.read_text(encoding="utf-8"), path))
            else:
                unreadable.append(str(entry))
        if unreadable:
            # Rendered without them, the output would not be Argo CD's.
            why = f"not rendered: value files {', '.join(unreadable)} not in this repository"
            issues.append(Finding("chart-render", where, why))
            continue
        # Argo CD passes valuesObject when set, else the values string, after the files.
        if helm.get("valuesObject") is not None:
            obj = yaml.safe_dump(helm["valuesObject"], sort_keys=False)
            layers.append(ValuesLayer(f"{where} helm.valuesObject", obj))
        elif helm.get("values"):
            layers.append(ValuesLayer(f"{where} helm.values", str(helm["values"])))
        releases.append(
            Release(
                cluster=cluster,
                owner=f"Application {name}",
                chart=str(source["chart"]),
                version=str(source.get("targetRevision", "")),
                repo_url=str(source.get("repoURL", "")),
                name=str(helm.get("releaseName") or name),
                namespace=str(dig(spec, "destination", "namespace") or "default"),
                values=tuple(layers),
            )
        )
    return releases, issues


def helmchart_release(cluster: str, res: Resource, file: str) -> tuple[Release, list[Finding]]:
    """A K3s HelmChart as helm-controller installs it: release = its name, namespace = its
    targetNamespace, values = its valuesContent (`file`: where it is declared)."""
    name = str(dig(res, "metadata", "name"))
    spec = res.get("spec") or {}
    where = f"[{cluster}] HelmChart {name}"
    issues = [
        Finding("chart-render", where, f"spec.{key} is not reproduced by validate")
        for key in sorted(HELMCHART_UNSUPPORTED & set(spec))
    ]
    layers = (
        (ValuesLayer(f"{file} spec.valuesContent", str(spec["valuesContent"])),)
        if spec.get("valuesContent")
        else ()
    )
    release = Release(
        cluster=cluster,
        owner=f"HelmChart {name}",
        chart=str(spec.get("chart", "")),
        version=str(spec.get("version", "")),
        repo_url=str(spec.get("repo", "")),
        name=name,
        namespace=str(
            spec.get("targetNamespace") or dig(res, "metadata", "namespace") or "default"
        ),
        values=layers,
    )
    return release, issues


def manifest_file(repo: Path, origin: str, res: Resource) -> str:
    """The file under repo/origin that declares res (kind and name), else the folder."""
    for path in sorted((repo / origin).glob("*.yaml")):
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError:
            continue
        for doc in docs:
            if (
                isinstance(doc, dict)
                and doc.get("kind") == res.get("kind")
                and dig(doc, "metadata", "name") == dig(res, "metadata", "name")
            ):
                return path.relative_to(repo).as_posix()
    return origin


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


def find_helm(repo: Path) -> str | None:
    return find("helm", "HELM", folder=repo / ".tools" / "bin")


# ---- what a chart reads --------------------------------------------------------------------


def load_chart(archive: Path) -> ChartValues:
    with tarfile.open(archive) as tar:
        return chart_from_tar(tar)


def chart_from_tar(tar: tarfile.TarFile) -> ChartValues:
    files: dict[str, bytes] = {}
    for member in tar.getmembers():
        handle = tar.extractfile(member) if member.isfile() else None
        if handle is not None:
            # A packaged chart is one top folder named after the chart.
            files[member.name.partition("/")[2]] = handle.read()
    return chart_from_files(files)


def chart_from_files(files: dict[str, bytes]) -> ChartValues:
    meta = yaml.safe_load(files.get("Chart.yaml", b"")) or {}
    defaults = yaml.safe_load(files.get("values.yaml", b"")) or {}
    schema = json.loads(files["values.schema.json"]) if "values.schema.json" in files else None
    deps: list[Resource] = meta.get("dependencies") or []
    if not deps and "requirements.yaml" in files:  # apiVersion v1 charts
        deps = (yaml.safe_load(files["requirements.yaml"]) or {}).get("dependencies") or []

    by_name: dict[str, ChartValues] = {}
    folders: dict[str, dict[str, bytes]] = {}
    for rel, data in files.items():
        head, slash, tail = rel.removeprefix("charts/").partition("/")
        if not rel.startswith("charts/"):
            continue
        if slash:
            folders.setdefault(head, {})[tail] = data
        elif head.endswith(".tgz"):
            with tarfile.open(fileobj=io.BytesIO(data)) as nested:
                sub = chart_from_tar(nested)
            by_name[sub.name] = sub
    for folder in folders.values():
        if "Chart.yaml" in folder:
            sub = chart_from_files(folder)
            by_name[sub.name] = sub

    subcharts: dict[str, ChartValues] = {}
    dependency_keys: dict[str, Any] = {}
    for dep in deps:
        dep_name = str(dep.get("name"))
        if dep_name in by_name:
            subcharts[str(dep.get("alias") or dep_name)] = by_name[dep_name]
        for condition in str(dep.get("condition") or "").split(","):
            if condition.strip():
                set_path(dependency_keys, condition.strip().split("."))
        for tag in dep.get("tags") or []:
            set_path(dependency_keys, ["tags", str(tag)])
    # A subchart in charts/ without a dependency entry is still loaded, under its name.
    for sub_name, sub in by_name.items():
        subcharts.setdefault(sub_name, sub)
    reads = any(
        rel.startswith("templates/") and b"Capabilities.APIVersions" in data
        for rel, data in files.items()
    )
    return ChartValues(
        name=str(meta.get("name", "")),
        version=str(meta.get("version", "")),
        defaults=defaults if isinstance(defaults, dict) else {},
        schema=schema,
        subcharts=subcharts,
        dependency_keys=dependency_keys,
        reads_api_versions=reads or any(s.reads_api_versions for s in subcharts.values()),
    )


def set_path(tree: dict[str, Any], path: list[str]) -> None:
    for key in path[:-1]:
        if not isinstance(tree.get(key), dict):
            tree[key] = {}
        tree = tree[key]
    tree.setdefault(path[-1], None)


def descendants(chart: ChartValues) -> Iterator[ChartValues]:
    yield chart
    for sub in chart.subcharts.values():
        yield from descendants(sub)


# A schema node with the document its local $refs point into.
Schema = tuple[Any, Any]


def schema_branches(schema: Schema) -> list[Schema]:
    """The alternatives a schema node allows, with local $refs and allOf/anyOf/oneOf flattened."""
    node, root = schema
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 32:
        ref = str(node["$ref"])
        if not ref.startswith("#"):
            return [({}, root)]  # a remote schema: nothing to check against
        target: Any = root
        for part in filter(None, ref[1:].split("/")):
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"))
                if isinstance(target, dict)
                else None
            )
        node, seen = target, seen + 1
    if node is True or node is None:
        return [({}, root)]
    if not isinstance(node, dict):
        return []
    composed = [
        branch
        for key in ("allOf", "anyOf", "oneOf")
        for sub in node.get(key) or []
        for branch in schema_branches((sub, root))
    ]
    # A node that only combines others says nothing of its keys itself.
    return composed if composed and not lists_keys(node) else [(node, root), *composed]


def lists_keys(node: Any) -> bool:
    """Whether a schema branch names the keys allowed below it."""
    return isinstance(node, dict) and (
        "properties" in node
        or "patternProperties" in node
        or node.get("additionalProperties") is False
    )


def schema_child(schema: Schema, key: str) -> list[Schema]:
    """The schema nodes that allow key below schema; [] when none does.

    additionalProperties left unset counts as closed where the branch lists properties: chart
    schemas leave it out while meaning "these are the values", and helm would take any key.
    """
    found: list[Schema] = []
    for node, root in schema_branches(schema):
        if not lists_keys(node):
            found.append(({}, root))
            continue
        if key in (node.get("properties") or {}):
            found.append((node["properties"][key], root))
            continue
        patterns = node.get("patternProperties") or {}
        matched = [sub for pattern, sub in patterns.items() if re.search(pattern, key)]
        if matched:
            found += [(sub, root) for sub in matched]
        elif node.get("additionalProperties") not in (None, False):
            found.append((node["additionalProperties"], root))
    return found


@dataclass
class ValuesNode:
    """Everything that says which keys are read at one path of a chart's values."""

    defaults: list[Any]
    schemas: list[Schema]
    charts: list[ChartValues]  # the charts whose values start here (subcharts, global)

    def child(self, key: str) -> ValuesNode | None:
        defaults = [d[key] for d in self.defaults if isinstance(d, dict) and key in d]
        schemas = [s for schema in self.schemas for s in schema_child(schema, key)]
        charts: list[ChartValues] = []
        if key == "global":
            # Global values are shared by a chart and all its subcharts.
            everyone = [c for chart in self.charts for c in descendants(chart)]
            defaults += [c.defaults["global"] for c in everyone if c.defaults.get("global")]
            schemas += [
                s
                for c in everyone
                if c.schema is not None
                for s in schema_child((c.schema, c.schema), "global")
            ]
        else:
            charts = [c.subcharts[key] for c in self.charts if key in c.subcharts]
            if charts:
                # A subchart's own values say what it reads: empty maps for it (in the parent's
                # values or its own) are no free-form maps.
                defaults = [d for d in defaults if d]
                defaults += [d for c in charts for d in (c.defaults, c.dependency_keys) if d]
                schemas += [(c.schema, c.schema) for c in charts if c.schema is not None]
        if not (defaults or schemas or charts):
            return None
        return ValuesNode(defaults, schemas, charts)

    def free(self) -> bool:
        """Keys below are not checked: a default of {} or null (or a scalar), an open schema."""
        if any(d is None or d == {} or not isinstance(d, dict) for d in self.defaults):
            return True
        return any(
            not lists_keys(node) for schema in self.schemas for node, _ in schema_branches(schema)
        )


def root_node(chart: ChartValues) -> ValuesNode:
    schemas = [(chart.schema, chart.schema)] if chart.schema is not None else []
    return ValuesNode([chart.defaults, chart.dependency_keys], schemas, [chart])


def show_path(path: KeyPath) -> str:
    """a.b["c.d"]: keys that hold dots (argocd-cm entries) in brackets."""
    out = ""
    for key in path:
        out += f'["{key}"]' if "." in key else (f".{key}" if out else key)
    return out


def unknown_keys(values: Any, chart: ChartValues) -> list[KeyPath]:
    """Key paths of values that the chart (its defaults, schema and subcharts) does not read."""
    found: list[KeyPath] = []

    def walk(ours: dict[str, Any], node: ValuesNode, path: KeyPath) -> None:
        for key, value in ours.items():
            here = (*path, str(key))
            child = node.child(str(key))
            if child is None:
                found.append(here)
            elif (
                isinstance(value, dict)
                and not child.free()
                and (chart.name, show_path(here)) not in FREE_FORM_VALUES
            ):
                walk(value, child, here)

    if isinstance(values, dict):
        walk(values, root_node(chart), ())
    return found


def check_values(layers: tuple[ValuesLayer, ...], chart: ChartValues) -> list[Finding]:
    """An issue for each key of the layers that the chart does not read."""
    label = f"{chart.name}@{chart.version}"
    issues: list[Finding] = []
    for layer in layers:
        try:
            values = yaml.safe_load(layer.text)
        except yaml.YAMLError as exc:
            issues.append(Finding("values-key", layer.source, f"not YAML: {exc}"))
            continue
        issues += [
            Finding("values-key", layer.source, f"{show_path(p)} is not a value of {label}")
            for p in unknown_keys(values, chart)
        ]
    return issues


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
