"""The local Prometheus: our rule files and scrape jobs labelled as in the cluster, and the one
client of its HTTP API (verify-observability, dashboards render)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gpu_analytics_tools.observability.targets import all_targets
from gpu_analytics_tools.stack.paths import repo_root

# Where our PrometheusRules live: hand-written alerts and Sloth's generated SLO rules.
RULE_DIRS = ("monitoring/rules", "monitoring/slos")


def exposition_samples(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """The samples of `name` in a Prometheus text exposition (a /metrics page) whose labels
    include `labels`: (labels, value) each."""
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]


def prometheus_rules(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every PrometheusRule of the repository, by file name (e.g. gpu-analytics.yaml)."""
    root = root or repo_root()
    found: dict[str, dict[str, Any]] = {}
    for folder in RULE_DIRS:
        for source in sorted((root / folder).glob("*.yaml")):
            for doc in yaml.safe_load_all(source.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "PrometheusRule":
                    found[source.name] = doc
    return found


def write_rule_files(dest: Path, root: Path | None = None) -> list[Path]:
    """Each PrometheusRule's groups as a plain Prometheus rules file under `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in prometheus_rules(root).items():
        target = dest / name
        target.write_text(yaml.safe_dump({"groups": doc["spec"]["groups"]}, sort_keys=False))
        written.append(target)
    return written


def write_config(
    state: Path,
    addresses: dict[str, str],
    *,
    interval: str = "5s",
    root: Path | None = None,
) -> Path:
    """prometheus.yml scraping `addresses` (service name -> host:port) with the labels the
    ServiceMonitors give in the cluster, and loading all our rules."""
    rule_files = write_rule_files(state / "rules", root)
    targets = all_targets(root)
    jobs = []
    for service, address in addresses.items():
        labels = dict(targets[service].labels)
        jobs.append(
            {
                "job_name": labels.pop("job"),
                "scrape_interval": interval,
                "static_configs": [{"targets": [address], "labels": labels}],
            }
        )
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": jobs,
    }
    path = state / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class PrometheusApi:
    """The HTTP API of a Prometheus: instant and range queries, label values, rules."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def _data(self, path: str, params: dict[str, Any] | None = None) -> tuple[str | None, Any]:
        body = self.http.get(path, params=params).json()
        if body.get("status") != "success":
            return f"{body.get('errorType')}: {body.get('error')}", None
        return None, body["data"]

    def query(self, expr: str) -> tuple[str | None, int]:
        """(error, number of series) of an instant query."""
        error, data = self._data("/api/v1/query", {"query": expr})
        if error:
            return error, 0
        result = data["result"]
        return None, len(result) if isinstance(result, list) else 1

    def label_values(self, label: str, metric: str) -> tuple[str | None, int]:
        error, data = self._data(f"/api/v1/label/{label}/values", {"match[]": metric})
        return error, 0 if error else len(data)

    def rules(self) -> list[dict[str, Any]]:
        error, data = self._data("/api/v1/rules")
        if error:
            raise ValueError(error)
        groups: list[dict[str, Any]] = data["groups"]
        return groups

    def range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """The series of a range query; ValueError naming the query when Prometheus refuses it."""
        params = {"query": expr, "start": start, "end": end, "step": step}
        error, data = self._data("/api/v1/query_range", params)
        if error:
            raise ValueError(f"{error}: {expr}")
        result: list[dict[str, Any]] = data["result"]
        return result
