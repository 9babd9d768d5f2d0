"""The PromQL and LogQL queries of our rules and dashboards, as verify-observability checks them
and `dashboards render` draws them, with Grafana's template variables set to a local run's
values."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_analytics_tools.observability.dashboards.build import generated
from gpu_analytics_tools.observability.prometheus import prometheus_rules

# Values for the dashboards' template variables: the local namespace, "All" for the rest.
VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "namespace": "pipeline",
    "host": ".*",
    "gpu_model": ".*",
    "model": ".*",
}


@dataclass
class Query:
    source: str  # e.g. "dashboard pipeline / End-to-end latency / B"
    expr: str
    kind: str  # "record" | "alert" | "panel" | "variable"


def substitute(expr: str) -> str:
    """Grafana's template variables replaced by the values of a local run."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in VARIABLES:
            raise KeyError(f"no local value for template variable ${name}")
        return VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def boards() -> dict[str, dict[str, Any]]:
    """The dashboards as `make dashboards` writes them, parsed, by name."""
    return {
        name.removesuffix(".json"): json.loads(content)
        for name, content in generated().items()
        if name.endswith(".json")
    }


def rule_queries(root: Path | None = None) -> list[Query]:
    queries = []
    for name, doc in prometheus_rules(root).items():
        for group in doc["spec"]["groups"]:
            for rule in group["rules"]:
                kind = "record" if "record" in rule else "alert"
                title = rule.get("record") or rule.get("alert")
                queries.append(Query(f"rule {name} / {title}", rule["expr"], kind))
    return queries


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def dashboard_queries(dashboards: dict[str, dict[str, Any]]) -> tuple[list[Query], list[Query]]:
    """(PromQL queries, LogQL queries) of the dashboards' panels and variables."""
    promql: list[Query] = []
    logql: list[Query] = []
    for name, board in dashboards.items():
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                promql.append(
                    Query(f"dashboard {name} / ${variable['name']}", variable["query"], "variable")
                )
        for panel in panels(board):
            for target in panel.get("targets", []):
                source = f"dashboard {name} / {panel['title']} / {target['refId']}"
                ds = (target.get("datasource") or panel.get("datasource") or {}).get("type")
                (logql if ds == "loki" else promql).append(Query(source, target["expr"], "panel"))
    return promql, logql
