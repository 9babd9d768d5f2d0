"""Point a cluster's tree at another git source (a fork, a branch, a commit) at install time.

clusters/<name>/root-app.yaml names the git source once and the git-source component copies it
into every Application and AppProject when the tree is built. `make cluster-up` installs the
root at the user's fork and branch instead, without a commit: the root it applies carries
`spec.source.kustomize.patches` that set the same fields to the other source whenever Argo CD
renders the tree (patches apply after the component's replacements, so they win), and the
root's own source fields are in its ignoreDifferences (with RespectIgnoreDifferences), so the
root's sync of itself keeps them.

The patches select by the labels apps/git-source/kustomization.yaml documents:
`gpu-analytics.io/source=git` (spec.source) and `=chart-values` (spec.sources, the values
source second: tests/gitops checks that order), every AppProject's first sourceRepos entry,
and the root.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import yaml

INSTALL_LABEL = "gpu-analytics.io/install"


def _ops(prefix: str, url: str, revision: str | None) -> str:
    ops = [{"op": "replace", "path": f"{prefix}/repoURL", "value": url}]
    if revision is not None:
        ops.append({"op": "replace", "path": f"{prefix}/targetRevision", "value": revision})
    return yaml.safe_dump(ops, sort_keys=False)


def source_patches(url: str, revision: str) -> list[dict[str, Any]]:
    """Kustomize patches (as Argo CD's spec.source.kustomize.patches) moving the tree."""
    return [
        {
            "target": {"kind": "Application", "name": "root"},
            "patch": _ops("/spec/source", url, revision),
        },
        {
            "target": {"kind": "Application", "labelSelector": "gpu-analytics.io/source=git"},
            "patch": _ops("/spec/source", url, revision),
        },
        {
            "target": {
                "kind": "Application",
                "labelSelector": "gpu-analytics.io/source=chart-values",
            },
            "patch": _ops("/spec/sources/1", url, revision),
        },
        {
            "target": {"kind": "AppProject"},
            "patch": yaml.safe_dump(
                [{"op": "replace", "path": "/spec/sourceRepos/0", "value": url}], sort_keys=False
            ),
        },
    ]


def install_manifests(
    docs: Iterable[dict[str, Any]], url: str | None = None, revision: str | None = None
) -> list[dict[str, Any]]:
    """The objects labelled for install (the root and the AppProjects), moved to `url` at
    `revision` when either differs from what the tree names."""
    chosen = [
        copy.deepcopy(d)
        for d in docs
        if d and d.get("metadata", {}).get("labels", {}).get(INSTALL_LABEL) == "true"
    ]
    roots = [d for d in chosen if d["kind"] == "Application" and d["metadata"]["name"] == "root"]
    if len(roots) != 1:
        raise ValueError(
            f"expected one root Application labelled {INSTALL_LABEL}, found {len(roots)}"
        )
    source = roots[0]["spec"]["source"]
    url = url or source["repoURL"]
    revision = revision or source["targetRevision"]
    if (url, revision) == (source["repoURL"], source["targetRevision"]):
        return chosen
    source["repoURL"], source["targetRevision"] = url, revision
    source.setdefault("kustomize", {})["patches"] = source_patches(url, revision)
    for doc in chosen:
        if doc["kind"] == "AppProject":
            repos = doc["spec"].get("sourceRepos", [])
            if repos:
                repos[0] = url
    return chosen
