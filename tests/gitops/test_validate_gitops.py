"""make validate (gpu_analytics_tools.gitops): each check fails on a planted violation in a
copy of the tree.

Every test copies the GitOps folders into a temporary repository, plants one violation and
asserts that the validator reports it under the expected rule, on the planted object.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_analytics_tools.gitops import kubeconform, tree, validate
from gpu_analytics_tools.gitops.findings import Finding
from gpu_analytics_tools.gitops.tree import Report

REPO = Path(__file__).resolve().parents[2]


TREE = ["bootstrap", "clusters", "apps", "platform", "services/deploy", "monitoring"]
PROCESSOR = "services/deploy/base/processor-deployment.yaml"
LOCAL_PIPELINE = "clusters/local/pipeline/kustomization.yaml"


def crd_location() -> str:
    """The CRD schemas, offline: CRD_SCHEMA_LOCATION or the shared folder beside the checkout."""
    if os.environ.get("CRD_SCHEMA_LOCATION"):
        return os.environ["CRD_SCHEMA_LOCATION"]
    shared = REPO.parent / "shared" / "crd-schemas"
    if not (shared / "README.md").is_file():
        pytest.skip("no CRD schemas offline: set CRD_SCHEMA_LOCATION")
    return f"{shared}/{{{{.Group}}}}/{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the GitOps tree; tools and generated schemas are shared with the checkout."""
    if not (REPO / ".tools" / "bin" / "kubeconform").is_file():
        pytest.skip("tools not installed (make setup)")
    for folder in TREE:
        shutil.copytree(REPO / folder, tmp_path / folder)
    (tmp_path / ".tools").symlink_to(REPO / ".tools")
    return tmp_path


def run(repo: Path, *, checkov: bool = False, clusters: list[str] | None = None) -> Report:
    # Charts are rendered and checked in test_charts.py; here only the tree's own files.
    return validate.validate(
        repo,
        crd_location=crd_location(),
        checkov=checkov,
        clusters=clusters or ["local"],
        charts=False,
    )


