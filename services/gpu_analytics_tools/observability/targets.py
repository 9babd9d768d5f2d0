"""The labels Prometheus gives our targets in the cluster, derived from the manifests.

The Prometheus operator turns a ServiceMonitor endpoint into a scrape job whose targets carry
`job` (the Service's name; no jobLabel is set), `namespace`, `service`, `endpoint` (the port
name), `pod` and `container` (the container that declares the target port). Locally the same
labels are set as static labels, so rules and dashboards run unchanged on `make dev`. They are
read from the bases that hold ServiceMonitors (the pipeline's services/deploy/base, the
brokers' platform/kafka/base) rather than repeated, so a renamed Service or port shows here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpu_analytics_tools.stack.paths import repo_root

# The Kustomize bases with ServiceMonitors for what runs locally too.
MONITORED_BASES = ("services/deploy/base", "platform/kafka/base")


@dataclass(frozen=True)
class Target:
    service: str
    port: int  # the Service's port, which the local process listens on too
    labels: dict[str, str]


def _manifests(base: Path) -> tuple[str, list[dict[str, Any]]]:
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        docs.extend(d for d in yaml.safe_load_all((base / resource).read_text()) if d)
    return kustomization["namespace"], docs


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def all_targets(root: Path | None = None) -> dict[str, Target]:
    """The targets of every base in MONITORED_BASES, keyed by Service name."""
    root = root or repo_root()
    found: dict[str, Target] = {}
    for base in MONITORED_BASES:
        found.update(cluster_targets(root / base))
    return found


def cluster_targets(base: Path | None = None) -> dict[str, Target]:
    """Per ServiceMonitor endpoint of a base: the Service's port and the target labels
    (`pod` is the workload's name with `-local`: one local process per service)."""
    base = base or repo_root() / "services" / "deploy" / "base"
    namespace, docs = _manifests(base)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    targets: dict[str, Target] = {}
    for monitor in by_kind.get("ServiceMonitor", []):
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s for s in by_kind.get("Service", []) if _matches(selector, s["metadata"]["labels"])
        ]
        if len(services) != 1:
            raise ValueError(
                f"ServiceMonitor {monitor['metadata']['name']}: {len(services)} Services match"
            )
        service = services[0]
        for endpoint in monitor["spec"]["endpoints"]:
            port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
            deployment, container = _container(by_kind, service, port["targetPort"])
            name = service["metadata"]["name"]
            targets[name] = Target(
                service=name,
                port=int(port["port"]),
                labels={
                    "job": name,
                    "namespace": namespace,
                    "service": name,
                    "endpoint": endpoint["port"],
                    "pod": f"{deployment}-local",
                    "container": container,
                },
            )
    return targets


def _container(
    by_kind: dict[str, list[dict[str, Any]]], service: dict[str, Any], port_name: str
) -> tuple[str, str]:
    """The Deployment or StatefulSet behind the Service and its container that names
    `port_name`."""
    for workload in by_kind.get("Deployment", []) + by_kind.get("StatefulSet", []):
        template = workload["spec"]["template"]
        if not _matches(service["spec"]["selector"], template["metadata"]["labels"]):
            continue
        for container in template["spec"]["containers"]:
            if any(p.get("name") == port_name for p in container.get("ports", [])):
                return workload["metadata"]["name"], container["name"]
    raise ValueError(f"Service {service['metadata']['name']}: no workload has port {port_name}")
