"""Every resource the tree renders, for both clusters, applied server-side to the
simulation's API server (the K3s release's Kubernetes) with strict field validation, as a
dry run: an unknown field, a value the API rejects or a PodSecurity warning on one of our
workloads fails. The namespaces exist, with their Pod Security labels, from the install."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_analytics_tools.cluster_sim.builtins import EXTERNAL_SECRETS_CRDS
from gpu_analytics_tools.gitops import policies, tree
from gpu_analytics_tools.testing.cluster_sim import Installed, report

REPO = Path(__file__).resolve().parents[2]


Resource = dict[str, Any]
WORKLOADS = policies.WORKLOAD_KINDS


@dataclass
class ApplyResult:
    applied: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@functools.cache
def _rendered(cluster: str) -> tuple[Resource, ...]:
    findings = tree.Report()
    renderer = tree.Renderer(REPO, tree.find_tools(REPO), findings)
    result = tree.walk_cluster(REPO / "clusters" / cluster, renderer, findings)
    assert findings.findings == [], findings.findings
    unique = {tree.ident(r): r for _, r in result.rendered}
    return tuple(unique.values())


def rendered(cluster: str) -> list[Resource]:
    """Every resource of the cluster's tree (rendered once per session; a fresh copy each
    call, as tests plant defects in what they get)."""
    return copy.deepcopy(list(_rendered(cluster)))


def into_namespaces(resources: list[Resource], prefix: str) -> list[Resource]:
    """The same resources in namespaces named prefix + the original (created for real, with
    their Pod Security labels): the aws tree is checked beside the installed local one, whose
    objects of the same names it would otherwise update (a StatefulSet's claims are
    immutable). K3s's own namespaces keep their names."""
    moved = []
    for res in copy.deepcopy(resources):
        meta = res["metadata"]
        if res["kind"] == "Namespace":
            meta["name"] = prefix + meta["name"]
        elif meta.get("namespace") and meta["namespace"] not in policies.FOREIGN_NAMESPACES:
            meta["namespace"] = prefix + meta["namespace"]
        moved.append(res)
    return moved


def dry_run(installed: Installed, resources: list[Resource]) -> ApplyResult:
    """Apply server-side (dry run, strict): workloads one by one, so that each warning names
    its workload; everything else in one call."""
    result = ApplyResult()
    batches = [[r] for r in resources if r.get("kind") in WORKLOADS]
    batches.append([r for r in resources if r.get("kind") not in WORKLOADS])
    for batch in batches:
        if not batch:
            continue
        proc = installed.sim.kubectl(
            "apply", "--server-side", "--dry-run=server", "--validate=strict",
            "--force-conflicts", "--field-manager=tree-check", "-f", "-",
            check=False, stdin=yaml.safe_dump_all(batch),
        )  # fmt: skip
        what = tree.ident(batch[0]) if len(batch) == 1 else f"{len(batch)} resources"
        result.applied += proc.stdout.count("(server dry run)")
        if proc.returncode != 0:
            result.errors.append(f"{what}: {proc.stderr.strip()}")
        result.warnings += [
            f"{what}: {line}" for line in proc.stderr.splitlines() if line.startswith("Warning:")
        ]
    return result


@pytest.fixture(scope="module")
def crds(installed: Installed) -> Installed:
    installed.sim.kubectl(
        "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(EXTERNAL_SECRETS_CRDS)
    )
    installed.sim.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    return installed


@pytest.mark.parametrize("cluster", ["local", "aws"])
def test_every_rendered_resource_is_accepted(crds: Installed, cluster: str) -> None:
    resources = rendered(cluster)
    kinds = {r["kind"] for r in resources}
    assert {"Application", "Deployment", "StatefulSet", "Namespace", "NetworkPolicy"} <= kinds
    if cluster != "local":
        resources = into_namespaces(resources, f"{cluster}-")
        namespaces = [r for r in resources if r["kind"] == "Namespace"]
        crds.sim.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(namespaces))
    result = dry_run(crds, resources)
    report(f"[{cluster}] {result.applied} of {len(resources)} resources accepted")
    assert result.errors == []
    assert [w for w in result.warnings if "PodSecurity" in w] == []
    assert result.applied == len(resources)


def processor(cluster: str) -> Resource:
    return next(
        r
        for r in rendered(cluster)
        if r["kind"] == "Deployment" and r["metadata"]["name"] == "processor"
    )


def make_privileged(pod_spec: Resource) -> None:
    context = pod_spec["containers"][0]["securityContext"]
    context.update(privileged=True, allowPrivilegeEscalation=True)


def test_unknown_field_is_rejected(crds: Installed) -> None:
    planted = copy.deepcopy(processor("local"))
    planted["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    result = dry_run(crds, [planted])
    assert len(result.errors) == 1
    assert "imagePullPolicyy: field not declared in schema" in result.errors[0]


def test_privileged_container_gets_a_pod_security_warning(crds: Installed) -> None:
    planted = copy.deepcopy(processor("local"))
    make_privileged(planted["spec"]["template"]["spec"])
    result = dry_run(crds, [planted])
    assert any("would violate PodSecurity" in w and "privileged" in w for w in result.warnings), (
        result
    )


def test_privileged_pod_is_rejected_by_the_namespace(crds: Installed) -> None:
    template = processor("local")["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "planted", "namespace": "pipeline"},
        "spec": copy.deepcopy(template["spec"]),
    }
    make_privileged(pod["spec"])
    result = dry_run(crds, [pod])
    assert any("violates PodSecurity" in e for e in result.errors), result
