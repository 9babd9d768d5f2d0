"""GPU cost and waste: what the fleet costs, by namespace and pod holding the GPUs, the part
paid for GPUs a pod holds without using them (below the idle threshold), and GPUs no pod holds,
from the `gpu-analytics.cost` recording rules (monitoring/rules) over the fleet counters. The
numbers match /api/v1/gpus/usage."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from gpu_analytics_tools.observability.dashboards.common import (
    dashboard,
    graph,
    prom,
    single,
    thresholds,
)

HELD = 'workload_pod!=""'
IDLE_BELOW = 0.05  # the GpuAllocatedIdle alert's and GPU_IDLE_UTILIZATION_PCT's default 5 %


def _per_hour(expr: str) -> str:
    return f"3600 * {expr}"


def board() -> db.Dashboard:
    held_util = (
        f"max by (gpu_uuid, workload_namespace, workload_pod) "
        f"(gpu_analytics_gpu_utilization_ratio{{{HELD}}})"
    )
    return (
        dashboard(
            "gpu-analytics-gpu-cost-waste",
            "GPU analytics / GPU cost and waste",
            "What the GPUs cost per hour, by the namespace and pod holding them; the part "
            "paid for GPUs held but idle (below 5 % utilisation) and for GPUs no pod holds.",
        )
        .with_panel(
            single(
                "Fleet cost per hour",
                "Every GPU at its hourly price, busy or not.",
                "currencyUSD",
                prom(_per_hour("sum(gpu_analytics:gpu_cost_usd:rate5m)")),
                width=6,
                decimals=2,
            )
        )
        .with_panel(
            single(
                "Idle while held, per hour",
                "GPUs a pod holds below the idle threshold: paid for, doing nothing.",
                "currencyUSD",
                prom(_per_hour("sum(gpu_analytics:gpu_idle_cost_usd_by_workload:rate5m)")),
                width=6,
                decimals=2,
            )
        )
        .with_panel(
            single(
                "Unallocated, per hour",
                "GPUs no pod holds: capacity paid for and free to schedule.",
                "currencyUSD",
                prom(_per_hour("sum(gpu_analytics:gpu_unallocated_cost_usd_by_host:rate5m)")),
                width=6,
                decimals=2,
            )
        )
        .with_panel(
            single(
                "GPUs held and idle",
                "GPUs a pod holds whose utilisation is below 5 % now (GpuAllocatedIdle fires "
                "after an hour).",
                "short",
                prom(f"count({held_util} < {IDLE_BELOW}) or vector(0)"),
                width=6,
            )
        )
        .with_panel(
            graph(
                "Cost per hour by namespace",
                "What the GPUs held by each namespace's pods cost per hour.",
                "currencyUSD",
                prom(
                    _per_hour(
                        "sum by (workload_namespace) "
                        "(gpu_analytics:gpu_cost_usd_by_workload:rate5m)"
                    ),
                    "{{workload_namespace}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Idle cost per hour by pod",
                "Cost of the time each pod held its GPUs below the idle threshold.",
                "currencyUSD",
                prom(
                    _per_hour(
                        "sum by (workload_namespace, workload_pod) "
                        "(gpu_analytics:gpu_idle_cost_usd_by_workload:rate5m) > 0"
                    ),
                    "{{workload_namespace}}/{{workload_pod}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Unallocated cost per hour by node",
                "GPUs of each node that no pod holds.",
                "currencyUSD",
                prom(
                    _per_hour(
                        "sum by (host) (gpu_analytics:gpu_unallocated_cost_usd_by_host:rate5m)"
                    ),
                    "{{host}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Utilisation of held GPUs by pod",
                "Mean utilisation of the GPUs each pod holds; the line is the idle threshold.",
                "percentunit",
                prom(
                    f"avg by (workload_namespace, workload_pod) ({held_util})",
                    "{{workload_namespace}}/{{workload_pod}}",
                ),
                limits=thresholds((None, "orange"), (IDLE_BELOW, "green")),
            )
        )
    )