def edit(repo: Path, rel: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Load the one YAML document in repo/rel, apply change, write it back."""
    path = repo / rel
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def replace(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new))


def container(doc: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = doc["spec"]["template"]["spec"]["containers"][0]
    return first


def findings(report: Report, rule: str) -> list[Finding]:
    return [f for f in report.findings if f.rule == rule]


def assert_only(report: Report, rule: str, where: str) -> None:
    """The report fails, under `rule`, on an object whose description contains `where`."""
    assert not report.ok
    hits = findings(report, rule)
    assert any(where in f.where or where in f.message for f in hits), report.findings
    assert {f.rule for f in report.findings} == {rule}, report.findings


# ---- baseline ------------------------------------------------------------------------------


def test_tree_as_committed_passes_every_check(repo: Path) -> None:
    report = run(repo, clusters=["local", "aws"])
    assert report.ok, report.findings
    assert [c.name for c in report.clusters] == ["aws", "local"]
    for cluster in report.clusters:
        assert cluster.kubeconform["valid"] == len(cluster.rendered) > 0
        assert cluster.kubeconform["skipped"] == 0
        assert f"clusters/{cluster.name}/pipeline" in cluster.git_paths
        assert f"platform/kafka/overlays/{cluster.name}" in cluster.git_paths


# ---- workloads (the baseline) --------------------------------------------------------------


def test_container_allowed_to_run_as_root_fails_non_root(repo: Path) -> None:
    edit(
        repo,
        PROCESSOR,
        lambda d: d["spec"]["template"]["spec"]["securityContext"].update(runAsNonRoot=False),
    )
    assert_only(run(repo), "non-root", "Deployment/pipeline/processor")


def test_container_running_as_uid_0_fails_non_root(repo: Path) -> None:
    edit(
        repo,
        PROCESSOR,
        lambda d: container(d).setdefault("securityContext", {}).update(runAsUser=0),
    )
    assert_only(run(repo), "non-root", "Deployment/pipeline/processor")


def test_writable_root_filesystem_fails_read_only_root(repo: Path) -> None:
    edit(
        repo,
        PROCESSOR,
        lambda d: container(d)["securityContext"].update(readOnlyRootFilesystem=False),
    )
    assert_only(run(repo), "read-only-root", "Deployment/pipeline/processor")


def test_privilege_escalation_allowed_fails(repo: Path) -> None:
    edit(repo, PROCESSOR, lambda d: container(d)["securityContext"].pop("allowPrivilegeEscalation"))
    assert_only(run(repo), "no-privilege-escalation", "Deployment/pipeline/processor")


def test_capabilities_not_dropped_fails(repo: Path) -> None:
    edit(
        repo,
        PROCESSOR,
        lambda d: container(d)["securityContext"].update(capabilities={"drop": ["NET_RAW"]}),
    )
    assert_only(run(repo), "capabilities", "Deployment/pipeline/processor")


def test_missing_seccomp_profile_fails(repo: Path) -> None:
    edit(
        repo,
        PROCESSOR,
        lambda d: d["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile"),
    )
    assert_only(run(repo), "seccomp", "Deployment/pipeline/processor")


def test_missing_memory_limit_fails_resources(repo: Path) -> None:
    edit(
        repo,
        "platform/mongodb/base/mongodb-statefulset.yaml",
        lambda d: container(d)["resources"]["limits"].pop("memory"),
    )
    assert_only(run(repo), "resources", "StatefulSet/mongodb/mongodb")


def test_missing_readiness_probe_fails_probes(repo: Path) -> None:
    edit(
        repo,
        "platform/kafka/base/kafka-statefulset.yaml",
        lambda d: container(d).pop("readinessProbe"),
    )
    assert_only(run(repo), "probes", "StatefulSet/kafka/kafka")


def test_deployment_scaled_by_hpa_without_pdb_fails(repo: Path) -> None:
    replace(repo, "services/deploy/base/kustomization.yaml", "  - processor-pdb.yaml\n", "")
    assert_only(run(repo), "pdb", "Deployment/pipeline/processor")


def test_replicas_set_under_an_hpa_fail(repo: Path) -> None:
    edit(repo, PROCESSOR, lambda d: d["spec"].update(replicas=2))
    assert_only(run(repo), "hpa-replicas", "Deployment/pipeline/processor")


@pytest.mark.parametrize("tag", ["latest", None])
def test_unpinned_image_fails(repo: Path, tag: str | None) -> None:
    if tag is None:  # no tag at all: the base image name as the Deployment spells it
        replace(
            repo,
            LOCAL_PIPELINE,
            '  - name: ghcr.io/gpu-analytics/gpu-analytics-processor\n    newTag: "0.1.0"\n',
            "",
        )
    else:
        replace(repo, LOCAL_PIPELINE, 'newTag: "0.1.0"', f"newTag: {tag}")
    assert_only(run(repo), "image-pinned", "Deployment/pipeline/processor")


# ---- namespaces -----------------------------------------------------------------------------


def test_namespace_without_default_deny_fails(repo: Path) -> None:
    replace(repo, "bootstrap/namespaces/kustomization.yaml", "  - mongodb-networkpolicy.yaml\n", "")
    assert_only(run(repo), "default-deny", "Namespace/mongodb")


def test_policy_allowing_ingress_is_not_a_default_deny(repo: Path) -> None:
    edit(
        repo,
        "bootstrap/namespaces/loki-networkpolicy.yaml",
        lambda d: d["spec"].update(ingress=[{}]),
    )
    assert_only(run(repo), "default-deny", "Namespace/loki")


def test_namespace_without_pod_security_label_fails(repo: Path) -> None:
    edit(
        repo,
        "bootstrap/namespaces/kafka-namespace.yaml",
        lambda d: d["metadata"]["labels"].pop("pod-security.kubernetes.io/enforce"),
    )
    assert_only(run(repo), "psa-labels", "Namespace/kafka")


def test_resource_in_undeclared_namespace_fails(repo: Path) -> None:
    replace(repo, "platform/kafka/base/kustomization.yaml", "namespace: kafka", "namespace: queue")
    report = run(repo)
    undeclared = [f.message for f in findings(report, "namespace")]
    assert any("namespace queue is not declared" in m for m in undeclared)
    # ...and no project allows it as a destination.
    assert {f.rule for f in report.findings} == {"namespace", "app-project"}, report.findings


# ---- Applications and the app-of-apps walk ---------------------------------------------------


def test_application_path_that_does_not_exist_fails(repo: Path) -> None:
    shutil.rmtree(repo / "platform/mongodb/overlays/local")
    assert_only(run(repo), "app-path", "platform/mongodb/overlays/local")


def test_application_path_that_does_not_build_fails(repo: Path) -> None:
    replace(
        repo,
        "platform/kafka/base/kustomization.yaml",
        "  - kafka-pdb.yaml\n",
        "  - kafka-pdb.yaml\n  - missing.yaml\n",
    )
    report = run(repo)
    assert any(f.rule == "build" and "platform/kafka" in f.where for f in report.findings)


@pytest.mark.parametrize("version", ["91.x", "*", "latest", ">=91.0.0"])
def test_chart_without_exact_version_fails(repo: Path, version: str) -> None:
    replace(
        repo,
        "apps/observability/kube-prometheus-stack.yaml",
        "targetRevision: 91.5.0",
        f'targetRevision: "{version}"',
    )
    assert_only(run(repo), "chart-pinned", "Application kube-prometheus-stack")


def test_helmchart_without_exact_version_fails(repo: Path) -> None:
    replace(repo, "bootstrap/argo-cd/helmchart.yaml", "version: 10.9.0", 'version: "10.x"')
    assert_only(run(repo), "chart-pinned", "HelmChart/kube-system/argo-cd")


def test_missing_values_file_fails(repo: Path) -> None:
    (repo / "monitoring/loki/values.yaml").unlink()
    assert_only(run(repo), "values", "monitoring/loki/values.yaml")


def test_git_source_of_another_repository_fails(repo: Path) -> None:
    replace(
        repo,
        "apps/platform/mongodb.yaml",
        "    app.kubernetes.io/managed-by: argocd\n    gpu-analytics.io/source: git\n",
        "    app.kubernetes.io/managed-by: argocd\n",
    )
    assert_only(run(repo), "app-source", "Application mongodb")


def test_application_in_default_project_fails(repo: Path) -> None:
    replace(repo, "apps/pipeline/pipeline.yaml", "project: pipeline", "project: default")
    assert_only(run(repo), "app-project", "Application/pipeline")


def test_destination_outside_the_project_fails(repo: Path) -> None:
    edit(
        repo,
        "bootstrap/projects/pipeline-appproject.yaml",
        lambda d: d["spec"].update(
            destinations=[{"server": "https://kubernetes.default.svc", "namespace": "kafka"}]
        ),
    )
    assert_only(run(repo), "app-project", "destination not allowed by project pipeline")


def test_application_without_destination_namespace_fails(repo: Path) -> None:
    # Argo CD matches "" against the project's destinations: InvalidSpecError, and the
    # root waits for this Application forever.
    edit(repo, "bootstrap/namespaces.yaml", lambda d: d["spec"]["destination"].pop("namespace"))
    assert_only(run(repo), "app-project", "destination not allowed by project bootstrap")


def test_resource_in_a_namespace_outside_the_project_fails(repo: Path) -> None:
    edit(
        repo,
        "bootstrap/projects/platform-appproject.yaml",
        lambda d: d["spec"].update(
            destinations=[x for x in d["spec"]["destinations"] if x.get("namespace") != "mongodb"]
        ),
    )
    report = run(repo)
    assert any(
        f.rule == "app-project" and "namespace 'mongodb' not permitted" in f.message
        for f in report.findings
    ), report.findings


def test_project_allowing_any_repository_fails(repo: Path) -> None:
    edit(
        repo,
        "bootstrap/projects/observability-appproject.yaml",
        lambda d: d["spec"]["sourceRepos"].append("*"),
    )
    assert_only(run(repo), "app-project", "AppProject/observability")


def test_application_without_self_heal_fails(repo: Path) -> None:
    replace(repo, "apps/platform/kafka.yaml", "selfHeal: true", "selfHeal: false")
    assert_only(run(repo), "sync-policy", "Application/kafka")


def test_application_without_retry_fails(repo: Path) -> None:
    edit(repo, "apps/observability/alloy.yaml", lambda d: d["spec"]["syncPolicy"].pop("retry"))
    assert_only(run(repo), "sync-policy", "Application/alloy")


def test_create_namespace_option_fails(repo: Path) -> None:
    edit(
        repo,
        "apps/observability/loki.yaml",
        lambda d: d["spec"]["syncPolicy"]["syncOptions"].append("CreateNamespace=true"),
    )
    assert_only(run(repo), "sync-policy", "Application/loki")


def test_application_without_sync_wave_fails(repo: Path) -> None:
    edit(repo, "apps/observability/monitoring.yaml", lambda d: d["metadata"].pop("annotations"))
    assert_only(run(repo), "sync-wave", "Application/monitoring")


def test_workload_application_without_finalizer_fails(repo: Path) -> None:
    edit(repo, "apps/platform/mongodb.yaml", lambda d: d["metadata"].pop("finalizers"))
    assert_only(run(repo), "finalizer", "Application/mongodb")


def test_finalizer_on_the_application_running_argocd_fails(repo: Path) -> None:
    edit(
        repo,
        "bootstrap/argo-cd.yaml",
        lambda d: d["metadata"].update(finalizers=["resources-finalizer.argocd.argoproj.io"]),
    )
    assert_only(run(repo), "finalizer", "Application/argo-cd")


# ---- kubeconform ----------------------------------------------------------------------------


def test_misspelt_field_fails_kubeconform(repo: Path) -> None:
    replace(
        repo, "services/deploy/base/processor-service.yaml", "targetPort: http", "targetPortt: http"
    )
    assert_only(run(repo), "kubeconform", "additional properties 'targetPortt' not allowed")


def test_kind_without_a_schema_is_not_skipped_silently(repo: Path) -> None:
    (repo / "monitoring/rules/widget.yaml").write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"
    )
    replace(
        repo,
        "monitoring/rules/kustomization.yaml",
        "  - gpu-analytics.yaml\n",
        "  - gpu-analytics.yaml\n  - widget.yaml\n",
    )
    report = run(repo)
    assert not report.ok
    assert {f.rule for f in report.findings} == {"kubeconform"}
    assert any("Widget/w" in f.message for f in report.findings), report.findings


# ---- checkov and the command line -----------------------------------------------------------


def test_host_pid_fails_checkov(repo: Path) -> None:
    if tree.find_tools(repo).checkov is None:
        pytest.skip("checkov not installed (make setup)")
    edit(
        repo,
        "services/deploy/base/producer-deployment.yaml",
        lambda d: d["spec"]["template"]["spec"].update(hostPID=True),
    )
    report = run(repo, checkov=True)
    assert {f.rule for f in report.findings} == {"checkov"}, report.findings
    assert any("CKV_K8S_17" in f.message and "producer" in f.where for f in report.findings)


def test_cli_exits_1_and_names_the_finding(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRD_SCHEMA_LOCATION", crd_location())
    replace(repo, "apps/platform/kafka.yaml", "prune: true", "prune: false")
    code = validate.main(["--repo", str(repo), "--cluster", "local", "--no-checkov"])
    stdout = capsys.readouterr().out
    assert code == 1
    assert "FAIL [sync-policy] [local] Application/kafka" in stdout
    assert "1 findings: FAILED" in stdout


def test_the_online_crd_schemas_are_pinned_to_a_commit() -> None:
    location = kubeconform.DEFAULT_CRD_SCHEMA_LOCATION
    commit = kubeconform.CRDS_CATALOG_COMMIT
    assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)
    assert f"/CRDs-catalog/{commit}/" in location and "/main/" not in location


def test_the_application_counts_the_docs_show_are_the_trees() -> None:
    """README and clusters/README show `make cluster-up` ending with the local cluster's
    Application count, and the screenshot caption says it too: the number the tree gives."""
    tools = tree.find_tools(REPO)
    report = Report()
    local = tree.walk_cluster(
        REPO / "clusters" / "local", tree.Renderer(REPO, tools, report), report
    )
    count = len(local.applications)
    assert count > 5 and not report.findings
    for doc in ("README.md", "clusters/README.md"):
        said = {int(n) for n in re.findall(r"all (\d+) Applications", (REPO / doc).read_text())}
        assert said == {count}, f"{doc} says {said}, the local tree has {count}"
