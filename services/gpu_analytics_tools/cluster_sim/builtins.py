"""What K3s ships built in, as the simulation provides it, and the nodes kwok runs.

K3s built-in                      here
--------------------------------  ---------------------------------------------------------
local-path StorageClass (default) the same StorageClass; `LocalPathProvisioner` below plays
                                  the provisioner: it creates a hostPath PV for each claim
RuntimeClass nvidia (GPU agents)  the same RuntimeClass
helm.cattle.io CRDs               HelmChart and HelmChartConfig CRDs without a schema (no
                                  helm-controller runs: Argo CD is started directly)
metrics-server                    none: HPAs see no metrics, as on a fresh K3s before the
                                  first scrape, which is the state the tree must survive
CoreDNS, Traefik, ServiceLB       none: nothing in the simulation resolves or routes
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gpu_analytics_tools.cluster_sim.kube import ApiError, KubeClient, Obj

log = logging.getLogger("cluster-sim")

LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
GPU_LABEL = "nvidia.com/gpu.present"  # terraform/'s GPU agent registers with it
KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}


def _node(name: str, *, cpu: str, memory: str, gpu: bool = False) -> Obj:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "k3s",
        "type": "kwok",
    }
    capacity: dict[str, str] = {"cpu": cpu, "memory": memory, "pods": "110"}
    spec: dict[str, Any] = {}
    if gpu:
        labels[GPU_LABEL] = "true"
        capacity["nvidia.com/gpu"] = "1"
        spec["taints"] = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": dict(KWOK_ANNOTATION)},
        "spec": spec,
        "status": {"capacity": capacity, "allocatable": capacity},
    }


NODES = [
    _node("k3s-server-0", cpu="8", memory="32Gi"),
    _node("k3s-agent-0", cpu="8", memory="32Gi"),
    _node("k3s-gpu-0", cpu="8", memory="32Gi", gpu=True),
]


def _schemaless_crd(group: str, kind: str, plural: str, versions: list[str], scope: str) -> Obj:
    """A CRD that accepts any spec: a stand-in for an operator's CRD whose controller does
    not run here (the offline checks validate these kinds against their real schemas)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": kind.lower(),
                "listKind": f"{kind}List",
            },
            "versions": [
                {
                    "name": v,
                    "served": True,
                    "storage": i == 0,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
                for i, v in enumerate(versions)
            ],
        },
    }


K3S_CRDS = [
    _schemaless_crd("helm.cattle.io", "HelmChart", "helmcharts", ["v1"], "Namespaced"),
    _schemaless_crd("helm.cattle.io", "HelmChartConfig", "helmchartconfigs", ["v1"], "Namespaced"),
]

# Without chart repositories the prometheus-operator-crds chart is left out; the kinds our
# own manifests use get these stand-ins, so the waves after it still sync.
MONITORING_CRDS = [
    _schemaless_crd("monitoring.coreos.com", kind, plural, ["v1"], "Namespaced")
    for kind, plural in [
        ("ServiceMonitor", "servicemonitors"),
        ("PodMonitor", "podmonitors"),
        ("PrometheusRule", "prometheusrules"),
        ("Probe", "probes"),
    ]
] + [
    _schemaless_crd(
        "monitoring.coreos.com",
        "AlertmanagerConfig",
        "alertmanagerconfigs",
        ["v1alpha1"],
        "Namespaced",
    ),
]

# For tests/cluster's server-side apply of the aws tree only (no operator runs here).
EXTERNAL_SECRETS_CRDS = [
    _schemaless_crd("external-secrets.io", kind, plural, ["v1"], scope)
    for kind, plural, scope in [
        ("ExternalSecret", "externalsecrets", "Namespaced"),
        ("SecretStore", "secretstores", "Namespaced"),
        ("ClusterSecretStore", "clustersecretstores", "Cluster"),
        ("ClusterExternalSecret", "clusterexternalsecrets", "Cluster"),
    ]
]

STORAGE = [
    {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "local-path",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    },
    {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": "nvidia"},
        "handler": "nvidia",
    },
]


class LocalPathProvisioner:
    """Plays K3s's local-path provisioner: for each claim of the local-path class that the
    scheduler has placed on a node, a hostPath PersistentVolume pinned to that node and
    pre-bound to the claim (the controller manager's binder completes the binding)."""

    def __init__(self, client: KubeClient, interval: float = 2.0) -> None:
        self.client = client
        self.interval = interval
        self.provisioned = 0

    def _pv_for(self, pvc: Obj) -> Obj | None:
        meta = pvc["metadata"]
        spec = pvc.get("spec") or {}
        if (pvc.get("status") or {}).get("phase") != "Pending" or spec.get("volumeName"):
            return None
        if spec.get("storageClassName", "local-path") != "local-path":
            return None
        node = (meta.get("annotations") or {}).get("volume.kubernetes.io/selected-node")
        if not node:
            return None
        name = f"pvc-{meta['uid']}"
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": name,
                "annotations": {"pv.kubernetes.io/provisioned-by": LOCAL_PATH_PROVISIONER},
            },
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": "local-path",
                "volumeMode": spec.get("volumeMode", "Filesystem"),
                "hostPath": {
                    "path": f"/var/lib/rancher/k3s/storage/{name}",
                    "type": "DirectoryOrCreate",
                },
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/hostname",
                                        "operator": "In",
                                        "values": [node],
                                    }
                                ]
                            }
                        ]
                    }
                },
            },
        }

    def once(self) -> None:
        for pvc in self.client.get("/api/v1/persistentvolumeclaims").get("items", []):
            pv = self._pv_for(pvc)
            if pv is None:
                continue
            try:
                self.client.create("/api/v1/persistentvolumes", pv)
                self.provisioned += 1
                log.info(
                    "provisioned %s for %s/%s",
                    pv["metadata"]["name"],
                    pvc["metadata"]["namespace"],
                    pvc["metadata"]["name"],
                )
            except ApiError as exc:
                if exc.status != 409:  # already there: provisioned on an earlier pass
                    log.warning("provisioning for %s failed: %s", pvc["metadata"]["name"], exc)

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.once)
            except (OSError, ApiError) as exc:
                log.warning("local-path provisioner: %s", exc)
            await asyncio.sleep(self.interval)
