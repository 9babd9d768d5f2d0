"""The health checks of bootstrap/argo-cd/helmchart.yaml, evaluated by Argo CD's own Lua
engine (`argocd admin settings resource-overrides health`) on Application and HPA objects
in the states a fresh install passes through. A check that reads a child as Healthy while
its sync still runs, or that gates the root on itself, lets waves overlap or deadlock."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_analytics_tools.cluster_sim import argocd

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / ".tools" / "bin" / "argocd"
HELMCHART = REPO / "bootstrap" / "argo-cd" / "helmchart.yaml"

pytestmark = pytest.mark.skipif(not ARGOCD.exists(), reason="argocd not installed (make setup)")


@pytest.fixture(scope="module")
def argocd_cm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """argocd-cm as the bootstrap chart's values give it."""
    cm = next(
        o
        for o in argocd.settings(argocd.chart_values(HELMCHART))
        if o["metadata"]["name"] == "argocd-cm"
    )
    path = tmp_path_factory.mktemp("cm") / "argocd-cm.yaml"
    path.write_text(yaml.safe_dump(cm))
    return path


def health(obj: dict[str, Any], cm: Path, tmp_path: Path) -> tuple[str, str]:
    """(status, message) as Argo CD assesses `obj` with the checks in `cm`."""
    path = tmp_path / "obj.yaml"
    path.write_text(yaml.safe_dump(obj))
    proc = subprocess.run(
        [str(ARGOCD), "admin", "settings", "resource-overrides", "health", str(path),
         "--argocd-cm-path", str(cm)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    fields = dict(line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)
    return fields.get("STATUS", "").strip(), fields.get("MESSAGE", "").strip()


def application(name: str = "kafka", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": "argocd",
            "annotations": {
                "argocd.argoproj.io/tracking-id": f"root:argoproj.io/Application:argocd/{name}"
            },
        },
        "spec": {"project": "platform"},
        "status": status,
    }


HEALTHY = {"status": "Healthy"}
SYNCED = {"status": "Synced"}
SUCCEEDED = {"phase": "Succeeded", "message": "successfully synced (all tasks run)"}


def test_child_whose_first_sync_still_runs_is_progressing(argocd_cm: Path, tmp_path: Path) -> None:
    # What Argo CD reports while the sync creates the child's resources: Missing ones are
    # left out of its health, so it reads Healthy.
    app = application(
        health=HEALTHY,
        sync={"status": "OutOfSync"},
        operationState={"phase": "Running", "message": "waiting for completion of hook"},
    )
    assert health(app, argocd_cm, tmp_path)[0] == "Progressing"


def test_child_out_of_sync_is_progressing(argocd_cm: Path, tmp_path: Path) -> None:
    app = application(health=HEALTHY, sync={"status": "OutOfSync"}, operationState=SUCCEEDED)
    assert health(app, argocd_cm, tmp_path)[0] == "Progressing"


def test_child_with_a_requested_operation_is_progressing(argocd_cm: Path, tmp_path: Path) -> None:
    app = application(health=HEALTHY, sync=SYNCED, operationState=SUCCEEDED)
    app["operation"] = {"sync": {"revision": "HEAD"}}
    assert health(app, argocd_cm, tmp_path)[0] == "Progressing"


def test_child_never_reconciled_is_progressing(argocd_cm: Path, tmp_path: Path) -> None:
    app = application()
    del app["status"]
    assert health(app, argocd_cm, tmp_path)[0] == "Progressing"


def test_synced_child_takes_its_resources_health(argocd_cm: Path, tmp_path: Path) -> None:
    done = application(health=HEALTHY, sync=SYNCED, operationState=SUCCEEDED)
    assert health(done, argocd_cm, tmp_path) == ("Healthy", "")
    degraded = application(
        health={"status": "Degraded", "message": "Deployment processor has timed out"},
        sync=SYNCED,
        operationState=SUCCEEDED,
    )
    assert health(degraded, argocd_cm, tmp_path)[0] == "Degraded"


def test_root_is_healthy_as_its_own_resource(argocd_cm: Path, tmp_path: Path) -> None:
    # After one failed attempt the root reads Degraded; its retries wait on every resource
    # of wave 0, itself included.
    root = application(
        "root",
        health={"status": "Degraded"},
        sync={"status": "OutOfSync"},
        operationState={"phase": "Running", "message": "waiting for healthy state of root"},
    )
    assert health(root, argocd_cm, tmp_path) == ("Healthy", "manages itself")


def hpa(*conditions: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "processor", "namespace": "pipeline"},
        "spec": {
            "maxReplicas": 6,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "processor"},
        },
        "status": {
            "currentReplicas": 1,
            "desiredReplicas": 1,
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": f"{t} {r}"}
                for t, s, r in conditions
            ],
        },
    }


def test_hpa_without_metrics_yet_is_healthy(argocd_cm: Path, tmp_path: Path) -> None:
    status, message = health(
        hpa(("AbleToScale", "True", "SucceededGetScale"),
            ("ScalingActive", "False", "FailedGetResourceMetric")),
        argocd_cm, tmp_path,
    )  # fmt: skip
    assert (status, message) == ("Healthy", "no metrics yet: ScalingActive FailedGetResourceMetric")


def test_hpa_with_a_broken_target_is_degraded(argocd_cm: Path, tmp_path: Path) -> None:
    for broken in (
        (("AbleToScale", "False", "FailedGetScale"),),
        (
            ("AbleToScale", "True", "SucceededGetScale"),
            ("ScalingActive", "False", "InvalidSelector"),
        ),
    ):
        assert health(hpa(*broken), argocd_cm, tmp_path)[0] == "Degraded"


def test_hpa_scaling_is_healthy(argocd_cm: Path, tmp_path: Path) -> None:
    ok = hpa(
        ("AbleToScale", "True", "ReadyForNewScale"), ("ScalingActive", "True", "ValidMetricFound")
    )
    assert health(ok, argocd_cm, tmp_path)[0] == "Healthy"
