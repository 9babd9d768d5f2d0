"""scripts/charts.py: charts rendered as Argo CD renders them, values keys checked.

The charts here are tiny ones the tests write themselves, so nothing is fetched: values checks
read the chart's files directly, rendering tests package the chart with helm into a
CHARTS_DIR of their own.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_analytics_tools.gitops import chart_values, charts, helm, k3s, kubeconform, tree, validate
from gpu_analytics_tools.gitops.chart_releases import ValuesLayer
from gpu_analytics_tools.gitops.chart_values import ChartValues
from gpu_analytics_tools.gitops.charts import ChartRenderer
from gpu_analytics_tools.gitops.findings import Finding
from gpu_analytics_tools.manifests import load_manifests

REPO = Path(__file__).resolve().parents[2]


UNREACHABLE = "https://charts.invalid"  # .invalid never resolves (RFC 2606)

CHART_YAML = """\
apiVersion: v2
name: tiny
version: 0.1.0
dependencies:
  - name: helper
    version: 0.1.0
    alias: aide
    condition: aide.enabled
"""
VALUES_YAML = """\
greeting: hello
extraLabels: {}
pod:
  securityContext:
    runAsNonRoot: true
image:
  repository: registry.example/tiny
  tag: "1.0.0"
"""
HELPER_CHART = "apiVersion: v2\nname: helper\nversion: 0.1.0\n"
HELPER_VALUES = "port: 80\nglobal:\n  shared: true\n"
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
  namespace: {{ .Release.Namespace }}
data:
  greeting: {{ .Values.greeting | quote }}
  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}
  pdb: {{ .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" | quote }}
  widgets: {{ .Capabilities.APIVersions.Has "tiny.example.com/v1/Widget" | quote }}
  monitors: {{ .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" | quote }}
"""
# A workload that breaks the workload baseline: no securityContext, no resources, no probes.
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"""
TEST_HOOK = """\
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  containers:
    - name: test
      image: registry.example/tiny:1.0.0
"""
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.tiny.example.com
spec:
  group: tiny.example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""
CHART_FILES = {
    "Chart.yaml": CHART_YAML,
    "values.yaml": VALUES_YAML,
    "templates/configmap.yaml": CONFIGMAP,
    "templates/deployment.yaml": DEPLOYMENT,
    "templates/tests/test-pod.yaml": TEST_HOOK,
    "crds/widgets.yaml": CRD,
    "charts/helper/Chart.yaml": HELPER_CHART,
    "charts/helper/values.yaml": HELPER_VALUES,
}


def tiny_chart(**extra: str) -> ChartValues:
    files = {**CHART_FILES, **extra}
    return chart_values.chart_from_files({k: v.encode() for k, v in files.items()})


def unknown(values: str, chart: ChartValues | None = None) -> list[Finding]:
    return chart_values.check_values(
        (ValuesLayer("monitoring/tiny/values.yaml", values),), chart or tiny_chart()
    )


def helm_path() -> str:
    found = helm.find_helm(REPO)
    if found is None:
        pytest.skip("helm not installed: `make setup` puts it in .tools/bin (or set HELM)")
    return found


@pytest.fixture
def charts_dir(tmp_path: Path) -> Path:
    """The tiny chart written out and packaged with helm: CHARTS_DIR/tiny-0.1.0.tgz."""
    helm = helm_path()
    source = tmp_path / "src" / "tiny"
    for rel, text in CHART_FILES.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_text(text)
    out = tmp_path / "charts"
    subprocess.run(
        [helm, "package", str(source), "--destination", str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository holding two values files for the tiny chart."""
    root = tmp_path / "repo"
    (root / "values").mkdir(parents=True)
    (root / "values" / "first.yaml").write_text("greeting: first\nextraLabels: {team: a}\n")
    (root / "values" / "second.yaml").write_text("greeting: second\n")
    return root


def application(
    name: str = "tiny", *, release: str | None = None, repo_url: str = "https://charts.example"
) -> dict[str, Any]:
    helm: dict[str, Any] = {
        "valueFiles": ["$values/values/first.yaml", "$values/values/second.yaml"]
    }
    if release:
        helm["releaseName"] = release
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "sources": [
                {"repoURL": repo_url, "chart": "tiny", "targetRevision": "0.1.0", "helm": helm},
                {
                    "repoURL": "https://git.example/repo.git",
                    "targetRevision": "main",
                    "ref": "values",
                },
            ],
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "space"},
        },
    }


