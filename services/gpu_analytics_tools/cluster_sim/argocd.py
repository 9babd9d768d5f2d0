"""Argo CD in the simulation: its settings as the bootstrap HelmChart's values give them,
and the processes the chart would run as pods (repo-server, application-controller,
argocd-server, redis, and the notifications controller where the values enable it). The
ApplicationSet controller and Dex are left out: the tree uses neither."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gpu_analytics_tools.cluster_sim.kube import Obj
from gpu_analytics_tools.gitops.chart_releases import helmchart_release
from gpu_analytics_tools.gitops.helm import TemplateError, helm_template

NAMESPACE = "argocd"
PART_OF = {"app.kubernetes.io/part-of": "argocd"}  # Argo CD only watches labelled settings

# ConfigMaps the chart renders from `configs.<key>` of its values.
CHART_CONFIGMAPS = {"cm": "argocd-cm", "params": "argocd-cmd-params-cm", "rbac": "argocd-rbac-cm"}
CHART_KEYS_NOT_DATA = {"create", "annotations", "labels"}  # chart switches, not settings
NOTIFICATIONS_CM = "argocd-notifications-cm"


def notifications_enabled(values: dict[str, Any]) -> bool:
    """The chart's `notifications.enabled` (its default is on)."""
    return bool((values.get("notifications") or {}).get("enabled", True))


def notifications_settings(values: dict[str, Any]) -> Obj:
    """argocd-notifications-cm as the chart writes it from `notifications`: the context with
    argocdUrl, then the notifiers, templates and triggers as they are, the subscriptions as
    YAML text."""
    section = values.get("notifications") or {}
    context = {"argocdUrl": section.get("argocdUrl") or "", **(section.get("context") or {})}
    data = {"context": yaml.safe_dump(context)}
    for key in ("notifiers", "templates", "triggers"):
        data.update({k: _as_data(v) for k, v in (section.get(key) or {}).items()})
    if subscriptions := section.get("subscriptions"):
        data["subscriptions"] = yaml.safe_dump(subscriptions)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NOTIFICATIONS_CM, "namespace": NAMESPACE, "labels": dict(PART_OF)},
        "data": data,
    }


def chart_values(helmchart: Path) -> dict[str, Any]:
    """The values of the argo-cd HelmChart (bootstrap/argo-cd/helmchart.yaml)."""
    doc = yaml.safe_load(helmchart.read_text())
    values: dict[str, Any] = yaml.safe_load(doc["spec"]["valuesContent"]) or {}
    return values


def _as_data(value: Any) -> str:
    """A values entry as the chart writes it into ConfigMap data."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        return yaml.safe_dump(value).strip()
    return str(value)


def settings(values: dict[str, Any]) -> list[Obj]:
    """argocd-cm, argocd-cmd-params-cm, argocd-rbac-cm and argocd-secret with the data the
    chart writes into them from `configs` (strings, as in a ConfigMap)."""
    configs = values.get("configs") or {}
    objs: list[Obj] = []
    for key, name in CHART_CONFIGMAPS.items():
        section = configs.get(key) or {}
        data = {k: _as_data(v) for k, v in section.items() if k not in CHART_KEYS_NOT_DATA}
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": NAMESPACE, "labels": dict(PART_OF)},
                "data": data,
            }
        )
    if notifications_enabled(values):
        objs.append(notifications_settings(values))
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "argocd-secret", "namespace": NAMESPACE, "labels": dict(PART_OF)},
            "type": "Opaque",
        }
    )
    return objs


def chart_archive(charts_dir: Path | None, helmchart: Path) -> Path | None:
    """The packaged argo-cd chart at the HelmChart's version, where CHARTS_DIR has it."""
    if charts_dir is None:
        return None
    spec = yaml.safe_load(helmchart.read_text())["spec"]
    archive = charts_dir / f"{spec['chart']}-{spec['version']}.tgz"
    return archive if archive.is_file() else None


def rendered_settings(
    helm: Path, archive: Path, helmchart: Path, kube_version: str, workdir: Path
) -> list[Obj]:
    """argocd-cm, argocd-cmd-params-cm, argocd-rbac-cm (and argocd-notifications-cm where the
    values enable notifications) as the chart renders them from the HelmChart, as K3s's
    helm-controller installs it (release: the HelmChart's name, namespace: its
    targetNamespace): our values over the chart's defaults, such as its ignoreResourceUpdates
    rules, which `settings` cannot know. argocd-secret as `settings`."""
    doc = yaml.safe_load(helmchart.read_text())
    release, _ = helmchart_release("simulation", doc, str(helmchart))
    try:
        docs = helm_template(
            str(helm), release, archive, home=workdir / "helm", kube_version=kube_version
        )
    except TemplateError as exc:
        raise RuntimeError(f"helm template {archive.name}: {exc}") from exc
    wanted = set(CHART_CONFIGMAPS.values())
    if notifications_enabled(chart_values(helmchart)):
        wanted.add(NOTIFICATIONS_CM)
    found = {
        obj["metadata"]["name"]: obj
        for obj in docs
        if obj.get("kind") == "ConfigMap" and obj["metadata"]["name"] in wanted
    }
    for obj in found.values():
        obj["metadata"]["namespace"] = NAMESPACE
    if missing := wanted - set(found):
        raise RuntimeError(f"{archive.name} renders no {', '.join(sorted(missing))}")
    secret = [o for o in settings({}) if o["kind"] == "Secret"]
    return [found[name] for name in sorted(wanted)] + secret


def env(kubeconfig: Path, redis: str, home: Path, path: str, tmp: Path) -> dict[str, str]:
    """Environment of every Argo CD process: the simulation's API server as Argo CD's
    in-cluster destination (its local-development switch), redis on loopback."""
    return {
        "PATH": path,
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "KUBECONFIG": str(kubeconfig),
        "ARGOCD_FAKE_IN_CLUSTER": "true",
        "REDIS_SERVER": redis,
        "ARGOCD_GPG_ENABLED": "false",
        "ARGOCD_EXEC_TIMEOUT": "180s",
    }


GIT_VERIFY_WRAPPER = """#!/bin/sh
# The repo-server runs this for every revision it resolves (Argo CD's image ships its own
# under this name). Signature checks are off here; report what git says and never fail.
rev=${1:?usage: git-verify-wrapper.sh REVISION}
if git describe --exact-match "$rev" >/dev/null 2>&1; then
  git verify-tag "$rev" 2>&1
else
  git verify-commit "$rev" 2>&1
fi
exit 0
"""
