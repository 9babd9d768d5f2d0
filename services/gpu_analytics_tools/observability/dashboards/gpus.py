"""GPU fleet: one line per GPU for each dcgm-style value, from the processor's fleet gauges.

A GPU's series comes from the replica that owns its partition; `max by (gpu_uuid, ...)` keeps
it one line through a rebalance."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from gpu_analytics_tools.observability.dashboards.common import (
    dashboard,
    graph,
    label_variable,
    prom,
    single,
    thresholds,
)

GPU = 'host=~"$host", name=~"$gpu_model"'
BY_GPU = "max by (gpu_uuid, host)"
LEGEND = "{{host}} {{gpu_uuid}}"


def _per_gpu(metric: str) -> str:
    return f"{BY_GPU} ({metric}{{{GPU}}})"


def board() -> db.Dashboard:
    return (
        dashboard(
            "gpu-analytics-gpu-fleet",
            "GPU analytics / GPU fleet",
            "Utilisation, memory, power, temperature and clocks of every GPU the pipeline "
            "stores samples of (NVML producers and HTTP ingest alike).",
        )
        .with_variable(
            label_variable("host", "Host", "gpu_analytics_gpu_last_sample_timestamp_seconds")
        )
        .with_variable(
            label_variable(
                "gpu_model",
                "GPU model",
                "gpu_analytics_gpu_last_sample_timestamp_seconds",
                label="name",
            )
        )
        .with_panel(
            single(
                "GPUs reporting",
                "GPUs with a stored sample in the last few minutes (FLEET_SERIES_TTL_S).",
                "short",
                prom(f"count({_per_gpu('gpu_analytics_gpu_last_sample_timestamp_seconds')})"),
                width=6,
            )
        )
        .with_panel(
            single(
                "Mean utilisation",
                "Mean GPU utilisation over the selected GPUs.",
                "percentunit",
                prom(f"avg({_per_gpu('gpu_analytics_gpu_utilization_ratio')})"),
                width=6,
                limits=thresholds((None, "blue"), (0.3, "green"), (0.9, "orange")),
            )
        )
        .with_panel(
            single(
                "Power draw",
                "Total power draw of the selected GPUs.",
                "watt",
                prom(f"sum({_per_gpu('gpu_analytics_gpu_power_watts')})"),
                width=6,
            )
        )
        .with_panel(
            single(
                "Fleet cost per hour",
                "Sum of the hourly prices the producers report for the selected GPUs.",
                "currencyUSD",
                prom(f"sum({_per_gpu('gpu_analytics_gpu_price_per_hour_usd')})"),
                width=6,
                decimals=2,
            )
        )
        .with_panel(
            graph(
                "Utilisation",
                "Share of time a kernel ran on the GPU (DCGM_FI_DEV_GPU_UTIL).",
                "percentunit",
                prom(_per_gpu("gpu_analytics_gpu_utilization_ratio"), LEGEND),
            )
        )
        .with_panel(
            graph(
                "Memory used",
                "Framebuffer used as a share of the GPU's total; the GpuMemoryNearlyFull alert "
                "fires above 95 % for 15 minutes.",
                "percentunit",
                prom(
                    f"{_per_gpu('gpu_analytics_gpu_memory_used_bytes')} / "
                    f"{_per_gpu('gpu_analytics_gpu_memory_total_bytes')}",
                    LEGEND,
                ),
                limits=thresholds((None, "green"), (0.95, "red")),
            )
        )
        .with_panel(
            graph(
                "Temperature",
                "GPU temperature; GpuTemperatureHigh fires above 85 °C for 10 minutes.",
                "celsius",
                prom(_per_gpu("gpu_analytics_gpu_temperature_celsius"), LEGEND),
                minimum=None,
                limits=thresholds((None, "green"), (85, "red")),
            )
        )
        .with_panel(
            graph(
                "Power draw",
                "Power per GPU (GPUs that do not report it have no line).",
                "watt",
                prom(_per_gpu("gpu_analytics_gpu_power_watts"), LEGEND),
            )
        )
        .with_panel(
            graph(
                "SM clock",
                "Streaming-multiprocessor clock (DCGM_FI_DEV_SM_CLOCK).",
                "hertz",
                prom(_per_gpu("gpu_analytics_gpu_sm_clock_hertz"), LEGEND),
            )
        )
        .with_panel(
            graph(
                "Memory controller utilisation",
                "Share of time the memory controller was busy (DCGM_FI_DEV_MEM_COPY_UTIL).",
                "percentunit",
                prom(_per_gpu("gpu_analytics_gpu_memory_utilization_ratio"), LEGEND),
            )
        )
    )
