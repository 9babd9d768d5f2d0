"""Argo CD's settings in the simulation (cluster_sim/argocd.py): with the pinned argo-cd chart
in CHARTS_DIR, argocd-cm and its siblings as the chart renders them from the HelmChart (our
values over the chart's defaults); without it, from our values alone, which the supervisor
logs as a warning."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from gpu_analytics_tools.cluster_sim import argocd
from gpu_analytics_tools.cluster_sim.layout import kubernetes_version, tool
from gpu_analytics_tools.testing.cluster_sim import REPO
from gpu_analytics_tools.tools import ToolMissingError

HELMCHART = REPO / "bootstrap" / "argo-cd" / "helmchart.yaml"


def helm() -> Path:
    try:
        return tool("helm")
    except ToolMissingError as exc:
        pytest.skip(str(exc))


def test_the_chart_renders_our_checks_over_its_own_defaults(tmp_path: Path) -> None:
    charts = os.environ.get("CHARTS_DIR")
    archive = argocd.chart_archive(Path(charts) if charts else None, HELMCHART)
    if archive is None:
        pytest.skip("the pinned argo-cd chart is not in CHARTS_DIR")
    objs = argocd.rendered_settings(helm(), archive, HELMCHART, kubernetes_version(), tmp_path)
    by_name = {o["metadata"]["name"]: o for o in objs}
    assert set(by_name) == {"argocd-cm", "argocd-cmd-params-cm", "argocd-rbac-cm", "argocd-secret"}
    ours = argocd.chart_values(HELMCHART)["configs"]["cm"]
    cm = by_name["argocd-cm"]["data"]
    for key in ("resource.customizations.health.argoproj.io_Application",
                "resource.customizations.health.autoscaling_HorizontalPodAutoscaler"):  # fmt: skip
        assert cm[key].strip() == ours[key].strip()
    # What the values alone do not have: the chart's defaults.
    assert "resource.customizations.ignoreResourceUpdates.all" in cm
    assert "resource.customizations.ignoreResourceUpdates.all" not in ours
    assert all(o["metadata"]["namespace"] == "argocd" for o in objs)
    assert all(o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd" for o in objs)


def test_a_chart_that_renders_no_argo_cd_settings_is_refused(tmp_path: Path) -> None:
    binary = helm()
    env = {
        **os.environ,
        "HELM_CONFIG_HOME": str(tmp_path / "cfg"),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
    }
    subprocess.run(
        [str(binary), "create", str(tmp_path / "argo-cd")], check=True, capture_output=True, env=env
    )
    subprocess.run(
        [str(binary), "package", str(tmp_path / "argo-cd"), "--version", "0.0.1",
         "--destination", str(tmp_path)],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    doc = yaml.safe_load(HELMCHART.read_text())
    doc["spec"]["version"] = "0.0.1"
    helmchart = tmp_path / "helmchart.yaml"
    helmchart.write_text(yaml.safe_dump(doc))
    archive = argocd.chart_archive(tmp_path, helmchart)
    assert archive == tmp_path / "argo-cd-0.0.1.tgz"
    with pytest.raises(
        RuntimeError,
        match="renders no argocd-cm, argocd-cmd-params-cm, argocd-notifications-cm, argocd-rbac-cm",
    ):
        argocd.rendered_settings(
            binary, archive, helmchart, kubernetes_version(), tmp_path / "work"
        )


def test_without_the_chart_the_values_alone_give_the_settings(tmp_path: Path) -> None:
    assert argocd.chart_archive(None, HELMCHART) is None
    assert argocd.chart_archive(tmp_path, HELMCHART) is None  # a CHARTS_DIR without it
    objs = argocd.settings(argocd.chart_values(HELMCHART))
    names = [o["metadata"]["name"] for o in objs]
    assert names == [
        "argocd-cm", "argocd-cmd-params-cm", "argocd-rbac-cm", "argocd-notifications-cm",
        "argocd-secret",
    ]  # fmt: skip
    # As the chart writes it: the context, then every service, template and trigger as is.
    notifications = objs[3]["data"]
    assert notifications["context"] == "argocdUrl: http://localhost:8080\n"
    assert notifications["service.webhook.on-call"].startswith("url: $on-call-webhook-url")
    assert {"template.app-deployed", "trigger.on-sync-failed", "subscriptions"} <= set(
        notifications
    )
    assert yaml.safe_load(notifications["subscriptions"])[0]["recipients"] == ["on-call"]
