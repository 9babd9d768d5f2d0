"""Kubernetes manifests as YAML streams (helm or kustomize output), read the way Kubernetes'
Go YAML reads them. Shared by `make validate` (scripts/) and the cluster simulation."""

from __future__ import annotations

from typing import Any

import yaml


class ManifestLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading manifests as Kubernetes (Go YAML) does: a plain ``=``
    is the string "=". PyYAML resolves it to the YAML 1.1 ``value`` tag and then has no
    constructor for it; prometheus-operator-crds has such enums (relabel ``action``)."""


def _plain_string(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


ManifestLoader.add_constructor("tag:yaml.org,2002:value", _plain_string)


def load_manifests(text: str) -> list[dict[str, Any]]:
    """The mapping documents of a multi-document manifest stream."""
    return [d for d in yaml.load_all(text, Loader=ManifestLoader) if isinstance(d, dict)]