def renderer(
    repo: Path, charts_dir: Path | None, *, ci: bool = False, lines: list[str] | None = None
) -> ChartRenderer:
    return ChartRenderer(
        repo,
        charts_dir=charts_dir,
        helm=helm.find_helm(REPO),
        ci=ci,
        kubernetes_version=kubeconform.KUBERNETES_VERSION,
        say=(lines if lines is not None else []).append,
        cache_root=repo / ".cache",
    )


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


# ---- reading helm's output ------------------------------------------------------------------


def test_a_plain_equals_sign_is_the_string_as_kubernetes_reads_it() -> None:
    # prometheus-operator-crds lists "=" among the relabel actions; PyYAML's safe loader
    # resolves it to the YAML 1.1 value tag and then cannot construct it.
    text = "kind: CustomResourceDefinition\nspec:\n  enum:\n    - replace\n    - =\n---\n"
    with pytest.raises(yaml.constructor.ConstructorError):
        list(yaml.safe_load_all(text))
    assert load_manifests(text) == [
        {"kind": "CustomResourceDefinition", "spec": {"enum": ["replace", "="]}}
    ]


# ---- values keys ---------------------------------------------------------------------------


def test_unknown_values_key_is_a_finding_naming_file_path_and_chart() -> None:
    issues = unknown("greeting: hi\npod:\n  securityContex: {}\nimage:\n  digest: sha256:0\n")
    assert issues == [
        Finding("values-key", "monitoring/tiny/values.yaml", f"{path} is not a value of tiny@0.1.0")
        for path in ("pod.securityContex", "image.digest")
    ]


def test_keys_under_an_empty_default_map_are_free() -> None:
    assert unknown("extraLabels:\n  team: data\n  tier: {nested: true}\n") == []


def test_subchart_keys_are_read_under_its_alias_and_globals_are_shared() -> None:
    values = "aide:\n  enabled: false\n  port: 8080\n  bogus: 1\nglobal:\n  shared: false\n"
    assert [i.message for i in unknown(values)] == ["aide.bogus is not a value of tiny@0.1.0"]


def test_schema_names_keys_and_opens_maps_with_additional_properties() -> None:
    schema = {
        "type": "object",
        "properties": {
            "onlyInSchema": {"type": "string"},
            "config": {"type": "object", "additionalProperties": True},
            "strict": {"$ref": "#/definitions/strict"},
        },
        "definitions": {"strict": {"type": "object", "properties": {"a": {}}}},
    }
    chart = tiny_chart(**{"values.schema.json": json.dumps(schema)})
    values = "onlyInSchema: x\nconfig: {anything: 1}\nstrict: {a: 1, b: 2}\n"
    assert [i.message for i in unknown(values, chart)] == ["strict.b is not a value of tiny@0.1.0"]


def test_keys_with_dots_are_shown_in_brackets() -> None:
    issues = unknown("pod:\n  resource.customizations: x\n")
    assert issues[0].message == 'pod["resource.customizations"] is not a value of tiny@0.1.0'


# ---- where charts come from ----------------------------------------------------------------


def test_offline_without_charts_dir_skips_with_one_line_and_passes(repo: Path) -> None:
    lines: list[str] = []
    run = renderer(repo, None, lines=lines).render_cluster(
        "lab", [application(repo_url=UNREACHABLE)], []
    )
    assert run.issues == []
    assert run.skipped == 1
    assert run.rendered == []
    [line] = lines
    assert "Application tiny (tiny@0.1.0): chart rendering skipped" in line
    assert f"no CHARTS_DIR, and {UNREACHABLE} is unreachable" in line


def test_offline_skip_fails_under_github_actions(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHARTS_DIR", raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    step = ChartRenderer.from_env(
        repo, kubernetes_version=kubeconform.KUBERNETES_VERSION, say=lambda _: None
    )
    assert step.ci
    step.cache = repo / ".cache" / "charts"
    run = step.render_cluster("lab", [application(repo_url=UNREACHABLE)], [])
    assert [i.rule for i in run.issues] == ["chart-skipped"]
    assert "GITHUB_ACTIONS=true" in run.issues[0].message


