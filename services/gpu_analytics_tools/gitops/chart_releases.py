"""The chart releases of a cluster as Argo CD and K3s install them: from each Application's
helm source (release name, namespace, value files, values) and each K3s HelmChart (its name,
targetNamespace and valuesContent), with the values layers in helm's order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpu_analytics_tools.gitops.findings import Finding

Resource = dict[str, Any]


# What Argo CD and K3s read from an Application's helm block / a HelmChart's spec. Anything
# else there would change the rendering in a way this step does not reproduce: an issue.
APP_HELM_KEYS = {"releaseName", "valueFiles", "values", "valuesObject"}
HELMCHART_UNSUPPORTED = {"set", "valuesSecrets", "chartContent"}


@dataclass(frozen=True)
class ValuesLayer:
    """One set of values, in the order helm merges them (later wins)."""

    source: str  # a repository file, or the manifest field that holds the values
    text: str
    path: Path | None = None  # the file itself, for value files


@dataclass(frozen=True)
class Release:
    cluster: str
    owner: str  # "Application alloy", "HelmChart argo-cd"
    chart: str
    version: str
    repo_url: str
    name: str
    namespace: str
    values: tuple[ValuesLayer, ...]

    @property
    def label(self) -> str:
        return f"{self.chart}@{self.version}"

    @property
    def where(self) -> str:
        return f"[{self.cluster}] {self.owner} ({self.label})"


def dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def app_releases(cluster: str, app: Resource, repo: Path) -> tuple[list[Release], list[Finding]]:
    """The chart sources of one Application, with their values as Argo CD passes them."""
    name = str(dig(app, "metadata", "name"))
    spec = app.get("spec") or {}
    sources: list[Resource] = spec.get("sources") or (
        [spec["source"]] if spec.get("source") else []
    )
    refs = {str(s["ref"]) for s in sources if s.get("ref")}
    releases: list[Release] = []
    issues: list[Finding] = []
    for source in sources:
        if not source.get("chart"):
            continue
        where = f"[{cluster}] Application {name}"
        helm = source.get("helm") or {}
        issues += [
            Finding("chart-render", where, f"helm.{key} is not reproduced by validate")
            for key in sorted(set(helm) - APP_HELM_KEYS)
        ]
        layers: list[ValuesLayer] = []
        unreadable = []
        for entry in helm.get("valueFiles") or []:
            ref, _, rel = str(entry).partition("/")
            path = repo / rel
            if ref.startswith("$") and ref[1:] in refs and path.is_file():
                layers.append(ValuesLayer(rel, path.read_text(encoding="utf-8"), path))
            else:
                unreadable.append(str(entry))
        if unreadable:
            # Rendered without them, the output would not be Argo CD's.
            why = f"not rendered: value files {', '.join(unreadable)} not in this repository"
            issues.append(Finding("chart-render", where, why))
            continue
        # Argo CD passes valuesObject when set, else the values string, after the files.
        if helm.get("valuesObject") is not None:
            obj = yaml.safe_dump(helm["valuesObject"], sort_keys=False)
            layers.append(ValuesLayer(f"{where} helm.valuesObject", obj))
        elif helm.get("values"):
            layers.append(ValuesLayer(f"{where} helm.values", str(helm["values"])))
        releases.append(
            Release(
                cluster=cluster,
                owner=f"Application {name}",
                chart=str(source["chart"]),
                version=str(source.get("targetRevision", "")),
                repo_url=str(source.get("repoURL", "")),
                name=str(helm.get("releaseName") or name),
                namespace=str(dig(spec, "destination", "namespace") or "default"),
                values=tuple(layers),
            )
        )
    return releases, issues


def helmchart_release(cluster: str, res: Resource, file: str) -> tuple[Release, list[Finding]]:
    """A K3s HelmChart as helm-controller installs it: release = its name, namespace = its
    targetNamespace, values = its valuesContent (`file`: where it is declared)."""
    name = str(dig(res, "metadata", "name"))
    spec = res.get("spec") or {}
    where = f"[{cluster}] HelmChart {name}"
    issues = [
        Finding("chart-render", where, f"spec.{key} is not reproduced by validate")
        for key in sorted(HELMCHART_UNSUPPORTED & set(spec))
    ]
    layers = (
        (ValuesLayer(f"{file} spec.valuesContent", str(spec["valuesContent"])),)
        if spec.get("valuesContent")
        else ()
    )
    release = Release(
        cluster=cluster,
        owner=f"HelmChart {name}",
        chart=str(spec.get("chart", "")),
        version=str(spec.get("version", "")),
        repo_url=str(spec.get("repo", "")),
        name=name,
        namespace=str(
            spec.get("targetNamespace") or dig(res, "metadata", "namespace") or "default"
        ),
        values=layers,
    )
    return release, issues


def manifest_file(repo: Path, origin: str, res: Resource) -> str:
    """The file under repo/origin that declares res (kind and name), else the folder."""
    for path in sorted((repo / origin).glob("*.yaml")):
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError:
            continue
        for doc in docs:
            if (
                isinstance(doc, dict)
                and doc.get("kind") == res.get("kind")
                and dig(doc, "metadata", "name") == dig(res, "metadata", "name")
            ):
                return path.relative_to(repo).as_posix()
    return origin
