"""What a packaged chart reads from values (its defaults, its values.schema.json, its
subcharts under their aliases, `global`), and the keys of our values it does not read:
`check_values` finds a misspelt or stale key before a cluster silently ignores it."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpu_analytics_tools.gitops.chart_releases import Resource, ValuesLayer
from gpu_analytics_tools.gitops.findings import Finding

KeyPath = tuple[str, ...]


# Values maps that a chart copies through whole (toYaml, range) although its defaults list
# some keys: every key below them is read. Key: (chart, key path as check_values prints it).
FREE_FORM_VALUES: dict[tuple[str, str], str] = {
    ("argo-cd", "configs.cm"): "every key but create/annotations becomes an argocd-cm entry "
    '(templates/_helpers.tpl "argo-cd.config.cm")',
    ("argo-cd", "configs.params"): "every key but create/annotations becomes an "
    'argocd-cmd-params-cm entry (templates/_helpers.tpl "argo-cd.config.params")',
    # Kubernetes objects the charts copy into the pod spec with toYaml; kubeconform -strict
    # then checks every field below them on the rendered output.
    ("alloy", "configReloader.resources"): "toYaml in templates/containers/_watch.yaml",
    ("kube-prometheus-stack", "grafana.containerSecurityContext"): (
        "toYaml in the grafana subchart's templates/_pod.tpl"
    ),
    ("kube-prometheus-stack", "grafana.sidecar.securityContext"): (
        "toYaml for every sidecar in the grafana subchart's templates/_pod.tpl"
    ),
    ("kube-prometheus-stack", "prometheus-node-exporter.securityContext"): (
        "toYaml in the prometheus-node-exporter subchart's templates/daemonset.yaml"
    ),
    ("kube-prometheus-stack", "prometheus-node-exporter.containerSecurityContext"): (
        "toYaml in the prometheus-node-exporter subchart's templates/daemonset.yaml"
    ),
}


@dataclass
class ChartValues:
    """What a packaged chart reads from values: defaults, schema, subcharts, dependency keys."""

    name: str
    version: str
    defaults: dict[str, Any]
    schema: Any
    subcharts: dict[str, ChartValues]  # by the key the parent's values use (alias or name)
    # Dependency conditions and tags as a nested map with None leaves: helm reads them too.
    dependency_keys: dict[str, Any]
    reads_api_versions: bool  # a template asks .Capabilities.APIVersions


def load_chart(archive: Path) -> ChartValues:
    with tarfile.open(archive) as tar:
        return chart_from_tar(tar)


def chart_from_tar(tar: tarfile.TarFile) -> ChartValues:
    files: dict[str, bytes] = {}
    for member in tar.getmembers():
        handle = tar.extractfile(member) if member.isfile() else None
        if handle is not None:
            # A packaged chart is one top folder named after the chart.
            files[member.name.partition("/")[2]] = handle.read()
    return chart_from_files(files)


def chart_from_files(files: dict[str, bytes]) -> ChartValues:
    meta = yaml.safe_load(files.get("Chart.yaml", b"")) or {}
    defaults = yaml.safe_load(files.get("values.yaml", b"")) or {}
    schema = json.loads(files["values.schema.json"]) if "values.schema.json" in files else None
    deps: list[Resource] = meta.get("dependencies") or []
    if not deps and "requirements.yaml" in files:  # apiVersion v1 charts
        deps = (yaml.safe_load(files["requirements.yaml"]) or {}).get("dependencies") or []

    by_name: dict[str, ChartValues] = {}
    folders: dict[str, dict[str, bytes]] = {}
    for rel, data in files.items():
        head, slash, tail = rel.removeprefix("charts/").partition("/")
        if not rel.startswith("charts/"):
            continue
        if slash:
            folders.setdefault(head, {})[tail] = data
        elif head.endswith(".tgz"):
            with tarfile.open(fileobj=io.BytesIO(data)) as nested:
                sub = chart_from_tar(nested)
            by_name[sub.name] = sub
    for folder in folders.values():
        if "Chart.yaml" in folder:
            sub = chart_from_files(folder)
            by_name[sub.name] = sub

    subcharts: dict[str, ChartValues] = {}
    dependency_keys: dict[str, Any] = {}
    for dep in deps:
        dep_name = str(dep.get("name"))
        if dep_name in by_name:
            subcharts[str(dep.get("alias") or dep_name)] = by_name[dep_name]
        for condition in str(dep.get("condition") or "").split(","):
            if condition.strip():
                set_path(dependency_keys, condition.strip().split("."))
        for tag in dep.get("tags") or []:
            set_path(dependency_keys, ["tags", str(tag)])
    # A subchart in charts/ without a dependency entry is still loaded, under its name.
    for sub_name, sub in by_name.items():
        subcharts.setdefault(sub_name, sub)
    reads = any(
        rel.startswith("templates/") and b"Capabilities.APIVersions" in data
        for rel, data in files.items()
    )
    return ChartValues(
        name=str(meta.get("name", "")),
        version=str(meta.get("version", "")),
        defaults=defaults if isinstance(defaults, dict) else {},
        schema=schema,
        subcharts=subcharts,
        dependency_keys=dependency_keys,
        reads_api_versions=reads or any(s.reads_api_versions for s in subcharts.values()),
    )


def set_path(tree: dict[str, Any], path: list[str]) -> None:
    for key in path[:-1]:
        if not isinstance(tree.get(key), dict):
            tree[key] = {}
        tree = tree[key]
    tree.setdefault(path[-1], None)


def descendants(chart: ChartValues) -> Iterator[ChartValues]:
    yield chart
    for sub in chart.subcharts.values():
        yield from descendants(sub)


# A schema node with the document its local $refs point into.
Schema = tuple[Any, Any]


def schema_branches(schema: Schema) -> list[Schema]:
    """The alternatives a schema node allows, with local $refs and allOf/anyOf/oneOf flattened."""
    node, root = schema
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 32:
        ref = str(node["$ref"])
        if not ref.startswith("#"):
            return [({}, root)]  # a remote schema: nothing to check against
        target: Any = root
        for part in filter(None, ref[1:].split("/")):
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"))
                if isinstance(target, dict)
                else None
            )
        node, seen = target, seen + 1
    if node is True or node is None:
        return [({}, root)]
    if not isinstance(node, dict):
        return []
    composed = [
        branch
        for key in ("allOf", "anyOf", "oneOf")
        for sub in node.get(key) or []
        for branch in schema_branches((sub, root))
    ]
    # A node that only combines others says nothing of its keys itself.
    return composed if composed and not lists_keys(node) else [(node, root), *composed]


def lists_keys(node: Any) -> bool:
    """Whether a schema branch names the keys allowed below it."""
    return isinstance(node, dict) and (
        "properties" in node
        or "patternProperties" in node
        or node.get("additionalProperties") is False
    )


def schema_child(schema: Schema, key: str) -> list[Schema]:
    """The schema nodes that allow key below schema; [] when none does.

    additionalProperties left unset counts as closed where the branch lists properties: chart
    schemas leave it out while meaning "these are the values", and helm would take any key.
    """
    found: list[Schema] = []
    for node, root in schema_branches(schema):
        if not lists_keys(node):
            found.append(({}, root))
            continue
        if key in (node.get("properties") or {}):
            found.append((node["properties"][key], root))
            continue
        patterns = node.get("patternProperties") or {}
        matched = [sub for pattern, sub in patterns.items() if re.search(pattern, key)]
        if matched:
            found += [(sub, root) for sub in matched]
        elif node.get("additionalProperties") not in (None, False):
            found.append((node["additionalProperties"], root))
    return found


@dataclass
class ValuesNode:
    """Everything that says which keys are read at one path of a chart's values."""

    defaults: list[Any]
    schemas: list[Schema]
    charts: list[ChartValues]  # the charts whose values start here (subcharts, global)

    def child(self, key: str) -> ValuesNode | None:
        defaults = [d[key] for d in self.defaults if isinstance(d, dict) and key in d]
        schemas = [s for schema in self.schemas for s in schema_child(schema, key)]
        charts: list[ChartValues] = []
        if key == "global":
            # Global values are shared by a chart and all its subcharts.
            everyone = [c for chart in self.charts for c in descendants(chart)]
            defaults += [c.defaults["global"] for c in everyone if c.defaults.get("global")]
            schemas += [
                s
                for c in everyone
                if c.schema is not None
                for s in schema_child((c.schema, c.schema), "global")
            ]
        else:
            charts = [c.subcharts[key] for c in self.charts if key in c.subcharts]
            if charts:
                # A subchart's own values say what it reads: empty maps for it (in the parent's
                # values or its own) are no free-form maps.
                defaults = [d for d in defaults if d]
                defaults += [d for c in charts for d in (c.defaults, c.dependency_keys) if d]
                schemas += [(c.schema, c.schema) for c in charts if c.schema is not None]
        if not (defaults or schemas or charts):
            return None
        return ValuesNode(defaults, schemas, charts)

    def free(self) -> bool:
        """Keys below are not checked: a default of {} or null (or a scalar), an open schema."""
        if any(d is None or d == {} or not isinstance(d, dict) for d in self.defaults):
            return True
        return any(
            not lists_keys(node) for schema in self.schemas for node, _ in schema_branches(schema)
        )