def test_chart_missing_from_charts_dir_is_a_finding(repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    run = renderer(repo, empty).render_cluster("lab", [application()], [])
    assert [i.rule for i in run.issues] == ["chart-missing"]
    assert "tiny-0.1.0.tgz is not in CHARTS_DIR" in run.issues[0].message


# ---- rendering -----------------------------------------------------------------------------


def test_render_uses_release_name_namespace_and_value_files_in_order(
    repo: Path, charts_dir: Path
) -> None:
    run = renderer(repo, charts_dir).render_cluster(
        "lab", [application(release="custom"), application("plain")], []
    )
    assert run.issues == []
    [(named, named_docs), (plain, plain_docs)] = run.rendered
    assert (named.name, plain.name) == ("custom", "plain")
    [config] = by_kind(named_docs, "ConfigMap")
    assert config["metadata"] == {"name": "custom-settings", "namespace": "space"}
    assert config["data"]["greeting"] == "second"  # the later values file wins
    assert by_kind(plain_docs, "ConfigMap")[0]["metadata"]["name"] == "plain-settings"


def test_render_passes_the_k3s_kubernetes_and_the_clusters_api_versions(
    repo: Path, charts_dir: Path
) -> None:
    [(_, docs)] = renderer(repo, charts_dir).render_cluster("lab", [application()], []).rendered
    data = by_kind(docs, "ConfigMap")[0]["data"]
    assert data["kubeVersion"] == f"v{k3s.kubernetes_version()}"
    assert data["pdb"] == "true"  # built-in, with its kind, as Argo CD passes it
    assert data["widgets"] == "true"  # the CRD the chart itself installs (--include-crds)
    assert data["monitors"] == "false"  # nothing in this cluster installs it
    assert [d["metadata"]["name"] for d in by_kind(docs, "CustomResourceDefinition")] == [
        "widgets.tiny.example.com"
    ]
    assert by_kind(docs, "Pod") == []  # the test hook: Argo CD never runs it


def test_helmchart_renders_with_its_name_target_namespace_and_values_content(
    repo: Path, charts_dir: Path
) -> None:
    helmchart = {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": "bootstrapped", "namespace": "kube-system"},
        "spec": {
            "repo": "https://charts.example",
            "chart": "tiny",
            "version": "0.1.0",
            "targetNamespace": "target",
            "valuesContent": "greeting: from-helmchart\nbogus: 1\n",
        },
    }
    run = renderer(repo, charts_dir).render_cluster("lab", [], [("bootstrap", helmchart)])
    [(release, docs)] = run.rendered
    config = by_kind(docs, "ConfigMap")[0]
    assert config["metadata"] == {"name": "bootstrapped-settings", "namespace": "target"}
    assert config["data"]["greeting"] == "from-helmchart"
    assert run.issues == [
        Finding("values-key", "bootstrap spec.valuesContent", "bogus is not a value of tiny@0.1.0")
    ]


# ---- the baseline on third-party workloads -------------------------------------------------


@pytest.fixture
def workload_check(
    repo: Path, charts_dir: Path
) -> Iterator[tuple[tree.ClusterResult, ChartRenderer, tree.Report]]:
    if not (REPO / ".tools" / "bin" / "kubeconform").is_file():
        pytest.skip("tools not installed (make setup)")
    (repo / ".tools").symlink_to(REPO / ".tools")
    result = tree.ClusterResult("lab", applications=[application()])
    yield result, renderer(repo, charts_dir), tree.Report()


def run_workload_check(
    check: tuple[tree.ClusterResult, ChartRenderer, tree.Report],
) -> tree.Report:
    result, step, report = check
    tools = tree.find_tools(REPO)
    schemas = kubeconform.k8s_schema_root(REPO)
    validate.check_charts(result, step, tools, schemas, "unused-for-builtins", report)
    report.findings += step.unused_exceptions()
    return report


def test_third_party_workload_violating_the_baseline_is_a_finding(
    workload_check: tuple[tree.ClusterResult, ChartRenderer, tree.Report],
) -> None:
    report = run_workload_check(workload_check)
    assert report.chart_kubeconform["valid"] == 3  # CRD, ConfigMap, Deployment
    where = "[lab] tiny@0.1.0 Deployment/space/tiny-web container web"
    rules = {f.rule for f in report.findings if f.where == where}
    assert {"non-root", "read-only-root", "seccomp", "resources", "probes"} <= rules
    assert {f.where for f in report.findings} == {where}


def test_listed_exception_excuses_only_its_rule_and_a_stale_one_is_a_finding(
    workload_check: tuple[tree.ClusterResult, ChartRenderer, tree.Report],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exceptions = {
        ("tiny", "Deployment/tiny-web", "web", "probes"): "the tiny chart has no probe values",
        ("tiny", "Deployment/tiny-gone", "*", "seccomp"): "a workload the chart no longer has",
    }
    monkeypatch.setattr(charts, "THIRD_PARTY_EXCEPTIONS", exceptions)
    report = run_workload_check(workload_check)
    rules = {f.rule for f in report.findings}
    assert "probes" not in rules
    assert {"non-root", "resources", "chart-exception"} <= rules
    [stale] = [f for f in report.findings if f.rule == "chart-exception"]
    assert "Deployment/tiny-gone" in stale.where
