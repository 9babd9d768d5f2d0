"""Planted defects, pushed to the branch Argo CD syncs after the install: each one must stop
the tree from converging, and `gpu-analytics cluster wait` must name it. The commit is then
reverted and the tree converges again."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gpu_analytics_tools.cluster_sim.layout import BRANCH
from gpu_analytics_tools.testing.cluster_sim import Installed, report

APP = """apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
  labels:
    gpu-analytics.io/source: git
  annotations:
    argocd.argoproj.io/sync-wave: "{wave}"
  finalizers:
    - resources-finalizer.argocd.argoproj.io
spec:
  project: {project}
  source:
    repoURL: from-root-app
    targetRevision: from-root-app
    path: {path}
  destination:
    server: https://kubernetes.default.svc
    namespace: {namespace}
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
"""


def git(installed: Installed, *args: str) -> str:
    return installed.sim.run(
        "git", "-c", "user.name=test", "-c", "user.email=test@localhost", *args
    ).stdout


def push(installed: Installed, files: dict[str, str], message: str) -> None:
    checkout = installed.sim.sim.layout.checkout
    for rel, text in files.items():
        path = checkout / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(installed, "add", "-A")
    git(installed, "commit", "--quiet", "-m", message)
    git(installed, "push", "--quiet", "origin", BRANCH)
    refresh(installed)


def refresh(installed: Installed) -> None:
    """Stop the syncs the plant left running (a failing child retries its sync, and Argo CD
    deletes an Application only once its sync has ended), then make the root read git now."""
    argocd = installed.sim.env()["ARGOCD"]
    names = installed.sim.run(argocd, "app", "list", "-o", "name").stdout.split()
    for name in (n.rpartition("/")[2] for n in names):
        if name == "root" or name.startswith("planted-"):
            installed.sim.run(argocd, "app", "terminate-op", name, check=False)
    installed.sim.run(argocd, "app", "get", "root", "--hard-refresh", "-o", "json")


def wait(installed: Installed, timeout: int) -> subprocess.CompletedProcess[str]:
    return installed.sim.run(
        installed.sim.env()["GPU_ANALYTICS"], "cluster", "wait", "--timeout", str(timeout),
        "--interval", "3", check=False, timeout=timeout + 60,
    )  # fmt: skip


def add_apps(installed: Installed, *names: str) -> dict[str, str]:
    kustomization = installed.sim.sim.layout.checkout / "apps" / "pipeline" / "kustomization.yaml"
    text = kustomization.read_text() + "".join(f"  - {n}.yaml\n" for n in names)
    return {"apps/pipeline/kustomization.yaml": text}


@pytest.fixture
def planted(installed: Installed) -> Iterator[Installed]:
    yield installed
    git(installed, "revert", "--no-edit", "HEAD")
    git(installed, "push", "--quiet", "origin", BRANCH)
    refresh(installed)
    started = time.monotonic()
    proc = wait(installed, 420)
    report(f"converged again {time.monotonic() - started:.0f}s after the revert")
    assert proc.returncode == 0, (
        f"the tree did not converge after the revert:\n{proc.stderr[-3000:]}"
    )


def test_a_destination_the_project_forbids_stops_the_tree(planted: Installed) -> None:
    files = add_apps(planted, "planted-forbidden")
    files["apps/pipeline/planted-forbidden.yaml"] = APP.format(
        name="planted-forbidden", wave=5, project="pipeline", path="clusters/local/pipeline",
        namespace="default",
    )  # fmt: skip
    push(planted, files, "planted: an Application outside its project's destinations")
    proc = wait(planted, 90)
    report(proc.stderr[-1500:])
    assert proc.returncode == 1
    blocking = proc.stderr.rsplit("blocking:", 1)[-1]
    assert "planted-forbidden" in blocking and "InvalidSpecError" in blocking


def test_a_wave_inversion_stops_the_tree(planted: Installed) -> None:
    # planted-early (wave 5) writes into a namespace that planted-late (wave 6) creates.
    files = add_apps(planted, "planted-early", "planted-late")
    files["apps/pipeline/planted-early.yaml"] = APP.format(
        name="planted-early", wave=5, project="default", path="tests/cluster/planted/early",
        namespace="planted",
    )  # fmt: skip
    files["apps/pipeline/planted-late.yaml"] = APP.format(
        name="planted-late", wave=6, project="default", path="tests/cluster/planted/late",
        namespace="planted",
    )  # fmt: skip
    files["tests/cluster/planted/early/kustomization.yaml"] = "resources: [configmap.yaml]\n"
    files["tests/cluster/planted/early/configmap.yaml"] = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: planted, namespace: planted}\n"
        "data: {written: before its namespace exists}\n"
    )
    files["tests/cluster/planted/late/kustomization.yaml"] = "resources: [namespace.yaml]\n"
    files["tests/cluster/planted/late/namespace.yaml"] = (
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: planted}\n"
    )
    push(planted, files, "planted: a wave that needs a later one")
    proc = wait(planted, 90)
    report(proc.stderr[-1500:])
    assert proc.returncode == 1
    blocking = proc.stderr.rsplit("blocking:", 1)[-1]
    assert "planted-early" in blocking and "planted-late" not in proc.stderr
    assert planted.sim.kubectl("get", "namespace", "planted", check=False).returncode != 0


def sync_failures(received: list[tuple[str, Any]], app: str) -> list[dict[str, Any]]:
    return [
        body for path, body in received
        if path == "/on-call" and body.get("event") == "sync-failed"
        and body.get("application") == app
    ]  # fmt: skip


def test_a_failed_sync_is_sent_to_on_call(planted: Installed) -> None:
    """Argo CD's notifications controller tells on-call, through the session's receiver. The
    planted Application retries no sync (Argo CD's automated default is five), so its one
    attempt is the failure."""
    files = add_apps(planted, "planted-failing")
    files["apps/pipeline/planted-failing.yaml"] = APP.format(
        name="planted-failing", wave=5, project="default", path="tests/cluster/planted/failing",
        namespace="planted-nowhere",
    ) + "    retry:\n      limit: 0\n"  # fmt: skip
    files["tests/cluster/planted/failing/kustomization.yaml"] = "resources: [configmap.yaml]\n"
    files["tests/cluster/planted/failing/configmap.yaml"] = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: planted, namespace: planted-nowhere}\n"
    )
    push(planted, files, "planted: an Application whose sync fails")
    received = planted.sim.webhooks.wait(
        120, until=lambda got: sync_failures(got, "planted-failing")
    )
    pages = sync_failures(received, "planted-failing")
    report("on-call received: " + json.dumps(pages[:1], indent=1))
    assert pages, [body for _, body in received][-5:]
    page = pages[0]
    assert page["project"] == "default" and page["sync"] == "OutOfSync"
    assert 'namespaces "planted-nowhere" not found' in page["message"]  # Argo CD's words
    assert len(page["revision"]) == 40
    assert page["url"] == "http://localhost:8080/applications/planted-failing"
    assert len(pages) == 1  # once per sync attempt, not once per refresh