def root_node(chart: ChartValues) -> ValuesNode:
    schemas = [(chart.schema, chart.schema)] if chart.schema is not None else []
    return ValuesNode([chart.defaults, chart.dependency_keys], schemas, [chart])


def show_path(path: KeyPath) -> str:
    """a.b["c.d"]: keys that hold dots (argocd-cm entries) in brackets."""
    out = ""
    for key in path:
        out += f'["{key}"]' if "." in key else (f".{key}" if out else key)
    return out


def unknown_keys(values: Any, chart: ChartValues) -> list[KeyPath]:
    """Key paths of values that the chart (its defaults, schema and subcharts) does not read."""
    found: list[KeyPath] = []

    def walk(ours: dict[str, Any], node: ValuesNode, path: KeyPath) -> None:
        for key, value in ours.items():
            here = (*path, str(key))
            child = node.child(str(key))
            if child is None:
                found.append(here)
            elif (
                isinstance(value, dict)
                and not child.free()
                and (chart.name, show_path(here)) not in FREE_FORM_VALUES
            ):
                walk(value, child, here)

    if isinstance(values, dict):
        walk(values, root_node(chart), ())
    return found


def check_values(layers: tuple[ValuesLayer, ...], chart: ChartValues) -> list[Finding]:
    """An issue for each key of the layers that the chart does not read."""
    label = f"{chart.name}@{chart.version}"
    issues: list[Finding] = []
    for layer in layers:
        try:
            values = yaml.safe_load(layer.text)
        except yaml.YAMLError as exc:
            issues.append(Finding("values-key", layer.source, f"not YAML: {exc}"))
            continue
        issues += [
            Finding("values-key", layer.source, f"{show_path(p)} is not a value of {label}")
            for p in unknown_keys(values, chart)
        ]
    return issues
