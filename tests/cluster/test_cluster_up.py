"""`make cluster-up` (clusters/local/cluster-up.sh) on the simulation's kube context: it moves
the installed tree to another git revision without a commit (the root's kustomize patches),
Argo CD converges there with the root keeping that source through its own syncs, and a second
run moves it back, duplicating nothing. The k3d path needs Docker: it runs in
.github/workflows/e2e.yml, not here. Runs after the other cluster tests (conftest orders it
last): it changes the revision the installed tree syncs."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from gpu_analytics_tools.cluster_sim.layout import BRANCH, GIT_URL
from gpu_analytics_tools.testing.cluster_sim import Installed, report

OTHER = "cluster-up-test"
INSTALL_TIMEOUT = int(os.environ.get("CLUSTER_TEST_INSTALL_TIMEOUT", "900"))


def our_revisions(apps: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Application -> the revisions of its sources in this repository."""
    found = {}
    for app in apps:
        spec = app["spec"]
        sources = spec.get("sources") or [spec["source"]]
        found[app["metadata"]["name"]] = {
            s["targetRevision"] for s in sources if s["repoURL"] == GIT_URL
        }
    return found


def cluster_up(installed: Installed, revision: str) -> subprocess.CompletedProcess[str]:
    sim = installed.sim
    context = sim.kubectl("config", "current-context").stdout.strip()
    return sim.run(
        "clusters/local/cluster-up.sh", check=False, timeout=INSTALL_TIMEOUT + 120,
        CLUSTER_CONTEXT=context, GIT_REPO_URL=GIT_URL, GIT_REVISION=revision,
        INSTALL_TIMEOUT=str(INSTALL_TIMEOUT),
    )  # fmt: skip


def test_cluster_up_moves_the_tree_to_a_revision_and_back(installed: Installed) -> None:
    sim = installed.sim
    checkout = sim.sim.layout.checkout
    subprocess.run(
        ["git", "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{OTHER}"],
        cwd=checkout, check=True, capture_output=True,
    )  # fmt: skip
    before = sim.get_json("applications.argoproj.io", "-n", "argocd")["items"]

    proc = cluster_up(installed, OTHER)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    report(output[-1500:])
    assert f"[2/4] git source {GIT_URL} at {OTHER}" in output
    assert "[4/4] ready" in output and "argocd-server" in output and "grafana-admin" in output
    apps = sim.get_json("applications.argoproj.io", "-n", "argocd")["items"]
    moved = our_revisions(apps)
    assert {name for name, revs in moved.items() if revs and revs != {OTHER}} == set(), moved
    root = next(a for a in apps if a["metadata"]["name"] == "root")
    assert root["spec"]["source"]["targetRevision"] == OTHER
    assert root["spec"]["source"]["kustomize"]["patches"], "the root keeps its source patches"
    assert root["status"]["sync"]["revision"], "root synced at the new revision"

    proc = cluster_up(installed, BRANCH)  # a second run: back, and nothing duplicated
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    after = sim.get_json("applications.argoproj.io", "-n", "argocd")["items"]
    assert sorted(a["metadata"]["name"] for a in after) == sorted(
        a["metadata"]["name"] for a in before
    )
    back = our_revisions(after)
    assert {name for name, revs in back.items() if revs and revs != {BRANCH}} == set(), back
    root = next(a for a in after if a["metadata"]["name"] == "root")
    assert "kustomize" not in root["spec"]["source"], "the committed source needs no patches"


def test_cluster_up_names_a_missing_context_and_cluster_down_keeps_foreign_clusters(
    installed: Installed,
) -> None:
    sim = installed.sim
    proc = sim.run("clusters/local/cluster-up.sh", check=False, CLUSTER_CONTEXT="no-such-context")
    assert proc.returncode == 1
    assert "no kube context named no-such-context" in proc.stderr
    context = sim.kubectl("config", "current-context").stdout.strip()
    proc = sim.run("clusters/local/cluster-down.sh", check=False, CLUSTER_CONTEXT=context)
    assert proc.returncode == 1 and "nothing deleted" in proc.stderr
    sim.kubectl("-n", "argocd", "get", "application", "root")  # still there
