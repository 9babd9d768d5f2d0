"""Logs: errors per service and the recent lines of the processor and producers, from Loki.

Alloy labels each stream with namespace, pod, container and app (monitoring/alloy/values.yaml);
our services log one JSON object per line with time, level, logger, message and service
(gpu_analytics.logs). These panels use only those labels and fields; the observability check
compares them with the Alloy config and with real log lines of both services."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import logs as logs_panel
from grafana_foundation_sdk.models import common

from gpu_analytics_tools.observability.dashboards.common import LOKI, dashboard, graph, logql

STREAM = '{namespace="$namespace", app=~"processor|producer"}'
LINE = '| line_format "{{.level}} {{.logger}}: {{.message}}"'


def _recent(app: str) -> logs_panel.Panel:
    return (
        logs_panel.Panel()
        .title(f"Recent {app} lines")
        .description(f"The newest log lines of every {app} pod, level and logger first.")
        .span(12)
        .height(12)
        .show_time(True)
        .wrap_log_message(True)
        .enable_log_details(True)
        .sort_order(common.LogsSortOrder.DESCENDING)
        .with_target(
            logql(f'{{namespace="$namespace", app="{app}"}} | json {LINE}'),
        )
        .datasource(LOKI)
    )


def board() -> db.Dashboard:
    return (
        dashboard(
            "gpu-analytics-logs",
            "GPU analytics / Logs",
            "Errors and warnings per service, and the recent log lines of the pipeline.",
        )
        .with_variable(db.DatasourceVariable("loki").label("Loki").type("loki"))
        .with_variable(db.CustomVariable("namespace").label("Namespace").values("pipeline"))
        .with_panel(
            graph(
                "Errors per service",
                "Log lines at level ERROR or CRITICAL per service, per minute.",
                "short",
                logql(
                    f'sum by (app) (count_over_time({STREAM} | json | level=~"ERROR|CRITICAL"'
                    " [1m]))",
                    "{{app}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Warnings per service",
                "Log lines at level WARNING per service, per minute: retries while a "
                "dependency is away show here first.",
                "short",
                logql(
                    f'sum by (app) (count_over_time({STREAM} | json | level="WARNING" [1m]))',
                    "{{app}}",
                ),
            )
        )
        .with_panel(_recent("processor"))
        .with_panel(_recent("producer"))
    )
